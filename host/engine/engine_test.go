package engine

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fraiseql/observer/abi"
	"github.com/fraiseql/observer/host/condition"
	"github.com/fraiseql/observer/host/effect"
	"github.com/fraiseql/observer/host/event"
	"github.com/fraiseql/observer/host/resilience"
	"github.com/fraiseql/observer/host/source"
)

// finishLog records UnitFinished in order, with the time.
type finishLog struct {
	mu    sync.Mutex
	units []UnitFinished
	at    []time.Time
	evs   map[uint64]bool
}

func (f *finishLog) unit(u UnitFinished) {
	f.mu.Lock()
	f.units = append(f.units, u)
	f.at = append(f.at, time.Now())
	f.mu.Unlock()
}

func (f *finishLog) event(e EventFinished) {
	f.mu.Lock()
	if f.evs == nil {
		f.evs = map[uint64]bool{}
	}
	f.evs[e.Position] = true
	f.mu.Unlock()
}

func (f *finishLog) finished(pos uint64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.evs[pos]
}

func (f *finishLog) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.evs)
}

// index returns where position pos finished in the order, -1 if not.
func (f *finishLog) index(pos uint64) (int, time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, u := range f.units {
		if u.Position == pos {
			return i, f.at[i]
		}
	}
	return -1, time.Time{}
}

func (f *finishLog) hooks() Hooks {
	return Hooks{UnitFinished: f.unit, EventFinished: f.event}
}

func TestSameKeyOrderWhileOtherKeyRetries(t *testing.T) {
	for _, conc := range []int{1, 4} {
		t.Run("concurrency="+string(rune('0'+conc)), func(t *testing.T) {
			src, store := newMemSource("db"), newMemStore()
			src.add(
				ev("orders", "A", event.OpInsert, nil), // 1: fails once, waits 300ms
				ev("orders", "A", event.OpUpdate, nil), // 2: must wait behind 1
				ev("orders", "B", event.OpInsert, nil), // 3: must not wait
				ev("orders", "B", event.OpUpdate, nil), // 4
			)
			var retriedAt time.Time
			var mu sync.Mutex
			x := &recExec{fn: func(ctx context.Context, req effect.Request, attempt int) error {
				if req.EventID == "db:1" && attempt == 1 {
					return errors.New("receiver busy")
				}
				return nil
			}}
			var fl finishLog
			hooks := fl.hooks()
			hooks.RetryScheduled = func(r RetryScheduled) {
				mu.Lock()
				retriedAt = time.Now()
				mu.Unlock()
			}
			const backoff = 300 * time.Millisecond
			start(t, Config{
				Concurrency: conc,
				Observers:   []Observer{{Name: "o", Entity: "orders", Action: ActStep{Plugin: logActor(1)}, Retry: fastRetry(3, backoff)}},
				Hooks:       hooks,
			}, src, store, map[string]effect.Executor{"log": x})
			waitFor(t, 10*time.Second, "4 events finished", func() bool { return fl.count() == 4 })

			i1, t1 := fl.index(1)
			i2, _ := fl.index(2)
			i3, t3 := fl.index(3)
			i4, t4 := fl.index(4)
			if !(i1 < i2) {
				t.Errorf("key A out of order: event 1 finished at %d, event 2 at %d", i1, i2)
			}
			if !(i3 < i4) {
				t.Errorf("key B out of order: event 3 finished at %d, event 4 at %d", i3, i4)
			}
			if !(i4 < i1) {
				t.Errorf("key B waited for key A's retry: finish order %v", fl.units)
			}
			mu.Lock()
			ra := retriedAt
			mu.Unlock()
			if ra.IsZero() {
				t.Fatal("no retry scheduled")
			}
			if t3.Sub(ra) > backoff/2 || t4.Sub(ra) > backoff/2 {
				t.Errorf("key B finished %s and %s after A's retry was scheduled; want well within the %s back-off", t3.Sub(ra), t4.Sub(ra), backoff)
			}
			if d := t1.Sub(ra); d < backoff {
				t.Errorf("event 1 finished %s after its retry was scheduled, before the %s back-off", d, backoff)
			}
			var a1 int
			for _, r := range x.requests() {
				if r.EventID == "db:1" {
					a1++
				}
			}
			if a1 != 2 {
				t.Errorf("event 1 effect sent %d times, want 2", a1)
			}
		})
	}
}

