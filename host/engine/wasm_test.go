package engine

import (
	"context"
	"encoding/json"
	"io"
	nethttp "net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fraiseql/observer/abi"
	"github.com/fraiseql/observer/host/condition"
	"github.com/fraiseql/observer/host/effect"
	effecthttp "github.com/fraiseql/observer/host/effect/http"
	"github.com/fraiseql/observer/host/event"
	"github.com/fraiseql/observer/host/pluginhost"
	"github.com/fraiseql/observer/internal/testenv"
)

// The concrete types the CLI wires satisfy the engine's small interfaces.
var (
	_ Filter    = (*pluginhost.Plugin)(nil)
	_ Actor     = (*pluginhost.Plugin)(nil)
	_ Condition = (*condition.Expr)(nil)
)

// TestWasmPipeline runs the first-party field-filter and webhook guests,
// compiled from source, through the engine to a loopback receiver.
func TestWasmPipeline(t *testing.T) {
	filterWasm := testenv.GoPlugin(t, "plugins/field-filter")
	webhookWasm := testenv.GoPlugin(t, "plugins/webhook")
	ctx := context.Background()
	host, err := pluginhost.New(ctx, pluginhost.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close(ctx)
	ff, err := host.Load(ctx, pluginhost.Spec{Path: filterWasm})
	if err != nil {
		t.Fatal(err)
	}
	wh, err := host.Load(ctx, pluginhost.Spec{Path: webhookWasm})
	if err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	got := map[string]string{} // event id → idempotency key
	var bodies []map[string]any
	srv := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		json.Unmarshal(b, &m)
		mu.Lock()
		got[r.Header.Get(effecthttp.HeaderEventID)] = r.Header.Get(effecthttp.HeaderIdempotencyKey)
		bodies = append(bodies, m)
		mu.Unlock()
		w.WriteHeader(nethttp.StatusOK)
	}))
	defer srv.Close()

	cond, err := condition.Parse(`after.amount > 0`)
	if err != nil {
		t.Fatal(err)
	}
	src, store := newMemSource("db"), newMemStore()
	amounts := []string{"0.99", "9.99", "12.00", "4.99", "10.99", "-1", "9.98", "11.99"}
	for i, a := range amounts {
		src.add(ev("payment", string(rune('a'+i%3)), event.OpInsert, map[string]any{"amount": json.Number(a), "id": json.Number(string(rune('1' + i)))}))
	}
	var fl finishLog
	e, err := New(Config{
		Concurrency: 4,
		Observers: []Observer{{
			Name: "big-payments", Entity: "payment", Operations: []abi.Operation{event.OpInsert}, Condition: cond,
			Filters: []Step{{Plugin: ff, Config: json.RawMessage(`{"field": "after.amount", "op": ">=", "value": 9.99}`)}},
			Action:  ActStep{Plugin: wh, Config: json.RawMessage(`{"url": "` + srv.URL + `/pay", "body": "{\"id\": {{ event.id }}, \"amount\": {{ after.amount }}}"}`)},
			Retry:   fastRetry(3, 10*time.Millisecond),
			Effect:  effect.Policy{AllowedHosts: []string{"127.0.0.1"}},
		}},
		Hooks: fl.hooks(),
	}, src, store, map[string]effect.Executor{abi.EffectHTTP: effecthttp.New(effecthttp.Options{})}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- e.Run(rctx) }()
	waitFor(t, 30*time.Second, "all events finished", func() bool { return fl.count() == len(amounts) })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	mu.Lock()
	defer mu.Unlock()
	var ids []string
	for id, key := range got {
		ids = append(ids, id)
		if key != event.IdempotencyKey(id, "big-payments", 0) {
			t.Errorf("%s: idempotency key %q", id, key)
		}
	}
	slices.Sort(ids)
	// amounts ≥ 9.99: positions 2 (9.99), 3 (12.00), 5 (10.99), 8 (11.99).
	if want := []string{"db:2", "db:3", "db:5", "db:8"}; !slices.Equal(ids, want) {
		t.Errorf("receiver got %v, want %v", ids, want)
	}
	for _, b := range bodies {
		if _, ok := b["amount"].(float64); !ok || b["id"] == nil {
			t.Errorf("body %v lacks the templated id and amount", b)
		}
	}
	if dl := store.deadLetters(); len(dl) != 0 {
		t.Errorf("dead letters: %+v", dl)
	}
	if st := e.Stats(); st.Filtered != 3 || st.EventsMatched != 7 {
		t.Errorf("stats = %+v, want 7 matched (amount > 0), 3 filtered by the WASM filter", st)
	}
}
