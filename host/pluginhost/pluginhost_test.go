package pluginhost_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fraiseql/observer/abi"
	"github.com/fraiseql/observer/host/pluginhost"
	"github.com/fraiseql/observer/host/pluginhost/internal/instrument"
	"github.com/fraiseql/observer/internal/testenv"
)

// syncBuffer collects log output from concurrent calls.
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

func newHost(t testing.TB) (*pluginhost.Host, *syncBuffer) {
	return newHostMode(t, "")
}

// modes are the interrupt modes the termination tests run under.
var modes = []pluginhost.InterruptMode{pluginhost.InterruptInstrument, pluginhost.InterruptContext}

func newHostMode(t testing.TB, mode pluginhost.InterruptMode) (*pluginhost.Host, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	h, err := pluginhost.New(context.Background(), pluginhost.Config{
		Logger:    slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Interrupt: mode,
		// Compiled guests are shared through the disk cache, so that each
		// guest is compiled once per run, not once per test (a Go guest
		// takes about a second).
		CacheDir: filepath.Join(testenv.RepoRoot(t), ".cache", "observer", "wasm-test"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close(context.Background()) })
	return h, logs
}

func load(t testing.TB, h *pluginhost.Host, spec pluginhost.Spec) *pluginhost.Plugin {
	t.Helper()
	p, err := h.Load(context.Background(), spec)
	if err != nil {
		t.Fatalf("load %s: %v", spec.Path, err)
	}
	return p
}

// paymentEvent is an UPDATE of a Pagila payment row.
func paymentEvent(amount string) *abi.Event {
	return &abi.Event{
		ID: "pg:1042", Position: 1042, Source: "pg", Entity: "public.payment", Op: abi.OpUpdate, Key: "17503",
		Before: map[string]any{"payment_id": json.Number("17503"), "customer_id": json.Number("341"), "staff_id": json.Number("2"),
			"rental_id": json.Number("1520"), "amount": json.Number("7.99"), "payment_date": "2022-01-27T15:06:46.28+00:00"},
		After: map[string]any{"payment_id": json.Number("17503"), "customer_id": json.Number("341"), "staff_id": json.Number("2"),
			"rental_id": json.Number("1520"), "amount": json.Number(amount), "payment_date": "2022-01-27T15:06:46.28+00:00"},
		ChangedFields: []string{"amount"},
		CommitTime:    "2026-12-03T10:00:00.000000001Z",
		TxID:          "7781",
	}
}

func input(ev *abi.Event, config string) *abi.Input {
	in := &abi.Input{
		ABI:     abi.VersionString,
		Context: abi.CallContext{Observer: "big-payments", Plugin: "p", Role: "filter", Attempt: 1, Now: "2026-12-03T10:00:01Z"},
		Event:   ev,
	}
	if config != "" {
		in.Config = json.RawMessage(config)
	}
	return in
}

func callError(t *testing.T, err error) *pluginhost.CallError {
	t.Helper()
	var ce *pluginhost.CallError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T) is not a *CallError", err, err)
	}
	return ce
}

func TestFieldFilter(t *testing.T) {
	h, _ := newHost(t)
	p := load(t, h, pluginhost.Spec{Name: "big", Path: testenv.GoPlugin(t, "plugins/field-filter")})
	if m := p.Manifest(); m.Name != "field-filter" || !m.HasRole(abi.RoleFilter) || m.ABI != abi.VersionString {
		t.Fatalf("manifest = %+v", m)
	}
	cfg := `{"field": "after.amount", "op": ">=", "value": 9.99}`
	ctx := context.Background()
	for _, tc := range []struct {
		amount string
		pass   bool
	}{{"11.99", true}, {"9.99", true}, {"9.98", false}, {"123456789012345678901234567890.5", true}} {
		res, err := p.Filter(ctx, input(paymentEvent(tc.amount), cfg))
		if err != nil {
			t.Fatalf("amount %s: %v", tc.amount, err)
		}
		if res.Pass != tc.pass || res.Reason == "" {
			t.Errorf("amount %s: got %+v, want pass=%v with a reason", tc.amount, res, tc.pass)
		}
	}
	_, err := p.Filter(ctx, input(paymentEvent("1"), `{"field": "after.amount", "op": "~", "value": 1}`))
	ce := callError(t, err)
	if ce.Kind != pluginhost.KindGuest || !ce.Permanent() || !strings.Contains(err.Error(), "config.op") || !strings.Contains(err.Error(), `"big"`) {
		t.Fatalf("bad config: %v (kind %v, permanent %v)", err, ce.Kind, ce.Permanent())
	}
}