func TestRetriesThenDeadLetter(t *testing.T) {
	const attempts = 3
	tests := []struct {
		name       string
		filter     func(calls *int) *filterFunc
		act        func(ctx context.Context, in *abi.Input) (abi.ActResult, error)
		exec       func(ctx context.Context, req effect.Request, attempt int) error
		wantStage  string
		wantEffect int
		wantErr    string
		wantCalls  func(f, a, x int) bool
	}{
		{
			name: "filter result error, retryable",
			filter: func(calls *int) *filterFunc {
				return &filterFunc{name: "flaky-filter", fn: func(ctx context.Context, in *abi.Input) (abi.FilterResult, error) {
					*calls++
					return abi.FilterResult{Error: &abi.Error{Message: "lookup not ready", Retryable: true}}, nil
				}}
			},
			wantStage: StageFilter, wantEffect: -1, wantErr: "lookup not ready",
			wantCalls: func(f, a, x int) bool { return f == attempts && a == 0 && x == 0 },
		},
		{
			name: "act call error",
			act: func(ctx context.Context, in *abi.Input) (abi.ActResult, error) {
				return abi.ActResult{}, errors.New("instance trapped")
			},
			wantStage: StageAct, wantEffect: -1, wantErr: "instance trapped",
			wantCalls: func(f, a, x int) bool { return a == attempts && x == 0 },
		},
		{
			name: "effect error",
			exec: func(ctx context.Context, req effect.Request, attempt int) error {
				return errors.New("503 from receiver")
			},
			wantStage: StageEffect, wantEffect: 0, wantErr: "503 from receiver",
			wantCalls: func(f, a, x int) bool { return a == 1 && x == attempts },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src, store := newMemSource("db"), newMemStore()
			bad := src.add(ev("orders", "A", event.OpInsert, map[string]any{"id": json.Number("7")}))[0]
			src.add(ev("orders", "A", event.OpUpdate, nil)) // same key, after the dead letter
			var filterCalls int
			o := Observer{Name: "o", Entity: "orders", Retry: fastRetry(attempts, 5*time.Millisecond)}
			if tc.filter != nil {
				f := tc.filter(&filterCalls)
				// Only event 1 fails in the filter.
				inner := f.fn
				f.fn = func(ctx context.Context, in *abi.Input) (abi.FilterResult, error) {
					if in.Event.Position != 1 {
						return abi.FilterResult{Pass: true}, nil
					}
					return inner(ctx, in)
				}
				o.Filters = []Step{{Plugin: f}}
			}
			actor := logActor(1)
			if tc.act != nil {
				base := actor.fn
				actor.fn = func(ctx context.Context, in *abi.Input) (abi.ActResult, error) {
					if in.Event.Position != 1 {
						return base(ctx, in)
					}
					return tc.act(ctx, in)
				}
			}
			o.Action = ActStep{Plugin: actor}
			x := &recExec{fn: func(ctx context.Context, req effect.Request, attempt int) error {
				if req.EventID != "db:1" || tc.exec == nil {
					return nil
				}
				return tc.exec(ctx, req, attempt)
			}}
			var fl finishLog
			h := start(t, Config{Observers: []Observer{o}, Hooks: fl.hooks()}, src, store, map[string]effect.Executor{"log": x})
			waitFor(t, 10*time.Second, "2 events finished", func() bool { return fl.count() == 2 })
			if err := h.stop(); err != nil {
				t.Fatalf("Run: %v", err)
			}

			dl := store.deadLetters()
			if len(dl) != 1 {
				t.Fatalf("dead letters = %+v, want 1", dl)
			}
			d := dl[0]
			if d.Source != "db" || d.Group != DefaultGroup || d.Observer != "o" || d.EventID != "db:1" || d.Position != 1 {
				t.Errorf("dead letter identity = %+v", d)
			}
			if d.Stage != tc.wantStage || d.Effect != tc.wantEffect || d.Attempts != attempts {
				t.Errorf("dead letter stage/effect/attempts = %q/%d/%d, want %q/%d/%d", d.Stage, d.Effect, d.Attempts, tc.wantStage, tc.wantEffect, attempts)
			}
			if !strings.Contains(d.Error, tc.wantErr) {
				t.Errorf("dead letter error %q does not contain %q", d.Error, tc.wantErr)
			}
			got, err := event.Decode(d.Event)
			if err != nil || got.ID != bad.ID || got.After["id"] != json.Number("7") {
				t.Errorf("dead letter event = %s (%v), want the event", d.Event, err)
			}
			var xCalls int
			for _, r := range x.requests() {
				if r.EventID == "db:1" {
					xCalls++
				}
			}
			actCalls := 0
			for _, in := range actor.calls {
				if in.Event.Position == 1 {
					actCalls++
				}
			}
			if !tc.wantCalls(filterCalls, actCalls, xCalls) {
				t.Errorf("calls: filter %d, act %d, effect %d", filterCalls, actCalls, xCalls)
			}
			if st := h.e.Stats(); st.Retries != attempts-1 || st.DeadLettered != 1 {
				t.Errorf("stats retries %d dead %d, want %d and 1", st.Retries, st.DeadLettered, attempts-1)
			}
			if c := store.cursor("db", DefaultGroup); c.Through != 2 || len(c.Pending) != 0 {
				t.Errorf("checkpoint = %+v, want through 2, nothing pending", c)
			}
		})
	}
}

