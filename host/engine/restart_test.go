package engine

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fraiseql/observer/abi"
	"github.com/fraiseql/observer/host/effect"
	"github.com/fraiseql/observer/host/event"
	"github.com/fraiseql/observer/host/source"
)

// deliveries counts, per position, the effects a receiver got.
type deliveries struct {
	mu sync.Mutex
	n  map[uint64]int // position → successful effect requests
}

func (d *deliveries) add(pos uint64) {
	d.mu.Lock()
	if d.n == nil {
		d.n = map[uint64]int{}
	}
	d.n[pos]++
	d.mu.Unlock()
}

func (d *deliveries) has(pos uint64) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.n[pos] > 0
}

// TestCheckpointNeverPassesUnfinished stops an engine mid-stream — cleanly,
// or as a crash that leaves only the last periodic checkpoint — restarts a
// fresh engine from the saved cursor, and checks that every event was
// delivered, that every checkpoint ever saved covered only finished events,
// and that only events unfinished at the stop were delivered again.
func TestCheckpointNeverPassesUnfinished(t *testing.T) {
	for _, crash := range []bool{false, true} {
		name := "clean stop"
		if crash {
			name = "crash"
		}
		t.Run(name, func(t *testing.T) {
			const n = 400
			src := newMemSource("db")
			for i := range n {
				src.add(ev("orders", fmt.Sprintf("k%d", i%23), event.OpInsert, nil))
			}
			posOf := func(req effect.Request) uint64 {
				var p uint64
				fmt.Sscanf(req.EventID, "db:%d", &p)
				return p
			}

			// Run 1: slow-ish receiver; some effects fail once (retried),
			// every 31st event fails on effect 1 until it is dead-lettered,
			// so events are in flight at the stop with effect 0 delivered.
			var got1 deliveries
			rnd := rand.New(rand.NewPCG(1, 2))
			var rmu sync.Mutex
			x1 := &recExec{fn: func(ctx context.Context, req effect.Request, attempt int) error {
				rmu.Lock()
				d := time.Duration(rnd.IntN(300)) * time.Microsecond
				rmu.Unlock()
				time.Sleep(d)
				p := posOf(req)
				switch {
				case p%31 == 0 && req.Index == 1:
					return errors.New("receiver down for a while")
				case p%17 == 0 && attempt == 1:
					return errors.New("blip")
				}
				got1.add(p)
				return nil
			}}
			var fl1 finishLog
			store1 := newMemStore()
			var violations []string
			store1.onSave = func(c source.Cursor) {
				pend := map[uint64]bool{}
				for _, p := range c.Pending {
					pend[p] = true
				}
				for p := uint64(1); p <= c.Through; p++ {
					if !pend[p] && !fl1.finished(p) {
						violations = append(violations, fmt.Sprintf("checkpoint %+v covers unfinished event %d", c, p))
					}
				}
			}
			cfg := Config{
				Concurrency: 4, BatchSize: 16, MaxInFlight: 64, CheckpointInterval: 2 * time.Millisecond,
				Observers: []Observer{{Name: "o", Entity: "orders", Action: ActStep{Plugin: logActor(2)}, Retry: fastRetry(5, 20*time.Millisecond)}},
			}
			cfg1 := cfg
			cfg1.Hooks = fl1.hooks()
			cfg1.Observers = []Observer{cfg.Observers[0]}
			cfg1.Observers[0].Retry = fastRetry(5, 20*time.Millisecond)
			h1 := start(t, cfg1, src, store1, map[string]effect.Executor{abi.EffectLog: x1})
			waitFor(t, 20*time.Second, "half the events finished", func() bool { return fl1.count() >= n/2 })

			var at source.Cursor
			store2 := store1
			if crash {
				// What a crash leaves: the last periodic checkpoint.
				at = store1.cursor("db", DefaultGroup)
				store2 = newMemStore()
				store2.cursors["db/"+DefaultGroup] = at
			}
			if err := h1.stop(); err != nil {
				t.Fatalf("run 1: %v", err)
			}
			if !crash {
				at = store1.cursor("db", DefaultGroup)
			}
			store1.mu.Lock()
			if len(violations) > 0 {
				t.Errorf("%d checkpoint violations, first: %s", len(violations), violations[0])
			}
			store1.onSave = nil
			store1.mu.Unlock()
			unfinished := map[uint64]bool{}
			for _, p := range at.Pending {
				unfinished[p] = true
			}
			for p := at.Through + 1; p <= n; p++ {
				unfinished[p] = true
			}
			if len(unfinished) == 0 || len(unfinished) == n {
				t.Fatalf("stop point %+v is not mid-stream", at)
			}
			if !crash {
				for p := uint64(1); p <= n; p++ {
					if fl1.finished(p) && unfinished[p] {
						t.Errorf("event %d finished in run 1 but the final checkpoint %+v keeps it", p, at)
					}
				}
			}

			// Run 2: a fresh engine from the saved cursor, healthy receiver.
			before := len(src.deliveredPositions())
			var got2 deliveries
			x2 := &recExec{fn: func(ctx context.Context, req effect.Request, attempt int) error {
				got2.add(posOf(req))
				return nil
			}}
			var fl2 finishLog
			cfg2 := cfg
			cfg2.Hooks = fl2.hooks()
			h2 := start(t, cfg2, src, store2, map[string]effect.Executor{abi.EffectLog: x2})
			waitFor(t, 20*time.Second, "the unfinished events finished", func() bool { return fl2.count() == len(unfinished) })
			if err := h2.stop(); err != nil {
				t.Fatalf("run 2: %v", err)
			}
			redelivered := src.deliveredPositions()[before:]
			if len(redelivered) != len(unfinished) {
				t.Errorf("run 2 read %d events, want the %d unfinished at the stop", len(redelivered), len(unfinished))
			}
			var dups int
			for p := uint64(1); p <= n; p++ {
				if !got1.has(p) && !got2.has(p) {
					t.Errorf("event %d was never delivered", p)
				}
				if got1.has(p) && got2.has(p) {
					dups++
					if !unfinished[p] {
						t.Errorf("event %d delivered twice but was finished at the stop", p)
					}
				}
			}
			if c := store2.cursor("db", DefaultGroup); c.Through != n || len(c.Pending) != 0 {
				t.Errorf("final checkpoint after run 2 = %+v, want through %d", c, n)
			}
			t.Logf("stop at %+v: %d unfinished, %d delivered twice", at.Normalize(), len(unfinished), dups)
		})
	}
}

