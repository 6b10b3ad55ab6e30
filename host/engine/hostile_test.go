package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	nethttp "net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fraiseql/observer/abi"
	"github.com/fraiseql/observer/host/effect"
	effecthttp "github.com/fraiseql/observer/host/effect/http"
	"github.com/fraiseql/observer/host/pluginhost"
	"github.com/fraiseql/observer/host/source"
	"github.com/fraiseql/observer/host/source/sqlite"
	"github.com/fraiseql/observer/internal/testenv"
)

// hostileObserver is one observer whose plugin misbehaves on every event.
type hostileObserver struct {
	guest string // "go" (mode in the step's config) or "wat" (mode in the plugin's config)
	mode  string
	stage string // StageFilter or StageAct: where the plugin sits
	// mention is what the dead letter's error must say besides the
	// plugin's name: the limit, or the cause.
	mention string
	// attempts is how many calls the event gets: the observer's three
	// for what may pass on retry, one for what cannot (bad output,
	// denied).
	attempts int
	// timeout replaces the plugins' Limits.Timeout if set: short for the
	// cases about it; the others get a generous one, so that a slow
	// machine never turns another failure into a timeout.
	timeout time.Duration
}

func (h hostileObserver) name() string { return "hostile-" + h.guest + "-" + h.mode }