func TestPermanentErrorDeadLettersAfterOneAttempt(t *testing.T) {
	tests := []struct {
		name       string
		filter     Filter
		act        func(ctx context.Context, in *abi.Input) (abi.ActResult, error)
		exec       func(ctx context.Context, req effect.Request, attempt int) error
		wantStage  string
		wantEffect int
		wantErr    string
	}{
		{
			name: "filter result error, not retryable",
			filter: &filterFunc{name: "strict", fn: func(ctx context.Context, in *abi.Input) (abi.FilterResult, error) {
				return abi.FilterResult{Error: &abi.Error{Message: "amount is not a number", Code: "bad_input"}}, nil
			}},
			wantStage: StageFilter, wantEffect: -1, wantErr: "amount is not a number",
		},
		{
			name: "act permanent call error",
			act: func(ctx context.Context, in *abi.Input) (abi.ActResult, error) {
				return abi.ActResult{}, resilience.MarkPermanent(errors.New("output exceeds cap"))
			},
			wantStage: StageAct, wantEffect: -1, wantErr: "output exceeds cap",
		},
		{
			name: "act result error, not retryable",
			act: func(ctx context.Context, in *abi.Input) (abi.ActResult, error) {
				return abi.ActResult{Error: &abi.Error{Message: "template refers to after.nope"}}, nil
			},
			wantStage: StageAct, wantEffect: -1, wantErr: "template refers to after.nope",
		},
		{
			name: "effect permanent (4xx)",
			exec: func(ctx context.Context, req effect.Request, attempt int) error {
				return resilience.MarkPermanent(errors.New("422 Unprocessable Entity"))
			},
			wantStage: StageEffect, wantEffect: 1, wantErr: "422",
		},
		{
			name: "unknown effect type",
			act: func(ctx context.Context, in *abi.Input) (abi.ActResult, error) {
				return abi.ActResult{Effects: []abi.Effect{{Type: "kafka"}}}, nil
			},
			wantStage: StageEffect, wantEffect: 0, wantErr: `"kafka"`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src, store := newMemSource("db"), newMemStore()
			src.add(ev("orders", "A", event.OpInsert, nil))
			actor := logActor(2)
			if tc.act != nil {
				actor.fn = tc.act
			}
			o := Observer{Name: "o", Entity: "orders", Action: ActStep{Plugin: actor}, Retry: fastRetry(5, time.Millisecond)}
			if tc.filter != nil {
				o.Filters = []Step{{Plugin: tc.filter}}
			}
			x := &recExec{fn: func(ctx context.Context, req effect.Request, attempt int) error {
				if tc.exec != nil && req.Index == 1 {
					return tc.exec(ctx, req, attempt)
				}
				return nil
			}}
			var fl finishLog
			h := start(t, Config{Observers: []Observer{o}, Hooks: fl.hooks()}, src, store, map[string]effect.Executor{"log": x})
			waitFor(t, 10*time.Second, "event finished", func() bool { return fl.count() == 1 })
			h.stop()
			dl := store.deadLetters()
			if len(dl) != 1 {
				t.Fatalf("dead letters = %+v, want 1", dl)
			}
			d := dl[0]
			if d.Attempts != 1 || d.Stage != tc.wantStage || d.Effect != tc.wantEffect || !strings.Contains(d.Error, tc.wantErr) {
				t.Errorf("dead letter = attempts %d stage %q effect %d error %q; want 1, %q, %d, containing %q",
					d.Attempts, d.Stage, d.Effect, d.Error, tc.wantStage, tc.wantEffect, tc.wantErr)
			}
			if st := h.e.Stats(); st.Retries != 0 {
				t.Errorf("retries = %d, want 0", st.Retries)
			}
			if tc.wantStage == StageEffect && tc.exec != nil {
				if n := len(x.requests()); n != 2 {
					t.Errorf("executor called %d times, want 2 (effect 0 once, effect 1 once)", n)
				}
			}
		})
	}
}