func TestCleanStopRestartRedeliversNothing(t *testing.T) {
	src, store := newMemSource("db"), newMemStore()
	for i := range 50 {
		src.add(ev("orders", fmt.Sprintf("k%d", i%7), event.OpInsert, nil))
	}
	x := &recExec{}
	cfg := Config{Observers: []Observer{{Name: "o", Entity: "orders", Action: ActStep{Plugin: logActor(1)}}}}
	var fl finishLog
	cfg.Hooks = fl.hooks()
	h := start(t, cfg, src, store, map[string]effect.Executor{"log": x})
	waitFor(t, 10*time.Second, "50 events finished", func() bool { return fl.count() == 50 })
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	if c := store.cursor("db", DefaultGroup); c.Through != 50 || len(c.Pending) != 0 {
		t.Fatalf("checkpoint after a clean stop = %+v", c)
	}

	src.add(ev("orders", "k1", event.OpUpdate, nil), ev("orders", "k2", event.OpUpdate, nil)) // 51, 52
	before := len(src.deliveredPositions())
	x2 := &recExec{}
	var fl2 finishLog
	cfg.Hooks = fl2.hooks()
	h2 := start(t, cfg, src, store, map[string]effect.Executor{"log": x2})
	waitFor(t, 10*time.Second, "2 new events finished", func() bool { return fl2.count() == 2 })
	time.Sleep(20 * time.Millisecond)
	if err := h2.stop(); err != nil {
		t.Fatal(err)
	}
	if got := src.deliveredPositions()[before:]; len(got) != 2 || got[0] != 51 || got[1] != 52 {
		t.Errorf("restart read %v, want only [51 52]", got)
	}
	if n := len(x2.requests()); n != 2 {
		t.Errorf("restart sent %d effects, want 2", n)
	}
}

