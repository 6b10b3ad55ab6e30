package resilience

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clock is a manual clock for breakers.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// changes records state changes.
type changes struct {
	mu  sync.Mutex
	got []string
}

func (c *changes) record(sc StateChange) {
	c.mu.Lock()
	c.got = append(c.got, fmt.Sprintf("%s %s→%s %d/%d", sc.Endpoint, sc.From, sc.To, sc.Failures, sc.Requests))
	c.mu.Unlock()
}

func (c *changes) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.got
	c.got = nil
	return g
}

func testConfig() BreakerConfig {
	return BreakerConfig{Enabled: true, FailureRatio: 0.5, Window: 10 * time.Second, MinRequests: 4,
		OpenTimeout: 5 * time.Second, HalfOpenProbes: 2}
}

func mustAllow(t *testing.T, b *Breaker) Permit {
	t.Helper()
	p, err := b.Allow()
	if err != nil {
		t.Fatalf("Allow refused in state %s: %v", b.State(), err)
	}
	return p
}

func mustRefuse(t *testing.T, b *Breaker, state State, wait time.Duration) *OpenError {
	t.Helper()
	_, err := b.Allow()
	var oe *OpenError
	if !errors.As(err, &oe) {
		t.Fatalf("Allow = %v, want an *OpenError (state %s)", err, b.State())
	}
	if oe.State != state || oe.Wait != wait {
		t.Fatalf("refusal state %s wait %s, want %s %s: %v", oe.State, oe.Wait, state, wait, oe)
	}
	return oe
}

func record(t *testing.T, b *Breaker, outcomes ...Outcome) {
	t.Helper()
	for _, o := range outcomes {
		mustAllow(t, b).Done(o)
	}
}

func sameList(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\n got %q\nwant %q", what, got, want)
	}
}

// TestBreakerLifecycle walks closed → open → half-open → open → half-open
// → closed with a manual clock.
func TestBreakerLifecycle(t *testing.T) {
	clk := newClock()
	var ch changes
	r := NewBreakers(BreakersOptions{Now: clk.Now, OnStateChange: ch.record})
	b := r.Get("obs", "http://h:80", testConfig())
	const ep = "http://h:80"

	// Below MinRequests nothing trips, however bad the ratio.
	record(t, b, Failure, Failure, Failure)
	if b.State() != Closed {
		t.Fatalf("3 failures < min_requests 4 opened the breaker")
	}
	if s := r.Snapshot(); len(s) != 1 || s[0].Requests != 3 || s[0].Failures != 3 || s[0].State != Closed || s[0].OpenedAt != nil {
		t.Fatalf("snapshot = %+v", s)
	}
	// The fourth result reaches MinRequests; 3/4 ≥ 0.5 opens it, even
	// though that result is a success.
	record(t, b, Success)
	if b.State() != Open {
		t.Fatalf("state %s after 3 of 4 failed, want open", b.State())
	}
	sameList(t, "changes", ch.take(), []string{ep + " closed→open 3/4"})
	opened := clk.Now()

	oe := mustRefuse(t, b, Open, 5*time.Second)
	if !errors.Is(oe, ErrBreakerOpen) || !oe.OpenedAt.Equal(opened) || oe.Failures != 3 || oe.Requests != 4 {
		t.Errorf("open error = %+v", oe)
	}
	for _, w := range []string{"circuit breaker for http://h:80 (observer obs) is open since 2024-05-01T12:00:00Z", "3 of 4 requests failed within 10s", "not sent, retry in 5s"} {
		if !strings.Contains(oe.Error(), w) {
			t.Errorf("error %q lacks %q", oe, w)
		}
	}
	if w, counts, ok := WaitHint(fmt.Errorf("effect: %w", oe)); !ok || counts || w != 5*time.Second {
		t.Errorf("WaitHint = %s, %v, %v; want 5s, false, true", w, counts, ok)
	}
	clk.Advance(4 * time.Second)
	mustRefuse(t, b, Open, time.Second)
	s := r.Snapshot()[0]
	if s.State != Open || s.OpenedAt == nil || !s.OpenedAt.Equal(opened) || s.RetryIn != time.Second || s.Rejected != 2 || s.Opens != 1 {
		t.Errorf("open snapshot = %+v", s)
	}

	// After open_timeout: two probes, the third request waits.
	clk.Advance(time.Second)
	p1 := mustAllow(t, b)
	p2 := mustAllow(t, b)
	if b.State() != HalfOpen || !p1.probe || !p2.probe {
		t.Fatalf("state %s, probes %v %v", b.State(), p1.probe, p2.probe)
	}
	mustRefuse(t, b, HalfOpen, time.Second)
	sameList(t, "changes", ch.take(), []string{ep + " open→half-open 3/4"})
	// One probe succeeds, the other fails: open again, from now.
	p1.Done(Success)
	if b.State() != HalfOpen {
		t.Fatalf("one of two probes closed the breaker")
	}
	p2.Done(Failure)
	if b.State() != Open {
		t.Fatalf("a failed probe left the breaker %s", b.State())
	}
	sameList(t, "changes", ch.take(), []string{ep + " half-open→open 1/2"})
	mustRefuse(t, b, Open, 5*time.Second)

	// Second round: a probe whose result says nothing (Ignore) frees its
	// slot; two successes close the breaker with an empty window.
	clk.Advance(5 * time.Second)
	p1 = mustAllow(t, b)
	p2 = mustAllow(t, b)
	p1.Done(Ignore)
	p3 := mustAllow(t, b)
	mustRefuse(t, b, HalfOpen, time.Second)
	p2.Done(Success)
	p3.Done(Success)
	if b.State() != Closed {
		t.Fatalf("two successful probes left the breaker %s", b.State())
	}
	sameList(t, "changes", ch.take(), []string{ep + " open→half-open 1/2", ep + " half-open→closed 1/2"})
	s = r.Snapshot()[0]
	if s.Requests != 0 || s.Failures != 0 || s.OpenedAt != nil || s.Opens != 2 || s.Rejected != 5 || s.ChangedAt == nil {
		t.Errorf("closed snapshot = %+v", s)
	}
	// Closed again: it takes MinRequests fresh results to trip.
	record(t, b, Failure, Failure, Failure)
	if b.State() != Closed {
		t.Errorf("old failures survived the close")
	}
}

