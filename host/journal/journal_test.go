package journal_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/fraiseql/observer/abi"
	"github.com/fraiseql/observer/host/condition"
	"github.com/fraiseql/observer/host/effect"
	effectlog "github.com/fraiseql/observer/host/effect/log"
	"github.com/fraiseql/observer/host/engine"
	"github.com/fraiseql/observer/host/event"
	"github.com/fraiseql/observer/host/journal"
	"github.com/fraiseql/observer/host/resilience"
	"github.com/fraiseql/observer/host/source"
	"github.com/fraiseql/observer/host/source/sqlite"
)

type goFilter struct{}

func (goFilter) Name() string { return "big" }
func (goFilter) Filter(_ context.Context, in *abi.Input) (abi.FilterResult, error) {
	if in.Event.Key == "2" {
		return abi.FilterResult{Pass: false, Reason: "too small"}, nil
	}
	return abi.FilterResult{Pass: true, Reason: "big enough"}, nil
}

type goActor struct{}

func (goActor) Name() string { return "notify" }
func (goActor) Act(_ context.Context, in *abi.Input) (abi.ActResult, error) {
	effs := []abi.Effect{{Type: abi.EffectLog, Log: &abi.LogEffect{Message: "order " + in.Event.Key}}, {Type: "status"}}
	if in.Event.Key == "4" {
		effs[1].Type = "nowhere" // no executor: dead-lettered at once
	}
	return abi.ActResult{Effects: effs}, nil
}

// statusExec answers 503 to the first attempt of order 3's effect, 201
// otherwise.
type statusExec struct {
	mu    sync.Mutex
	tries map[string]int
}

func (s *statusExec) Execute(_ context.Context, req effect.Request) (effect.Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tries[req.EventID]++
	if req.EventID == "shop:3" && s.tries[req.EventID] == 1 {
		return effect.Result{Status: 503, Detail: "busy"}, errors.New("receiver answered 503")
	}
	return effect.Result{Status: 201, Detail: "created"}, nil
}

