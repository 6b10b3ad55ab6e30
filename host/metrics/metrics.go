package metrics

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/fraiseql/observer/host/engine"
	"github.com/fraiseql/observer/host/resilience"
	"github.com/fraiseql/observer/host/source"
)

// Defaults for zero Options fields.
const (
	DefaultWindow         = 4096
	DefaultCacheTTL       = 2 * time.Second
	DefaultInspectTimeout = 2 * time.Second
)

// Stage names: the label values of observer_stage_duration_seconds and the
// rows of the status latency table, in pipeline order.
const (
	StageCapture = "capture" // commit → read by the engine
	StageRoute   = "route"   // read → the unit's first step (routing, queueing)
	StagePlugin  = "plugin"  // plugin calls of one unit, all attempts
	StageEffect  = "effect"  // effects of one unit, all attempts
	StageTotal   = "total"   // read → every unit of the event finished
)

// Stages lists the stages in pipeline order.
var stages = [...]string{StageCapture, StageRoute, StagePlugin, StageEffect, StageTotal}

// Stages returns the stage names in pipeline order.
func Stages() []string { return append([]string(nil), stages[:]...) }

// Breakers is the circuit breaker registry of an engine
// (*resilience.Breakers).
type Breakers interface {
	Snapshot() []resilience.BreakerSnapshot
}

// StatsReader is the engine as the gauges read it (*engine.Engine).
type StatsReader interface {
	Stats() engine.Stats
}

// Target is what scrape-time metrics read: the engine running now and
// views of its source. Every field but Source may be zero. Engine and
// Inspector are compared by identity to notice a new engine, so they must
// be pointers (*engine.Engine, *sqlite.Inspector, …).
type Target struct {
	Source string
	Group  string
	// Type is the source type ("sqlite", "postgres"), for status.
	Type   string
	Engine StatsReader
	// Inspector gives the source head (lag) and the dead-letter count.
	Inspector source.Inspector
	// Breakers is the engine's circuit breaker registry; nil means none.
	Breakers Breakers
}

