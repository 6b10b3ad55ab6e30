package cli

import (
	"context"
	"errors"

	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/fraiseql/observer/host/config"
	"github.com/fraiseql/observer/host/engine"
)

// supervisor runs the engine of `observer run` and swaps it for a new one
// when the configuration is reloaded (SIGHUP or `observer reload`).
//
// A reload builds the whole new stack — config, plugins compiled and
// checked, observers, store — while the old engine keeps running. Only when
// everything is ready does it stop the old engine (which drains its
// running work and saves its checkpoint) and start the new one from that
// checkpoint. A bad new config or plugin is refused with its error and the
// old engine never stops. No event is dropped: work the stop interrupted
// (a retry waiting on its timer) stays pending in the checkpoint and is
// delivered again, and dedup keeps finished units from repeating.
type supervisor struct {
	a    *app
	log  *slog.Logger
	opts buildOptions
	// group is forced onto every config loaded (dry runs use their own).
	groupSuffix string

	reloads chan reloadRequest
	// onReload, when set, is told the outcome of every reload, from
	// SIGHUP or the admin server alike (the reload counter).
	onReload func(error)
	// onStopped, when set, is told of every stack whose engine's Run has
	// returned (the events-read counter keeps its reads).
	onStopped func(*stack)

	mu    sync.Mutex
	cur   *stack
	phase string // starting, standby, running, reloading, stopping
	// last is the config of the last stack set, which a rebuild reuses.
	last *config.Config
	// held, when set, is the config whose leadership this process holds
	// or awaits (runLeading): every reloaded config must keep its
	// identity (see identity).
	held *config.Config
}

type reloadRequest struct {
	ctx  context.Context
	done chan error
}

// Phases of the supervisor, as /readyz reports them.
const (
	phaseStarting  = "starting"
	phaseStandby   = "standby"
	phaseRunning   = "running"
	phaseReloading = "reloading"
	phaseStopping  = "stopping"
)

func newSupervisor(a *app, log *slog.Logger, opts buildOptions, groupSuffix string) *supervisor {
	return &supervisor{a: a, log: log, opts: opts, groupSuffix: groupSuffix,
		reloads: make(chan reloadRequest), phase: phaseStarting}
}

// current returns the running stack, nil while none runs.
func (s *supervisor) current() (*stack, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur, s.phase
}

func (s *supervisor) set(st *stack, phase string) {
	s.mu.Lock()
	s.cur, s.phase = st, phase
	if st != nil {
		s.last = st.cfg
	}
	s.mu.Unlock()
}

