package metrics

import (
	"context"
	"slices"
	"time"

	"github.com/fraiseql/observer/host/engine"
	"github.com/fraiseql/observer/host/resilience"
)

// Status is what `observer status` shows: one JSON document from the
// admin server's /status. Metrics.Status fills everything but State,
// Ready, Reason and Config, which the process's lifecycle owns.
type Status struct {
	Version string `json:"version"`
	// State is starting, running, standby, reloading or stopping.
	State string `json:"state"`
	Ready bool   `json:"ready"`
	// Reason says why the instance is not ready.
	Reason string `json:"reason,omitempty"`
	Leader bool   `json:"leader"`
	// Config is the configuration file the instance runs.
	Config        string           `json:"config,omitempty"`
	StartedAt     time.Time        `json:"started_at"`
	UptimeSeconds float64          `json:"uptime_seconds"`
	Sources       []SourceStatus   `json:"sources"`
	Throughput    Throughput       `json:"throughput"`
	Observers     []ObserverStatus `json:"observers"`
	// Breakers are the circuit breakers, sorted by endpoint then observer.
	Breakers []resilience.BreakerSnapshot `json:"breakers"`
	// Stages are the latency percentiles per stage in pipeline order:
	// capture, route, plugin, effect, then total.
	Stages []StageLatency `json:"stages"`
}

// SourceStatus is one source: checkpoint, lag and counters of the engine
// running now (counters restart when a reload rebuilds the engine).
type SourceStatus struct {
	Name  string `json:"name"`
	Type  string `json:"type,omitempty"`
	Group string `json:"group"`
	// Checkpoint is the saved cursor's Through; CheckpointPending the
	// positions below it still to deliver.
	Checkpoint        uint64     `json:"checkpoint"`
	CheckpointPending int        `json:"checkpoint_pending"`
	CheckpointSavedAt *time.Time `json:"checkpoint_saved_at,omitempty"`
	// Head is the log's highest position; LagEvents the rows above the
	// checkpoint and LagSeconds the age of the oldest of them. HeadError
	// says why they are missing.
	Head       uint64  `json:"head"`
	LagEvents  int64   `json:"lag_events"`
	LagSeconds float64 `json:"lag_seconds"`
	HeadError  string  `json:"head_error,omitempty"`
	// DeadLetters is the dead-letter queue's size for (source, group).
	DeadLetters      int64  `json:"dead_letters"`
	DeadLettersError string `json:"dead_letters_error,omitempty"`
	EventsRead       uint64 `json:"events_read"`
	EventsMatched    uint64 `json:"events_matched"`
	EventsFinished   uint64 `json:"events_finished"`
	InFlight         int64  `json:"in_flight"`
	EffectsOK        uint64 `json:"effects_ok"`
	EffectsFailed    uint64 `json:"effects_failed"`
}

// Throughput is events finished per second.
type Throughput struct {
	// EventsPerSecond is over the last WindowSeconds whole seconds (10, or
	// less just after start); EventsPerSecond1m over the last minute.
	WindowSeconds     float64 `json:"window_seconds"`
	EventsPerSecond   float64 `json:"events_per_second"`
	EventsPerSecond1m float64 `json:"events_per_second_1m"`
}

// ObserverStatus is one observer's counters in the engine running now.
type ObserverStatus struct {
	Name         string `json:"name"`
	Entity       string `json:"entity"`
	InFlight     int64  `json:"in_flight"`
	Done         uint64 `json:"done"`
	Filtered     uint64 `json:"filtered"`
	DeadLettered uint64 `json:"dead_lettered"`
	Retries      uint64 `json:"retries"`
	Deduplicated uint64 `json:"deduplicated"`
}

