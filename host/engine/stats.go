package engine

import (
	"sync/atomic"
	"time"

	"github.com/fraiseql/observer/host/effect"
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
	DeadLettered   uint64 // dead letters stored
	InFlight       int64  // events read and not finished
	// Checkpoint is the last saved cursor's Through and the number of its
	// pending positions (the loaded cursor's before the first save), and
	// when it was saved (zero before the first save).
	CheckpointThrough uint64
	CheckpointPending int
	CheckpointAt      time.Time
}

// counters are the atomics behind Stats; updated without locks on the hot
// path.
type counters struct {
	read, matched, finished, filtered atomic.Uint64
	effectsOK, effectsFailed          atomic.Uint64
	retries, deadLettered             atomic.Uint64
	inFlight                          atomic.Int64
	cpThrough                         atomic.Uint64
	cpPending                         atomic.Int64
	cpAt                              atomic.Int64 // unix nanoseconds, 0 = never
}

// Stats returns the current counters. Safe to call at any time from any
// goroutine; each field is read atomically, the set is not one snapshot.
func (e *Engine) Stats() Stats {
	c := &e.stats
	s := Stats{
		EventsRead:        c.read.Load(),
		EventsMatched:     c.matched.Load(),
		EventsFinished:    c.finished.Load(),
		Filtered:          c.filtered.Load(),
		EffectsOK:         c.effectsOK.Load(),
		EffectsFailed:     c.effectsFailed.Load(),
		Retries:           c.retries.Load(),
		DeadLettered:      c.deadLettered.Load(),
		InFlight:          c.inFlight.Load(),
		CheckpointThrough: c.cpThrough.Load(),
		CheckpointPending: int(c.cpPending.Load()),
	}
	if ns := c.cpAt.Load(); ns != 0 {
		s.CheckpointAt = time.Unix(0, ns)
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
}

// Unit outcomes in UnitFinished.
const (
	UnitDone         = "done"
	UnitFiltered     = "filtered"
	UnitDeadLettered = "dead_lettered"
)

// UnitFinished describes one observer finishing with one event.
type UnitFinished struct {
	EventID  string
	Position uint64
	Observer string // empty for a decode failure
	Outcome  string // UnitDone, UnitFiltered or UnitDeadLettered
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
}
