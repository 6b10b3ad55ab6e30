package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/fraiseql/observer/abi"
	"github.com/fraiseql/observer/host/effect"
	effectlog "github.com/fraiseql/observer/host/effect/log"
	"github.com/fraiseql/observer/host/engine"
	"github.com/fraiseql/observer/host/metrics"
	"github.com/fraiseql/observer/host/resilience"
	"github.com/fraiseql/observer/host/source"
	"github.com/fraiseql/observer/host/source/sqlite"
)

// goFilter and goActor stand in for WASM plugins: the metrics only see
// their names, results and timings.
type goFilter struct {
	name string
	fn   func(*abi.Input) abi.FilterResult
}

func (f goFilter) Name() string { return f.name }
func (f goFilter) Filter(_ context.Context, in *abi.Input) (abi.FilterResult, error) {
	return f.fn(in), nil
}

type goActor struct {
	name string
	fn   func(*abi.Input) abi.ActResult
}

func (a goActor) Name() string                                                { return a.name }
func (a goActor) Act(_ context.Context, in *abi.Input) (abi.ActResult, error) { return a.fn(in), nil }

// flaky fails the first attempt of every effect, then succeeds.
type flaky struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (f *flaky) Execute(_ context.Context, req effect.Request) (effect.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.seen[req.IdempotencyKey] {
		f.seen[req.IdempotencyKey] = true
		return effect.Result{Status: 503}, errors.New("flaky: first attempt fails")
	}
	return effect.Result{Status: 200}, nil
}

// shop is an SQLite database with a captured orders table.
type shop struct {
	path string
}

func newShop(t *testing.T) *shop {
	t.Helper()
	path := filepath.Join(t.TempDir(), "shop.db")
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE orders (id INTEGER PRIMARY KEY, total NUMERIC NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	if err := sqlite.Install(context.Background(), db, sqlite.InstallOptions{Tables: []sqlite.TableSpec{{Name: "orders"}}}); err != nil {
		t.Fatal(err)
	}
	return &shop{path: path}
}

func (s *shop) insert(t *testing.T, from, to int) {
	t.Helper()
	db, err := sqlite.Open(context.Background(), s.path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for i := from; i <= to; i++ {
		if _, err := db.Exec(`INSERT INTO orders (id, total) VALUES (?, ?)`, i, i*10); err != nil {
			t.Fatal(err)
		}
	}
}

// runEngine runs an engine over the shop until want events finished and a
// checkpoint through them is saved, then stops it. m is pointed at it.
func runEngine(t *testing.T, s *shop, m *metrics.Metrics, want uint64) *engine.Engine {
	t.Helper()
	ctx := context.Background()
	store, err := sqlite.OpenStore(ctx, s.path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	src := sqlite.New(sqlite.Config{Name: "shop", Path: s.path, PollInterval: 10 * time.Millisecond}, nil)
	idOf := func(in *abi.Input) int {
		n, _ := strconv.Atoi(fmt.Sprint(in.Event.After["id"]))
		return n
	}
	big := goFilter{name: "big", fn: func(in *abi.Input) abi.FilterResult {
		if idOf(in)%2 == 0 {
			return abi.FilterResult{Pass: false, Reason: "even"}
		}
		return abi.FilterResult{Pass: true}
	}}
	act := goActor{name: "notify", fn: func(in *abi.Input) abi.ActResult {
		effs := []abi.Effect{{Type: abi.EffectLog, Log: &abi.LogEffect{Message: "order " + in.Event.Key}}}
		switch idOf(in) {
		case 3:
			effs = append(effs, abi.Effect{Type: "flaky"})
		case 5:
			effs = append(effs, abi.Effect{Type: "kafka"}) // no executor: permanent
		}
		return abi.ActResult{Effects: effs}
	}}
	logger := slog.New(slog.DiscardHandler)
	e, err := engine.New(engine.Config{
		Concurrency:        4,
		CheckpointInterval: 20 * time.Millisecond,
		Observers: []engine.Observer{
			{Name: "orders-log", Entity: "orders", Filters: []engine.Step{{Plugin: big}}, Action: engine.ActStep{Plugin: act},
				Retry: resilience.Policy{Strategy: resilience.Fixed, MaxAttempts: 3, InitialDelay: 5 * time.Millisecond, MaxDelay: 5 * time.Millisecond}},
			{Name: "customers", Entity: "customers", Action: engine.ActStep{Plugin: act}},
		},
		Hooks: m.Hooks(),
	}, src, store, map[string]effect.Executor{abi.EffectLog: effectlog.New(logger), "flaky": &flaky{seen: map[string]bool{}}}, logger)
	if err != nil {
		t.Fatal(err)
	}
	m.SetTarget(metrics.Target{Source: "shop", Group: engine.DefaultGroup, Type: "sqlite", Engine: e,
		Inspector: sqlite.NewInspector(store.DB(), "shop")})
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- e.Run(runCtx) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st := e.Stats()
		if st.EventsFinished >= want && st.CheckpointThrough >= want {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("engine did not finish %d events: %+v", want, st)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	return e
}

// value finds one sample of name with the given labels.
func value(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, mt := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range mt.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue next
				}
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				return mt.GetCounter().GetValue(), true
			case dto.MetricType_GAUGE:
				return mt.GetGauge().GetValue(), true
			case dto.MetricType_HISTOGRAM:
				return float64(mt.GetHistogram().GetSampleCount()), true
			}
		}
	}
	return 0, false
}

