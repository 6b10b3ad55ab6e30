package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/fraiseql/observer/host/config"
	"github.com/fraiseql/observer/host/leader"
	"github.com/fraiseql/observer/host/source"
)

// newElector returns the leader elector of cfg's source and group, or nil
// when [failover] is disabled.
func newElector(cfg *config.Config, log *slog.Logger) (leader.Elector, error) {
	f := cfg.Failover
	if !f.Enabled {
		return nil, nil
	}
	s := cfg.Source
	switch s.Type {
	case config.SourcePostgres:
		return leader.NewPostgres(leader.PostgresConfig{
			DSN: s.DSN, Schema: s.Schema, Source: s.Name, Group: cfg.Observer.Group,
			PollInterval: f.PollInterval, CheckInterval: f.CheckInterval, Logger: log,
		}), nil
	case config.SourceSQLite:
		return leader.NewSQLite(leader.SQLiteConfig{
			Path: s.DSN, Source: s.Name, Group: cfg.Observer.Group,
			PollInterval: f.PollInterval, LeaseTTL: f.LeaseTTL, Logger: log,
		}), nil
	}
	return nil, fmt.Errorf("source.type %q has no leader election", s.Type)
}

// runningLeader reports the process that leads cfg's source and group
// right now, whatever this config's own [failover] says (an observer
// elsewhere may run with it enabled). A check that cannot be made (the
// database is down) answers no: the command that asked goes on and meets
// the real error itself.
func runningLeader(ctx context.Context, cfg *config.Config) (holder string, leading bool) {
	probe := *cfg
	probe.Failover.Enabled = true
	el, err := newElector(&probe, slog.New(slog.DiscardHandler))
	if err != nil || el == nil {
		return "", false
	}
	holder, leading, err = el.Leader(ctx)
	return holder, err == nil && leading
}

// lossWindow is how long a PostgreSQL leader's lock check can take to
// notice a lost session: a check every check_interval, each allowed at
// least a second. An SQLite database does not go away under its leader.
func lossWindow(cfg *config.Config) time.Duration {
	if cfg.Source.Type != config.SourcePostgres {
		return 0
	}
	return cfg.Failover.CheckInterval + max(cfg.Failover.CheckInterval, time.Second)
}

// identity is what a leadership is of: the watched database, its source
// name and the checkpoint group. A reload may not change it while this
// process holds (or waits for) a leadership: the lease is for the old one.
func identity(cfg *config.Config) string {
	s := cfg.Source
	return fmt.Sprintf("%s|%s|%s|%s|%s", s.Type, s.Name, s.DSN, s.Schema, cfg.Observer.Group)
}

// errIdentityChanged refuses such a reload.
func errIdentityChanged(old, next *config.Config) error {
	return fmt.Errorf("%s: [failover] is enabled and this process leads (or waits to lead) source %q group %q; "+
		"a reload cannot change source.type, source.name, source.dsn, source.schema or observer.group: restart the process instead",
		next.Path, old.Source.Name, old.Observer.Group)
}

// lead waits, as a standby, until el makes this process the leader, while
// s (built, plugins compiled) waits to run. Reloads are taken meanwhile:
// the waiting stack is replaced. It returns the lease and the stack to
// run, or a nil lease when ctx ended first (a stop during standby).
func (sup *supervisor) lead(ctx context.Context, s *stack, el leader.Elector) (*leader.Lease, *stack, error) {
	sup.set(s, phaseStandby)
	type acquired struct {
		lease *leader.Lease
		err   error
	}
	got := make(chan acquired, 1)
	go func() {
		l, err := el.Acquire(ctx)
		got <- acquired{l, err}
	}()
	for {
		select {
		case a := <-got:
			if a.err != nil {
				if ctx.Err() != nil {
					return nil, s, nil
				}
				return nil, s, fmt.Errorf("leader election: %w", a.err)
			}
			return a.lease, s, nil
		case req := <-sup.reloads:
			next, err := sup.load(req.ctx)
			if err != nil {
				req.done <- err
				continue
			}
			describeStandbyReload(sup.log, s.cfg, next.cfg)
			s.Close(context.WithoutCancel(ctx))
			s = next
			sup.set(s, phaseStandby)
			req.done <- nil
		}
	}
}

