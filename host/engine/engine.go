package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fraiseql/observer/abi"
	"github.com/fraiseql/observer/host/effect"
	"github.com/fraiseql/observer/host/event"
	"github.com/fraiseql/observer/host/resilience"
	"github.com/fraiseql/observer/host/source"
)

// Filter is a plugin in the filter role (*pluginhost.Plugin satisfies it).
// It must be safe for concurrent use and must not keep in after returning:
// the engine reuses it.
type Filter interface {
	Name() string
	Filter(ctx context.Context, in *abi.Input) (abi.FilterResult, error)
}

// Actor is a plugin in the act role (*pluginhost.Plugin satisfies it). It
// must be safe for concurrent use and must not keep in after returning.
type Actor interface {
	Name() string
	Act(ctx context.Context, in *abi.Input) (abi.ActResult, error)
}

// Condition decides whether an event concerns an observer
// (*condition.Expr satisfies it). It must be safe for concurrent use.
type Condition interface {
	Eval(ev *event.Event) (bool, error)
}

// Step is one filter of an observer with its plugin configuration.
type Step struct {
	Plugin Filter
	Config json.RawMessage
}

// ActStep is the action of an observer with its plugin configuration.
type ActStep struct {
	Plugin Actor
	Config json.RawMessage
}

// Observer is one configured observer: which events it wants and what it
// does with them.
type Observer struct {
	Name   string
	Entity string
	// Operations the observer wants; empty means all.
	Operations []abi.Operation
	// Condition is evaluated on every event of Entity with a wanted
	// operation; nil means always true.
	Condition Condition
	Filters   []Step
	Action    ActStep
	// Retry is the policy for every plugin call and effect of this
	// observer; each piece of work gets Retry.MaxAttempts attempts. The
	// zero Policy means resilience.DefaultPolicy().
	Retry  resilience.Policy
	Effect effect.Policy
	// DryRun runs the plugins but only logs the effects.
	DryRun bool
}

// Config configures an Engine.
type Config struct {
	// Group names the checkpoint: one cursor per (source, group). Empty
	// means "default".
	Group string
	// Concurrency is the number of workers; 0 means 8.
	Concurrency int
	// BatchSize is the most records asked of one Source.Read; 0 means 256.
	BatchSize int
	// MaxInFlight bounds the events read but not finished; reading pauses
	// at the bound. 0 means 4096.
	MaxInFlight int
	// CheckpointInterval is how often the cursor is saved (when it moved);
	// 0 means 1s.
	CheckpointInterval time.Duration
	// ShutdownTimeout bounds how long a stop waits for running work before
	// cancelling it; 0 means 10s.
	ShutdownTimeout time.Duration
	Observers       []Observer
	// Now is the clock passed to plugins; nil means time.Now.
	Now func() time.Time
	// Hooks are called as work completes; every field may be nil.
	Hooks Hooks
	// Dedup, when set, durably records every unit that finished (done or
	// dead-lettered), and a unit recorded in an earlier run is not run
	// again when its event is delivered again after a crash. Nil turns
	// dedup off.
	Dedup source.DedupStore
	// DedupRetention is how long records are kept; 0 means
	// DefaultDedupRetention. Keep it longer than any outage after which
	// the observer restarts.
	DedupRetention time.Duration
	// Replay runs units even when a record says they finished (the
	// operator asked for their effects again); records are still written.
	Replay bool
}

// Defaults for zero Config fields.
const (
	DefaultGroup              = "default"
	DefaultConcurrency        = 8
	DefaultBatchSize          = 256
	DefaultMaxInFlight        = 4096
	DefaultCheckpointInterval = time.Second
	DefaultShutdownTimeout    = 10 * time.Second
)

// observer is an Observer prepared for routing.
type observer struct {
	Observer
	idx   int
	ops   uint8 // bit set of wanted operations
	actor string
	stats obsCounters
}

func opBit(op abi.Operation) uint8 {
	switch op {
	case abi.OpInsert:
		return 1
	case abi.OpUpdate:
		return 2
	case abi.OpDelete:
		return 4
	}
	return 0
}