func TestDecodeErrorDeadLetteredOthersFlow(t *testing.T) {
	src, store := newMemSource("db"), newMemStore()
	store.failPutDead = 2 // the store refuses the dead letter twice: it is retried, not dropped
	src.add(ev("orders", "A", event.OpInsert, nil))
	broken := src.addBroken(`{"after":"{not json"}`, errors.New("after image: invalid character 'n'"))
	src.add(ev("orders", "B", event.OpInsert, nil))
	x := &recExec{}
	var fl finishLog
	var deadAt time.Time
	var mu sync.Mutex
	hooks := fl.hooks()
	hooks.DeadLettered = func(source.DeadLetter) { mu.Lock(); deadAt = time.Now(); mu.Unlock() }
	h := start(t, Config{
		Concurrency: 2,
		Observers:   []Observer{{Name: "o", Entity: "orders", Action: ActStep{Plugin: logActor(1)}}},
		Hooks:       hooks,
	}, src, store, map[string]effect.Executor{"log": x})
	waitFor(t, 10*time.Second, "3 events finished", func() bool { return fl.count() == 3 })
	h.stop()

	dl := store.deadLetters()
	if len(dl) != 1 {
		t.Fatalf("dead letters = %+v", dl)
	}
	d := dl[0]
	if d.Observer != "" || d.Stage != StageDecode || d.Position != broken || d.Effect != -1 || d.Attempts != 1 ||
		string(d.Event) != `{"after":"{not json"}` || !strings.Contains(d.Error, "invalid character") {
		t.Errorf("decode dead letter = %+v", d)
	}
	if store.putDeadErrs != 2 {
		t.Errorf("PutDead failures = %d, want 2 retried", store.putDeadErrs)
	}
	if n := len(x.requests()); n != 2 {
		t.Errorf("effects = %d, want 2 (both decodable events)", n)
	}
	_, t3 := fl.index(3)
	mu.Lock()
	if !t3.Before(deadAt) {
		t.Errorf("event 3 finished at %s, after the dead letter was stored at %s: the decode failure blocked it", t3, deadAt)
	}
	mu.Unlock()
	if c := store.cursor("db", DefaultGroup); c.Through != 3 || len(c.Pending) != 0 {
		t.Errorf("checkpoint = %+v", c)
	}
}

