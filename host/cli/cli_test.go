package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fraiseql/observer/host/source/sqlite"
	"github.com/fraiseql/observer/internal/testenv"
)

// runCLI runs the observer command line in-process.
func runCLI(t *testing.T, ctx context.Context, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(ctx, args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestBadConfigIsAUsageErrorNamingFileAndKey(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, toml string
		want       []string
	}{
		{"unknown key", "[source]\ntype = \"sqlite\"\ndsn = \"x.db\"\nbogus = 1\n", []string{"observer.toml", "source.bogus"}},
		{"bad condition", `
[source]
type = "sqlite"
dsn = "x.db"
[plugins.p]
path = "p.wasm"
[[observers]]
name = "o"
entity = "t"
condition = "after.amount >> 3"
action = { plugin = "p" }
`, []string{"observers[0].condition", "column"}},
		{"missing plugin file", `
[source]
type = "sqlite"
dsn = "x.db"
[plugins.p]
path = "nope.wasm"
[[observers]]
name = "o"
entity = "t"
action = { plugin = "p" }
`, []string{"plugins.p.path", "nope.wasm"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := filepath.Join(dir, "observer.toml")
			if err := os.WriteFile(cfg, []byte(c.toml), 0o644); err != nil {
				t.Fatal(err)
			}
			_ = os.WriteFile(filepath.Join(dir, "p.wasm"), []byte("not wasm"), 0o644)
			code, _, stderr := runCLI(t, context.Background(), "--config", cfg, "run")
			if code != exitUsage {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, exitUsage, stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr does not name %q:\n%s", w, stderr)
				}
			}
		})
	}
}