// Options configure New.
type Options struct {
	// Version is reported by observer_build_info and status.
	Version string
	// Window is the number of latest samples per stage kept for exact
	// percentiles; 0 means DefaultWindow.
	Window int
	// CacheTTL is how long an Inspector look-up is reused; 0 means
	// DefaultCacheTTL.
	CacheTTL time.Duration
	// InspectTimeout bounds one Inspector look-up; 0 means
	// DefaultInspectTimeout.
	InspectTimeout time.Duration
	// NoRuntimeCollectors leaves out the Go runtime and process
	// collectors (go_*, process_*), which are on by default.
	NoRuntimeCollectors bool
	// Target, when set, is asked for the current target whenever one is
	// needed (a scrape, Status) instead of the one SetTarget gave: the
	// process's supervisor can then answer from its own state. A change
	// of engine is noticed by comparing Target().Engine with the last one
	// seen.
	Target func() Target
	// Leader, when set, replaces SetLeader's value for observer_leader.
	Leader func() bool
	// Logger receives look-up failures at debug level; nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Metrics holds the collectors of one process. Create it with New.
type Metrics struct {
	opts    Options
	reg     *prometheus.Registry
	started time.Time

	eventsFinished *prometheus.CounterVec
	units          *prometheus.CounterVec
	deadLettered   *prometheus.CounterVec
	pluginCalls    *prometheus.CounterVec
	pluginDuration *prometheus.HistogramVec
	effects        *prometheus.CounterVec
	effectDuration *prometheus.HistogramVec
	retries        *prometheus.CounterVec
	stageDuration  [len(stages)]prometheus.Observer
	breakerTrans   *prometheus.CounterVec
	reloads        *prometheus.CounterVec

	// Label children resolved once per label set.
	finishedBySource sync.Map // source → prometheus.Counter
	byObserver       sync.Map // observer → *obsChildren
	byPlugin         sync.Map // pluginKey → *pluginChildren
	byEffect         sync.Map // effectKey → *effectChildren
	byStage          sync.Map // stageKey → prometheus.Counter (retries, dead letters)

	windows    [len(stages)]*window
	throughput rate

	leader atomic.Bool

	mu sync.Mutex // guards target, readBase and folded
	// target is the current engine; readBase the events read by engines
	// before it, per source; folded the last engines already counted in
	// readBase, which must not be counted again. Only the last few are
	// kept (an engine can be the target for a moment after it stopped,
	// until the next one is set), so stopped engines are not kept alive.
	target   Target
	readBase map[string]uint64
	folded   [2]StatsReader
	foldNext int
	// Inspector look-ups, cached.
	head cached[source.Head]
	dead cached[int64]
}

// Label names.
const (
	lSource   = "source"
	lObserver = "observer"
	lOutcome  = "outcome"
	lStage    = "stage"
	lPlugin   = "plugin"
	lRole     = "role"
	lResult   = "result"
	lType     = "type"
	lEndpoint = "endpoint"
	lTo       = "to"
	lVersion  = "version"
	lGroup    = "group"
)

// durationBuckets span 50µs (a small WASM call) to 5 minutes (capture lag
// during a backlog).
var durationBuckets = []float64{
	0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300,
}

// New builds a Metrics with its own registry and registers every
// collector.
func New(opts Options) *Metrics {
	if opts.Window <= 0 {
		opts.Window = DefaultWindow
	}
	if opts.CacheTTL <= 0 {
		opts.CacheTTL = DefaultCacheTTL
	}
	if opts.InspectTimeout <= 0 {
		opts.InspectTimeout = DefaultInspectTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Version == "" {
		opts.Version = "unknown"
	}
	m := &Metrics{
		opts:     opts,
		reg:      prometheus.NewRegistry(),
		started:  opts.Now(),
		readBase: map[string]uint64{},
		eventsFinished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "observer_events_finished_total",
			Help: "Events whose every observer unit finished (done, filtered, dead-lettered or deduplicated), or that no observer wanted.",
		}, []string{lSource}),
		units: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "observer_units_total",
			Help: "Units (one observer, one event) finished, by outcome: done, filtered, dead_lettered, deduplicated.",
		}, []string{lObserver, lOutcome}),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "observer_dead_lettered_total",
			Help: "Dead letters stored, by observer and the stage that failed (decode, condition, filter, act, effect).",
		}, []string{lObserver, lStage}),
		pluginCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "observer_plugin_calls_total",
			Help: "Plugin calls, by plugin, role and result (filter: pass, drop, error; act: ok, error).",
		}, []string{lPlugin, lRole, lResult}),
		pluginDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "observer_plugin_call_duration_seconds",
			Help:    "Duration of one plugin call, by plugin and role.",
			Buckets: durationBuckets,
		}, []string{lPlugin, lRole}),
		effects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "observer_effects_total",
			Help: "Effect attempts, by observer, effect type and outcome (ok, error, permanent_error, dry_run).",
		}, []string{lObserver, lType, lOutcome}),
		effectDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "observer_effect_duration_seconds",
			Help:    "Duration of one effect attempt, by effect type and outcome.",
			Buckets: durationBuckets,
		}, []string{lType, lOutcome}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "observer_retries_total",
			Help: "Retries scheduled, by observer and the stage that failed.",
		}, []string{lObserver, lStage}),
		breakerTrans: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "observer_circuit_breaker_transitions_total",
			Help: "Circuit breaker state changes, by observer, endpoint and the state entered (closed, half-open, open).",
		}, []string{lObserver, lEndpoint, lTo}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "observer_config_reloads_total",
			Help: "Configuration reloads, by result (success, failure).",
		}, []string{lResult}),
	}
	stageHist := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "observer_stage_duration_seconds",
		Help:    "Time spent per pipeline stage: capture (commit to read), route (read to the unit's first step), plugin (a unit's plugin calls), effect (a unit's effects), total (read to the event finished).",
		Buckets: durationBuckets,
	}, []string{lStage})
	for i, s := range stages {
		m.stageDuration[i] = stageHist.WithLabelValues(s)
		m.windows[i] = newWindow(opts.Window)
	}
	m.throughput.init()
	// Outcome and result series exist from the start, so rate() and ratios
	// work before the first failure.
	for _, r := range []string{"success", "failure"} {
		m.reloads.WithLabelValues(r)
	}
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "observer_build_info",
		Help: "Always 1; the observer's version as a label.",
	}, []string{lVersion})
	buildInfo.WithLabelValues(opts.Version).Set(1)
	m.reg.MustRegister(m.eventsFinished, m.units, m.deadLettered, m.pluginCalls, m.pluginDuration,
		m.effects, m.effectDuration, m.retries, stageHist, m.breakerTrans, m.reloads, buildInfo,
		&scrapeCollector{m: m})
	if !opts.NoRuntimeCollectors {
		m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	return m
}