func TestRouting(t *testing.T) {
	big, err := condition.Parse(`after.amount >= 10 && after.status != "test"`)
	if err != nil {
		t.Fatal(err)
	}
	vip := &filterFunc{name: "vip", fn: func(ctx context.Context, in *abi.Input) (abi.FilterResult, error) {
		return abi.FilterResult{Pass: in.Event.After["vip"] == true, Reason: "not vip"}, nil
	}}
	broken := condFunc(func(ev *event.Event) (bool, error) {
		if ev.Key == "boom" {
			return false, errors.New("path after.x: cannot compare")
		}
		return true, nil
	})
	src, store := newMemSource("db"), newMemStore()
	src.add(
		ev("payment", "1", event.OpInsert, map[string]any{"amount": json.Number("12.50")}),                // 1: big
		ev("payment", "2", event.OpInsert, map[string]any{"amount": json.Number("9.99")}),                 // 2: none
		ev("payment", "3", event.OpUpdate, map[string]any{"amount": json.Number("50"), "status": "test"}), // 3: none
		ev("payment", "4", event.OpDelete, map[string]any{"amount": json.Number("50")}),                   // 4: op not wanted
		ev("customer", "5", event.OpInsert, map[string]any{"vip": true}),                                  // 5: vip, all
		ev("customer", "6", event.OpInsert, map[string]any{"vip": false}),                                 // 6: all only
		ev("customer", "boom", event.OpUpdate, nil),                                                       // 7: condition error for "all"
		ev("rental", "8", event.OpInsert, nil),                                                            // 8: nobody
	)
	x := &recExec{}
	var fl finishLog
	h := start(t, Config{
		Observers: []Observer{
			{Name: "big", Entity: "payment", Operations: []abi.Operation{event.OpInsert, event.OpUpdate}, Condition: big, Action: ActStep{Plugin: logActor(1)}},
			{Name: "vip", Entity: "customer", Filters: []Step{{Plugin: vip}}, Action: ActStep{Plugin: logActor(1)}},
			{Name: "all", Entity: "customer", Condition: broken, Action: ActStep{Plugin: logActor(1)}},
		},
		Hooks: fl.hooks(),
	}, src, store, map[string]effect.Executor{"log": x})
	waitFor(t, 10*time.Second, "8 events finished", func() bool { return fl.count() == 8 })
	h.stop()

	var got []string
	for _, r := range x.requests() {
		got = append(got, r.Observer+"/"+r.EventID)
	}
	slices.Sort(got)
	want := []string{"all/db:5", "all/db:6", "big/db:1", "vip/db:5"}
	if !slices.Equal(got, want) {
		t.Errorf("effects for %v, want %v", got, want)
	}
	dl := store.deadLetters()
	if len(dl) != 1 || dl[0].Observer != "all" || dl[0].Stage != StageCondition || dl[0].Position != 7 || dl[0].Attempts != 1 ||
		!strings.Contains(dl[0].Error, "cannot compare") {
		t.Errorf("dead letters = %+v, want one condition failure of observer all at 7", dl)
	}
	st := h.e.Stats()
	if st.EventsRead != 8 || st.EventsMatched != 4 || st.Filtered != 2 {
		t.Errorf("stats = %+v, want read 8, matched 4 (1, 5, 6, 7), filtered 2 (vip: 6, 7)", st)
	}
	if c := store.cursor("db", DefaultGroup); c.Through != 8 || len(c.Pending) != 0 {
		t.Errorf("checkpoint = %+v", c)
	}
}

