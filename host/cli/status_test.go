package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fraiseql/observer/host/metrics"
	"github.com/fraiseql/observer/host/resilience"
)

// TestStatusDebugEventReload runs the real supervisor over an SQLite
// source and the webhook plugin (built from source), with the admin server
// in-process, and drives `observer status`, `debug-event` and `reload`
// against it: counters, lag, DLQ size and stage latencies; one event from
// the journal and one read back from the source; a refused reload and a
// good one; the token; and the error when nothing listens.
func TestStatusDebugEventReload(t *testing.T) {
	var mu sync.Mutex
	delivered := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if strings.Contains(string(b), `"id": 2,`) {
			w.WriteHeader(http.StatusBadRequest) // permanent: dead-lettered
			return
		}
		mu.Lock()
		delivered++
		mu.Unlock()
	}))
	defer srv.Close()
	cfgPath, dbPath := sqliteSetup(t, srv.URL)
	goodConfig, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	insertOrders(t, dbPath, 1, 5)

	const token = "admin-t0ken-for-tests"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a := &app{stdout: io.Discard, stderr: io.Discard, configPath: cfgPath, format: "text"}
	cfg, err := a.loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Admin.Address, cfg.Admin.Token = "127.0.0.1:0", token
	log := slog.New(slog.DiscardHandler)
	sup := newSupervisor(a, log, buildOptions{}, "")
	in := newInstance(cfg, sup)
	sup.onReload, sup.onStopped = in.metrics.Reloaded, in.stopped
	// As observer run wires them: the breakers appear in the status.
	sup.opts.Breakers = resilience.NewBreakers(resilience.BreakersOptions{OnStateChange: in.metrics.BreakerChanged})
	in.setBreakers(sup.opts.Breakers)
	sup.opts.Hooks = joinHooks(sup.opts.Hooks, in.hooks())
	admin, err := startAdmin(cfg, in, log)
	if err != nil {
		t.Fatal(err)
	}
	defer stopAdmin(admin)
	addr := admin.Addr()

	get := func(path string) (int, string) {
		req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, `"state": "starting"`) {
		t.Errorf("readyz before the engine runs: %d %s", code, body)
	}

	s, err := build(ctx, cfg, log, sup.opts)
	if err != nil {
		t.Fatal(err)
	}
	runDone := make(chan error, 1)
	go func() { runDone <- sup.run(ctx, s) }()

	// Without the token the commands say what is missing.
	code, _, stderr := runCLI(t, ctx, "--config", cfgPath, "status", "--admin", addr)
	if code != exitFailed || !strings.Contains(stderr, "requires a token") || !strings.Contains(stderr, EnvAdminToken) {
		t.Errorf("status without token: exit %d: %s", code, stderr)
	}
	t.Setenv(EnvAdminToken, token)

	status := func() metrics.Status {
		t.Helper()
		code, out, stderr := runCLI(t, ctx, "--config", cfgPath, "--format", "json", "status", "--admin", addr)
		var st metrics.Status
		if code != 0 || json.Unmarshal([]byte(out), &st) != nil {
			t.Fatalf("status --format json: exit %d\n%s%s", code, out, stderr)
		}
		return st
	}
	deadline := time.Now().Add(30 * time.Second)
	var st metrics.Status
	for {
		st = status()
		if len(st.Sources) == 1 && st.Sources[0].Checkpoint == 5 && st.Sources[0].DeadLetters == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("events not finished; status: %+v", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	src := st.Sources[0]
	if src.Name != "shop" || src.Type != "sqlite" || src.Head != 5 || src.LagEvents != 0 || src.EventsRead != 5 || src.HeadError != "" {
		t.Errorf("source status = %+v", src)
	}
	if !st.Ready || st.State != "running" || !st.Leader || st.Config != cfgPath {
		t.Errorf("status ready %v state %q leader %v config %q", st.Ready, st.State, st.Leader, st.Config)
	}
	if len(st.Observers) != 1 || st.Observers[0].Done != 4 || st.Observers[0].DeadLettered != 1 || st.Observers[0].InFlight != 0 {
		t.Errorf("observers = %+v", st.Observers)
	}
	for _, sl := range st.Stages {
		want := uint64(5)
		if sl.Stage == metrics.StageEffect {
			want = 5 // 4 delivered + the one dead-lettered after its attempt
		}
		if sl.Samples != want {
			t.Errorf("stage %s: %d samples, want %d", sl.Stage, sl.Samples, want)
		}
	}
	if code, body := get("/readyz"); code != 200 {
		t.Errorf("readyz while running: %d %s", code, body)
	}
	if _, body := get("/metrics"); !strings.Contains(body, `observer_events_read_total{source="shop"} 5`) ||
		!strings.Contains(body, `observer_plugin_calls_total{plugin="webhook",result="ok",role="act"} 5`) {
		t.Errorf("/metrics lacks the run's counters:\n%s", body)
	}

	code, out, stderr := runCLI(t, ctx, "--config", cfgPath, "status", "--admin", addr)
	for _, w := range []string{"running (ready)", "leader", "SOURCE", "shop", "sqlite", "OBSERVER", "orders", "STAGE", "capture", "route", "plugin", "effect", "◀ slowest", "throughput:",
		"BREAKER ENDPOINT", "http://127.0.0.1:", "closed"} {
		if !strings.Contains(out, w) {
			t.Errorf("status text lacks %q:\n%s%s", w, out, stderr)
		}
	}
	if code != 0 {
		t.Errorf("status: exit %d", code)
	}

	// debug-event: from the journal.
	code, out, stderr = runCLI(t, ctx, "--config", cfgPath, "debug-event", "shop:1", "--admin", addr)
	for _, w := range []string{"event shop:1 · orders INSERT key 1", "from the journal", `after:   {"id":1,"total":1.5}`, "orders: matched", "→ done",
		"act    webhook  attempt 1  1 effects", "effect #0 http  attempt 1  status 200"} {
		if !strings.Contains(out, w) {
			t.Errorf("debug-event shop:1 lacks %q:\n%s%s", w, out, stderr)
		}
	}
	code, out, _ = runCLI(t, ctx, "--config", cfgPath, "debug-event", "shop:2", "--admin", addr)
	if code != 0 || !strings.Contains(out, "status 400") || !strings.Contains(out, "→ dead_lettered") || !strings.Contains(out, "dead letter #") {
		t.Errorf("debug-event shop:2: exit %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, ctx, "--config", cfgPath, "--format", "json", "debug-event", "shop:1", "--admin", addr)
	if code != 0 || !strings.Contains(out, `"idempotency_key"`) || !strings.Contains(out, `"from": "journal"`) {
		t.Errorf("debug-event --format json: exit %d\n%s", code, out)
	}
	// Without the journal: read back from the source, routing re-evaluated,
	// the dead letter from the store.
	journal := in.journal
	in.journal = nil
	code, out, stderr = runCLI(t, ctx, "--config", cfgPath, "debug-event", "shop:2", "--admin", addr)
	in.journal = journal
	for _, w := range []string{"from the source", "note: not in the journal", "re-evaluated now", `after:   {"id":2,"total":2.5}`,
		"orders: matched (no condition) → dead_lettered", "dead letter #", "400"} {
		if code != 0 || !strings.Contains(out, w) {
			t.Errorf("debug-event shop:2 from the source lacks %q (exit %d):\n%s%s", w, code, out, stderr)
		}
	}
	code, _, stderr = runCLI(t, ctx, "--config", cfgPath, "debug-event", "shop:99", "--admin", addr)
	if code != exitFailed || !strings.Contains(stderr, "not in the journal") {
		t.Errorf("debug-event of a missing event: exit %d: %s", code, stderr)
	}
	if code, _, stderr = runCLI(t, ctx, "--config", cfgPath, "debug-event", "99", "--admin", addr); code != exitUsage || !strings.Contains(stderr, "SOURCE:POSITION") {
		t.Errorf("debug-event 99: exit %d: %s", code, stderr)
	}

	// A broken config is refused and the old one keeps running.
	if err := os.WriteFile(cfgPath, append(goodConfig, []byte("\n[failover]\nbogus = 1\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = runCLI(t, ctx, "--config", cfgPath, "reload", "--admin", addr)
	if code != exitFailed || !strings.Contains(stderr, "reload refused") || !strings.Contains(stderr, "failover.bogus: unknown key") {
		t.Errorf("refused reload: exit %d: %s", code, stderr)
	}
	insertOrders(t, dbPath, 6, 6)
	waitDelivered := func(n int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			mu.Lock()
			d := delivered
			mu.Unlock()
			if d >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d deliveries, want %d", d, n)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitDelivered(5)

	// A good one (a second observer) is taken.
	second := strings.Replace(string(goodConfig), "[[observers]]\nname = \"orders\"", "[[observers]]\nname = \"orders-too\"\nentity = \"orders\"\naction = { plugin = \"webhook\", config = { url = \""+srv.URL+"/too\", body = '{}' } }\n\n[[observers]]\nname = \"orders\"", 1)
	if err := os.WriteFile(cfgPath, []byte(second), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, stderr = runCLI(t, ctx, "--config", cfgPath, "reload", "--admin", addr)
	if code != 0 || !strings.Contains(out, "reloaded "+cfgPath) || !strings.Contains(out, "2 observers") {
		t.Errorf("reload: exit %d\n%s%s", code, out, stderr)
	}
	if st := status(); len(st.Observers) != 2 || st.Sources[0].Checkpoint != 6 {
		t.Errorf("after reload: observers %+v, sources %+v", st.Observers, st.Sources)
	}
	if _, body := get("/metrics"); !strings.Contains(body, `observer_config_reloads_total{result="failure"} 1`) ||
		!strings.Contains(body, `observer_config_reloads_total{result="success"} 1`) ||
		!strings.Contains(body, `observer_events_read_total{source="shop"} 6`) {
		t.Errorf("/metrics after reloads:\n%s", grepLines(body, "observer_config_reloads_total", "observer_events_read_total"))
	}

	cancel()
	if err := <-runDone; err != nil {
		t.Fatalf("supervisor: %v", err)
	}
	stopAdmin(admin)
	code, _, stderr = runCLI(t, context.Background(), "--config", cfgPath, "status", "--admin", addr)
	if code != exitFailed || !strings.Contains(stderr, "no observer is running at "+addr) || !strings.Contains(stderr, "is [admin] enabled?") {
		t.Errorf("status with nothing listening: exit %d: %s", code, stderr)
	}
}

func grepLines(s string, prefixes ...string) string {
	var b bytes.Buffer
	for _, l := range strings.Split(s, "\n") {
		for _, p := range prefixes {
			if strings.HasPrefix(l, p) {
				b.WriteString(l + "\n")
			}
		}
	}
	return b.String()
}

// TestStatusNeedsAnAddress: with the admin server disabled and no
// --admin, status says what to do.
func TestStatusNeedsAnAddress(t *testing.T) {
	dir := t.TempDir()
	cfg := dir + "/observer.toml"
	if err := os.WriteFile(cfg, []byte("[source]\ntype = \"sqlite\"\ndsn = \"x.db\"\n[admin]\nenabled = false\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCLI(t, context.Background(), "--config", cfg, "status")
	if code != exitUsage || !strings.Contains(stderr, "admin server is disabled") || !strings.Contains(stderr, "--admin") {
		t.Errorf("exit %d: %s", code, stderr)
	}
	code, _, stderr = runCLI(t, context.Background(), "--config", cfg, "reload", "--admin", "http://[bad")
	if code != exitUsage || !strings.Contains(stderr, "--admin") {
		t.Errorf("bad --admin: exit %d: %s", code, stderr)
	}
}