// TestBreakerWindowSlides: results older than the window stop counting,
// bucket by bucket.
func TestBreakerWindowSlides(t *testing.T) {
	clk := newClock()
	r := NewBreakers(BreakersOptions{Now: clk.Now})
	cfg := testConfig() // 10s window: ten 1s buckets
	b := r.Get("obs", "http://h:80", cfg)

	record(t, b, Failure, Failure) // t=0
	clk.Advance(5 * time.Second)
	record(t, b, Failure) // t=5
	clk.Advance(5500 * time.Millisecond)
	// t=10.5: the t=0 bucket has left the window; only t=5 counts.
	if s := r.Snapshot()[0]; s.Requests != 1 || s.Failures != 1 {
		t.Fatalf("at 10.5s the window holds %d/%d, want 1/1", s.Failures, s.Requests)
	}
	// 1 failure + 3 successes = 4 requests, 25% failed: stays closed,
	// though counting the expired failures (3 of 6) would have opened it.
	record(t, b, Success, Success, Success)
	if b.State() != Closed {
		t.Fatalf("expired failures opened the breaker")
	}
	// Two more failures: 3 of 6 = 50% opens it.
	record(t, b, Failure, Failure)
	if b.State() != Open {
		t.Fatalf("3 of 6 failed in the window, state %s", b.State())
	}
	// A clock going backwards (it must not with a monotonic clock, but a
	// test clock can) does not panic or corrupt the window.
	r2 := NewBreakers(BreakersOptions{Now: clk.Now})
	b2 := r2.Get("obs", "x", cfg)
	clk.Advance(-time.Hour)
	record(t, b2, Failure)
}

// TestBreakerStaleResultsIgnored: a request allowed before a state change
// does not count after it.
func TestBreakerStaleResultsIgnored(t *testing.T) {
	clk := newClock()
	r := NewBreakers(BreakersOptions{Now: clk.Now})
	cfg := testConfig()
	cfg.HalfOpenProbes = 1
	b := r.Get("obs", "http://h:80", cfg)
	slow := mustAllow(t, b) // in flight while the breaker trips
	record(t, b, Failure, Failure, Failure, Failure)
	clk.Advance(cfg.OpenTimeout)
	probe := mustAllow(t, b)
	slow.Done(Failure) // from the closed generation: ignored in half-open
	if b.State() != HalfOpen {
		t.Fatalf("a stale failure moved the breaker to %s", b.State())
	}
	probe.Done(Success)
	if b.State() != Closed {
		t.Fatalf("state %s", b.State())
	}
	// And a stale result after closing is not counted either.
	if s := r.Snapshot()[0]; s.Requests != 0 {
		t.Errorf("window after close = %+v", s)
	}
	// A non-probe permit's result is ignored in half-open too.
	var zero Permit
	zero.Done(Failure) // no breaker: nothing happens
}