// TestHostilePluginsInEngine runs an engine over a real SQLite source with
// one observer per hostile plugin and two healthy ones (a webhook, and a
// filter that leaks linear memory on every call in front of a webhook).
// Every event of a hostile observer must be retried as its failure allows
// and then dead-lettered, in the source's own dead-letter table, with an
// error naming the plugin and the limit; the healthy observers must get
// every event; the engine must keep running and keep serving new writes;
// and no plugin may end with more instances than its limit.
func TestHostilePluginsInEngine(t *testing.T) {
	ctx := context.Background()
	limits := pluginhost.Limits{MemoryBytes: 24 << 20, Timeout: 10 * time.Second, MaxOutputBytes: 1 << 20, MaxInstances: 2}
	const short = 150 * time.Millisecond
	const retries = 3
	cases := []hostileObserver{
		{guest: "go", mode: "loop", stage: StageFilter, mention: "150ms (Limits.Timeout)", attempts: retries, timeout: short},
		{guest: "wat", mode: "loop", stage: StageFilter, mention: "150ms (Limits.Timeout)", attempts: retries, timeout: short},
		{guest: "go", mode: "sleep", stage: StageFilter, mention: "150ms (Limits.Timeout)", attempts: retries, timeout: short},
		{guest: "wat", mode: "poll", stage: StageFilter, mention: "150ms (Limits.Timeout)", attempts: retries, timeout: short},
		{guest: "go", mode: "memhog", stage: StageFilter, mention: "limit of 25165824 bytes (Limits.MemoryBytes)", attempts: retries},
		{guest: "wat", mode: "grow", stage: StageFilter, mention: "limit of 25165824 bytes (Limits.MemoryBytes)", attempts: retries},
		{guest: "wat", mode: "kfill", stage: StageFilter, mention: "kernel memory", attempts: retries},
		{guest: "go", mode: "panic", stage: StageAct, mention: "hostile guest panics on purpose", attempts: retries},
		{guest: "wat", mode: "trap", stage: StageFilter, mention: "unreachable", attempts: retries},
		{guest: "wat", mode: "recurse", stage: StageFilter, mention: "call stack overflow", attempts: retries},
		{guest: "wat", mode: "hugeout", stage: StageFilter, mention: "1048576 bytes (Limits.MaxOutputBytes)", attempts: retries},
		{guest: "wat", mode: "badjson", stage: StageFilter, mention: "not a JSON result object", attempts: 1},
		{guest: "go", mode: "badeffect", stage: StageAct, mention: `unknown effect type "kafka"`, attempts: 1},
		{guest: "go", mode: "http", stage: StageFilter, mention: "http_request is not available", attempts: 1},
		{guest: "wat", mode: "http", stage: StageFilter, mention: "http_request is not available", attempts: 1},
	}

	host, err := pluginhost.New(ctx, pluginhost.Config{CacheDir: filepath.Join(testenv.RepoRoot(t), ".cache", "observer", "wasm-test")})
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close(ctx)
	goWasm := testenv.GoPlugin(t, "host/pluginhost/testdata/guests/hostile")
	watWasm := testenv.WatPlugin(t, "host/pluginhost/testdata/guests/wat/hostile.wat")
	webhook, err := host.Load(ctx, pluginhost.Spec{Name: "webhook", Path: testenv.GoPlugin(t, "plugins/webhook")})
	if err != nil {
		t.Fatal(err)
	}

	// The receiver: event ids per path.
	var mu sync.Mutex
	got := map[string]map[string]int{}
	srv := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		mu.Lock()
		if got[r.URL.Path] == nil {
			got[r.URL.Path] = map[string]int{}
		}
		got[r.URL.Path][r.Header.Get(effecthttp.HeaderEventID)]++
		mu.Unlock()
		w.WriteHeader(nethttp.StatusOK)
	}))
	defer srv.Close()
	received := func(path string) int {
		mu.Lock()
		defer mu.Unlock()
		return len(got[path])
	}
	hook := func(path string) ActStep {
		return ActStep{Plugin: webhook, Config: json.RawMessage(`{"url": "` + srv.URL + path + `"}`)}
	}

	base := Observer{Entity: "payment", Retry: fastRetry(retries, 20*time.Millisecond), Effect: effect.Policy{AllowedHosts: []string{"127.0.0.1"}}}
	healthy := base
	healthy.Name, healthy.Action = "healthy", hook("/healthy")
	leakPlugin, err := host.Load(ctx, pluginhost.Spec{Name: "leaky", Path: watWasm, Limits: pluginhost.Limits{MemoryBytes: 4 << 20, MaxInstances: 1},
		Config: map[string]string{"mode": "mleak"}})
	if err != nil {
		t.Fatal(err)
	}
	leaky := base
	leaky.Name, leaky.Filters, leaky.Action = "leaky", []Step{{Plugin: leakPlugin}}, hook("/leaky")
	observers := []Observer{healthy, leaky}
	plugins := map[string]*pluginhost.Plugin{}
	for _, c := range cases {
		lim := limits
		if c.timeout != 0 {
			lim.Timeout = c.timeout
		}
		spec := pluginhost.Spec{Name: c.name(), Path: goWasm, Limits: lim}
		var cfg json.RawMessage
		if c.guest == "wat" {
			spec.Path, spec.Config = watWasm, map[string]string{"mode": c.mode}
		} else {
			cfg = json.RawMessage(`{"mode": "` + c.mode + `"}`)
		}
		p, err := host.Load(ctx, spec)
		if err != nil {
			t.Fatalf("load %s: %v", c.name(), err)
		}
		plugins[c.name()] = p
		o := base
		o.Name = c.name()
		if c.stage == StageFilter {
			o.Filters, o.Action = []Step{{Plugin: p, Config: cfg}}, hook("/never")
		} else {
			o.Action = ActStep{Plugin: p, Config: cfg}
		}
		observers = append(observers, o)
	}

	// A real SQLite source: a captured table, the change log, and the
	// observer's state (dead letters included) in the same file.
	path := filepath.Join(t.TempDir(), "shop.db")
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE TABLE payment (payment_id INTEGER PRIMARY KEY, amount TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	if err := sqlite.Install(ctx, db, sqlite.InstallOptions{Tables: []sqlite.TableSpec{{Name: "payment"}}}); err != nil {
		t.Fatal(err)
	}
	insert := func(from, to int) {
		t.Helper()
		for i := from; i <= to; i++ {
			if _, err := db.ExecContext(ctx, `INSERT INTO payment (payment_id, amount) VALUES (?, ?)`, i, fmt.Sprintf("%d.99", i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	const first = 3
	insert(1, first)
	store, err := sqlite.OpenStore(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	reader := sqlite.New(sqlite.Config{Name: "shop", Path: path, PollInterval: 20 * time.Millisecond}, slog.New(slog.DiscardHandler))

	e, err := New(Config{Concurrency: 8, Observers: observers}, reader, store,
		map[string]effect.Executor{abi.EffectHTTP: effecthttp.New(effecthttp.Options{})}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- e.Run(rctx) }()

	dead := func(observer string) []source.DeadLetter {
		t.Helper()
		dl, err := store.ListDead(ctx, source.DeadFilter{Source: "shop", Observer: observer})
		if err != nil {
			t.Fatal(err)
		}
		return dl
	}
	allDead := func(n int) func() bool {
		return func() bool {
			for _, c := range cases {
				if len(dead(c.name())) < n {
					return false
				}
			}
			return received("/healthy") == n && received("/leaky") == n
		}
	}
	waitFor(t, 90*time.Second, "every hostile event dead-lettered and every healthy one delivered", allDead(first))
	t.Logf("%d events × %d hostile observers dead-lettered, healthy ones delivered, in %s", first, len(cases), time.Since(start).Round(time.Millisecond))

	for _, c := range cases {
		dl := dead(c.name())
		if len(dl) != first {
			t.Errorf("%s: %d dead letters, want one per event (%d)", c.name(), len(dl), first)
		}
		for _, d := range dl {
			if d.Stage != c.stage || d.Attempts != c.attempts || d.Effect != -1 ||
				!strings.Contains(d.Error, fmt.Sprintf("plugin %q", c.name())) || !strings.Contains(d.Error, c.mention) {
				t.Errorf("%s: dead letter %s: stage %q, %d attempts, effect %d, error %q; want stage %q, %d attempts, an error naming the plugin and %q",
					c.name(), d.EventID, d.Stage, d.Attempts, d.Effect, d.Error, c.stage, c.attempts, c.mention)
			}
		}
		if st := plugins[c.name()].Stats(); st.Live > limits.MaxInstances || st.Created-st.Discarded != uint64(st.Live) {
			t.Errorf("%s: pool %+v: more live instances than the limit, or discarded ones not closed", c.name(), st)
		}
	}
	if n := received("/never"); n != 0 {
		t.Errorf("%d events got past a hostile filter", n)
	}
	if dl := dead("healthy"); len(dl) != 0 {
		t.Errorf("healthy observer dead-lettered %+v", dl)
	}
	if dl := dead("leaky"); len(dl) != 0 {
		t.Errorf("leaky observer dead-lettered %+v: a retry on a fresh instance should have passed", dl)
	}

	// Still running: new writes flow to the healthy observers, and the
	// hostile ones dead-letter them too.
	select {
	case err := <-done:
		t.Fatalf("the engine stopped: %v", err)
	default:
	}
	insert(first+1, first+2)
	waitFor(t, 60*time.Second, "the writes after the storm", allDead(first+2))
	st := leakPlugin.Stats()
	t.Logf("leaky plugin after %d events: %+v", first+2, st)
	mu.Lock()
	for _, path := range []string{"/healthy", "/leaky"} {
		for id, n := range got[path] {
			if n != 1 {
				t.Errorf("%s got event %s %d times", path, id, n)
			}
		}
	}
	mu.Unlock()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the engine did not stop within 30s")
	}
}
