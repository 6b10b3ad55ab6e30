package engine

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/fraiseql/observer/abi"
	"github.com/fraiseql/observer/host/effect"
	"github.com/fraiseql/observer/host/event"
	"github.com/fraiseql/observer/host/resilience"
	"github.com/fraiseql/observer/host/source"
	"github.com/fraiseql/observer/host/source/sqlite"
)

// TestDedupAcrossRestart runs every event to completion, then delivers all
// of them again from a lost checkpoint (as after a crash before the save):
// the dedup records, in a real SQLite store, must stop every effect and
// every dead letter from repeating — unless the run is a replay.
func TestDedupAcrossRestart(t *testing.T) {
	ctx := context.Background()
	dd, err := sqlite.OpenStore(ctx, filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer dd.Close()

	const n = 120
	src := newMemSource("db")
	for i := range n {
		src.add(ev("orders", fmt.Sprintf("k%d", i%9), event.OpInsert, map[string]any{"i": i}))
	}
	pos := func(req effect.Request) uint64 {
		var p uint64
		fmt.Sscanf(req.EventID, "db:%d", &p)
		return p
	}
	// Every 10th event fails permanently (dead-lettered); every 7th is
	// filtered out (not recorded: running a filter again repeats nothing).
	failing := func(ctx context.Context, req effect.Request, attempt int) error {
		if pos(req)%10 == 0 {
			return resilience.MarkPermanent(errors.New("rejected"))
		}
		return nil
	}
	drop := &filterFunc{name: "f", fn: func(_ context.Context, in *abi.Input) (abi.FilterResult, error) {
		return abi.FilterResult{Pass: in.Event.Position%7 != 0}, nil
	}}
	cfg := func(replay bool) Config {
		return Config{
			Observers: []Observer{
				{Name: "a", Entity: "orders", Filters: []Step{{Plugin: drop}}, Action: ActStep{Plugin: logActor(1)}, Retry: fastRetry(2, time.Millisecond)},
				{Name: "b", Entity: "orders", Action: ActStep{Plugin: logActor(1)}, Retry: fastRetry(2, time.Millisecond)},
			},
			Dedup:              dd,
			Replay:             replay,
			CheckpointInterval: 10 * time.Millisecond,
		}
	}
	wantUnits := 0 // units that finish done or dead-lettered
	wantDead := 0
	for p := uint64(1); p <= n; p++ {
		wantUnits++ // observer b
		if p%7 != 0 {
			wantUnits++ // observer a
		}
		if p%10 == 0 {
			wantDead++
			if p%7 != 0 {
				wantDead++
			}
		}
	}

	// Run 1: everything once.
	x1 := &recExec{fn: failing}
	st1 := newMemStore()
	h := start(t, cfg(false), src, st1, map[string]effect.Executor{abi.EffectLog: x1})
	waitFor(t, 20*time.Second, "run 1 to finish", func() bool { return h.e.Stats().EventsFinished == n })
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	if got := len(st1.deadLetters()); got != wantDead {
		t.Fatalf("run 1: %d dead letters, want %d", got, wantDead)
	}
	if md, _ := dd.MaxDone(ctx, "db", DefaultGroup); md != n {
		t.Fatalf("run 1: highest recorded position %d, want %d", md, n)
	}

	// Run 2: the checkpoint was lost; every event comes again.
	x2 := &recExec{fn: failing}
	st2 := newMemStore()
	h = start(t, cfg(false), src, st2, map[string]effect.Executor{abi.EffectLog: x2})
	waitFor(t, 20*time.Second, "run 2 to finish", func() bool { return h.e.Stats().EventsFinished == n })
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	st := h.e.Stats()
	if got := len(x2.requests()); got != 0 {
		t.Errorf("run 2 repeated %d effects, want 0", got)
	}
	if got := len(st2.deadLetters()); got != 0 {
		t.Errorf("run 2 dead-lettered %d units again, want 0", got)
	}
	if st.Deduplicated != uint64(wantUnits) {
		t.Errorf("run 2 deduplicated %d units, want %d", st.Deduplicated, wantUnits)
	}
	if st.Observers[1].Deduplicated != n {
		t.Errorf("observer b deduplicated %d, want %d", st.Observers[1].Deduplicated, n)
	}

	// Run 3: a replay repeats the effects on purpose.
	x3 := &recExec{fn: failing}
	h = start(t, cfg(true), src, newMemStore(), map[string]effect.Executor{abi.EffectLog: x3})
	waitFor(t, 20*time.Second, "run 3 to finish", func() bool { return h.e.Stats().EventsFinished == n })
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	if got, want := len(x3.requests()), len(x1.requests()); got != want {
		t.Errorf("replay sent %d effect requests, want %d as in run 1", got, want)
	}
	if got := h.e.Stats().Deduplicated; got != 0 {
		t.Errorf("replay deduplicated %d units, want 0", got)
	}
}

// TestDedupPrune checks retention on the SQLite store.
func TestDedupPrune(t *testing.T) {
	ctx := context.Background()
	dd, err := sqlite.OpenStore(ctx, filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer dd.Close()
	recs := []struct{ p uint64 }{{1}, {2}, {3}}
	for _, r := range recs {
		if err := dd.RecordDone(ctx, "s", "g", []source.DoneRecord{{Position: r.p, EventID: fmt.Sprintf("s:%d", r.p), Observer: "o", Outcome: UnitDone}}); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := dd.PruneDone(ctx, "s", "g", time.Now().Add(-time.Hour)); err != nil || n != 0 {
		t.Fatalf("prune of older-than-an-hour: %d, %v; want 0", n, err)
	}
	got, err := dd.Completed(ctx, "s", "g", []uint64{1, 2, 3, 4})
	if err != nil || len(got) != 3 {
		t.Fatalf("completed: %v, %v; want 3 records", got, err)
	}
	if n, err := dd.PruneDone(ctx, "s", "g", time.Now().Add(time.Second)); err != nil || n != 3 {
		t.Fatalf("prune of everything: %d, %v; want 3", n, err)
	}
	if md, err := dd.MaxDone(ctx, "s", "g"); err != nil || md != 0 {
		t.Fatalf("max after prune: %d, %v; want 0", md, err)
	}
}