func TestEffectFailureResumesAtFailingEffect(t *testing.T) {
	t.Run("effect 1 fails once", func(t *testing.T) {
		src, store := newMemSource("db"), newMemStore()
		src.add(ev("orders", "A", event.OpInsert, nil))
		actor := logActor(3)
		x := &recExec{fn: func(ctx context.Context, req effect.Request, attempt int) error {
			if req.Index == 1 && attempt == 1 {
				return errors.New("timeout")
			}
			return nil
		}}
		var fl finishLog
		h := start(t, Config{Observers: []Observer{{Name: "o", Entity: "orders", Action: ActStep{Plugin: actor}, Retry: fastRetry(3, time.Millisecond)}}, Hooks: fl.hooks()},
			src, store, map[string]effect.Executor{"log": x})
		waitFor(t, 10*time.Second, "event finished", func() bool { return fl.count() == 1 })
		h.stop()
		var idx []int
		keys := map[int]string{}
		for _, r := range x.requests() {
			idx = append(idx, r.Index)
			if k, ok := keys[r.Index]; ok && k != r.IdempotencyKey {
				t.Errorf("effect %d: idempotency key changed across attempts", r.Index)
			}
			keys[r.Index] = r.IdempotencyKey
			if r.IdempotencyKey != event.IdempotencyKey("db:1", "o", r.Index) {
				t.Errorf("effect %d: idempotency key %q", r.Index, r.IdempotencyKey)
			}
		}
		if !slices.Equal(idx, []int{0, 1, 1, 2}) {
			t.Errorf("effects sent in order %v, want [0 1 1 2]", idx)
		}
		if n := actor.callCount(); n != 1 {
			t.Errorf("act called %d times, want 1 (its result is kept across the retry)", n)
		}
		if len(store.deadLetters()) != 0 {
			t.Errorf("unexpected dead letters")
		}
	})
	t.Run("plugin error re-runs the plugin", func(t *testing.T) {
		src, store := newMemSource("db"), newMemStore()
		src.add(ev("orders", "A", event.OpInsert, nil))
		actor := logActor(2)
		base := actor.fn
		actor.fn = func(ctx context.Context, in *abi.Input) (abi.ActResult, error) {
			if in.Context.Attempt == 1 {
				return abi.ActResult{Error: &abi.Error{Message: "lookup not ready", Retryable: true}}, nil
			}
			return base(ctx, in)
		}
		x := &recExec{}
		var fl finishLog
		h := start(t, Config{Observers: []Observer{{Name: "o", Entity: "orders", Action: ActStep{Plugin: actor}, Retry: fastRetry(3, time.Millisecond)}}, Hooks: fl.hooks()},
			src, store, map[string]effect.Executor{"log": x})
		waitFor(t, 10*time.Second, "event finished", func() bool { return fl.count() == 1 })
		h.stop()
		if n := actor.callCount(); n != 2 {
			t.Fatalf("act called %d times, want 2", n)
		}
		if a := actor.calls[1].Context.Attempt; a != 2 {
			t.Errorf("second act call has attempt %d, want 2", a)
		}
		if n := len(x.requests()); n != 2 {
			t.Errorf("effects sent %d, want 2 (each once)", n)
		}
	})
}

func TestInputAndDryRun(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.FixedZone("X", 3600))
	tr := &abi.TraceContext{Traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
	var seen []abi.Input
	var mu sync.Mutex
	f := &filterFunc{name: "f", fn: func(ctx context.Context, in *abi.Input) (abi.FilterResult, error) {
		mu.Lock()
		seen = append(seen, *in)
		mu.Unlock()
		return abi.FilterResult{Pass: true}, nil
	}}
	actor := logActor(1)
	src, store := newMemSource("db"), newMemStore()
	e0 := ev("orders", "A", event.OpInsert, nil)
	e0.Trace = tr
	src.add(e0)
	x := &recExec{}
	var fl finishLog
	var dry []EffectDone
	hooks := fl.hooks()
	hooks.EffectDone = func(d EffectDone) { mu.Lock(); dry = append(dry, d); mu.Unlock() }
	h := start(t, Config{
		Now: func() time.Time { return now },
		Observers: []Observer{{Name: "o", Entity: "orders", DryRun: true,
			Filters: []Step{{Plugin: f, Config: json.RawMessage(`{"min":1}`)}},
			Action:  ActStep{Plugin: actor, Config: json.RawMessage(`{"url":"x"}`)}}},
		Hooks: hooks,
	}, src, store, map[string]effect.Executor{"log": x})
	waitFor(t, 10*time.Second, "event finished", func() bool { return fl.count() == 1 })
	h.stop()
	if len(seen) != 1 || actor.callCount() != 1 {
		t.Fatalf("filter calls %d, act calls %d", len(seen), actor.callCount())
	}
	wantCtx := abi.CallContext{Observer: "o", Plugin: "f", Role: abi.RoleFilter, Attempt: 1, DryRun: true, Now: "2025-03-01T11:00:00.123456789Z", Trace: tr}
	if in := seen[0]; in.ABI != abi.VersionString || in.Context != wantCtx || in.Event != e0 || string(in.Config) != `{"min":1}` {
		t.Errorf("filter input = %+v, want context %+v", in, wantCtx)
	}
	wantCtx.Plugin, wantCtx.Role = "log-actor", abi.RoleAct
	if in := actor.calls[0]; in.Context != wantCtx || string(in.Config) != `{"url":"x"}` {
		t.Errorf("act input = %+v", in)
	}
	if n := len(x.requests()); n != 0 {
		t.Errorf("dry run executed %d effects", n)
	}
	if len(dry) != 1 || !dry[0].DryRun {
		t.Errorf("EffectDone = %+v, want one dry-run effect", dry)
	}
}

