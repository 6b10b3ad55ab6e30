package journal

import (
	"hash/maphash"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fraiseql/observer/abi"
	"github.com/fraiseql/observer/host/engine"
	"github.com/fraiseql/observer/host/source"
)

// Defaults for zero Options fields.
const (
	DefaultSize       = 10000
	DefaultMaxRecords = 64
)

// shardCount splits the journal's lock; a power of two.
const shardCount = 16

// Options configure New.
type Options struct {
	// Size is about how many events are kept; 0 means DefaultSize.
	Size int
	// MaxRecords bounds each list of an observer's record (filter calls,
	// action calls, effect attempts, retries); 0 means DefaultMaxRecords.
	MaxRecords int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Journal is the history of the latest events. Create it with New.
type Journal struct {
	opts   Options
	seed   maphash.Seed
	shards [shardCount]shard
}

type shard struct {
	mu sync.Mutex
	m  map[string]*Report
	// ring holds the ids in insertion order; head is the oldest once the
	// ring is full.
	ring []string
	head int
}

// New returns an empty journal.
func New(opts Options) *Journal {
	if opts.Size <= 0 {
		opts.Size = DefaultSize
	}
	if opts.MaxRecords <= 0 {
		opts.MaxRecords = DefaultMaxRecords
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	j := &Journal{opts: opts, seed: maphash.MakeSeed()}
	per := (opts.Size + shardCount - 1) / shardCount
	for i := range j.shards {
		j.shards[i].m = make(map[string]*Report, per)
		j.shards[i].ring = make([]string, 0, per)
	}
	return j
}

// Size is the configured capacity.
func (j *Journal) Size() int { return j.opts.Size }

// Len is the number of events held.
func (j *Journal) Len() int {
	n := 0
	for i := range j.shards {
		s := &j.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

func (j *Journal) shard(id string) *shard {
	return &j.shards[maphash.String(j.seed, id)&(shardCount-1)]
}

// entry returns id's report with its shard locked, creating it (and
// evicting the shard's oldest) when absent. The caller unlocks s.mu.
func (j *Journal) entry(id string) (*shard, *Report) {
	s := j.shard(id)
	s.mu.Lock()
	if r, ok := s.m[id]; ok {
		return s, r
	}
	r := &Report{EventID: id, From: FromJournal, State: StateInFlight, Observers: []ObserverReport{}}
	r.Source, r.Position = splitID(id)
	if len(s.ring) < cap(s.ring) {
		s.ring = append(s.ring, id)
	} else {
		delete(s.m, s.ring[s.head])
		s.ring[s.head] = id
		s.head = (s.head + 1) % len(s.ring)
	}
	s.m[id] = r
	return s, r
}

// splitID splits "source:position"; a malformed id gives position 0.
func splitID(id string) (string, uint64) {
	i := strings.LastIndexByte(id, ':')
	if i < 0 {
		return "", 0
	}
	p, err := strconv.ParseUint(id[i+1:], 10, 64)
	if err != nil {
		return id[:i], 0
	}
	return id[:i], p
}

// Get returns a copy of the report of event id.
func (j *Journal) Get(id string) (Report, bool) {
	s := j.shard(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.m[id]
	if !ok {
		return Report{}, false
	}
	c := *r
	c.Observers = slices.Clone(r.Observers)
	for i := range c.Observers {
		o := &c.Observers[i]
		o.Filters, o.Action, o.Effects, o.Retries = slices.Clone(o.Filters), slices.Clone(o.Action), slices.Clone(o.Effects), slices.Clone(o.Retries)
		if o.DeadLetter != nil {
			d := *o.DeadLetter
			o.DeadLetter = &d
		}
	}
	return c, true
}

// observer returns the record of name in r, appending it when absent.
func observer(r *Report, name string) *ObserverReport {
	if name == "" {
		name = NoObserver
	}
	if i := findObserver(r.Observers, name); i >= 0 {
		return &r.Observers[i]
	}
	r.Observers = append(r.Observers, ObserverReport{Observer: name, Matched: true})
	return &r.Observers[len(r.Observers)-1]
}

// keep appends x to list unless it is full, counting what is dropped.
func keep[T any](j *Journal, o *ObserverReport, list []T, x T) []T {
	if len(list) >= j.opts.MaxRecords {
		o.Dropped++
		return list
	}
	return append(list, x)
}

// Hooks returns the engine hooks that feed the journal. Routed is set, so
// the engine builds routing decisions for every event it reads (one
// allocation per event).
func (j *Journal) Hooks() engine.Hooks {
	return engine.Hooks{
		Routed:         j.routed,
		EventFinished:  j.eventFinished,
		UnitFinished:   j.unitFinished,
		PluginDone:     j.pluginDone,
		EffectDone:     j.effectDone,
		RetryScheduled: j.retryScheduled,
		DeadLettered:   j.deadLettered,
	}
}

func (j *Journal) routed(rt engine.Routed) {
	if rt.Event == nil {
		return
	}
	s, r := j.entry(rt.Event.ID)
	defer s.mu.Unlock()
	readAt := rt.ReadAt
	r.ReadAt = &readAt
	r.Event = rt.Event
	r.Source, r.Position = rt.Event.Source, rt.Event.Position
	if rt.DecodeErr != nil {
		r.DecodeError = rt.DecodeErr.Error()
		// The engine sends what it could read; the images are not valid.
		r.Event = nil
		o := observer(r, NoObserver)
		o.Reason = "the record could not be decoded"
		return
	}
	for _, d := range rt.Decisions {
		o := observer(r, d.Observer)
		o.Matched, o.Reason = d.Matched, d.Reason
	}
}

func (j *Journal) eventFinished(e engine.EventFinished) {
	s, r := j.entry(e.EventID)
	defer s.mu.Unlock()
	now := j.opts.Now()
	r.State, r.FinishedAt, r.Matched = StateFinished, &now, e.Matched
	r.CaptureMS, r.TotalMS = ms(e.Capture), ms(e.Total)
}

func (j *Journal) unitFinished(u engine.UnitFinished) {
	s, r := j.entry(u.EventID)
	defer s.mu.Unlock()
	o := observer(r, u.Observer)
	o.Outcome = u.Outcome
	o.RouteMS, o.PluginMS, o.EffectMS = ms(u.Route), ms(u.Plugin), ms(u.Effect)
	if u.Outcome == engine.UnitDeduplicated && o.Reason == "" {
		o.Reason = "completed before a restart (dedup record)"
	}
}

func (j *Journal) pluginDone(p engine.PluginDone) {
	s, r := j.entry(p.EventID)
	defer s.mu.Unlock()
	o := observer(r, p.Observer)
	c := PluginCall{Plugin: p.Plugin, Attempt: p.Attempt, DurationMS: ms(p.Duration), Error: errText(p.Err)}
	if p.Role == abi.RoleFilter {
		if p.Err == nil {
			pass := p.Pass
			c.Pass, c.Reason = &pass, p.Reason
		}
		o.Filters = keep(j, o, o.Filters, c)
		return
	}
	c.Effects = p.Effects
	o.Action = keep(j, o, o.Action, c)
}

func (j *Journal) effectDone(e engine.EffectDone) {
	s, r := j.entry(e.EventID)
	defer s.mu.Unlock()
	o := observer(r, e.Observer)
	o.Effects = keep(j, o, o.Effects, EffectAttempt{Index: e.Index, Type: e.Type, Attempt: e.Attempt,
		Status: e.Result.Status, DurationMS: ms(e.Duration), Detail: e.Result.Detail, Error: errText(e.Err),
		IdempotencyKey: e.IdempotencyKey, DryRun: e.DryRun})
}

func (j *Journal) retryScheduled(rt engine.RetryScheduled) {
	s, r := j.entry(rt.EventID)
	defer s.mu.Unlock()
	o := observer(r, rt.Observer)
	o.Retries = keep(j, o, o.Retries, Retry{Stage: rt.Stage, Effect: rt.Effect, Attempt: rt.Attempt,
		DelayMS: ms(rt.Delay), Error: errText(rt.Err)})
}

func (j *Journal) deadLettered(d source.DeadLetter) {
	s, r := j.entry(d.EventID)
	defer s.mu.Unlock()
	observer(r, d.Observer).DeadLetter = deadLetterOf(d)
}