func TestBreakersRegistry(t *testing.T) {
	clk := newClock()
	r := NewBreakers(BreakersOptions{Now: clk.Now})
	cfg := testConfig()
	a := r.Get("obs", "http://a:80", cfg)
	if r.Get("obs", "http://a:80", cfg) != a {
		t.Error("Get returned a new breaker for the same key")
	}
	other := r.Get("obs2", "http://a:80", cfg)
	bb := r.Get("obs", "https://b:443", cfg)
	if other == a || bb == a {
		t.Error("different observers or endpoints share a breaker")
	}
	record(t, a, Failure, Failure, Failure, Failure)
	if a.State() != Open || other.State() != Closed || bb.State() != Closed {
		t.Errorf("states a=%s other=%s b=%s: one endpoint's failures leaked", a.State(), other.State(), bb.State())
	}
	mustAllow(t, bb).Done(Success)

	// Disabled config or nil registry: no breaker, which allows everything.
	if b := r.Get("obs", "http://c:80", BreakerConfig{}); b != nil {
		t.Error("disabled config returned a breaker")
	}
	var none *Breakers
	nb := none.Get("obs", "http://c:80", cfg)
	if p, err := nb.Allow(); err != nil || nb.State() != Closed {
		t.Errorf("nil breaker: %v %v", p, err)
	} else {
		p.Done(Failure)
	}
	if none.Snapshot() != nil {
		t.Error("nil registry has a snapshot")
	}

	// A changed config (reload) replaces the breaker with a fresh one.
	cfg2 := cfg
	cfg2.MinRequests = 20
	a2 := r.Get("obs", "http://a:80", cfg2)
	if a2 == a || a2.State() != Closed || a2.Config() != cfg2 {
		t.Errorf("reconfigured breaker = %p %s", a2, a2.State())
	}

	snap := r.Snapshot()
	var order []string
	for _, s := range snap {
		order = append(order, s.Endpoint+" "+s.Observer+" "+s.State.String())
	}
	sameList(t, "snapshot order", order, []string{"http://a:80 obs closed", "http://a:80 obs2 closed", "https://b:443 obs closed"})
	js, err := json.Marshal(snap[2])
	if err != nil || !strings.Contains(string(js), `"state":"closed"`) || !strings.Contains(string(js), `"endpoint":"https://b:443"`) {
		t.Errorf("snapshot JSON = %s, %v", js, err)
	}
}

func TestBreakerConfigValidate(t *testing.T) {
	if err := DefaultBreakerConfig().Validate(); err != nil {
		t.Errorf("default: %v", err)
	}
	if err := (BreakerConfig{FailureRatio: -1}).Validate(); err != nil {
		t.Errorf("a disabled config is not checked: %v", err)
	}
	tests := []struct {
		name string
		edit func(*BreakerConfig)
		want string
	}{
		{"ratio 0", func(c *BreakerConfig) { c.FailureRatio = 0 }, "failure_ratio 0 is out of range"},
		{"ratio 1.5", func(c *BreakerConfig) { c.FailureRatio = 1.5 }, "failure_ratio 1.5 is out of range"},
		{"short window", func(c *BreakerConfig) { c.Window = time.Millisecond }, "window 1ms is too short, want at least 100ms"},
		{"min requests", func(c *BreakerConfig) { c.MinRequests = 0 }, "min_requests 0 is out of range"},
		{"open timeout", func(c *BreakerConfig) { c.OpenTimeout = 0 }, "open_timeout 0s must be positive"},
		{"probes", func(c *BreakerConfig) { c.HalfOpenProbes = 0 }, "half_open_probes 0 is out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultBreakerConfig()
			tt.edit(&c)
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate = %v, want %q", err, tt.want)
			}
		})
	}
}