func TestProcessOne(t *testing.T) {
	fail := false
	x := &recExec{fn: func(ctx context.Context, req effect.Request, attempt int) error {
		if fail {
			return errors.New("connection refused")
		}
		return nil
	}}
	onlyBig, _ := condition.Parse(`after.n > 5`)
	store := newMemStore()
	e, err := New(Config{Observers: []Observer{
		{Name: "o", Entity: "orders", Operations: []abi.Operation{event.OpInsert}, Condition: onlyBig, Action: ActStep{Plugin: logActor(2)}},
	}}, newMemSource("db"), store, map[string]effect.Executor{"log": x}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	big := &event.Event{ID: "db:9", Position: 9, Entity: "orders", Op: event.OpInsert, After: map[string]any{"n": json.Number("6")}}
	if err := e.ProcessOne(ctx, big, "o"); err != nil {
		t.Fatalf("ProcessOne: %v", err)
	}
	if n := len(x.requests()); n != 2 {
		t.Fatalf("effects = %d, want 2", n)
	}
	fail = true
	err = e.ProcessOne(ctx, big, "o")
	var se *StageError
	if !errors.As(err, &se) || se.Stage != StageEffect || se.Effect != 0 || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("ProcessOne with failing receiver = %v, want a StageError of effect 0", err)
	}
	if n := len(x.requests()); n != 3 {
		t.Errorf("effects = %d after a failing run, want 3 (no retry)", n)
	}
	fail = false
	small := &event.Event{ID: "db:10", Position: 10, Entity: "orders", Op: event.OpInsert, After: map[string]any{"n": json.Number("1")}}
	if err := e.ProcessOne(ctx, small, "o"); err != nil || len(x.requests()) != 3 {
		t.Errorf("ProcessOne of an event the condition rejects = %v, effects %d", err, len(x.requests()))
	}
	for _, tc := range []struct {
		ev   *event.Event
		obs  string
		want string
	}{
		{big, "nope", `no observer named "nope"`},
		{&event.Event{ID: "db:1", Entity: "rental", Op: event.OpInsert}, "o", `watches entity "orders"`},
		{&event.Event{ID: "db:1", Entity: "orders", Op: event.OpDelete}, "o", `does not watch operation "DELETE"`},
	} {
		if err := e.ProcessOne(ctx, tc.ev, tc.obs); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ProcessOne(%s, %s) = %v, want error containing %q", tc.ev.ID, tc.obs, err, tc.want)
		}
	}
	if len(store.deadLetters()) != 0 {
		t.Errorf("ProcessOne stored dead letters")
	}
}

func TestBackpressure(t *testing.T) {
	src, store := newMemSource("db"), newMemStore()
	for i := range 20 {
		src.add(ev("orders", string(rune('a'+i)), event.OpInsert, nil))
	}
	release := make(chan struct{})
	x := &recExec{fn: func(ctx context.Context, req effect.Request, attempt int) error {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	}}
	var fl finishLog
	h := start(t, Config{Concurrency: 8, MaxInFlight: 3, Observers: []Observer{{Name: "o", Entity: "orders", Action: ActStep{Plugin: logActor(1)}}}, Hooks: fl.hooks()},
		src, store, map[string]effect.Executor{"log": x})
	waitFor(t, 5*time.Second, "3 effects started", func() bool { return len(x.requests()) == 3 })
	time.Sleep(50 * time.Millisecond)
	if n := len(src.deliveredPositions()); n != 3 {
		t.Errorf("source delivered %d events with 3 in flight allowed", n)
	}
	if st := h.e.Stats(); st.InFlight != 3 {
		t.Errorf("in flight = %d, want 3", st.InFlight)
	}
	close(release)
	waitFor(t, 5*time.Second, "20 events finished", func() bool { return fl.count() == 20 })
}

