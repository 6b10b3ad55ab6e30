package metrics

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fraiseql/observer/host/engine"
	"github.com/fraiseql/observer/host/source"
)

// cached is a look-up result reused for a TTL. Its own mutex serialises
// look-ups, so concurrent scrapes make one query, not one each.
type cached[T any] struct {
	mu    sync.Mutex
	at    time.Time
	valid bool
	val   T
	err   error
}

func (c *cached[T]) reset() {
	c.mu.Lock()
	c.valid = false
	c.mu.Unlock()
}

// get returns the cached value when younger than ttl, else calls fetch.
// A failure is cached too, so a database that is down is not hammered.
func (c *cached[T]) get(now time.Time, ttl time.Duration, fetch func() (T, error)) (T, time.Time, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.valid || now.Sub(c.at) >= ttl || now.Before(c.at) {
		c.val, c.err = fetch()
		c.at, c.valid = now, true
	}
	return c.val, c.at, c.err
}

// lookup is the result of the scrape-time database look-ups.
type lookup struct {
	head    source.Head
	headAt  time.Time
	headErr error
	dead    int64
	deadErr error
}

// inspect runs (or reuses) the Inspector look-ups for t, checkpoint being
// the engine's saved Through.
func (m *Metrics) inspect(ctx context.Context, t Target, checkpoint uint64) (l lookup, ok bool) {
	if t.Inspector == nil {
		return l, false
	}
	now := m.opts.Now()
	l.head, l.headAt, l.headErr = m.head.get(now, m.opts.CacheTTL, func() (source.Head, error) {
		ctx, cancel := context.WithTimeout(ctx, m.opts.InspectTimeout)
		defer cancel()
		h, err := t.Inspector.Head(ctx, checkpoint)
		if err != nil {
			err = fmt.Errorf("source %q head: %w", t.Source, err)
			m.opts.Logger.Debug("metrics look-up failed", "error", err)
		}
		return h, err
	})
	if l.headErr == nil && checkpoint >= l.head.Position {
		// The cached head is older than the checkpoint, which has caught
		// up with it since: nothing is behind, whatever the cache says
		// (it was computed from an older checkpoint). Exact without a
		// query; lag between the two stays as stale as the cache's TTL.
		l.head.Position, l.head.Behind, l.head.OldestUnread = checkpoint, 0, time.Time{}
	}
	l.dead, _, l.deadErr = m.dead.get(now, m.opts.CacheTTL, func() (int64, error) {
		ctx, cancel := context.WithTimeout(ctx, m.opts.InspectTimeout)
		defer cancel()
		n, err := t.Inspector.DeadCount(ctx, t.Source, t.Group)
		if err != nil {
			err = fmt.Errorf("source %q group %q dead-letter count: %w", t.Source, t.Group, err)
			m.opts.Logger.Debug("metrics look-up failed", "error", err)
		}
		return n, err
	})
	return l, true
}

// lagFrom is the position the checkpoint's lag counts from: the last one
// below which everything is finished. An event held back (a breaker open,
// retries) keeps the lag growing even though later events finished.
func lagFrom(st engine.Stats) uint64 {
	if st.CheckpointLowestPending > 0 {
		return st.CheckpointLowestPending - 1
	}
	return st.CheckpointThrough
}

// lagSeconds is how old the oldest row above the checkpoint is: 0 when
// the checkpoint is at the head.
func lagSeconds(h source.Head, now time.Time) float64 {
	if h.OldestUnread.IsZero() {
		return 0
	}
	return max(now.Sub(h.OldestUnread).Seconds(), 0)
}

// scrapeCollector reads the current target when Prometheus scrapes.
type scrapeCollector struct{ m *Metrics }

