package engine

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fraiseql/observer/abi"
	"github.com/fraiseql/observer/host/effect"
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