// Engine runs the observers over the events of one source. Create it with
// New, run it once with Run. Stats, and ProcessOne are safe for concurrent
// use at any time.
type Engine struct {
	cfg   Config
	src   source.Source
	store source.Store
	exec  map[string]effect.Executor
	// execTypes lists exec's keys, for the unknown-type error.
	execTypes string
	log       *slog.Logger
	obs       []*observer
	byName    map[string]*observer
	// byEntity routes an entity to the observers watching it.
	byEntity map[string][]*observer
	running  atomic.Bool
	// started is closed once Run has loaded the cursor and opened the
	// source, or has returned.
	started     chan struct{}
	startedOnce sync.Once
	stats       counters
}

// New validates cfg and prepares an engine. It opens nothing: Run opens
// the source. exec maps an effect type ("http", "log") to its executor.
// A nil logger discards logs.
func New(cfg Config, src source.Source, store source.Store, exec map[string]effect.Executor, logger *slog.Logger) (*Engine, error) {
	if src == nil {
		return nil, errors.New("engine: source is nil")
	}
	if store == nil {
		return nil, errors.New("engine: store is nil")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Group == "" {
		cfg.Group = DefaultGroup
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	var errs []error
	for _, c := range []struct {
		name string
		v    *int
		def  int
	}{
		{"concurrency", &cfg.Concurrency, DefaultConcurrency},
		{"batch_size", &cfg.BatchSize, DefaultBatchSize},
		{"max_in_flight", &cfg.MaxInFlight, DefaultMaxInFlight},
	} {
		if *c.v < 0 {
			errs = append(errs, fmt.Errorf("%s %d is negative", c.name, *c.v))
		} else if *c.v == 0 {
			*c.v = c.def
		}
	}
	for _, c := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"checkpoint_interval", &cfg.CheckpointInterval, DefaultCheckpointInterval},
		{"shutdown_timeout", &cfg.ShutdownTimeout, DefaultShutdownTimeout},
		{"dedup retention", &cfg.DedupRetention, DefaultDedupRetention},
	} {
		if *c.v < 0 {
			errs = append(errs, fmt.Errorf("%s %s is negative", c.name, *c.v))
		} else if *c.v == 0 {
			*c.v = c.def
		}
	}
	for typ, x := range exec {
		if x == nil {
			errs = append(errs, fmt.Errorf("executor for effect type %q is nil", typ))
		}
	}
	e := &Engine{
		started:  make(chan struct{}),
		cfg:      cfg,
		src:      src,
		store:    store,
		exec:     exec,
		log:      logger,
		byName:   make(map[string]*observer, len(cfg.Observers)),
		byEntity: make(map[string][]*observer),
	}
	for i, o := range cfg.Observers {
		ob, err := prepareObserver(i, o)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if _, dup := e.byName[o.Name]; dup {
			errs = append(errs, fmt.Errorf("observers[%d]: name %q is used twice", i, o.Name))
			continue
		}
		e.obs = append(e.obs, ob)
		e.byName[o.Name] = ob
		e.byEntity[o.Entity] = append(e.byEntity[o.Entity], ob)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("engine config: %w", err)
	}
	types := slices.Sorted(maps.Keys(exec))
	e.execTypes = "none"
	if len(types) > 0 {
		e.execTypes = strings.Join(types, ", ")
	}
	return e, nil
}

