package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/fraiseql/observer/host/admin"
	"github.com/fraiseql/observer/host/config"
	"github.com/fraiseql/observer/host/engine"
	"github.com/fraiseql/observer/host/journal"
	"github.com/fraiseql/observer/host/metrics"
	"github.com/fraiseql/observer/host/source"
)

// runner is what the admin state reads from `observer run`'s supervisor
// (*supervisor satisfies it): the stack running now with its phase, and
// the reload.
type runner interface {
	current() (*stack, string)
	Reload(ctx context.Context) error
}

var _ runner = (*supervisor)(nil)

// instance is the running process as the admin server sees it: it
// implements admin.Backend and feeds the metrics. It outlives engines and
// asks the supervisor for the current stack on every request and scrape,
// so a reload needs no call here.
type instance struct {
	metrics *metrics.Metrics
	// journal is nil when [admin] journal_size is 0.
	journal *journal.Journal
	run     runner
	reloads sync.Mutex // held while a reload runs

	mu sync.RWMutex
	// breakers is the process's circuit breaker registry, nil until set.
	breakers metrics.Breakers
}

var _ admin.Backend = (*instance)(nil)

// newInstance builds the admin state of a process started with cfg (for
// the journal size) over run.
//
// Wiring in `observer run`:
//
//	in := newInstance(cfg, sup)
//	sup.onReload, sup.onStopped = in.metrics.Reloaded, in.stopped
//	sup.opts.Hooks = joinHooks(sup.opts.Hooks, in.hooks())
//	srv, err := startAdmin(cfg, in, log) // nil when [admin] is disabled
//	if err != nil { return err }
//	defer stopAdmin(srv)
func newInstance(cfg *config.Config, run runner) *instance {
	in := &instance{run: run}
	in.metrics = metrics.New(metrics.Options{Version: version, Target: in.target, Leader: in.leader})
	if cfg.Admin.JournalSize > 0 {
		in.journal = journal.New(journal.Options{Size: cfg.Admin.JournalSize})
	}
	return in
}

// hooks are the engine hooks that feed the metrics and the journal; every
// engine the supervisor builds must get them.
func (in *instance) hooks() engine.Hooks {
	if in.journal == nil {
		return in.metrics.Hooks()
	}
	return joinHooks(in.metrics.Hooks(), in.journal.Hooks())
}

// stopped is supervisor.onStopped: the metrics keep the events the
// stopped engine read.
func (in *instance) stopped(st *stack) {
	in.metrics.EngineStopped(st.cfg.Source.Name, st.engine)
}

// setBreakers gives the status and metrics the process's circuit breaker
// registry. Create it with
// resilience.BreakersOptions{OnStateChange: in.metrics.BreakerChanged}
// so that transitions are counted.
func (in *instance) setBreakers(b metrics.Breakers) {
	in.mu.Lock()
	in.breakers = b
	in.mu.Unlock()
}

// target is metrics.Options.Target: the engine running now.
func (in *instance) target() metrics.Target {
	st, phase := in.run.current()
	in.mu.RLock()
	b := in.breakers
	in.mu.RUnlock()
	t := metrics.Target{Breakers: b}
	if st == nil || phase == phaseStandby {
		// A standby's engine has not loaded the checkpoint: its figures
		// (checkpoint 0, the whole log as lag) would mislead. The leader
		// reports the source.
		return t
	}
	t.Source, t.Group, t.Type = st.cfg.Source.Name, st.cfg.Observer.Group, st.cfg.Source.Type
	if st.engine != nil {
		t.Engine = st.engine
	}
	if st.inspect != nil {
		t.Inspector = st.inspect
	}
	return t
}

// leader is metrics.Options.Leader: this instance captures while its
// engine runs (a reload keeps the previous engine running until the new
// one is built).
func (in *instance) leader() bool {
	st, phase := in.run.current()
	return st != nil && (phase == phaseRunning || phase == phaseReloading)
}

// Ready implements admin.Backend: ready only while the engine runs.
func (in *instance) Ready() (bool, string, string) {
	st, phase := in.run.current()
	if st != nil && phase == phaseRunning {
		return true, phase, ""
	}
	switch phase {
	case phaseStarting:
		return false, phase, "starting: loading plugins and opening the source"
	case phaseStandby:
		return false, phase, "another process leads this source and group; this one takes over from the checkpoint when that one stops"
	case phaseReloading:
		return false, phase, "reloading the configuration: the previous engine runs until the new one is built"
	case phaseStopping:
		return false, phase, "stopping: draining running work and saving the checkpoint"
	case phaseRunning:
		return false, phase, "no engine is running"
	}
	return false, phase, phase
}

// Status implements admin.Backend.
func (in *instance) Status(ctx context.Context) (metrics.Status, error) {
	s := in.metrics.Status(ctx)
	s.Ready, s.State, s.Reason = in.Ready()
	if st, _ := in.run.current(); st != nil {
		s.Config = st.cfg.Path
	}
	return s, nil
}