// TestJournalOfARealRun runs an engine over an SQLite source with the
// journal's hooks and checks what it tells about four orders: one passes,
// one is filtered, one is retried after a 503, one is dead-lettered; a
// second observer never matches, with its reason.
func TestJournalOfARealRun(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "shop.db")
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE orders (id INTEGER PRIMARY KEY, total NUMERIC NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	if err := sqlite.Install(ctx, db, sqlite.InstallOptions{Tables: []sqlite.TableSpec{{Name: "orders"}}}); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 4; i++ {
		if _, err := db.Exec(`INSERT INTO orders (id, total) VALUES (?, ?)`, i, i*10); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	store, err := sqlite.OpenStore(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	cond, err := condition.Parse(`after.total > 1000`)
	if err != nil {
		t.Fatal(err)
	}
	j := journal.New(journal.Options{})
	logger := slog.New(slog.DiscardHandler)
	e, err := engine.New(engine.Config{
		CheckpointInterval: 20 * time.Millisecond,
		Observers: []engine.Observer{
			{Name: "orders", Entity: "orders", Filters: []engine.Step{{Plugin: goFilter{}}}, Action: engine.ActStep{Plugin: goActor{}},
				Retry: resilience.Policy{Strategy: resilience.Fixed, MaxAttempts: 3, InitialDelay: 5 * time.Millisecond, MaxDelay: 5 * time.Millisecond}},
			{Name: "huge-orders", Entity: "orders", Condition: cond, Action: engine.ActStep{Plugin: goActor{}}},
			{Name: "refunds", Entity: "refunds", Action: engine.ActStep{Plugin: goActor{}}},
		},
		Hooks: j.Hooks(),
	}, sqlite.New(sqlite.Config{Name: "shop", Path: path, PollInterval: 10 * time.Millisecond}, logger), store,
		map[string]effect.Executor{abi.EffectLog: effectlog.New(logger), "status": &statusExec{tries: map[string]int{}}}, logger)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- e.Run(runCtx) }()
	deadline := time.Now().Add(20 * time.Second)
	for e.Stats().EventsFinished < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("events not finished: %+v", e.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	get := func(id string) journal.Report {
		t.Helper()
		r, ok := j.Get(id)
		if !ok {
			t.Fatalf("%s not in the journal", id)
		}
		if r.State != journal.StateFinished || r.From != journal.FromJournal || r.Source != "shop" || r.Event == nil || r.ReadAt == nil || r.FinishedAt == nil {
			t.Errorf("%s: state %q from %q source %q event %v", id, r.State, r.From, r.Source, r.Event != nil)
		}
		if len(r.Observers) != 3 || r.Matched != 1 {
			t.Fatalf("%s: %d observers, %d matched; want all 3 listed, 1 matched: %+v", id, len(r.Observers), r.Matched, r.Observers)
		}
		return r
	}
	r1 := get("shop:1")
	if fmt.Sprint(r1.Event.After["total"]) != "10" || r1.Event.Op != event.OpInsert {
		t.Errorf("shop:1 images: after %v op %s", r1.Event.After, r1.Event.Op)
	}
	o := r1.Observers[0]
	if o.Observer != "orders" || !o.Matched || o.Outcome != engine.UnitDone || len(o.Filters) != 1 || len(o.Action) != 1 || len(o.Effects) != 2 {
		t.Fatalf("shop:1 orders = %+v", o)
	}
	if f := o.Filters[0]; f.Plugin != "big" || f.Pass == nil || !*f.Pass || f.Reason != "big enough" || f.Attempt != 1 {
		t.Errorf("shop:1 filter = %+v", f)
	}
	if a := o.Action[0]; a.Plugin != "notify" || a.Effects != 2 || a.Error != "" {
		t.Errorf("shop:1 action = %+v", a)
	}
	if ef := o.Effects[1]; ef.Index != 1 || ef.Type != "status" || ef.Status != 201 || ef.Detail != "created" ||
		ef.IdempotencyKey != event.IdempotencyKey("shop:1", "orders", 1) {
		t.Errorf("shop:1 effect #1 = %+v", ef)
	}
	if h := r1.Observers[1]; h.Observer != "huge-orders" || h.Matched || h.Reason != "condition false" {
		t.Errorf("shop:1 huge-orders = %+v", h)
	}
	if rf := r1.Observers[2]; rf.Matched || rf.Reason != `entity "orders" is not "refunds"` {
		t.Errorf("shop:1 refunds = %+v", rf)
	}

	if o := get("shop:2").Observers[0]; o.Outcome != engine.UnitFiltered || len(o.Filters) != 1 || *o.Filters[0].Pass || o.Filters[0].Reason != "too small" || len(o.Effects) != 0 {
		t.Errorf("shop:2 orders = %+v", o)
	}

	o3 := get("shop:3").Observers[0]
	if o3.Outcome != engine.UnitDone || len(o3.Effects) != 3 || len(o3.Retries) != 1 {
		t.Fatalf("shop:3 orders = %+v", o3)
	}
	if a, b := o3.Effects[1], o3.Effects[2]; a.Attempt != 1 || a.Status != 503 || a.Error == "" || b.Attempt != 2 || b.Status != 201 || b.Error != "" {
		t.Errorf("shop:3 attempts = %+v, %+v; want 503 then 201", a, b)
	}
	if rt := o3.Retries[0]; rt.Stage != engine.StageEffect || rt.Effect != 1 || rt.Attempt != 1 || rt.DelayMS != 5 {
		t.Errorf("shop:3 retry = %+v", rt)
	}

	o4 := get("shop:4").Observers[0]
	if o4.Outcome != engine.UnitDeadLettered || o4.DeadLetter == nil || o4.DeadLetter.ID == 0 || o4.DeadLetter.Stage != engine.StageEffect ||
		o4.DeadLetter.Effect != 1 {
		t.Errorf("shop:4 orders = %+v dead letter %+v", o4, o4.DeadLetter)
	}
}

func routed(j engine.Hooks, src string, pos uint64) {
	ev := &event.Event{ID: event.ID(src, pos), Source: src, Position: pos, Entity: "t", Op: event.OpInsert}
	j.Routed(engine.Routed{Event: ev, ReadAt: time.Now(), Decisions: []engine.RouteDecision{{Observer: "o", Matched: true, Reason: "matched"}}})
}

// TestJournalEvictsOldest: the journal holds at most Size events and
// drops the oldest.
func TestJournalEvictsOldest(t *testing.T) {
	j := journal.New(journal.Options{Size: 32})
	h := j.Hooks()
	for p := uint64(1); p <= 1000; p++ {
		routed(h, "db", p)
	}
	if n := j.Len(); n != 32 {
		t.Errorf("Len = %d after 1000 events, want the size 32", n)
	}
	if _, ok := j.Get("db:1000"); !ok {
		t.Error("the latest event is not kept")
	}
	for p := uint64(1); p <= 500; p++ {
		if _, ok := j.Get(event.ID("db", p)); ok {
			t.Fatalf("db:%d kept after 500 newer events in a journal of 32", p)
		}
	}
	// A hook for an evicted event starts a partial entry.
	h.UnitFinished(engine.UnitFinished{EventID: "db:3", Observer: "o", Outcome: engine.UnitDone})
	if r, ok := j.Get("db:3"); !ok || r.Event != nil || r.Position != 3 || len(r.Observers) != 1 || r.Observers[0].Outcome != engine.UnitDone {
		t.Errorf("partial entry = %+v, %v", r, ok)
	}
	if n := j.Len(); n != 32 {
		t.Errorf("Len = %d after a partial entry, want 32", n)
	}
}

// TestJournalBoundsRecordsAndCopies: lists stop at MaxRecords and count
// the rest; a returned Report does not change with later hooks.
func TestJournalBoundsRecordsAndCopies(t *testing.T) {
	j := journal.New(journal.Options{MaxRecords: 3})
	h := j.Hooks()
	routed(h, "db", 1)
	for i := range 5 {
		h.EffectDone(engine.EffectDone{EventID: "db:1", Observer: "o", Index: i, Type: "http", Attempt: 1, Result: effect.Result{Status: 200}})
	}
	r, _ := j.Get("db:1")
	if o := r.Observers[0]; len(o.Effects) != 3 || o.Dropped != 2 {
		t.Errorf("effects kept %d dropped %d, want 3 and 2", len(o.Effects), o.Dropped)
	}
	r.Observers[0].Effects[0].Status = 999
	h.DeadLettered(sourceDead("db:1", "o"))
	again, _ := j.Get("db:1")
	if again.Observers[0].Effects[0].Status != 200 {
		t.Error("changing a returned report changed the journal")
	}
	if r.Observers[0].DeadLetter != nil || again.Observers[0].DeadLetter == nil {
		t.Error("a report returned earlier saw a later hook, or the journal missed it")
	}
}

// TestJournalConcurrentHooks hammers the journal from several goroutines
// (run with -race): every event keeps all its records.
func TestJournalConcurrentHooks(t *testing.T) {
	j := journal.New(journal.Options{Size: 100000})
	h := j.Hooks()
	var wg sync.WaitGroup
	const workers, per = 8, 500
	for w := range workers {
		wg.Go(func() {
			for i := range per {
				pos := uint64(w*per + i + 1)
				routed(h, "db", pos)
				id := event.ID("db", pos)
				h.PluginDone(engine.PluginDone{EventID: id, Observer: "o", Plugin: "p", Role: abi.RoleAct, Attempt: 1, Effects: 1})
				h.EffectDone(engine.EffectDone{EventID: id, Observer: "o", Type: "log", Attempt: 1})
				h.UnitFinished(engine.UnitFinished{EventID: id, Observer: "o", Outcome: engine.UnitDone})
				h.EventFinished(engine.EventFinished{EventID: id, Position: pos, Matched: 1})
				if i%10 == 0 {
					_, _ = j.Get(event.ID("db", uint64(w*per+1)))
				}
			}
		})
	}
	wg.Wait()
	if n := j.Len(); n != workers*per {
		t.Fatalf("Len = %d, want %d", n, workers*per)
	}
	for p := uint64(1); p <= workers*per; p++ {
		r, _ := j.Get(event.ID("db", p))
		if r.State != journal.StateFinished || len(r.Observers) != 1 || len(r.Observers[0].Action) != 1 || len(r.Observers[0].Effects) != 1 {
			t.Fatalf("db:%d = %+v", p, r)
		}
	}
}

// BenchmarkJournalHooks is the journal's cost per event: routed, a filter,
// the action, one effect, the unit and the event finishing.
func BenchmarkJournalHooks(b *testing.B) {
	j := journal.New(journal.Options{})
	h := j.Hooks()
	evs := make([]*event.Event, 1<<14)
	for i := range evs {
		evs[i] = &event.Event{ID: event.ID("db", uint64(i+1)), Source: "db", Position: uint64(i + 1), Entity: "t"}
	}
	decisions := []engine.RouteDecision{{Observer: "o", Matched: true, Reason: "condition true"}}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		ev := evs[i&(len(evs)-1)]
		i++
		h.Routed(engine.Routed{Event: ev, ReadAt: time.Now(), Decisions: decisions})
		h.PluginDone(engine.PluginDone{EventID: ev.ID, Observer: "o", Plugin: "f", Role: abi.RoleFilter, Attempt: 1, Pass: true})
		h.PluginDone(engine.PluginDone{EventID: ev.ID, Observer: "o", Plugin: "a", Role: abi.RoleAct, Attempt: 1, Effects: 1})
		h.EffectDone(engine.EffectDone{EventID: ev.ID, Observer: "o", Type: "http", Attempt: 1, IdempotencyKey: "k"})
		h.UnitFinished(engine.UnitFinished{EventID: ev.ID, Observer: "o", Outcome: engine.UnitDone})
		h.EventFinished(engine.EventFinished{EventID: ev.ID, Matched: 1})
	}
}

func sourceDead(id, observer string) source.DeadLetter {
	return source.DeadLetter{ID: 9, EventID: id, Observer: observer, Stage: "effect", Effect: 1, Error: "boom", Attempts: 3}
}