// runLeading runs s whenever this process leads, until ctx ends or the
// engine fails: it waits as a standby (lead), runs the engine under the
// lease (its writes fenced by the lease's epoch), and when the leadership
// is lost — the lock's session died with a PostgreSQL restart, or another
// process took over a lease this one failed to renew — it stops that
// engine, builds a fresh one from the same configuration and waits as a
// standby again. The lost engine is never continued: its writes carry the
// old epoch. running is called each time the engine starts.
func (sup *supervisor) runLeading(ctx context.Context, s *stack, el leader.Elector, running func(*config.Config, int64)) error {
	sup.mu.Lock()
	sup.held = s.cfg // reloads must keep its identity
	sup.mu.Unlock()
	window := lossWindow(s.cfg)
	for {
		lease, next, err := sup.lead(ctx, s, el)
		if err != nil || lease == nil {
			next.Close(context.WithoutCancel(ctx))
			return err
		}
		running(next.cfg, lease.Epoch())
		runErr := sup.run(lease.Context(), next)
		cfg := sup.lastConfig()
		if runErr != nil && ctx.Err() == nil && lease.Err() == nil && !errors.Is(runErr, source.ErrFenced) {
			// An engine that failed because the database went away
			// (restarted, unreachable) usually fails before the lease's
			// own check notices; give that check one round.
			select {
			case <-lease.Context().Done():
			case <-time.After(window):
			}
		}
		// Released only now: the engine has saved its last checkpoint
		// under the lease.
		relErr := lease.Release(context.WithoutCancel(ctx))
		lost := lease.Err()
		switch {
		case lost != nil:
		case errors.Is(runErr, source.ErrFenced):
			lost = runErr // the store found out before the watcher did
		case relErr != nil && ctx.Err() == nil:
			lost = relErr // the lock's session or the lease's database is gone
		}
		if ctx.Err() != nil || lost == nil {
			if relErr != nil {
				sup.log.Warn("releasing the leadership", "error", relErr)
			}
			return runErr
		}
		attrs := []any{"error", lost.Error()}
		if runErr != nil && runErr != lost {
			attrs = append(attrs, "engine", runErr.Error())
		}
		sup.log.Warn("leadership lost: engine stopped; waiting as a standby with a fresh engine", attrs...)
		sup.set(nil, phaseStarting)
		if s = sup.rebuild(ctx, cfg); s == nil {
			return nil // stopped while the database was away
		}
	}
}

// rebuild builds a fresh stack from cfg after a lost leadership, retrying
// every failover.poll_interval while it fails (the database that cost the
// leadership is usually still away), until ctx ends: then it returns nil.
func (sup *supervisor) rebuild(ctx context.Context, cfg *config.Config) *stack {
	last := ""
	for {
		s, err := build(ctx, cfg, sup.log, sup.opts)
		if err == nil {
			return s
		}
		if ctx.Err() != nil {
			return nil
		}
		if err.Error() != last {
			sup.log.Error("cannot rebuild the engine after losing the leadership; retrying", "error", err.Error(),
				"retry_every", cfg.Failover.PollInterval)
			last = err.Error()
		}
		t := time.NewTimer(cfg.Failover.PollInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// describeStandbyReload logs a reload taken while waiting: nothing runs
// yet; the new configuration is what runs on taking over.
func describeStandbyReload(log *slog.Logger, old, next *config.Config) {
	if old.Admin != next.Admin || old.Failover != next.Failover {
		log.Warn("reload: [admin] and [failover] changes take effect at the next start", "config", next.Path)
	}
	log.Info("configuration reloaded; this standby runs it when it takes over", "config", next.Path,
		"observers", len(next.Observers), "plugins", len(next.Plugins))
}
