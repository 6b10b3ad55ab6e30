package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/fraiseql/observer/host/admin"
	"github.com/fraiseql/observer/host/config"
	"github.com/fraiseql/observer/host/engine"
	"github.com/fraiseql/observer/host/resilience"
	"github.com/spf13/cobra"
)

func (a *app) runCommand() *cobra.Command {
	var dryRun, replay bool
	var progress time.Duration
	var adminAddr string
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Capture changes and run the observers until interrupted",
		Long: `run loads observer.toml, compiles and checks every plugin, opens the source and
processes change events until SIGINT or SIGTERM. On a stop it lets running work
finish (observer.shutdown_timeout) and saves the checkpoint, so a restart resumes
exactly where it stopped.

With [failover] enabled (the default), several processes may run on one source
and group: one leads and works, the others wait as standbys (compiled and
ready) and take over from the checkpoint when it stops or dies. A process
that loses its leadership (its database connection dropped, or it was frozen
past its lease) stops its engine at once and waits as a standby again with a
fresh one. See docs/operations.md.

SIGHUP (or ` + "`observer reload`" + `) reloads observer.toml and the plugin files: the new
configuration is built and checked while the old one keeps running, then the old
engine drains and saves its checkpoint and the new one starts there. A config
or plugin that fails to load is refused with its error; the old one keeps running.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			hup := catchSIGHUP()
			defer hup.stop()
			cfg, err := a.loadConfig()
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("admin") {
				if err := overrideAdmin(cfg, adminAddr); err != nil {
					return err
				}
			}
			if err := sqliteFileExists(cfg); err != nil {
				return err
			}
			log := a.logger(cfg.Observer.LogLevel.String(), cfg.Observer.LogFormat)
			ctx := cmd.Context()
			suffix := ""
			if dryRun {
				// A dry run keeps its own checkpoint (and dead letters), so
				// the events it previews are still there for the real run.
				suffix = ".dry-run"
				cfg.Observer.Group += suffix
			}
			sup := newSupervisor(a, log, buildOptions{DryRun: dryRun, Replay: replay}, suffix)
			in := newInstance(cfg, sup)
			sup.onReload, sup.onStopped = in.metrics.Reloaded, in.stopped
			// One breaker registry for the process: a reload keeps what
			// the breakers learnt about the endpoints.
			sup.opts.Breakers = resilience.NewBreakers(resilience.BreakersOptions{OnStateChange: in.metrics.BreakerChanged})
			in.setBreakers(sup.opts.Breakers)
			sup.opts.Hooks = in.hooks()
			srv, err := startAdmin(cfg, in, log)
			if err != nil {
				return err
			}
			defer stopAdmin(srv)
			el, err := newElector(cfg, log)
			if err != nil {
				return usageError{fmt.Errorf("%s: %w", cfg.Path, err)}
			}
			if el == nil {
				if err := refuseBesideALeader(ctx, cfg); err != nil {
					return err
				}
			}
			s, err := build(ctx, cfg, log, sup.opts)
			if err != nil {
				if ctx.Err() != nil {
					// Stopped while starting: nothing ran, nothing to save.
					log.Info("observer stopped during start-up")
					return nil
				}
				return err
			}
			sup.watchSIGHUP(ctx, hup)
			stop := a.progress(ctx, sup, progress)
			defer stop()
			if el == nil {
				logRunning(log, s.cfg, dryRun, replay, 0)
				err = sup.run(ctx, s)
			} else {
				err = sup.runLeading(ctx, s, el, func(cfg *config.Config, epoch int64) {
					logRunning(log, cfg, dryRun, replay, epoch)
				})
			}
			if err == nil {
				log.Info("observer stopped")
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "run the plugins but only log the effects (under its own checkpoint group GROUP.dry-run)")
	cmd.Flags().BoolVar(&replay, "replay", false, "run (observer, event) pairs that dedup records say finished, repeating their effects")
	cmd.Flags().StringVar(&adminAddr, "admin", "", `the admin server's address, instead of [admin] address ("" disables it); each process on one machine needs its own`)
	cmd.Flags().DurationVar(&progress, "progress", 5*time.Second, "how often to print a progress line to stderr (0: never)")
	return cmd
}