// sqliteSetup makes an SQLite database with one captured table, and a
// config whose observer posts every insert to url through the webhook plugin.
func sqliteSetup(t *testing.T, url string) (cfgPath, dbPath string) {
	t.Helper()
	dir := t.TempDir()
	dbPath = filepath.Join(dir, "shop.db")
	webhook := testenv.GoPlugin(t, "plugins/webhook")
	cfgPath = filepath.Join(dir, "observer.toml")
	host := strings.TrimPrefix(url, "http://")
	cfg := fmt.Sprintf(`
[observer]
checkpoint_interval = "50ms"
[admin]
address = "127.0.0.1:0" # tests run side by side
[source]
type = "sqlite"
name = "shop"
dsn = "shop.db"
poll_interval = "20ms"
[plugins.webhook]
path = %q
allow_hosts = [%q]
[[observers]]
name = "orders"
entity = "orders"
operations = ["INSERT"]
action = { plugin = "webhook", config = { url = "%s/orders", body = '{"id": {{ after.id }}, "total": {{ after.total }}}' } }
retry = { strategy = "fixed", max_attempts = 2, initial_delay = "10ms", max_delay = "10ms" }
`, webhook, host, url)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	db, err := sqlite.Open(context.Background(), dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE orders (id INTEGER PRIMARY KEY, total NUMERIC NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := runCLI(t, context.Background(), "--config", cfgPath, "capture", "install", "--table", "orders")
	if code != 0 {
		t.Fatalf("capture install: exit %d\n%s%s", code, out, stderr)
	}
	return cfgPath, dbPath
}

func insertOrders(t *testing.T, dbPath string, from, to int) {
	t.Helper()
	db, err := sqlite.Open(context.Background(), dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for i := from; i <= to; i++ {
		if _, err := db.Exec(`INSERT INTO orders (id, total) VALUES (?, ?)`, i, fmt.Sprintf("%d.50", i)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRunDeadLetterRetryPurge drives the real commands on SQLite: run
// against a receiver that rejects everything (HTTP 400, permanent) so each
// event is dead-lettered once; dlq list/show report them; after the
// receiver is fixed, dlq retry delivers and removes them; purge empties the
// rest.
func TestRunDeadLetterRetryPurge(t *testing.T) {
	var status atomic.Int32
	status.Store(http.StatusBadRequest)
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b bytes.Buffer
		_, _ = b.ReadFrom(r.Body)
		code := int(status.Load())
		if code < 300 {
			mu.Lock()
			got = append(got, b.String())
			mu.Unlock()
		}
		w.WriteHeader(code)
	}))
	defer srv.Close()
	cfg, dbPath := sqliteSetup(t, srv.URL)
	insertOrders(t, dbPath, 1, 5)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var runErr bytes.Buffer
	go func() {
		done <- Main(ctx, []string{"--config", cfg, "run", "--progress", "0"}, &bytes.Buffer{}, &runErr)
	}()
	listDead := func() []map[string]any {
		_, out, stderr := runCLI(t, context.Background(), "--config", cfg, "--format", "json", "dlq", "list")
		var ds []map[string]any
		if err := json.Unmarshal([]byte(out), &ds); err != nil {
			t.Fatalf("dlq list --format json: %v\n%s%s", err, out, stderr)
		}
		return ds
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(listDead()) < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("events were not dead-lettered; run stderr:\n%s", runErr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("run exit %d:\n%s", code, runErr.String())
	}
	ds := listDead()
	if len(ds) != 5 {
		t.Fatalf("%d dead letters, want 5", len(ds))
	}
	for _, d := range ds {
		if d["observer"] != "orders" || d["stage"] != "effect" || d["attempts"].(float64) != 1 {
			t.Errorf("dead letter %v: want observer orders, stage effect, 1 attempt (a 400 is permanent)", d)
		}
		if !strings.Contains(d["error"].(string), "400") {
			t.Errorf("dead letter error %q does not name the status", d["error"])
		}
	}
	id := fmt.Sprint(int64(ds[0]["id"].(float64)))
	code, out, _ := runCLI(t, context.Background(), "--config", cfg, "dlq", "show", id)
	if code != 0 || !strings.Contains(out, "shop:") || !strings.Contains(out, "orders") {
		t.Errorf("dlq show %s: exit %d\n%s", id, code, out)
	}

	// Still failing: retry keeps the entry and exits non-zero.
	code, _, _ = runCLI(t, context.Background(), "--config", cfg, "dlq", "retry", id)
	if code == 0 || len(listDead()) != 5 {
		t.Errorf("retry against a failing receiver: exit %d, %d entries left; want non-zero and 5", code, len(listDead()))
	}

	// Fixed: retry delivers and removes three; purge removes the rest.
	status.Store(http.StatusOK)
	ids := []string{}
	for _, d := range ds[:3] {
		ids = append(ids, fmt.Sprint(int64(d["id"].(float64))))
	}
	code, out, stderr := runCLI(t, context.Background(), append([]string{"--config", cfg, "dlq", "retry"}, ids...)...)
	if code != 0 {
		t.Fatalf("dlq retry: exit %d\n%s%s", code, out, stderr)
	}
	mu.Lock()
	n := len(got)
	mu.Unlock()
	if n != 3 {
		t.Errorf("receiver got %d deliveries from retry, want 3", n)
	}
	if left := listDead(); len(left) != 2 {
		t.Errorf("%d dead letters left after retrying 3 of 5, want 2", len(left))
	}
	if code, out, _ := runCLI(t, context.Background(), "--config", cfg, "dlq", "purge", "--all"); code != 0 || !strings.Contains(out, "purged 2") {
		t.Errorf("dlq purge --all: exit %d: %s", code, out)
	}
	if left := listDead(); len(left) != 0 {
		t.Errorf("%d dead letters left after purge", len(left))
	}
}

// TestRunResumesFromCheckpoint: a clean stop saves the checkpoint; a second
// run delivers only the rows written since.
func TestRunResumesFromCheckpoint(t *testing.T) {
	var mu sync.Mutex
	bodies := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b bytes.Buffer
		_, _ = b.ReadFrom(r.Body)
		mu.Lock()
		bodies[b.String()]++
		mu.Unlock()
	}))
	defer srv.Close()
	cfg, dbPath := sqliteSetup(t, srv.URL)
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(bodies) }
	runUntil := func(n int) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan int, 1)
		var errb bytes.Buffer
		go func() { done <- Main(ctx, []string{"--config", cfg, "run", "--progress", "0"}, &bytes.Buffer{}, &errb) }()
		deadline := time.Now().Add(30 * time.Second)
		for count() < n && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		cancel()
		if code := <-done; code != 0 {
			t.Fatalf("run exit %d:\n%s", code, errb.String())
		}
		if count() != n {
			t.Fatalf("got %d distinct deliveries, want %d", count(), n)
		}
	}
	insertOrders(t, dbPath, 1, 20)
	runUntil(20)
	insertOrders(t, dbPath, 21, 30)
	runUntil(30)
	mu.Lock()
	defer mu.Unlock()
	for b, n := range bodies {
		if n != 1 {
			t.Errorf("body %s delivered %d times", b, n)
		}
	}
	if want := `{"id": 7, "total": 7.5}`; bodies[want] != 1 {
		t.Errorf("body %q not delivered; got %v", want, bodies)
	}

	// Every row is finished, so prune empties the change log.
	code, out, stderr := runCLI(t, context.Background(), "--config", cfg, "--format", "json", "capture", "prune")
	var pr struct {
		Deleted int64 `json:"deleted"`
		Bound   int64 `json:"bound"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &pr) != nil || pr.Deleted != 30 || pr.Bound != 30 {
		t.Errorf("capture prune: exit %d, %s%s; want 30 rows deleted below 30", code, out, stderr)
	}
}