func prepareObserver(i int, o Observer) (*observer, error) {
	where := fmt.Sprintf("observers[%d]", i)
	if o.Name != "" {
		where = fmt.Sprintf("observer %q", o.Name)
	}
	var errs []error
	if o.Name == "" {
		errs = append(errs, errors.New("name is empty"))
	}
	if o.Entity == "" {
		errs = append(errs, errors.New("entity is empty"))
	}
	ob := &observer{Observer: o, idx: i}
	if len(o.Operations) == 0 {
		ob.ops = 7
	}
	for _, op := range o.Operations {
		b := opBit(op)
		if b == 0 {
			errs = append(errs, fmt.Errorf("operation %q is not one of INSERT, UPDATE, DELETE", op))
		}
		ob.ops |= b
	}
	for j, s := range o.Filters {
		if s.Plugin == nil {
			errs = append(errs, fmt.Errorf("filters[%d]: plugin is nil", j))
		}
	}
	if o.Action.Plugin == nil {
		errs = append(errs, errors.New("action: plugin is nil"))
	} else {
		ob.actor = o.Action.Plugin.Name()
	}
	if o.Retry == (resilience.Policy{}) {
		ob.Retry = resilience.DefaultPolicy()
	} else if err := o.Retry.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("retry: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	return ob, nil
}

// route appends to dst the observers that want ev. A condition that fails
// to evaluate is reported with the observer, so its unit dead-letters.
// Started is closed once Run has loaded the checkpoint and opened the
// source (Stats then report the loaded checkpoint), or once Run has
// returned without getting that far.
func (e *Engine) Started() <-chan struct{} { return e.started }

func (e *Engine) markStarted() { e.startedOnce.Do(func() { close(e.started) }) }

func (e *Engine) route(ev *event.Event, dst []routed) []routed {
	bit := opBit(ev.Op)
	for _, o := range e.byEntity[ev.Entity] {
		if o.ops&bit == 0 {
			continue
		}
		if o.Condition != nil {
			ok, err := o.Condition.Eval(ev)
			if err != nil {
				dst = append(dst, routed{o: o, err: &StageError{Stage: StageCondition, Observer: o.Name, Effect: -1, Err: resilience.MarkPermanent(err)}})
				continue
			}
			if !ok {
				continue
			}
		}
		dst = append(dst, routed{o: o})
	}
	return dst
}

type routed struct {
	o   *observer
	err *StageError
}

// Decide explains, for every observer, whether it wants ev and why, as
// the engine's routing does. It evaluates conditions again, so the engine
// runs it only when a Routed hook wants the answer (and `observer
// debug-event` for an event read back from the source).
func (e *Engine) Decide(ev *event.Event) []RouteDecision {
	out := make([]RouteDecision, len(e.obs))
	bit := opBit(ev.Op)
	for i, o := range e.obs {
		d := RouteDecision{Observer: o.Name}
		switch {
		case o.Entity != ev.Entity:
			d.Reason = fmt.Sprintf("entity %q is not %q", ev.Entity, o.Entity)
		case o.ops&bit == 0:
			d.Reason = fmt.Sprintf("operation %s is not one of %v", ev.Op, o.Operations)
		case o.Condition == nil:
			d.Matched, d.Reason = true, "no condition"
		default:
			ok, err := o.Condition.Eval(ev)
			switch {
			case err != nil:
				d.Matched, d.Reason = true, "condition error (dead-lettered): "+err.Error()
			case ok:
				d.Matched, d.Reason = true, "condition true"
			default:
				d.Reason = "condition false"
			}
		}
		out[i] = d
	}
	return out
}

// ProcessOne runs observer observerName's pipeline once for ev, as
// `observer dlq retry` needs: routing (entity, operation, condition), the
// filters, the action and every effect, each with attempt 1 and no retry.
// It returns nil when the work is done or the observer no longer wants the
// event (a condition or filter says no), and otherwise the *StageError of
// the failing step. Nothing is dead-lettered and no checkpoint moves.
func (e *Engine) ProcessOne(ctx context.Context, ev *event.Event, observerName string) error {
	o, ok := e.byName[observerName]
	if !ok {
		return fmt.Errorf("engine: no observer named %q", observerName)
	}
	if ev == nil {
		return errors.New("engine: event is nil")
	}
	if ev.Entity != o.Entity {
		return fmt.Errorf("engine: observer %q watches entity %q, event %s is of entity %q", o.Name, o.Entity, ev.ID, ev.Entity)
	}
	if o.ops&opBit(ev.Op) == 0 {
		return fmt.Errorf("engine: observer %q does not watch operation %q (event %s)", o.Name, ev.Op, ev.ID)
	}
	if o.Condition != nil {
		ok, err := o.Condition.Eval(ev)
		if err != nil {
			return &StageError{Stage: StageCondition, Observer: o.Name, Effect: -1, Err: resilience.MarkPermanent(err)}
		}
		if !ok {
			return nil
		}
	}
	u := &unit{ev: &eventState{ev: ev}, o: o, attempt: 1}
	_, err := e.runUnit(ctx, u)
	if err != nil {
		return err
	}
	return nil
}
