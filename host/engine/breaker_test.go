package engine

import (
	"context"
	"fmt"
	nethttp "net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fraiseql/observer/abi"
	"github.com/fraiseql/observer/host/effect"
	effecthttp "github.com/fraiseql/observer/host/effect/http"
	"github.com/fraiseql/observer/host/event"
	"github.com/fraiseql/observer/host/resilience"
)

// TestBreakerOpenWaitsWithoutUsingAttempts: an effect refused by an open
// circuit breaker is not an attempt. With max_attempts = 1 every event of
// the blocked observer must still be delivered once the breaker lets
// requests through again, none dead-lettered, while the other observer's
// events flow during the outage.
func TestBreakerOpenWaitsWithoutUsingAttempts(t *testing.T) {
	const n = 40
	src := newMemSource("db")
	for i := range n {
		src.add(ev("orders", fmt.Sprintf("k%d", i%5), event.OpInsert, nil))
	}
	var open atomic.Bool
	open.Store(true)
	var refused atomic.Int64
	blocked := &recExec{fn: func(ctx context.Context, req effect.Request, attempt int) error {
		if req.Observer == "blocked" && open.Load() {
			refused.Add(1)
			return &resilience.OpenError{Observer: req.Observer, Endpoint: "http://down:80", State: resilience.Open, Wait: 5 * time.Millisecond}
		}
		return nil
	}}
	store := newMemStore()
	h := start(t, Config{
		Observers: []Observer{
			{Name: "blocked", Entity: "orders", Action: ActStep{Plugin: logActor(1)}, Retry: fastRetry(1, time.Millisecond)},
			{Name: "healthy", Entity: "orders", Action: ActStep{Plugin: logActor(1)}, Retry: fastRetry(1, time.Millisecond)},
		},
	}, src, store, map[string]effect.Executor{abi.EffectLog: blocked})

	// While the breaker is open the healthy observer finishes everything.
	waitFor(t, 10*time.Second, "healthy observer to finish", func() bool {
		return h.e.Stats().Observers[1].Done == n
	})
	waitFor(t, 10*time.Second, "refusals to repeat", func() bool { return refused.Load() > 3*5 })
	st := h.e.Stats()
	if st.Observers[0].Done != 0 || st.DeadLettered != 0 {
		t.Fatalf("while open: blocked done %d, dead-lettered %d; want 0 and 0", st.Observers[0].Done, st.DeadLettered)
	}
	if st.Waits == 0 {
		t.Fatal("Stats.Waits = 0 while the breaker refused requests")
	}

	open.Store(false)
	waitFor(t, 10*time.Second, "blocked observer to finish", func() bool {
		return h.e.Stats().Observers[0].Done == n
	})
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	if d := store.deadLetters(); len(d) != 0 {
		t.Fatalf("%d dead letters, want 0: %+v", len(d), d[0])
	}
}

// TestFailedProbesUseNoAttempts: through the real HTTP executor and its
// breakers, an outage longer than the events' retries is waited out: the
// half-open probes that fail during it do not use up the events'
// attempts, so nothing is dead-lettered and everything arrives after it.
func TestFailedProbesUseNoAttempts(t *testing.T) {
	const n = 10
	var down atomic.Bool
	down.Store(true)
	var mu sync.Mutex
	got := map[string]int{}
	srv := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		if down.Load() {
			w.WriteHeader(nethttp.StatusServiceUnavailable)
			return
		}
		mu.Lock()
		got[r.Header.Get(effecthttp.HeaderIdempotencyKey)]++
		mu.Unlock()
	}))
	defer srv.Close()
	actor := &actorFunc{name: "webhook", fn: func(ctx context.Context, in *abi.Input) (abi.ActResult, error) {
		return abi.ActResult{Effects: []abi.Effect{{Type: abi.EffectHTTP, HTTP: &abi.HTTPEffect{Method: "POST", URL: srv.URL + "/h", Body: in.Event.ID}}}}, nil
	}}
	src, store := newMemSource("db"), newMemStore()
	for i := range n {
		src.add(ev("orders", fmt.Sprintf("k%d", i), event.OpInsert, nil))
	}
	policy := effect.Policy{AllowedHosts: []string{strings.TrimPrefix(srv.URL, "http://")}, AllowPrivate: true,
		Breaker: resilience.BreakerConfig{Enabled: true, FailureRatio: 0.5, Window: time.Minute, MinRequests: 2, OpenTimeout: 50 * time.Millisecond, HalfOpenProbes: 1}}
	h := start(t, Config{Observers: []Observer{{Name: "o", Entity: "orders", Action: ActStep{Plugin: actor},
		Retry: fastRetry(2, 5*time.Millisecond), Effect: policy}}}, src, store,
		map[string]effect.Executor{abi.EffectHTTP: effecthttp.New(effecthttp.Options{Breakers: resilience.NewBreakers(resilience.BreakersOptions{})})})
	// 1.5s of outage: ~30 probes, against 2 attempts for each of 10 events.
	time.Sleep(1500 * time.Millisecond)
	if st := h.e.Stats(); st.DeadLettered != 0 {
		t.Fatalf("%d events dead-lettered during the outage (probes used up their attempts)", st.DeadLettered)
	}
	down.Store(false)
	waitFor(t, 10*time.Second, "every event delivered after the outage", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == n
	})
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	if d := store.deadLetters(); len(d) != 0 {
		t.Fatalf("%d dead letters: %s", len(d), d[0].Error)
	}
}