// TestDeposedRunStops: once the store refuses the run's writes because
// another process leads (source.ErrFenced), the run stops by itself: it
// reads nothing more, cancels its running work at once instead of
// draining it for ShutdownTimeout, saves nothing, and Run returns the
// fencing error. A dead letter refused the same way deposes it too, and
// the event stays unfinished for the new leader.
func TestDeposedRunStops(t *testing.T) {
	for _, via := range []string{"checkpoint save", "dead letter"} {
		t.Run(via, func(t *testing.T) {
			src, store := newMemSource("db"), newMemStore()
			for i := range 20 {
				src.add(ev("orders", fmt.Sprintf("k%d", i), event.OpInsert, nil))
			}
			release := make(chan struct{})
			var calls atomic.Int64
			actor := &actorFunc{name: "slow", fn: func(ctx context.Context, in *abi.Input) (abi.ActResult, error) {
				if n := calls.Add(1); n <= 10 || n > 12 {
					return abi.ActResult{ABI: abi.VersionString}, nil
				}
				select { // two held until cancelled: running work at deposition
				case <-ctx.Done():
					return abi.ActResult{}, ctx.Err()
				case <-release:
				}
				return abi.ActResult{ABI: abi.VersionString}, nil
			}}
			defer close(release)
			cfg := Config{
				Concurrency: 4, CheckpointInterval: 20 * time.Millisecond, ShutdownTimeout: 30 * time.Second,
				Observers: []Observer{{Name: "o", Entity: "orders", Action: ActStep{Plugin: actor}, Retry: fastRetry(1, time.Millisecond)}},
			}
			if via == "dead letter" {
				// The event added after fencing fails: its dead letter is refused.
				cfg.Observers[0].Action.Plugin = &actorFunc{name: "fails", fn: func(ctx context.Context, in *abi.Input) (abi.ActResult, error) {
					if in.Event.Key == "later" {
						return abi.ActResult{}, errors.New("boom")
					}
					return actor.fn(ctx, in)
				}}
				cfg.CheckpointInterval = time.Hour // only the dead letter can find out
			}
			h := start(t, cfg, src, store, map[string]effect.Executor{"log": &recExec{}})
			waitFor(t, 10*time.Second, "work running", func() bool { return calls.Load() > 10 })
			store.mu.Lock()
			before := store.cursors["db/"+DefaultGroup]
			store.fenced = true
			store.mu.Unlock()
			src.add(ev("orders", "later", event.OpInsert, nil))
			read := len(src.deliveredPositions())

			t0 := time.Now()
			var err error
			select {
			case err = <-h.done:
				h.done <- err
			case <-time.After(10 * time.Second):
				t.Fatal("a deposed run did not stop by itself")
			}
			if d := time.Since(t0); d > 5*time.Second {
				t.Errorf("deposed run took %s to stop: it drained instead of abandoning", d)
			}
			var fe *source.FencedError
			if !errors.Is(err, source.ErrFenced) || !errors.As(err, &fe) {
				t.Fatalf("Run = %v, want the fencing error", err)
			}
			if got := store.cursor("db", DefaultGroup); !sameCursor(got, before) {
				t.Errorf("cursor changed after fencing: %+v → %+v", before, got)
			}
			if len(store.deadLetters()) != 0 {
				t.Errorf("dead letters stored after fencing: %d", len(store.deadLetters()))
			}
			if n := len(src.deliveredPositions()); n > read+1 || (via == "dead letter" && n != read+1) {
				t.Errorf("read %d more events after being deposed", n-read)
			}
		})
	}
}

// TestLostLeaseAbandonsWork: a run whose context ends with a cause that
// matches source.ErrDeposed (a lost leadership lease) abandons its running
// work at once instead of draining it for ShutdownTimeout, and still saves
// its checkpoint, which the store may accept (nobody took over yet).
func TestLostLeaseAbandonsWork(t *testing.T) {
	src, store := newMemSource("db"), newMemStore()
	for i := range 10 {
		src.add(ev("orders", fmt.Sprintf("k%d", i), event.OpInsert, nil))
	}
	var calls atomic.Int64
	actor := &actorFunc{name: "slow", fn: func(ctx context.Context, in *abi.Input) (abi.ActResult, error) {
		if calls.Add(1) <= 5 {
			return abi.ActResult{ABI: abi.VersionString}, nil
		}
		<-ctx.Done() // held: running work at the loss
		return abi.ActResult{}, ctx.Err()
	}}
	e, err := New(Config{Concurrency: 8, CheckpointInterval: time.Hour, ShutdownTimeout: 30 * time.Second,
		Observers: []Observer{{Name: "o", Entity: "orders", Action: ActStep{Plugin: actor}}}}, src, store, map[string]effect.Executor{"log": &recExec{}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	waitFor(t, 10*time.Second, "work running", func() bool { return calls.Load() >= 10 })
	cancel(fmt.Errorf("lease: %w", source.ErrDeposed))
	t0 := time.Now()
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("run did not stop after losing its lease")
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Errorf("stopping took %s: the running work was drained, not abandoned", d)
	}
	if err != nil {
		t.Errorf("Run = %v, want nil (the final save was accepted)", err)
	}
	if c := store.cursor("db", DefaultGroup); c.Through == 0 || len(c.Pending) != 5 {
		t.Errorf("final checkpoint %+v: want the 5 finished events covered and the 5 abandoned pending", c)
	}
}