func TestStopAbandonsWaitingRetry(t *testing.T) {
	src, store := newMemSource("db"), newMemStore()
	src.add(
		ev("orders", "A", event.OpInsert, nil), // 1: retry in an hour
		ev("orders", "A", event.OpUpdate, nil), // 2: behind 1
		ev("orders", "B", event.OpInsert, nil), // 3: done
	)
	x := &recExec{fn: func(ctx context.Context, req effect.Request, attempt int) error {
		if req.EventID == "db:1" {
			return errors.New("busy")
		}
		return nil
	}}
	var fl finishLog
	retried := make(chan struct{}, 1)
	hooks := fl.hooks()
	hooks.RetryScheduled = func(RetryScheduled) { retried <- struct{}{} }
	h := start(t, Config{Observers: []Observer{{Name: "o", Entity: "orders", Action: ActStep{Plugin: logActor(1)}, Retry: fastRetry(5, time.Hour)}}, Hooks: hooks},
		src, store, map[string]effect.Executor{"log": x})
	<-retried
	waitFor(t, 5*time.Second, "event 3 finished", func() bool { return fl.finished(3) })
	began := time.Now()
	if err := h.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if d := time.Since(began); d > 2*time.Second {
		t.Errorf("stop took %s with a retry waiting an hour", d)
	}
	c := store.cursor("db", DefaultGroup)
	if want := (source.Cursor{Through: 3, Pending: []uint64{1, 2}}); !sameCursor(c, want) {
		t.Errorf("final checkpoint = %+v, want %+v", c, want)
	}
	if len(store.deadLetters()) != 0 {
		t.Errorf("abandoned retry was dead-lettered")
	}
}

func TestNewValidates(t *testing.T) {
	ok := Observer{Name: "o", Entity: "orders", Action: ActStep{Plugin: logActor(1)}}
	tests := []struct {
		name string
		cfg  Config
		want []string
	}{
		{"negative numbers", Config{Concurrency: -1, BatchSize: -2, MaxInFlight: -3, CheckpointInterval: -time.Second, ShutdownTimeout: -time.Second},
			[]string{"concurrency -1", "batch_size -2", "max_in_flight -3", "checkpoint_interval -1s", "shutdown_timeout -1s"}},
		{"observer fields", Config{Observers: []Observer{{Operations: []abi.Operation{"UPSERT"}, Filters: []Step{{}}}}},
			[]string{"observers[0]", "name is empty", "entity is empty", `operation "UPSERT"`, "filters[0]: plugin is nil", "action: plugin is nil"}},
		{"duplicate name", Config{Observers: []Observer{ok, ok}}, []string{`name "o" is used twice`}},
		{"bad retry", Config{Observers: []Observer{{Name: "r", Entity: "e", Action: ok.Action, Retry: resilience.Policy{Strategy: "sometimes", MaxAttempts: 1, InitialDelay: 1, MaxDelay: 1}}}},
			[]string{`observer "r": retry: strategy "sometimes"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg, newMemSource("db"), newMemStore(), nil, nil)
			if err == nil {
				t.Fatal("New accepted a bad config")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	if _, err := New(Config{Observers: []Observer{ok}}, newMemSource("db"), newMemStore(), map[string]effect.Executor{"http": nil}, nil); err == nil ||
		!strings.Contains(err.Error(), `effect type "http" is nil`) {
		t.Errorf("nil executor: %v", err)
	}
	e, err := New(Config{Observers: []Observer{ok}}, newMemSource("db"), newMemStore(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if e.cfg.Concurrency != DefaultConcurrency || e.obs[0].Retry != resilience.DefaultPolicy() || e.cfg.Group != DefaultGroup {
		t.Errorf("defaults not applied: %+v", e.cfg)
	}
}
