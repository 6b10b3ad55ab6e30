package pagila_test

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/fraiseql/observer/host/event"
)

func idempotencyKey(eventID, observer string, index int) string {
	return event.IdempotencyKey(eventID, observer, index)
}

// TestPagilaEndToEnd replays a slice of Pagila through capture, the WASM
// filter and webhook plugins and the HTTP executor on PostgreSQL, and checks
// that the receiver got exactly the events SQL says it should: each once,
// with the right body, signature and idempotency key. Then a clean stop and
// restart must re-deliver nothing.
func TestPagilaEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	ctx := context.Background()
	p := newPagila(t, 1500, "")
	pr := p.start()
	if err := p.replay(ctx, p.steps); err != nil {
		t.Fatal(err)
	}
	want := p.expected(ctx)
	if len(want.payments) == 0 || len(want.returns) == 0 {
		t.Fatalf("the slice has %d big payments and %d returns: pick a larger one", len(want.payments), len(want.returns))
	}
	p.wait(want.total(), 2*time.Minute, pr)
	pr.stop(t)
	if dups := p.verify(want); dups != 0 {
		t.Errorf("%d duplicate deliveries without any crash", dups)
	}
	if s := p.recv.Stats(); s.Rejected != 0 {
		t.Errorf("%d deliveries had a bad signature", s.Rejected)
	}
	t.Logf("replayed %d writes: %d big payments and %d returns delivered once each", len(p.steps), len(want.payments), len(want.returns))

	// A clean stop saved the checkpoint: a restart re-delivers nothing.
	before := p.recv.Stats().Deliveries
	pr = p.start()
	time.Sleep(2 * time.Second)
	pr.stop(t)
	if after := p.recv.Stats().Deliveries; after != before {
		t.Errorf("restart after a clean stop re-delivered %d events", after-before)
	}
}

// TestPagilaKillMidReplay kills the observer with SIGKILL at random points
// while Pagila is being replayed, restarts it each time, and checks that
// every expected event still reached the receiver, that every duplicate
// carries the same idempotency key and body as its first delivery, and
// that duplicates stay within the work that can be in flight at a kill.
func TestPagilaKillMidReplay(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	ctx := context.Background()
	const maxInFlight = 200
	p := newPagila(t, 1500, "")
	// Bound in-flight work so the duplicate bound below means something.
	p.setMaxInFlight(t, maxInFlight)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	seed := rng.Uint64()
	t.Logf("kill schedule seed %d", seed)
	rng = rand.New(rand.NewPCG(seed, 7))

	replayDone := make(chan error, 1)
	go func() {
		replayDone <- p.replayPaced(ctx, 20*time.Millisecond)
	}()
	kills := 0
	pr := p.start()
	for replaying := true; replaying; {
		wait := time.Duration(200+rng.IntN(800)) * time.Millisecond
		select {
		case err := <-replayDone:
			if err != nil {
				t.Fatal(err)
			}
			replaying = false
		case <-time.After(wait):
			pr.kill()
			kills++
			pr = p.start()
		}
	}
	// One more kill after the replay, mid catch-up.
	time.Sleep(time.Duration(100+rng.IntN(400)) * time.Millisecond)
	pr.kill()
	kills++
	pr = p.start()
	// Let it finish starting (signal handlers in place) before the final
	// SIGTERM, even if the work is already done.
	time.Sleep(time.Second)

	want := p.expected(ctx)
	p.wait(want.total(), 3*time.Minute, pr)
	pr.stop(t)
	dups := p.verify(want)
	if limit := kills * (maxInFlight + 500); dups > limit {
		t.Errorf("%d duplicates after %d kills: more than the work in flight could explain (%d)", dups, kills, limit)
	}
	t.Logf("%d writes, %d SIGKILLs: all %d expected events delivered, %d duplicates (recognised by idempotency key)",
		len(p.steps), kills, want.total(), dups)
}
