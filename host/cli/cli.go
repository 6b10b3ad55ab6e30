package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"strings"

	"github.com/spf13/cobra"
)

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

// usageError marks errors that mean "nothing was started: fix the input".
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// app is the state shared by the commands of one invocation.
type app struct {
	stdout, stderr io.Writer
	configPath     string
	format         string
	logLevel       string
	cpuProfile     string
}

// Main runs the observer command line and returns the process exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	a := &app{stdout: stdout, stderr: stderr}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	if a.format == "json" {
		_ = json.NewEncoder(stderr).Encode(map[string]string{"error": err.Error()})
	} else {
		fmt.Fprintf(stderr, "observer: %v\n", err)
	}
	var ue usageError
	if errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown command") ||
		strings.HasPrefix(err.Error(), "unknown flag") || strings.Contains(err.Error(), "accepts ") ||
		strings.Contains(err.Error(), "requires at least") {
		return exitUsage
	}
	return exitFailed
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "observer",
		Short: "Watch databases for committed changes and react through WebAssembly plugins",
		Long: `observer captures committed changes from a database (PostgreSQL, or SQLite as the
embedded default), routes each change event to the observers declared in
observer.toml, runs their WebAssembly filters and action, and executes the effects
the plugins return (HTTP calls, log lines) with retries, dead-lettering and a
durable checkpoint.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.StringVarP(&a.configPath, "config", "c", envOr("OBSERVER_CONFIG", "observer.toml"), "configuration file (env OBSERVER_CONFIG)")
	pf.StringVar(&a.format, "format", "text", "output format: text or json (json also makes logs and errors JSON lines)")
	pf.StringVar(&a.logLevel, "log-level", "", "log level: debug, info, warn, error (default: the config's observer.log_level)")
	pf.StringVar(&a.cpuProfile, "cpu-profile", "", "write a CPU profile of the command to this file")
	_ = pf.MarkHidden("cpu-profile")
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		if a.format != "text" && a.format != "json" {
			return usagef("--format %q: want text or json", a.format)
		}
		switch strings.ToLower(a.logLevel) {
		case "", "debug", "info", "warn", "warning", "error":
		default:
			return usagef("--log-level %q: want debug, info, warn or error", a.logLevel)
		}
		if a.cpuProfile != "" {
			f, err := os.Create(a.cpuProfile)
			if err != nil {
				return usagef("--cpu-profile: %v", err)
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				f.Close()
				return usagef("--cpu-profile: %v", err)
			}
		}
		return nil
	}
	root.PersistentPostRun = func(*cobra.Command, []string) {
		if a.cpuProfile != "" {
			pprof.StopCPUProfile()
		}
	}
	root.AddCommand(
		a.runCommand(),
		a.demoCommand(),
		a.captureCommand(),
		a.dlqCommand(),
		a.pluginCommand(),
		a.versionCommand(),
		a.statusCommand(),
		a.debugEventCommand(),
		a.reloadCommand(),
	)
	return root
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// Version is the observer's version, set at build time with -ldflags.
var version = "dev"

func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the observer version and the plugin ABI it speaks",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.emit(map[string]string{"version": version, "abi": abiVersion()}, func(w io.Writer) {
				fmt.Fprintf(w, "observer %s (plugin ABI %s)\n", version, abiVersion())
			})
		},
	}
}

// emit writes v as JSON under --format json, else calls text.
func (a *app) emit(v any, text func(io.Writer)) error {
	if a.format == "json" {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	text(a.stdout)
	return nil
}

// logger builds the process logger; level "" means the default.
func (a *app) logger(level, format string) *slog.Logger {
	if a.logLevel != "" {
		level = a.logLevel
	}
	var lv slog.Level
	switch strings.ToLower(level) {
	case "debug":
		lv = slog.LevelDebug
	case "warn", "warning":
		lv = slog.LevelWarn
	case "error":
		lv = slog.LevelError
	default:
		lv = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" || a.format == "json" {
		return slog.New(slog.NewJSONHandler(a.stderr, opts))
	}
	return slog.New(slog.NewTextHandler(a.stderr, opts))
}