type want struct {
	name   string
	labels map[string]string
	v      float64
}

func check(t *testing.T, reg prometheus.Gatherer, ws []want) {
	t.Helper()
	for _, w := range ws {
		got, ok := value(t, reg, w.name, w.labels)
		if !ok {
			t.Errorf("%s%v: no such series", w.name, w.labels)
			continue
		}
		if got != w.v {
			t.Errorf("%s%v = %v, want %v", w.name, w.labels, got, w.v)
		}
	}
}

// TestMetricsFromRealEngine drives the hooks with real engine runs over
// an SQLite source: ten orders, odd ones pass the filter and log an effect,
// order 3's second effect fails once (a retry), order 5's second effect has
// no executor (a permanent failure, dead-lettered). Then a second engine
// (a reload) reads three more: counters keep counting.
func TestMetricsFromRealEngine(t *testing.T) {
	s := newShop(t)
	s.insert(t, 1, 10)
	m := metrics.New(metrics.Options{Version: "1.2.3-test", CacheTTL: time.Nanosecond})
	m.SetLeader(true)
	runEngine(t, s, m, 10)
	reg := m.Registry()
	const obs = "orders-log"
	check(t, reg, []want{
		{"observer_events_read_total", map[string]string{"source": "shop"}, 10},
		{"observer_events_finished_total", map[string]string{"source": "shop"}, 10},
		{"observer_units_total", map[string]string{"observer": obs, "outcome": "filtered"}, 5},
		{"observer_units_total", map[string]string{"observer": obs, "outcome": "done"}, 4},
		{"observer_units_total", map[string]string{"observer": obs, "outcome": "dead_lettered"}, 1},
		{"observer_dead_lettered_total", map[string]string{"observer": obs, "stage": "effect"}, 1},
		{"observer_plugin_calls_total", map[string]string{"plugin": "big", "role": "filter", "result": "pass"}, 5},
		{"observer_plugin_calls_total", map[string]string{"plugin": "big", "role": "filter", "result": "drop"}, 5},
		{"observer_plugin_calls_total", map[string]string{"plugin": "notify", "role": "act", "result": "ok"}, 5},
		{"observer_plugin_call_duration_seconds", map[string]string{"plugin": "big", "role": "filter"}, 10},
		{"observer_plugin_call_duration_seconds", map[string]string{"plugin": "notify", "role": "act"}, 5},
		{"observer_effects_total", map[string]string{"observer": obs, "type": "log", "outcome": "ok"}, 5},
		{"observer_effects_total", map[string]string{"observer": obs, "type": "flaky", "outcome": "error"}, 1},
		{"observer_effects_total", map[string]string{"observer": obs, "type": "flaky", "outcome": "ok"}, 1},
		{"observer_effect_duration_seconds", map[string]string{"type": "flaky", "outcome": "error"}, 1},
		{"observer_retries_total", map[string]string{"observer": obs, "stage": "effect"}, 1},
		// Every unit ran (route, plugin); effects: 4 done + the one
		// dead-lettered after its log effect ran.
		{"observer_stage_duration_seconds", map[string]string{"stage": "route"}, 10},
		{"observer_stage_duration_seconds", map[string]string{"stage": "plugin"}, 10},
		{"observer_stage_duration_seconds", map[string]string{"stage": "effect"}, 5},
		{"observer_stage_duration_seconds", map[string]string{"stage": "capture"}, 10},
		{"observer_stage_duration_seconds", map[string]string{"stage": "total"}, 10},
		{"observer_in_flight_events", map[string]string{"source": "shop"}, 0},
		{"observer_in_flight_units", map[string]string{"observer": obs}, 0},
		{"observer_checkpoint_position", map[string]string{"source": "shop"}, 10},
		{"observer_source_head_position", map[string]string{"source": "shop"}, 10},
		{"observer_checkpoint_lag_events", map[string]string{"source": "shop"}, 0},
		{"observer_checkpoint_lag_seconds", map[string]string{"source": "shop"}, 0},
		{"observer_dead_letters", map[string]string{"source": "shop", "group": "default"}, 1},
		{"observer_leader", nil, 1},
		{"observer_build_info", map[string]string{"version": "1.2.3-test"}, 1},
	})
	// kafka has no executor: the engine fails it before any executor runs,
	// so no EffectDone is reported for it, only the dead letter.
	if _, ok := value(t, reg, "observer_effects_total", map[string]string{"type": "kafka"}); ok {
		t.Errorf("an effect without executor was counted as executed")
	}

	st := m.Status(context.Background())
	if len(st.Sources) != 1 || st.Sources[0].Head != 10 || st.Sources[0].Checkpoint != 10 || st.Sources[0].DeadLetters != 1 || st.Sources[0].HeadError != "" {
		t.Errorf("status sources = %+v", st.Sources)
	}
	if len(st.Observers) != 2 || st.Observers[0].Name != obs || st.Observers[0].Done != 4 || st.Observers[0].Filtered != 5 ||
		st.Observers[0].DeadLettered != 1 || st.Observers[0].Retries != 1 {
		t.Errorf("status observers = %+v", st.Observers)
	}
	stages := map[string]metrics.StageLatency{}
	for _, sl := range st.Stages {
		stages[sl.Stage] = sl
	}
	for name, n := range map[string]uint64{"capture": 10, "route": 10, "plugin": 10, "effect": 5, "total": 10} {
		sl := stages[name]
		if sl.Samples != n || sl.P50MS > sl.P95MS || sl.P95MS > sl.P99MS || sl.P99MS > sl.MaxMS {
			t.Errorf("stage %s = %+v, want %d samples and ordered percentiles", name, sl, n)
		}
	}
	if !st.Leader || st.Version != "1.2.3-test" {
		t.Errorf("status leader %v version %q", st.Leader, st.Version)
	}

	// A reload: a new engine over the same source. Counters fed by hooks
	// and the events-read counter keep growing; gauges follow the new one.
	s.insert(t, 11, 13)
	runEngine(t, s, m, 3)
	check(t, reg, []want{
		{"observer_events_read_total", map[string]string{"source": "shop"}, 13},
		{"observer_events_finished_total", map[string]string{"source": "shop"}, 13},
		{"observer_units_total", map[string]string{"observer": obs, "outcome": "filtered"}, 6},
		{"observer_units_total", map[string]string{"observer": obs, "outcome": "done"}, 6},
		{"observer_checkpoint_position", map[string]string{"source": "shop"}, 13},
		{"observer_source_head_position", map[string]string{"source": "shop"}, 13},
	})

	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// countingInspector counts look-ups and reports a fixed head.
type countingInspector struct {
	heads, deads atomic.Int32
	fail         bool
}

func (c *countingInspector) Head(ctx context.Context, through uint64) (source.Head, error) {
	c.heads.Add(1)
	if c.fail {
		return source.Head{}, errors.New("database is down")
	}
	return source.Head{Position: 100, Behind: 100 - int64(through), OldestUnread: time.Unix(1000, 0)}, nil
}

func (c *countingInspector) Event(ctx context.Context, position uint64) (source.Record, error) {
	return source.Record{}, source.ErrNotFound
}

func (c *countingInspector) DeadCount(ctx context.Context, src, group string) (int64, error) {
	c.deads.Add(1)
	return 7, nil
}

type fixedStats struct{ st engine.Stats }

func (f *fixedStats) Stats() engine.Stats { return f.st }

// TestScrapeCachesLookups: scrapes within the TTL make one query of each
// kind; lag seconds is measured from the oldest unread row; a failing
// look-up drops the series and is reported by status, not as an error.
func TestScrapeCachesLookups(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Unix(1010, 0).UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	insp := &countingInspector{}
	m := metrics.New(metrics.Options{CacheTTL: 5 * time.Second, Now: clock, NoRuntimeCollectors: true})
	m.SetTarget(metrics.Target{Source: "db", Group: "g", Engine: &fixedStats{engine.Stats{CheckpointThrough: 40}}, Inspector: insp})
	for range 3 {
		check(t, m.Registry(), []want{
			{"observer_checkpoint_lag_events", map[string]string{"source": "db"}, 60},
			{"observer_checkpoint_lag_seconds", map[string]string{"source": "db"}, 10},
			{"observer_dead_letters", map[string]string{"source": "db", "group": "g"}, 7},
		})
	}
	if h, d := insp.heads.Load(), insp.deads.Load(); h != 1 || d != 1 {
		t.Errorf("3 scrapes within the TTL made %d head and %d count queries, want 1 each", h, d)
	}
	now.Add(int64(6 * time.Second))
	value(t, m.Registry(), "observer_dead_letters", nil)
	if h := insp.heads.Load(); h != 2 {
		t.Errorf("after the TTL: %d head queries, want 2", h)
	}

	down := &countingInspector{fail: true}
	m.SetTarget(metrics.Target{Source: "db", Group: "g", Engine: &fixedStats{}, Inspector: down})
	if _, ok := value(t, m.Registry(), "observer_checkpoint_lag_events", nil); ok {
		t.Error("lag reported although the head look-up failed")
	}
	st := m.Status(context.Background())
	if len(st.Sources) != 1 || !strings.Contains(st.Sources[0].HeadError, "database is down") {
		t.Errorf("status does not carry the look-up error: %+v", st.Sources)
	}
}

// TestLatencyAndThroughput: percentiles are exact over the window, which
// keeps only the latest samples; throughput counts whole seconds.
func TestLatencyAndThroughput(t *testing.T) {
	var now atomic.Int64
	start := time.Unix(5000, 0)
	now.Store(start.UnixNano())
	m := metrics.New(metrics.Options{Window: 100, Now: func() time.Time { return time.Unix(0, now.Load()) }, NoRuntimeCollectors: true})
	h := m.Hooks()
	// 50 slow samples, then 1..100 ms: the slow ones fall out of the window.
	for range 50 {
		h.UnitFinished(engine.UnitFinished{EventID: "s:1", Observer: "o", Outcome: engine.UnitDone, Route: time.Hour, Plugin: time.Hour, Effect: time.Hour})
	}
	for i := 1; i <= 100; i++ {
		d := time.Duration(i) * time.Millisecond
		h.UnitFinished(engine.UnitFinished{EventID: "s:1", Observer: "o", Outcome: engine.UnitDone, Route: d, Plugin: d, Effect: d})
	}
	for _, stage := range []string{metrics.StageRoute, metrics.StagePlugin, metrics.StageEffect} {
		p := m.Latency(stage)
		if p.Count != 100 || p.Total != 150 || p.P50 != 50*time.Millisecond || p.P95 != 95*time.Millisecond ||
			p.P99 != 99*time.Millisecond || p.Max != 100*time.Millisecond {
			t.Errorf("%s: %+v, want 100 of 150 samples, p50 50ms p95 95ms p99 99ms max 100ms", stage, p)
		}
	}
	// A filtered unit has no effect sample.
	h.UnitFinished(engine.UnitFinished{EventID: "s:2", Observer: "o", Outcome: engine.UnitFiltered, Route: time.Millisecond, Plugin: time.Millisecond})
	if p := m.Latency(metrics.StageEffect); p.Total != 150 {
		t.Errorf("a filtered unit added an effect sample: %+v", p)
	}

	// 20 events in each of seconds 0..11 after start, 5 in second 12.
	for s := range 12 {
		now.Store(start.Add(time.Duration(s)*time.Second + 100*time.Millisecond).UnixNano())
		for range 20 {
			h.EventFinished(engine.EventFinished{EventID: "s:3", Total: time.Millisecond})
		}
	}
	now.Store(start.Add(12*time.Second + 500*time.Millisecond).UnixNano())
	for range 5 {
		h.EventFinished(engine.EventFinished{EventID: "s:3", Total: time.Millisecond})
	}
	tp := m.Throughput()
	if tp.WindowSeconds != 10 || tp.EventsPerSecond != 20 || tp.EventsPerSecond1m != 20 {
		t.Errorf("throughput = %+v, want 20/s over 10s and over the 12s run", tp)
	}
}

// TestReloadAndBreakerCounters covers the counters the supervisor feeds.
func TestReloadAndBreakerCounters(t *testing.T) {
	m := metrics.New(metrics.Options{NoRuntimeCollectors: true})
	m.Reloaded(nil)
	m.Reloaded(errors.New("bad config"))
	m.Reloaded(errors.New("bad plugin"))
	m.BreakerChanged(resilience.StateChange{Observer: "o", Endpoint: "http://127.0.0.1:9", From: resilience.Closed, To: resilience.Open})
	br := resilience.NewBreakers(resilience.BreakersOptions{OnStateChange: m.BreakerChanged})
	m.SetTarget(metrics.Target{Source: "db", Breakers: br})
	check(t, m.Registry(), []want{
		{"observer_config_reloads_total", map[string]string{"result": "success"}, 1},
		{"observer_config_reloads_total", map[string]string{"result": "failure"}, 2},
		{"observer_circuit_breaker_transitions_total", map[string]string{"observer": "o", "endpoint": "http://127.0.0.1:9", "to": "open"}, 1},
		{"observer_leader", nil, 0},
	})
}

// TestLagCountsFromLowestPending: an event held back below the checkpoint
// (pending: a breaker open, retries) keeps the lag counted from it, not
// from the checkpoint's Through that later events moved on.
func TestLagCountsFromLowestPending(t *testing.T) {
	insp := &countingInspector{}
	m := metrics.New(metrics.Options{NoRuntimeCollectors: true})
	m.SetTarget(metrics.Target{Source: "db", Group: "g", Inspector: insp,
		Engine: &fixedStats{engine.Stats{CheckpointThrough: 90, CheckpointPending: 2, CheckpointLowestPending: 31}}})
	check(t, m.Registry(), []want{
		{"observer_checkpoint_position", map[string]string{"source": "db"}, 90},
		{"observer_checkpoint_lag_events", map[string]string{"source": "db"}, 70}, // rows above 30
	})
	if st := m.Status(context.Background()); len(st.Sources) != 1 || st.Sources[0].LagEvents != 70 {
		t.Errorf("status lag: %+v", st.Sources)
	}
}

// TestCachedHeadBehindACaughtUpCheckpoint: a head cached while the
// checkpoint was behind does not report lag once the checkpoint has
// caught up with it, within the cache's TTL.
func TestCachedHeadBehindACaughtUpCheckpoint(t *testing.T) {
	insp := &countingInspector{} // head 100; Behind = 100 - through
	stats := &fixedStats{engine.Stats{CheckpointThrough: 40}}
	m := metrics.New(metrics.Options{CacheTTL: time.Hour, NoRuntimeCollectors: true})
	m.SetTarget(metrics.Target{Source: "db", Group: "g", Engine: stats, Inspector: insp})
	check(t, m.Registry(), []want{{"observer_checkpoint_lag_events", map[string]string{"source": "db"}, 60}})
	stats.st.CheckpointThrough = 100
	check(t, m.Registry(), []want{
		{"observer_checkpoint_lag_events", map[string]string{"source": "db"}, 0},
		{"observer_checkpoint_lag_seconds", map[string]string{"source": "db"}, 0},
	})
	if h := insp.heads.Load(); h != 1 {
		t.Errorf("%d head queries, want 1 (cached)", h)
	}
}