// Event implements admin.Backend: from the journal when it holds the
// event, else read from the source with routing re-evaluated now.
func (in *instance) Event(ctx context.Context, id string) (journal.Report, error) {
	src, pos, err := admin.ParseEventID(id)
	if err != nil {
		return journal.Report{}, err
	}
	if in.journal != nil {
		if r, ok := in.journal.Get(id); ok {
			return r, nil
		}
	}
	st, _ := in.run.current()
	if st == nil || st.inspect == nil || st.store == nil {
		return journal.Report{}, fmt.Errorf("event %s is not in the journal and no engine runs to read it from the source: %w", id, admin.ErrUnavailable)
	}
	cfg := st.cfg
	if src != cfg.Source.Name {
		return journal.Report{}, fmt.Errorf("event %s: this instance watches source %q, not %q: %w", id, cfg.Source.Name, src, admin.ErrNotFound)
	}
	rec, err := st.inspect.Event(ctx, pos)
	if errors.Is(err, source.ErrNotFound) {
		return journal.Report{}, admin.ErrNotFound
	}
	if err != nil {
		return journal.Report{}, fmt.Errorf("read event %s from source %q: %w", id, src, err)
	}
	var decisions []engine.RouteDecision
	if rec.DecodeErr == nil {
		decisions = st.engine.Decide(rec.Event)
	}
	// The store lists by source and group only; debug-event is rare, so
	// scanning the group's dead letters is acceptable.
	all, err := st.store.ListDead(ctx, source.DeadFilter{Source: src, Group: cfg.Observer.Group})
	if err != nil {
		return journal.Report{}, fmt.Errorf("dead letters of event %s: %w", id, err)
	}
	var dead []source.DeadLetter
	for _, d := range all {
		if d.EventID == id {
			dead = append(dead, d)
		}
	}
	return journal.SourceReport(rec, decisions, dead), nil
}

// Reload implements admin.Backend: one reload at a time. The supervisor
// keeps the old engine running when the new configuration fails to load
// or build, so such an error is a refusal (422); if the supervisor is
// stopping afterwards, the old engine failed and it is not.
func (in *instance) Reload(ctx context.Context) (admin.ReloadResult, error) {
	if !in.reloads.TryLock() {
		return admin.ReloadResult{}, admin.ErrReloadBusy
	}
	defer in.reloads.Unlock()
	err := in.run.Reload(ctx) // counted by the supervisor (onReload)
	st, phase := in.run.current()
	switch {
	case err == nil:
		res := admin.ReloadResult{Message: "configuration reloaded; the engine restarted from its checkpoint"}
		if phase == phaseStandby {
			res.Message = "configuration reloaded; this standby runs it when it takes over"
		}
		if st != nil {
			res.Config = st.cfg.Path
			res.Message += fmt.Sprintf(" (%d observers, %d plugins)", len(st.cfg.Observers), len(st.cfg.Plugins))
		}
		return res, nil
	case ctx.Err() != nil:
		return admin.ReloadResult{}, fmt.Errorf("reload did not finish in time (it may still complete): %w: %w", err, admin.ErrUnavailable)
	case errors.Is(err, errStopping):
		return admin.ReloadResult{}, fmt.Errorf("%w: %w", err, admin.ErrUnavailable)
	case phase == phaseStopping:
		return admin.ReloadResult{}, err
	}
	return admin.ReloadResult{}, admin.Refused(err)
}

// startAdmin starts the admin server of cfg over in; it returns nil and no
// error when [admin] is disabled. Stop it with Shutdown.
func startAdmin(cfg *config.Config, in *instance, log *slog.Logger) (*admin.Server, error) {
	if !cfg.Admin.Enabled {
		log.Info("admin server disabled ([admin] enabled = false or address = \"\")")
		return nil, nil
	}
	srv, err := admin.New(admin.Config{
		Address:  cfg.Admin.Address,
		Token:    cfg.Admin.Token,
		Gatherer: in.metrics.Registry(),
		Logger:   log,
	}, in)
	if err != nil {
		return nil, usageError{fmt.Errorf("%s: %w", cfg.Path, err)}
	}
	if err := srv.Start(); err != nil {
		return nil, err
	}
	return srv, nil
}

// stopAdmin shuts srv down, waiting a little for running requests.
func stopAdmin(srv *admin.Server) {
	if srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
}

// joinHooks calls every hook set's functions in order. A field nil in
// every set stays nil, so a Routed nobody wants costs the engine nothing.
func joinHooks(hs ...engine.Hooks) engine.Hooks {
	var out engine.Hooks
	out.EventFinished = join(hs, func(h engine.Hooks) func(engine.EventFinished) { return h.EventFinished })
	out.UnitFinished = join(hs, func(h engine.Hooks) func(engine.UnitFinished) { return h.UnitFinished })
	out.Routed = join(hs, func(h engine.Hooks) func(engine.Routed) { return h.Routed })
	out.PluginDone = join(hs, func(h engine.Hooks) func(engine.PluginDone) { return h.PluginDone })
	out.EffectDone = join(hs, func(h engine.Hooks) func(engine.EffectDone) { return h.EffectDone })
	out.RetryScheduled = join(hs, func(h engine.Hooks) func(engine.RetryScheduled) { return h.RetryScheduled })
	out.DeadLettered = join(hs, func(h engine.Hooks) func(source.DeadLetter) { return h.DeadLettered })
	out.CheckpointSaved = join(hs, func(h engine.Hooks) func(source.Cursor) { return h.CheckpointSaved })
	return out
}

func join[T any](hs []engine.Hooks, field func(engine.Hooks) func(T)) func(T) {
	var fs []func(T)
	for _, h := range hs {
		if f := field(h); f != nil {
			fs = append(fs, f)
		}
	}
	switch len(fs) {
	case 0:
		return nil
	case 1:
		return fs[0]
	}
	return func(v T) {
		for _, f := range fs {
			f(v)
		}
	}
}