// StageLatency are exact percentiles over a stage's latest samples.
type StageLatency struct {
	Stage string `json:"stage"`
	// Samples is how many samples the figures come from (the window);
	// Total how many were ever recorded.
	Samples uint64  `json:"samples"`
	Total   uint64  `json:"total"`
	P50MS   float64 `json:"p50_ms"`
	P95MS   float64 `json:"p95_ms"`
	P99MS   float64 `json:"p99_ms"`
	MaxMS   float64 `json:"max_ms"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Latency returns the percentiles of one stage (one of Stages()).
func (m *Metrics) Latency(stage string) Percentiles {
	if i := slices.Index(stages[:], stage); i >= 0 {
		return m.windows[i].percentiles()
	}
	return Percentiles{}
}

// Throughput returns the events finished per second over the last whole
// seconds (at most 10 and no more than the process has run) and over the
// last minute.
func (m *Metrics) Throughput() Throughput {
	now := m.opts.Now()
	up := now.Sub(m.started).Truncate(time.Second)
	w := min(10*time.Second, up)
	t := Throughput{WindowSeconds: w.Seconds()}
	if w >= time.Second {
		t.EventsPerSecond = m.throughput.perSecond(now, w)
		t.EventsPerSecond1m = m.throughput.perSecond(now, min(time.Minute, up))
	}
	return t
}

// Status builds the status of the current target. Look-ups that reach
// the database (head, dead-letter count) are cached like the metrics' and
// bounded by ctx and Options.InspectTimeout; a failed one is reported in
// the source's HeadError or DeadLettersError, not as an error.
func (m *Metrics) Status(ctx context.Context) Status {
	now := m.opts.Now()
	t := m.currentTarget()
	s := Status{
		Version:       m.opts.Version,
		Leader:        m.isLeader(),
		StartedAt:     m.started,
		UptimeSeconds: now.Sub(m.started).Seconds(),
		Sources:       []SourceStatus{},
		Observers:     []ObserverStatus{},
		Breakers:      []resilience.BreakerSnapshot{},
		Throughput:    m.Throughput(),
	}
	if t.Breakers != nil {
		s.Breakers = append(s.Breakers, t.Breakers.Snapshot()...)
	}
	if t.Engine != nil {
		st := t.Engine.Stats()
		s.Sources = append(s.Sources, m.sourceStatus(ctx, t, st))
		for _, o := range st.Observers {
			s.Observers = append(s.Observers, ObserverStatus{Name: o.Name, Entity: o.Entity, InFlight: o.InFlight,
				Done: o.Done, Filtered: o.Filtered, DeadLettered: o.DeadLettered, Retries: o.Retries, Deduplicated: o.Deduplicated})
		}
	}
	for i, name := range stages {
		p := m.windows[i].percentiles()
		s.Stages = append(s.Stages, StageLatency{Stage: name, Samples: p.Count, Total: p.Total,
			P50MS: ms(p.P50), P95MS: ms(p.P95), P99MS: ms(p.P99), MaxMS: ms(p.Max)})
	}
	return s
}

func (m *Metrics) sourceStatus(ctx context.Context, t Target, st engine.Stats) SourceStatus {
	ss := SourceStatus{
		Name: t.Source, Type: t.Type, Group: t.Group,
		Checkpoint: st.CheckpointThrough, CheckpointPending: st.CheckpointPending,
		EventsRead: st.EventsRead, EventsMatched: st.EventsMatched, EventsFinished: st.EventsFinished,
		InFlight: st.InFlight, EffectsOK: st.EffectsOK, EffectsFailed: st.EffectsFailed,
	}
	if !st.CheckpointAt.IsZero() {
		at := st.CheckpointAt
		ss.CheckpointSavedAt = &at
	}
	l, ok := m.inspect(ctx, t, lagFrom(st))
	if !ok {
		ss.HeadError = "no inspector for this source"
		ss.DeadLettersError = ss.HeadError
		return ss
	}
	if l.headErr != nil {
		ss.HeadError = l.headErr.Error()
	} else {
		ss.Head, ss.LagEvents, ss.LagSeconds = l.head.Position, l.head.Behind, lagSeconds(l.head, l.headAt)
	}
	if l.deadErr != nil {
		ss.DeadLettersError = l.deadErr.Error()
	} else {
		ss.DeadLetters = l.dead
	}
	return ss
}
