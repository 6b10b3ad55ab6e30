package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	nethttp "net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fraiseql/observer/abi"
	"github.com/fraiseql/observer/host/effect"
	effecthttp "github.com/fraiseql/observer/host/effect/http"
	effectlog "github.com/fraiseql/observer/host/effect/log"
	"github.com/fraiseql/observer/host/event"
)

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRealHTTPAndLogExecutors runs the engine against a loopback receiver
// through the real http and log executors: idempotency keys and signatures
// arrive, a 503 is retried at the failing effect only, a 422 and a host
// outside the allow-list are dead-lettered at once, and the secret never
// reaches a log.
func TestRealHTTPAndLogExecutors(t *testing.T) {
	const secret = "s3cret-hmac-key"
	type hit struct {
		key, eventID, sig string
		body              []byte
	}
	var mu sync.Mutex
	var hits []hit
	seen := map[string]int{}
	srv := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		body, _ := io.ReadAll(r.Body)
		h := hit{key: r.Header.Get(effecthttp.HeaderIdempotencyKey), eventID: r.Header.Get(effecthttp.HeaderEventID),
			sig: r.Header.Get(effecthttp.HeaderSignature), body: body}
		mu.Lock()
		hits = append(hits, h)
		seen[h.key]++
		n := seen[h.key]
		mu.Unlock()
		switch {
		case h.eventID == "db:2" && n == 1:
			w.WriteHeader(nethttp.StatusServiceUnavailable)
		case h.eventID == "db:3":
			w.WriteHeader(nethttp.StatusUnprocessableEntity)
			io.WriteString(w, `{"error":"amount must be positive"}`)
		default:
			w.WriteHeader(nethttp.StatusNoContent)
		}
	}))
	defer srv.Close()

	actor := &actorFunc{name: "webhook", fn: func(ctx context.Context, in *abi.Input) (abi.ActResult, error) {
		url := srv.URL + "/hook?token=" + secret
		if in.Event.Key == "elsewhere" {
			url = "http://localhost:1/hook"
		}
		body, _ := json.Marshal(map[string]any{"id": in.Event.ID, "amount": in.Event.After["amount"]})
		return abi.ActResult{Effects: []abi.Effect{
			{Type: abi.EffectLog, Log: &abi.LogEffect{Message: "sending " + in.Event.ID}},
			{Type: abi.EffectHTTP, HTTP: &abi.HTTPEffect{Method: "POST", URL: url, BodyJSON: body}},
		}}, nil
	}}
	var logs syncBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	exec := map[string]effect.Executor{
		abi.EffectHTTP: effecthttp.New(effecthttp.Options{Logger: logger}),
		abi.EffectLog:  effectlog.New(logger),
	}
	src, store := newMemSource("db"), newMemStore()
	src.add(
		ev("payment", "1", event.OpInsert, map[string]any{"amount": json.Number("9.99")}),
		ev("payment", "2", event.OpInsert, map[string]any{"amount": json.Number("15")}),
		ev("payment", "3", event.OpInsert, map[string]any{"amount": json.Number("-1")}),
		ev("payment", "elsewhere", event.OpInsert, map[string]any{"amount": json.Number("1")}),
	)
	var fl finishLog
	e, err := New(Config{
		Observers: []Observer{{Name: "hook", Entity: "payment", Action: ActStep{Plugin: actor},
			Retry:  fastRetry(3, 10*time.Millisecond),
			Effect: effect.Policy{AllowedHosts: []string{"127.0.0.1"}, Secret: secret, Timeout: 5 * time.Second}}},
		Hooks: fl.hooks(),
	}, src, store, exec, logger)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	waitFor(t, 15*time.Second, "4 events finished", func() bool { return fl.count() == 4 })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}

	mu.Lock()
	defer mu.Unlock()
	perEvent := map[string]int{}
	for _, h := range hits {
		perEvent[h.eventID]++
		want := event.IdempotencyKey(h.eventID, "hook", 1)
		if h.key != want {
			t.Errorf("%s: Idempotency-Key %q, want %q (event, observer, effect 1)", h.eventID, h.key, want)
		}
		if err := effecthttp.Verify(secret, h.sig, h.body, time.Minute, time.Now()); err != nil {
			t.Errorf("%s: signature does not verify: %v", h.eventID, err)
		}
		var b map[string]any
		if err := json.Unmarshal(h.body, &b); err != nil || b["id"] != h.eventID {
			t.Errorf("%s: body %s", h.eventID, h.body)
		}
	}
	if want := map[string]int{"db:1": 1, "db:2": 2, "db:3": 1}; fmt.Sprint(perEvent) != fmt.Sprint(want) {
		t.Errorf("receiver hits per event = %v, want %v", perEvent, want)
	}
	out := logs.String()
	for _, id := range []string{"db:1", "db:2", "db:3", "db:4"} {
		if n := strings.Count(out, `"msg":"sending `+id+`"`); n != 1 {
			t.Errorf("log effect for %s written %d times, want 1 (a retry of the http effect must not repeat it)", id, n)
		}
	}
	if strings.Contains(out, secret) {
		t.Errorf("the secret reached the logs:\n%s", out)
	}

	dl := store.deadLetters()
	if len(dl) != 2 {
		t.Fatalf("dead letters = %+v, want 2", dl)
	}
	byEvent := map[string]int{}
	for i, d := range dl {
		byEvent[d.EventID] = i
		if d.Stage != StageEffect || d.Effect != 1 || d.Attempts != 1 || d.Observer != "hook" {
			t.Errorf("dead letter %s = stage %q effect %d attempts %d", d.EventID, d.Stage, d.Effect, d.Attempts)
		}
		if strings.Contains(d.Error, secret) {
			t.Errorf("dead letter error carries the secret: %s", d.Error)
		}
	}
	if i, ok := byEvent["db:3"]; !ok || !strings.Contains(dl[i].Error, "422") {
		t.Errorf("422 not dead-lettered with its status: %+v", dl)
	}
	if i, ok := byEvent["db:4"]; !ok || !strings.Contains(dl[i].Error, "localhost") {
		t.Errorf("disallowed host not dead-lettered naming it: %+v", dl)
	}
	if c := store.cursor("db", DefaultGroup); c.Through != 4 || len(c.Pending) != 0 {
		t.Errorf("checkpoint = %+v", c)
	}
}