var (
	descEventsRead = prometheus.NewDesc("observer_events_read_total",
		"Records read from the source (decode failures included).", []string{lSource}, nil)
	descInFlightEvents = prometheus.NewDesc("observer_in_flight_events",
		"Events read and not finished.", []string{lSource}, nil)
	descInFlightUnits = prometheus.NewDesc("observer_in_flight_units",
		"Units (one event for one observer) queued or running, by observer.", []string{lObserver}, nil)
	descCheckpoint = prometheus.NewDesc("observer_checkpoint_position",
		"Position through which every event is finished (the saved checkpoint's Through).", []string{lSource}, nil)
	descCheckpointPending = prometheus.NewDesc("observer_checkpoint_pending",
		"Positions below the checkpoint still to be delivered (unfinished events and holes).", []string{lSource}, nil)
	descHead = prometheus.NewDesc("observer_source_head_position",
		"Highest position in the source's change log.", []string{lSource}, nil)
	descLagEvents = prometheus.NewDesc("observer_checkpoint_lag_events",
		"Change-log rows above the checkpoint: events not yet finished (an upper bound).", []string{lSource}, nil)
	descLagSeconds = prometheus.NewDesc("observer_checkpoint_lag_seconds",
		"Age of the oldest change-log row above the checkpoint; 0 when the checkpoint is at the head.", []string{lSource}, nil)
	descDeadLetters = prometheus.NewDesc("observer_dead_letters",
		"Dead letters stored for this source and checkpoint group (the dead-letter queue's size).", []string{lSource, lGroup}, nil)
	descLeader = prometheus.NewDesc("observer_leader",
		"1 while this instance captures the source (leads), else 0.", nil, nil)
	descBreaker = prometheus.NewDesc("observer_circuit_breaker_state",
		"Circuit breaker state by observer and effect endpoint: 0 closed, 1 half-open, 2 open.", []string{lObserver, lEndpoint}, nil)
)

func (c *scrapeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descEventsRead, descInFlightEvents, descInFlightUnits, descCheckpoint,
		descCheckpointPending, descHead, descLagEvents, descLagSeconds, descDeadLetters, descLeader, descBreaker} {
		ch <- d
	}
}

func (c *scrapeCollector) Collect(ch chan<- prometheus.Metric) {
	m := c.m
	t := m.currentTarget()
	m.mu.Lock()
	reads := make(map[string]uint64, len(m.readBase)+1)
	for s, n := range m.readBase {
		reads[s] = n
	}
	counted := t.Engine != nil && m.isFoldedLocked(t.Engine)
	m.mu.Unlock()

	leader := 0.0
	if m.isLeader() {
		leader = 1
	}
	ch <- prometheus.MustNewConstMetric(descLeader, prometheus.GaugeValue, leader)
	if t.Breakers != nil {
		for _, b := range t.Breakers.Snapshot() {
			ch <- prometheus.MustNewConstMetric(descBreaker, prometheus.GaugeValue, breakerValue(b.State), b.Observer, b.Endpoint)
		}
	}
	if t.Engine != nil {
		st := t.Engine.Stats()
		if !counted {
			reads[t.Source] += st.EventsRead
		}
		ch <- prometheus.MustNewConstMetric(descInFlightEvents, prometheus.GaugeValue, float64(st.InFlight), t.Source)
		ch <- prometheus.MustNewConstMetric(descCheckpoint, prometheus.GaugeValue, float64(st.CheckpointThrough), t.Source)
		ch <- prometheus.MustNewConstMetric(descCheckpointPending, prometheus.GaugeValue, float64(st.CheckpointPending), t.Source)
		for _, o := range st.Observers {
			ch <- prometheus.MustNewConstMetric(descInFlightUnits, prometheus.GaugeValue, float64(o.InFlight), o.Name)
		}
		if l, ok := m.inspect(context.Background(), t, lagFrom(st)); ok {
			if l.headErr == nil {
				ch <- prometheus.MustNewConstMetric(descHead, prometheus.GaugeValue, float64(l.head.Position), t.Source)
				ch <- prometheus.MustNewConstMetric(descLagEvents, prometheus.GaugeValue, float64(l.head.Behind), t.Source)
				ch <- prometheus.MustNewConstMetric(descLagSeconds, prometheus.GaugeValue, lagSeconds(l.head, l.headAt), t.Source)
			}
			if l.deadErr == nil {
				ch <- prometheus.MustNewConstMetric(descDeadLetters, prometheus.GaugeValue, float64(l.dead), t.Source, t.Group)
			}
		}
	}
	for s, n := range reads {
		ch <- prometheus.MustNewConstMetric(descEventsRead, prometheus.CounterValue, float64(n), s)
	}
}