// TestBreakerConcurrent hammers one breaker from many goroutines with a
// real clock (run with -race): half-open never admits more than
// HalfOpenProbes at once, and every state change is a legal edge.
func TestBreakerConcurrent(t *testing.T) {
	var illegal atomic.Int64
	legal := map[[2]State]bool{{Closed, Open}: true, {Open, HalfOpen}: true, {HalfOpen, Open}: true, {HalfOpen, Closed}: true}
	r := NewBreakers(BreakersOptions{OnStateChange: func(c StateChange) {
		if !legal[[2]State{c.From, c.To}] {
			illegal.Add(1)
		}
		_ = c.Endpoint
	}})
	cfg := BreakerConfig{Enabled: true, FailureRatio: 0.3, Window: 100 * time.Millisecond, MinRequests: 5,
		OpenTimeout: time.Millisecond, HalfOpenProbes: 3}
	var probes, maxProbes atomic.Int64
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			rnd := rand.New(rand.NewPCG(uint64(g), 1))
			for range 3000 {
				b := r.Get("obs", "http://h:80", cfg)
				p, err := b.Allow()
				if err != nil {
					continue
				}
				if p.probe {
					n := probes.Add(1)
					for m := maxProbes.Load(); n > m && !maxProbes.CompareAndSwap(m, n); m = maxProbes.Load() {
					}
				}
				o := Outcome(rnd.IntN(3))
				if p.probe {
					probes.Add(-1)
				}
				p.Done(o)
				if rnd.IntN(50) == 0 {
					_ = r.Snapshot()
				}
			}
		})
	}
	wg.Wait()
	if illegal.Load() != 0 {
		t.Errorf("%d illegal state changes", illegal.Load())
	}
	if m := maxProbes.Load(); m > int64(cfg.HalfOpenProbes) {
		t.Errorf("%d probes in flight at once, want ≤ %d", m, cfg.HalfOpenProbes)
	}
	if s := r.Snapshot()[0]; s.Opens == 0 {
		t.Errorf("with 2/3 of results failing the breaker never opened: %+v", s)
	}
}

// TestBreakerClosedPathDoesNotAllocate: Get, Allow and Done on a closed
// breaker allocate nothing.
func TestBreakerClosedPathDoesNotAllocate(t *testing.T) {
	r := NewBreakers(BreakersOptions{})
	cfg := DefaultBreakerConfig()
	observer, endpoint := "big-payments", "http://127.0.0.1:8787"
	r.Get(observer, endpoint, cfg)
	n := testing.AllocsPerRun(1000, func() {
		p, err := r.Get(observer, endpoint, cfg).Allow()
		if err != nil {
			t.Fatal(err)
		}
		p.Done(Success)
	})
	if n != 0 {
		t.Errorf("closed path allocates %.1f times per request", n)
	}
}

func BenchmarkBreakerClosed(b *testing.B) {
	r := NewBreakers(BreakersOptions{})
	cfg := DefaultBreakerConfig()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p, _ := r.Get("big-payments", "http://127.0.0.1:8787", cfg).Allow()
			p.Done(Success)
		}
	})
}

func TestWaitHint(t *testing.T) {
	open := &OpenError{Wait: 3 * time.Second, State: Open}
	after := &RetryAfterError{After: 7 * time.Second}
	tests := []struct {
		name   string
		err    error
		wait   time.Duration
		counts bool
		ok     bool
	}{
		{"nil", nil, 0, false, false},
		{"plain", errors.New("x"), 0, false, false},
		{"open", open, 3 * time.Second, false, true},
		{"wrapped open", fmt.Errorf("a: %w", fmt.Errorf("b: %w", open)), 3 * time.Second, false, true},
		{"retry-after", after, 7 * time.Second, true, true},
		{"joined", errors.Join(errors.New("x"), fmt.Errorf("y: %w", after)), 7 * time.Second, true, true},
		{"joined none", errors.Join(errors.New("x"), errors.New("y")), 0, false, false},
		{"permanent wrapper", MarkPermanent(after), 7 * time.Second, true, true},
		{"negative wait", &RetryAfterError{After: -time.Second}, 0, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, c, ok := WaitHint(tt.err)
			if w != tt.wait || c != tt.counts || ok != tt.ok {
				t.Errorf("WaitHint = %s, %v, %v; want %s, %v, %v", w, c, ok, tt.wait, tt.counts, tt.ok)
			}
		})
	}
	if got := after.Error(); got != "the receiver asked to retry after 7s (Retry-After)" {
		t.Errorf("Error() = %q", got)
	}
	if got := (&RetryAfterError{After: time.Minute, Capped: true}).Error(); !strings.Contains(got, "capped at 1m0s") {
		t.Errorf("Error() = %q", got)
	}
}

// TestStateText: every state survives a JSON round trip (observer status
// decodes what /status encodes); anything else is an error naming it.
func TestStateText(t *testing.T) {
	for _, st := range []State{Closed, Open, HalfOpen} {
		b, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		var back State
		if err := json.Unmarshal(b, &back); err != nil || back != st {
			t.Errorf("%s: round trip gave %v, %v", b, back, err)
		}
	}
	var s State
	if err := json.Unmarshal([]byte(`"ajar"`), &s); err == nil || !strings.Contains(err.Error(), `"ajar"`) {
		t.Errorf("unknown state: %v", err)
	}
}