func TestWebhook(t *testing.T) {
	h, _ := newHost(t)
	p := load(t, h, pluginhost.Spec{Name: "hook", Path: testenv.GoPlugin(t, "plugins/webhook")})
	ctx := context.Background()
	res, err := p.Act(ctx, input(paymentEvent("11.99"), `{"url": "http://127.0.0.1:9/hook", "headers": {"X-Env": "test"},
		"body": "{\"id\": {{ event.id }}, \"amount\": {{ after.amount }}, \"raw\": \"{{ raw entity }}/{{ op }}\", \"gone\": {{ before.nope }}}"}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Effects) != 1 || res.Effects[0].HTTP == nil {
		t.Fatalf("effects = %+v", res.Effects)
	}
	e := res.Effects[0].HTTP
	want := `{"id": "pg:1042", "amount": 11.99, "raw": "public.payment/"UPDATE"", "gone": null}`
	if e.Method != "POST" || e.URL != "http://127.0.0.1:9/hook" || e.Body != want || e.Headers["X-Env"] != "test" || e.Headers["Content-Type"] != "application/json" {
		t.Fatalf("http effect = %+v\nbody %s\nwant %s", e, e.Body, want)
	}
	// No template: the body is the event.
	res, err = p.Act(ctx, input(paymentEvent("11.99"), `{"url": "https://example.com/x", "method": "put"}`))
	if err != nil {
		t.Fatal(err)
	}
	e = res.Effects[0].HTTP
	var ev abi.Event
	if err := json.Unmarshal(e.BodyJSON, &ev); err != nil || ev.ID != "pg:1042" || e.Method != "PUT" {
		t.Fatalf("body_json = %s (%v), method %s", e.BodyJSON, err, e.Method)
	}
	_, err = p.Act(ctx, input(paymentEvent("1"), `{"url": "ftp://x"}`))
	if ce := callError(t, err); ce.Kind != pluginhost.KindGuest || !strings.Contains(err.Error(), "config.url") {
		t.Fatalf("bad url: %v", err)
	}
}

func TestCancelStopsCall(t *testing.T) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			h, _ := newHostMode(t, mode)
			p := load(t, h, pluginhost.Spec{Name: "hostile-2", Path: testenv.GoPlugin(t, "host/pluginhost/testdata/guests/hostile"),
				Limits: pluginhost.Limits{Timeout: 30 * time.Second}})
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err := p.Filter(ctx, input(paymentEvent("1"), `{"mode": "loop"}`))
			if ce := callError(t, err); ce.Kind != pluginhost.KindCanceled || time.Since(start) > 5*time.Second || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("got %v after %s, want canceled (context deadline exceeded) after ~200ms", err, time.Since(start))
			}
			t.Logf("%s: canceled after %s", mode, time.Since(start))
			if res, err := p.Filter(context.Background(), input(paymentEvent("1"), `{"mode": "ok"}`)); err != nil || !res.Pass {
				t.Fatalf("after cancel: %+v %v", res, err)
			}
		})
	}
}

// TestLoopingGuestDoesNotBlockGC: compiled guest code cannot be preempted,
// and a stop-the-world collection waits for every goroutine, so a guest
// spinning without safe points would freeze the whole process at the next
// collection, including the timer meant to stop it. While a guest loops
// (its timeout far away), runtime.GC must still return promptly, and the
// loop must still stop at its timeout.
func TestLoopingGuestDoesNotBlockGC(t *testing.T) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			h, _ := newHostMode(t, mode)
			const timeout = 2 * time.Second
			p := load(t, h, pluginhost.Spec{Name: "spin", Path: testenv.GoPlugin(t, "host/pluginhost/testdata/guests/hostile"),
				Limits: pluginhost.Limits{Timeout: timeout}})
			done := make(chan error, 1)
			start := time.Now()
			go func() {
				_, err := p.Filter(context.Background(), input(paymentEvent("1"), `{"mode": "loop"}`))
				done <- err
			}()
			time.Sleep(300 * time.Millisecond) // let the guest reach its loop
			for i := 0; i < 3; i++ {
				gcStart := time.Now()
				runtime.GC()
				if took := time.Since(gcStart); took > time.Second {
					t.Fatalf("runtime.GC took %s while a guest looped: it waited for the guest", took)
				}
			}
			select {
			case err := <-done:
				t.Fatalf("the looping call returned before its timeout, after %s: %v", time.Since(start), err)
			default:
			}
			err := <-done
			if ce := callError(t, err); ce.Kind != pluginhost.KindTimeout {
				t.Fatalf("got %v, want a timeout", err)
			}
			if took := time.Since(start); took < timeout || took > timeout+2*time.Second {
				t.Fatalf("the loop stopped after %s, want about %s", took, timeout)
			}
		})
	}
}

// TestCloseStopsLoopingCall: closing a plugin stops a call in flight,
// long before its timeout.
func TestCloseStopsLoopingCall(t *testing.T) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			h, _ := newHostMode(t, mode)
			p := load(t, h, pluginhost.Spec{Name: "spin", Path: testenv.GoPlugin(t, "host/pluginhost/testdata/guests/hostile"),
				Limits: pluginhost.Limits{Timeout: 30 * time.Second}})
			done := make(chan error, 1)
			go func() {
				_, err := p.Filter(context.Background(), input(paymentEvent("1"), `{"mode": "loop"}`))
				done <- err
			}()
			time.Sleep(300 * time.Millisecond)
			start := time.Now()
			if err := p.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				if !errors.Is(err, pluginhost.ErrClosed) {
					t.Fatalf("got %v, want ErrClosed", err)
				}
				t.Logf("%s: stopped %s after Close", mode, time.Since(start))
			case <-time.After(5 * time.Second):
				t.Fatal("the looping call still runs 5s after Close")
			}
		})
	}
}

// TestInterruptMode: modules are instrumented by default; the context
// mode is selectable; a module the rewriter refuses (here one already
// exporting the reserved name) still loads, under wazero's checks.
func TestInterruptMode(t *testing.T) {
	ctx := context.Background()
	path := testenv.GoPlugin(t, "plugins/field-filter")
	h, logs := newHost(t)
	if p := load(t, h, pluginhost.Spec{Path: path}); p.Interrupt() != pluginhost.InterruptInstrument {
		t.Fatalf("default mode %q, want instrument", p.Interrupt())
	}
	if !strings.Contains(logs.String(), "instrumented with interrupt checks") {
		t.Fatalf("no debug line for the instrumented module:\n%s", logs)
	}
	hc, _ := newHostMode(t, pluginhost.InterruptContext)
	if p := load(t, hc, pluginhost.Spec{Path: path}); p.Interrupt() != pluginhost.InterruptContext {
		t.Fatalf("context host: mode %q", p.Interrupt())
	}
	if _, err := pluginhost.New(ctx, pluginhost.Config{Interrupt: "fuel"}); err == nil || !strings.Contains(err.Error(), `"fuel"`) {
		t.Fatalf("unknown mode: %v", err)
	}

	// A module the rewriter refuses: one that already exports the
	// reserved name (here: an instrumented module, instrumented again).
	raw, err := os.ReadFile(testenv.GoPlugin(t, "host/pluginhost/testdata/guests/rawextism"))
	if err != nil {
		t.Fatal(err)
	}
	once, _, err := instrument.Rewrite(raw)
	if err != nil {
		t.Fatal(err)
	}
	p := load(t, h, pluginhost.Spec{Path: "twice.wasm", Wasm: once})
	if p.Interrupt() != pluginhost.InterruptContext {
		t.Fatalf("a module the rewriter refuses runs in mode %q, want the context fallback", p.Interrupt())
	}
	if !strings.Contains(logs.String(), "not instrumented") || !strings.Contains(logs.String(), instrument.ExportName) {
		t.Fatalf("no debug line saying why the module was not instrumented:\n%s", logs)
	}
	if out, err := p.Call(ctx, "echo", []byte("still works")); err != nil || string(out) != "STILL WORKS" {
		t.Fatalf("echo on the fallback module: %q %v", out, err)
	}
}

// TestExtismStyleGuest loads a guest written against the plain Extism
// imports (no SDK) and runs its exports input → output.
func TestExtismStyleGuest(t *testing.T) {
	h, logs := newHost(t)
	path := testenv.GoPlugin(t, "host/pluginhost/testdata/guests/rawextism")
	p := load(t, h, pluginhost.Spec{Path: path})
	if p.Name() != "rawextism" {
		t.Fatalf("name = %q, want the manifest's name", p.Name())
	}
	ctx := context.Background()
	out, err := p.Call(ctx, "echo", []byte("hello, wasm 0123456789"))
	if err != nil || string(out) != "HELLO, WASM 0123456789" {
		t.Fatalf("echo = %q, %v", out, err)
	}
	out, err = p.Call(ctx, "vowels", []byte("Hello, World! observer"))
	if err != nil || string(out) != `{"count": 6}` {
		t.Fatalf("vowels = %q, %v", out, err)
	}
	res, err := p.Filter(ctx, input(paymentEvent("1"), ""))
	if err != nil || !res.Pass || !strings.Contains(res.Reason, "bytes") {
		t.Fatalf("filter = %+v, %v", res, err)
	}
	if !strings.Contains(logs.String(), "rawextism filter called") {
		t.Fatalf("log_info line missing from host logs:\n%s", logs)
	}
	_, err = p.Call(ctx, "nope", nil)
	if ce := callError(t, err); ce.Kind != pluginhost.KindMissingExport || !ce.Permanent() {
		t.Fatalf("missing export: %v", err)
	}

	for _, tc := range []struct {
		name, key, value string
		kind             pluginhost.ErrorKind
		mention          string
	}{
		{"invalid JSON", "filter_output", `{"pass": tru`, pluginhost.KindBadOutput, "not a JSON result"},
		{"wrong ABI", "filter_output", `{"abi": "2.0", "pass": true}`, pluginhost.KindBadOutput, "ABI 2.0"},
		{"no pass", "filter_output", `{"abi": "1.0"}`, pluginhost.KindBadOutput, `neither "pass" nor "error"`},
		{"error_set", "filter_error", "database said no", pluginhost.KindGuest, "database said no"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := load(t, h, pluginhost.Spec{Name: "raw-" + tc.key, Path: path, Config: map[string]string{tc.key: tc.value}})
			defer q.Close(ctx)
			_, err := q.Filter(ctx, input(paymentEvent("1"), ""))
			ce := callError(t, err)
			if ce.Kind != tc.kind || !ce.Permanent() || !strings.Contains(err.Error(), tc.mention) || !strings.Contains(err.Error(), `"raw-`+tc.key+`"`) {
				t.Fatalf("got %v (kind %v), want kind %v mentioning %q", err, ce.Kind, tc.kind, tc.mention)
			}
			if out, err := q.Call(ctx, "echo", []byte("ok")); err != nil || string(out) != "OK" {
				t.Fatalf("next call: %q %v", out, err)
			}
		})
	}
}

func TestLoadRefusals(t *testing.T) {
	h, logs := newHost(t)
	raw := testenv.GoPlugin(t, "host/pluginhost/testdata/guests/rawextism")
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.wasm")
	if err := os.WriteFile(garbage, []byte("this is not wasm"), 0o644); err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(dir, "truncated.wasm")
	if err := os.WriteFile(truncated, []byte("\x00asm\x01\x00\x00\x00\x01\x05\x01"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A valid module exporting only "run": () -> i32.
	noDescribe := filepath.Join(dir, "nodescribe.wasm")
	if err := os.WriteFile(noDescribe, []byte("\x00asm\x01\x00\x00\x00"+
		"\x01\x05\x01\x60\x00\x01\x7f"+
		"\x03\x02\x01\x00"+
		"\x07\x07\x01\x03run\x00\x00"+
		"\x0a\x06\x01\x04\x00\x41\x00\x0b"), 0o644); err != nil {
		t.Fatal(err)
	}
	manifest := func(s string) map[string]string { return map[string]string{"manifest": s} }
	for _, tc := range []struct {
		name    string
		spec    pluginhost.Spec
		mention string
	}{
		{"missing file", pluginhost.Spec{Path: filepath.Join(dir, "absent.wasm")}, "no such file"},
		{"not wasm", pluginhost.Spec{Path: garbage}, "not a WebAssembly module"},
		{"truncated", pluginhost.Spec{Path: truncated}, "not a valid WebAssembly module"},
		{"no describe", pluginhost.Spec{Path: noDescribe}, `no "describe" export`},
		{"other major", pluginhost.Spec{Path: raw, Config: manifest(`{"abi":"2.0","name":"x","roles":["filter"]}`)}, "speaks ABI 2.0"},
		{"bad version", pluginhost.Spec{Path: raw, Config: manifest(`{"abi":"one","name":"x","roles":["filter"]}`)}, `abi version "one"`},
		{"role without export", pluginhost.Spec{Path: raw, Config: manifest(`{"abi":"1.0","name":"x","roles":["filter","act"]}`)}, `declares role "act" but: the module has no export "act"`},
		{"unknown role", pluginhost.Spec{Path: raw, Config: manifest(`{"abi":"1.0","name":"x","roles":["enrich"]}`)}, `unknown role "enrich"`},
		{"no roles", pluginhost.Spec{Path: raw, Config: manifest(`{"abi":"1.0","name":"x","roles":[]}`)}, "no roles"},
		{"describe not JSON", pluginhost.Spec{Path: raw, Config: manifest(`hello`)}, "not a manifest"},
		{"memory min above cap", pluginhost.Spec{Path: raw, Limits: pluginhost.Limits{MemoryBytes: 1 << 20}}, "1048576"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.Load(context.Background(), tc.spec)
			var le *pluginhost.LoadError
			if !errors.As(err, &le) || !strings.Contains(err.Error(), tc.spec.Path) || !strings.Contains(err.Error(), tc.mention) {
				t.Fatalf("got %v, want a LoadError naming %s and %q", err, tc.spec.Path, tc.mention)
			}
		})
	}
	// A newer minor loads, with a warning; roles it adds are ignored.
	p, err := h.Load(context.Background(), pluginhost.Spec{Path: raw, Config: manifest(`{"abi":"1.7","name":"future","roles":["filter","enrich"]}`)})
	if err != nil {
		t.Fatal(err)
	}
	if r := p.Manifest().Roles; len(r) != 1 || r[0] != "filter" {
		t.Fatalf("roles = %v, want [filter]", r)
	}
	if !strings.Contains(logs.String(), "newer ABI minor") || !strings.Contains(logs.String(), "plugin_abi=1.7") {
		t.Fatalf("no warning logged for a newer minor:\n%s", logs)
	}
}

func TestConcurrentCalls(t *testing.T) {
	h, _ := newHost(t)
	p := load(t, h, pluginhost.Spec{Path: testenv.GoPlugin(t, "plugins/field-filter"), Limits: pluginhost.Limits{MaxInstances: 3}})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 6; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				amount, want := "12.5", true
				if (i+g)%2 == 0 {
					amount, want = "0.99", false
				}
				res, err := p.Filter(context.Background(), input(paymentEvent(amount), `{"field":"after.amount","op":">","value":"5"}`))
				if err != nil || res.Pass != want {
					errs <- errors.Join(err, errors.New("wrong result "+res.Reason))
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestCompilationCacheOnDisk(t *testing.T) {
	dir := t.TempDir()
	path := testenv.GoPlugin(t, "plugins/field-filter")
	for i := 0; i < 2; i++ {
		h, err := pluginhost.New(context.Background(), pluginhost.Config{CacheDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if _, err := h.Load(context.Background(), pluginhost.Spec{Path: path}); err != nil {
			t.Fatal(err)
		}
		t.Logf("load %d took %s", i, time.Since(start))
		_ = h.Close(context.Background())
	}
	var files int
	_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, _ error) error {
		if d != nil && !d.IsDir() {
			files++
		}
		return nil
	})
	if files == 0 {
		t.Fatal("no compiled module was written to the cache directory")
	}
}

func TestClosedPlugin(t *testing.T) {
	h, _ := newHost(t)
	p := load(t, h, pluginhost.Spec{Path: testenv.GoPlugin(t, "plugins/field-filter")})
	_ = p.Close(context.Background())
	_, err := p.Filter(context.Background(), input(paymentEvent("1"), `{"field":"op","op":"exists"}`))
	if !errors.Is(err, pluginhost.ErrClosed) {
		t.Fatalf("call after close: %v", err)
	}
}
