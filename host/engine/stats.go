package engine

import (
	"sync/atomic"
	"time"

	"github.com/fraiseql/observer/host/effect"
	"github.com/fraiseql/observer/host/event"
	"github.com/fraiseql/observer/host/source"
)

// Stats is a snapshot of an engine's counters since Run started.
type Stats struct {
	EventsRead     uint64 // records read from the source, decode failures included
	EventsMatched  uint64 // events at least one observer wanted
	EventsFinished uint64 // events whose every unit finished
	Filtered       uint64 // (event, observer) units a filter dropped
	EffectsOK      uint64 // effects executed (or logged in a dry run)
	EffectsFailed  uint64 // failed effect attempts
	Retries        uint64 // retries scheduled
	Waits          uint64 // units held back without an attempt (circuit breaker open)
	DeadLettered   uint64 // dead letters stored
	Deduplicated   uint64 // units skipped: completed before a restart (dedup)
	InFlight       int64  // events read and not finished
	// Checkpoint is the last saved cursor's Through and the number of its
	// pending positions (the loaded cursor's before the first save), and
	// when it was saved (zero before the first save).
	CheckpointThrough uint64
	CheckpointPending int
	CheckpointAt      time.Time
	// CheckpointLowestPending is the lowest of those pending positions (0:
	// none): everything below it is finished, so it is where the
	// checkpoint's lag starts.
	CheckpointLowestPending uint64
	// Observers holds each observer's counters, in configuration order.
	Observers []ObserverStats
}

// ObserverStats are one observer's counters since Run started.
type ObserverStats struct {
	Name         string
	Entity       string
	InFlight     int64  // units enqueued and not finished
	Done         uint64 // units whose effects all executed
	Filtered     uint64 // units a filter dropped
	DeadLettered uint64 // units dead-lettered
	Retries      uint64 // retries scheduled
	Deduplicated uint64 // units skipped by dedup
}

// obsCounters are the atomics behind ObserverStats.
type obsCounters struct {
	inFlight                                      atomic.Int64
	done, filtered, deadLettered, retries, dedups atomic.Uint64
}

// counters are the atomics behind Stats; updated without locks on the hot
// path.
type counters struct {
	read, matched, finished, filtered atomic.Uint64
	effectsOK, effectsFailed          atomic.Uint64
	retries, deadLettered, dedups     atomic.Uint64
	waits                             atomic.Uint64
	inFlight                          atomic.Int64
	cpThrough                         atomic.Uint64
	cpPending                         atomic.Int64
	cpLowest                          atomic.Uint64
	cpAt                              atomic.Int64 // unix nanoseconds, 0 = never
}

// Stats returns the current counters. Safe to call at any time from any
// goroutine; each field is read atomically, the set is not one snapshot.
func (e *Engine) Stats() Stats {
	c := &e.stats
	s := Stats{
		EventsRead:              c.read.Load(),
		EventsMatched:           c.matched.Load(),
		EventsFinished:          c.finished.Load(),
		Filtered:                c.filtered.Load(),
		EffectsOK:               c.effectsOK.Load(),
		EffectsFailed:           c.effectsFailed.Load(),
		Retries:                 c.retries.Load(),
		Waits:                   c.waits.Load(),
		DeadLettered:            c.deadLettered.Load(),
		Deduplicated:            c.dedups.Load(),
		InFlight:                c.inFlight.Load(),
		CheckpointThrough:       c.cpThrough.Load(),
		CheckpointPending:       int(c.cpPending.Load()),
		CheckpointLowestPending: c.cpLowest.Load(),
	}
	if ns := c.cpAt.Load(); ns != 0 {
		s.CheckpointAt = time.Unix(0, ns)
	}
	s.Observers = make([]ObserverStats, len(e.obs))
	for i, o := range e.obs {
		oc := &o.stats
		s.Observers[i] = ObserverStats{
			Name: o.Name, Entity: o.Entity,
			InFlight: oc.inFlight.Load(), Done: oc.done.Load(), Filtered: oc.filtered.Load(),
			DeadLettered: oc.deadLettered.Load(), Retries: oc.retries.Load(), Deduplicated: oc.dedups.Load(),
		}
	}
	return s
}