// Registry returns the private registry, for promhttp.HandlerFor and
// tests. Registering more collectors on it is allowed.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// SetTarget points the scrape-time metrics at a new engine. The previous
// engine's events-read count is kept in a base, so call it after the
// previous engine's Run returned. Options.Target, when set, overrides it.
func (m *Metrics) SetTarget(t Target) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.setTargetLocked(t)
}

// EngineStopped folds the events read by e, an engine of source whose
// Run has returned, into observer_events_read_total for good. Call it for
// every engine that stops: in pull mode (Options.Target) an engine that
// ran between two scrapes is otherwise never seen, and its reads would be
// lost from the counter. Calling it more than once for e, or SetTarget
// after it, counts e once.
func (m *Metrics) EngineStopped(source string, e StatsReader) {
	if e == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.foldLocked(source, e)
}

func (m *Metrics) foldLocked(source string, e StatsReader) {
	if m.isFoldedLocked(e) {
		return
	}
	m.folded[m.foldNext] = e
	m.foldNext = (m.foldNext + 1) % len(m.folded)
	if m.target.Engine == e {
		// Counted now: a later SetTarget must not count it again, even
		// once it has left the ring.
		m.target.Engine = nil
	}
	m.readBase[source] += e.Stats().EventsRead
}

func (m *Metrics) isFoldedLocked(e StatsReader) bool {
	for _, f := range m.folded {
		if f != nil && f == e {
			return true
		}
	}
	return false
}

func (m *Metrics) setTargetLocked(t Target) {
	old := m.target
	if old.Engine != nil && old.Engine != t.Engine {
		m.foldLocked(old.Source, old.Engine)
	}
	if old.Engine != t.Engine || old.Inspector != t.Inspector {
		m.head.reset()
		m.dead.reset()
	}
	m.target = t
}

// SetLeader sets observer_leader: whether this instance captures now.
func (m *Metrics) SetLeader(leader bool) { m.leader.Store(leader) }

// Reloaded counts one configuration reload; err nil means it succeeded.
func (m *Metrics) Reloaded(err error) {
	r := "success"
	if err != nil {
		r = "failure"
	}
	m.reloads.WithLabelValues(r).Inc()
}

// BreakerChanged counts one circuit breaker transition. Pass it as
// resilience.BreakersOptions.OnStateChange (or call it from there).
func (m *Metrics) BreakerChanged(c resilience.StateChange) {
	m.breakerTrans.WithLabelValues(c.Observer, c.Endpoint, c.To.String()).Inc()
}

// currentTarget returns the target, asking Options.Target when set.
func (m *Metrics) currentTarget() Target {
	var t Target
	if m.opts.Target != nil {
		t = m.opts.Target()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.opts.Target != nil {
		m.setTargetLocked(t)
	}
	return m.target
}

// isLeader is observer_leader's value.
func (m *Metrics) isLeader() bool {
	if m.opts.Leader != nil {
		return m.opts.Leader()
	}
	return m.leader.Load()
}

// breakerValue encodes a breaker state for the gauge: 0 closed, 1
// half-open, 2 open (resilience.State numbers them differently).
func breakerValue(s resilience.State) float64 {
	switch s {
	case resilience.Open:
		return 2
	case resilience.HalfOpen:
		return 1
	}
	return 0
}