// lastConfig returns the config of the last stack that ran or waited.
func (s *supervisor) lastConfig() *config.Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// Reload asks the running supervisor to load the config file again. It
// returns nil once the new engine runs, or the reason the new config was
// refused (the old engine then keeps running).
func (s *supervisor) Reload(ctx context.Context) error {
	req := reloadRequest{ctx: ctx, done: make(chan error, 1)}
	select {
	case s.reloads <- req:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req.done:
		if s.onReload != nil {
			s.onReload(err)
		}
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// load reads and builds a stack from the config file.
func (s *supervisor) load(ctx context.Context) (*stack, error) {
	cfg, err := s.a.loadConfig()
	if err != nil {
		return nil, err
	}
	cfg.Observer.Group += s.groupSuffix
	s.mu.Lock()
	held := s.held
	s.mu.Unlock()
	if held != nil && identity(cfg) != identity(held) {
		return nil, errIdentityChanged(held, cfg)
	}
	return build(ctx, cfg, s.log, s.opts)
}

// sighup catches SIGHUP for `observer run`, whose default action would end
// the process. Start it first thing (catchSIGHUP), so that a reload asked
// for while plugins compile at start-up (systemd's ExecReload) waits
// instead of killing the process, and stop it only as the command returns,
// so that one arriving during the final drain (a logrotate, a reload
// racing a stop) does not kill it either.
type sighup struct {
	c    chan os.Signal
	quit chan struct{}
}

func catchSIGHUP() *sighup {
	h := &sighup{c: make(chan os.Signal, 1), quit: make(chan struct{})}
	signal.Notify(h.c, syscall.SIGHUP)
	return h
}

// stop restores SIGHUP's default action and ends the watcher.
func (h *sighup) stop() {
	signal.Stop(h.c)
	close(h.quit)
}

// watchSIGHUP turns SIGHUPs into reloads while ctx lives (one caught
// during start-up is taken as soon as this runs), and ignores them, with a
// log line, while the process stops.
func (s *supervisor) watchSIGHUP(ctx context.Context, h *sighup) {
	go func() {
		for {
			select {
			case <-h.quit:
				return
			case <-h.c:
				if ctx.Err() != nil {
					s.log.Info("SIGHUP ignored: the observer is stopping")
					continue
				}
				s.log.Info("SIGHUP: reloading the configuration", "config", s.a.configPath)
				if err := s.Reload(ctx); err != nil && ctx.Err() == nil {
					s.log.Error("reload refused; the previous configuration keeps running", "error", err.Error())
				}
			}
		}
	}()
}

// run runs first's engine under ctx until ctx ends or the engine fails,
// swapping engines on reload. It closes every stack it ran.
func (s *supervisor) run(ctx context.Context, first *stack) error {
	cur := first
	// reply answers the reload that started cur, once cur's engine has
	// loaded its checkpoint: what the caller sees next is the new engine.
	var reply chan error
	for {
		s.set(cur, phaseRunning)
		engCtx, stopEngine := context.WithCancel(ctx)
		errc := make(chan error, 1)
		go func(e *engine.Engine) { errc <- e.Run(engCtx) }(cur.engine)
		if reply != nil {
			<-cur.engine.Started()
			select {
			case err := <-errc:
				errc <- err // handled below
				switch {
				case ctx.Err() != nil:
					// Stopped or deposed meanwhile: the configuration was
					// taken all the same, and is what runs next.
					reply <- nil
				case err == nil:
					reply <- errors.New("the new engine stopped while starting")
				default:
					reply <- fmt.Errorf("the new engine did not start: %w", err)
				}
			default:
				reply <- nil
			}
			reply = nil
		}
		stopping := ctx.Done()
	wait:
		for {
			select {
			case <-stopping:
				// Stopping (a signal, or the leadership lost): the engine
				// drains now; it neither leads nor is ready any more.
				s.set(cur, phaseStopping)
				stopping = nil
			case err := <-errc:
				stopEngine()
				s.set(nil, phaseStopping)
				s.stopped(cur)
				cur.Close(context.WithoutCancel(ctx))
				return err // the engine's errors say "engine: …"; it logged its figures
			case req := <-s.reloads:
				if stopping == nil {
					req.done <- errStopping
					continue wait
				}
				s.set(cur, phaseReloading)
				next, err := s.load(req.ctx)
				if err != nil {
					s.set(cur, phaseRunning)
					req.done <- err
					continue wait
				}
				// The new stack is ready: stop the old engine (it drains
				// and saves its checkpoint), then start the new one there.
				stopEngine()
				runErr := <-errc
				s.stopped(cur)
				cur.Close(context.WithoutCancel(ctx))
				if runErr != nil {
					next.Close(context.WithoutCancel(ctx))
					req.done <- fmt.Errorf("the previous engine failed while stopping: %w", runErr)
					s.set(nil, phaseStopping)
					return runErr
				}
				describeReload(s.log, cur.cfg, next.cfg)
				cur, reply = next, req.done
				break wait
			}
		}
	}
}

// errStopping refuses a reload asked for while the observer stops.
var errStopping = errors.New("the observer is stopping")

func (s *supervisor) stopped(st *stack) {
	if s.onStopped != nil {
		s.onStopped(st)
	}
}

// describeReload logs what a reload changed that matters to operators.
func describeReload(log *slog.Logger, old, next *config.Config) {
	attrs := []any{"config", next.Path, "observers", len(next.Observers), "plugins", len(next.Plugins)}
	if old.Source.Type != next.Source.Type || old.Source.Name != next.Source.Name || old.Source.DSN != next.Source.DSN {
		attrs = append(attrs, "source_changed", true)
	}
	if old.Observer.Group != next.Observer.Group {
		attrs = append(attrs, "group", next.Observer.Group, "previous_group", old.Observer.Group)
	}
	if old.Admin != next.Admin {
		log.Warn("reload: [admin] changes take effect at the next start; the admin server keeps its settings", "config", next.Path)
	}
	if old.Failover != next.Failover {
		log.Warn("reload: [failover] changes take effect at the next start", "config", next.Path)
	}
	log.Info("configuration reloaded; engine restarted from its checkpoint", attrs...)
}