// Hooks observe the engine's work. Every field may be nil. Hooks are called
// synchronously from the engine's goroutines (often several at once), so
// they must be safe for concurrent use and return quickly; a slow hook slows
// the engine.
type Hooks struct {
	// EventFinished: every matched observer's unit for the event finished
	// (or no observer wanted it). Called once per read event, before any
	// checkpoint can pass the event.
	EventFinished func(EventFinished)
	// UnitFinished: one observer is done with one event.
	UnitFinished func(UnitFinished)
	// Routed: an event was read and routed. Decisions say, for every
	// observer, whether it wants the event and why not. Building them costs
	// an allocation per event, so they are computed only when Routed is set.
	Routed func(Routed)
	// PluginDone: one plugin call (a filter or the action) returned.
	PluginDone func(PluginDone)
	// EffectDone: one attempt of one effect returned (Err says how).
	EffectDone func(EffectDone)
	// RetryScheduled: a failed step will be tried again after Delay.
	RetryScheduled func(RetryScheduled)
	// DeadLettered: a dead letter was stored (ID set).
	DeadLettered func(source.DeadLetter)
	// CheckpointSaved: the cursor was saved.
	CheckpointSaved func(source.Cursor)
}

// EventFinished describes a finished event.
type EventFinished struct {
	EventID  string
	Position uint64
	Matched  int // number of observers that wanted it
	// Capture is the time from the event's commit to the engine reading it
	// (zero when the source gives no commit time); Total from the read to
	// this moment.
	Capture, Total time.Duration
}

// Routed describes the routing of one read event.
type Routed struct {
	// Event is the event as read; hooks must not modify it.
	Event  *event.Event
	ReadAt time.Time
	// DecodeErr is set when the source could not decode the row; no
	// observer then sees it and Decisions is empty.
	DecodeErr error
	Decisions []RouteDecision
}

// RouteDecision says whether one observer wants one event, and why not.
type RouteDecision struct {
	Observer string
	Matched  bool
	// Reason says why: "matched", "condition true", or what excluded it
	// (entity, operation, condition false, condition error, dedup).
	Reason string
}

// PluginDone describes one plugin call.
type PluginDone struct {
	EventID  string
	Position uint64
	Observer string
	Plugin   string
	Role     string // abi.RoleFilter or abi.RoleAct
	Attempt  int
	Duration time.Duration
	// Pass and Reason are the filter's decision; Effects the number of
	// effects the action returned. Err is set when the call failed.
	Pass    bool
	Reason  string
	Effects int
	Err     error
}

// Unit outcomes in UnitFinished.
const (
	UnitDone         = "done"
	UnitFiltered     = "filtered"
	UnitDeadLettered = "dead_lettered"
	// UnitDeduplicated: the unit completed before a restart (its dedup
	// record says so) and was not run again.
	UnitDeduplicated = "deduplicated"
)

// UnitFinished describes one observer finishing with one event.
type UnitFinished struct {
	EventID  string
	Position uint64
	Observer string // empty for a decode failure
	Outcome  string // UnitDone, UnitFiltered, UnitDeadLettered or UnitDeduplicated
	// Route is the time from the read to the unit's first step (routing
	// and waiting for its queue and a worker); Plugin and Effect the time
	// spent in plugin calls and effects over all attempts.
	Route, Plugin, Effect time.Duration
}

// EffectDone describes one attempt of one effect.
type EffectDone struct {
	EventID        string
	Position       uint64
	Observer       string
	Index          int
	Type           string
	Attempt        int
	IdempotencyKey string
	DryRun         bool
	Duration       time.Duration
	Result         effect.Result
	Err            error
}

// RetryScheduled describes a retry waiting on its timer.
type RetryScheduled struct {
	EventID  string
	Position uint64
	Observer string
	Stage    string
	Effect   int
	Attempt  int // the attempt that failed
	Delay    time.Duration
	Err      error
	// Waiting is true when the step was not tried (a circuit breaker is
	// open): Attempt did not fail and is not used up.
	Waiting bool
}
