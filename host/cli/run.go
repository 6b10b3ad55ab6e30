package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/fraiseql/observer/host/engine"
	"github.com/spf13/cobra"
)

func (a *app) runCommand() *cobra.Command {
	var dryRun bool
	var progress time.Duration
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Capture changes and run the observers until interrupted",
		Long: `run loads observer.toml, compiles and checks every plugin, opens the source and
processes change events until SIGINT or SIGTERM. On a stop it lets running work
finish (observer.shutdown_timeout) and saves the checkpoint, so a restart resumes
exactly where it stopped.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.loadConfig()
			if err != nil {
				return err
			}
			log := a.logger(cfg.Observer.LogLevel.String(), cfg.Observer.LogFormat)
			ctx := cmd.Context()
			if dryRun {
				// A dry run keeps its own checkpoint (and dead letters), so
				// the events it previews are still there for the real run.
				cfg.Observer.Group += ".dry-run"
			}
			s, err := build(ctx, cfg, log, engine.Hooks{}, dryRun)
			if err != nil {
				if ctx.Err() != nil {
					// Stopped while starting: nothing ran, nothing to save.
					log.Info("observer stopped during start-up")
					return nil
				}
				return err
			}
			defer s.Close(context.WithoutCancel(ctx))
			log.Info("observer running", "source", cfg.Source.Name, "type", cfg.Source.Type,
				"observers", len(cfg.Observers), "group", cfg.Observer.Group, "dry_run", dryRun)
			stop := a.progress(ctx, s.engine, progress)
			defer stop()
			if err := s.engine.Run(ctx); err != nil {
				return fmt.Errorf("engine: %w", err)
			}
			st := s.engine.Stats()
			log.Info("observer stopped", "events_read", st.EventsRead, "checkpoint", st.CheckpointThrough)
			return nil
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "run the plugins but only log the effects (under its own checkpoint group GROUP.dry-run)")
	cmd.Flags().DurationVar(&progress, "progress", 5*time.Second, "how often to print a progress line to stderr (0: never)")
	return cmd
}

// progress prints a progress line every interval until the returned stop
// function is called or ctx ends.
func (a *app) progress(ctx context.Context, e *engine.Engine, every time.Duration) (stop func()) {
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
				st := e.Stats()
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
