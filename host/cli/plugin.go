package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/fraiseql/observer/conformance"
	"github.com/fraiseql/observer/host/pluginhost"
	"github.com/spf13/cobra"
)

func (a *app) pluginCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plugin",
		Short: "Work with WebAssembly plugins",
	}
	cmd.AddCommand(a.pluginTestCommand(), a.pluginNewCommand(), a.pluginInspectCommand(), a.pluginRunCommand())
	return cmd
}

func (a *app) pluginTestCommand() *cobra.Command {
	var vectors, pluginConfig []string
	var jsonOut bool
	var limits pluginhost.Limits
	var memory int64
	cmd := &cobra.Command{
		Use:   "test FILE.wasm",
		Short: "Run the conformance suite against a plugin",
		Long: `test loads the plugin with the sandbox's limits and runs the conformance suite
(abi/SPEC.md §8): it checks the describe manifest and ABI version; runs every generic
vector for each role the plugin declares (malformed, empty, trailing-data and
other-major inputs must give an error result; inserts, updates, deletes, null and
empty images, unicode, huge numbers, deep nesting, wide and large rows and one input
repeated 200 times must give a result or an error result, never a trap or a limit);
runs the plugin's own vectors (--vectors DIR: JSON files with an event, a config and
the expected result, error or limit); checks every result against the ABI (effect
types, HTTP methods, URLs and headers, log levels); and, per role, resends the
vectors as ABI 1.1 inputs with unknown fields, which must give the same outcomes.

It prints one line per check, a diff under each failure and a summary line, and
exits 0 when everything passed, 1 when anything failed or the plugin did not load,
2 on bad usage. --json prints the report as one JSON object. It needs no config
file.`,
		Example: `  observer plugin test bin/plugins/webhook.wasm --vectors plugins/webhook/testdata/vectors
  observer plugin test my-plugin.wasm --json > report.json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if jsonOut {
				a.format = "json"
			}
			for _, d := range vectors {
				if st, err := os.Stat(d); err != nil || !st.IsDir() {
					return usagef("--vectors %s: not a directory of vector files", d)
				}
			}
			if _, err := os.Stat(args[0]); err != nil {
				return usagef("plugin test: %v", err)
			}
			cfg := map[string]string{}
			for _, kv := range pluginConfig {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return usagef("plugin test: --plugin-config %q: want KEY=VALUE", kv)
				}
				cfg[k] = v
			}
			limits.MemoryBytes = uint64(memory)
			ctx := cmd.Context()
			h, err := pluginhost.New(ctx, pluginhost.Config{CacheDir: pluginCacheDir(), Logger: a.logger("warn", "text")})
			if err != nil {
				return fmt.Errorf("start plugin host: %w", err)
			}
			defer h.Close(context.WithoutCancel(ctx))
			rep, err := conformance.Run(ctx, h, args[0], conformance.Options{VectorDirs: vectors, Limits: limits, PluginConfig: cfg})
			if err != nil {
				return err
			}
			if a.format == "json" {
				if err := a.emit(rep, nil); err != nil {
					return err
				}
			} else if err := rep.Write(a.stdout); err != nil {
				return err
			}
			if !rep.OK() {
				return errors.New(rep.Summary())
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&vectors, "vectors", nil, "directory of the plugin's own vectors (repeatable)")
	f.StringArrayVar(&pluginConfig, "plugin-config", nil, "KEY=VALUE the plugin reads with config_get ([plugins.NAME].config; repeatable)")
	f.BoolVar(&jsonOut, "json", false, "print the report as JSON (same as --format json)")
	f.Int64Var(&memory, "memory-limit", 0, "memory cap in bytes (default: the host's default)")
	f.DurationVar(&limits.Timeout, "timeout", 0, "per-call timeout (default: the host's default)")
	f.IntVar(&limits.MaxOutputBytes, "max-output", 0, "output cap in bytes (default: the host's default)")
	return cmd
}

// pluginCacheDir is where the plugin commands (test, run, inspect) keep
// compiled modules, so that a second run of a large (Go) plugin skips the
// seconds of compilation: $OBSERVER_CACHE_DIR, else the user's cache
// directory (~/.cache/observer/wasm on Linux); "off" or no usable
// directory keeps them in memory only.
func pluginCacheDir() string {
	if d := os.Getenv("OBSERVER_CACHE_DIR"); d != "" {
		if d == "off" {
			return ""
		}
		return d
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(d, "observer", "wasm")
}