// overrideAdmin applies `run --admin ADDR` with the rules of [admin]
// address: "" disables the server, a non-loopback address needs a token.
func overrideAdmin(cfg *config.Config, addr string) error {
	addr = strings.TrimSpace(addr)
	cfg.Admin.Address, cfg.Admin.Enabled = addr, addr != ""
	if addr == "" {
		return nil
	}
	lo, err := admin.Loopback(addr)
	if err != nil {
		return usagef("--admin: got %q, want host:port such as %q, or \"\" to disable the admin server", addr, config.DefaultAdminAddress)
	}
	if !lo && cfg.Admin.Token == "" {
		return usagef("--admin: %q is not a loopback address: set [admin] token_env or token_file in %s first, or bind to 127.0.0.1", addr, cfg.Path)
	}
	return nil
}

// sqliteFileExists refuses to run on an SQLite file that does not exist:
// opening it would create an empty database with nothing captured, which
// is almost always a wrong source.dsn (relative paths are relative to the
// config file).
func sqliteFileExists(cfg *config.Config) error {
	s := cfg.Source
	if s.Type != config.SourceSQLite || s.DSN == ":memory:" || strings.HasPrefix(s.DSN, "file:") {
		return nil
	}
	path := s.DSN
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	if _, err := os.Stat(path); err != nil {
		return usagef("%s: source.dsn: the SQLite database %s does not exist (relative paths are relative to the config file); "+
			"create it and run `observer capture install --table T` first", cfg.Path, path)
	}
	return nil
}

// refuseBesideALeader refuses to run without election ([failover]
// enabled = false) while another process leads the same source and group
// with it: both would deliver every event, and their checkpoints would
// overwrite each other's. A check that cannot be made (the database is
// down) does not stop the start; the engine will say what is wrong.
func refuseBesideALeader(ctx context.Context, cfg *config.Config) error {
	holder, leading := runningLeader(ctx, cfg)
	if !leading {
		return nil
	}
	return usagef("%s: [failover] enabled = false, but process %s leads source %q group %q with failover enabled: "+
		"both would deliver every event; enable [failover] here too (it waits as a standby), or stop that process",
		cfg.Path, holder, cfg.Source.Name, cfg.Observer.Group)
}

func logRunning(log *slog.Logger, cfg *config.Config, dryRun, replay bool, epoch int64) {
	log.Info("observer running", "source", cfg.Source.Name, "type", cfg.Source.Type,
		"observers", len(cfg.Observers), "group", cfg.Observer.Group, "dry_run", dryRun, "replay", replay, "epoch", epoch)
}

// progress prints a progress line every interval until the returned stop
// function is called or ctx ends.
func (a *app) progress(ctx context.Context, sup *supervisor, every time.Duration) (stop func()) {
	if every <= 0 {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		var last engine.Stats
		lastAt := time.Now()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				cur, phase := sup.current()
				if cur == nil || phase == phaseStandby {
					continue // a standby's engine has not started
				}
				st := cur.engine.Stats()
				if st.EventsRead < last.EventsRead {
					last = engine.Stats{} // a reload started a new engine
				}
				rate := float64(st.EventsRead-last.EventsRead) / now.Sub(lastAt).Seconds()
				writeProgress(a.stderr, st, rate)
				last, lastAt = st, now
			}
		}
	}()
	return func() { cancel(); <-done }
}

func writeProgress(w io.Writer, st engine.Stats, rate float64) {
	fmt.Fprintf(w, "progress: read %d (%.0f/s) · matched %d · filtered %d · effects ok %d failed %d · retries %d · dead-lettered %d · in flight %d · checkpoint %d",
		st.EventsRead, rate, st.EventsMatched, st.Filtered, st.EffectsOK, st.EffectsFailed, st.Retries, st.DeadLettered, st.InFlight, st.CheckpointThrough)
	if st.CheckpointPending > 0 {
		fmt.Fprintf(w, " (+%d pending)", st.CheckpointPending)
	}
	fmt.Fprintln(w)
}
