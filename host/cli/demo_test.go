package cli

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fraiseql/observer/examples/pagila/workload"
	"github.com/fraiseql/observer/host/leader"
	"github.com/fraiseql/observer/internal/testenv"
)

// TestDemoOnDefaultConfig runs `observer demo` (what `make run` does) on
// the repository's own observer.toml, moved to a temporary directory and a
// free port, over the first 33,000 Pagila writes (every rental and return,
// then the first payments), and checks its summary against SQL.
func TestDemoOnDefaultConfig(t *testing.T) {
	root := testenv.RepoRoot(t)
	dataDir, err := workload.DataDir(root)
	if err != nil {
		testenv.Missing(t, "Pagila data", err)
	}
	t.Setenv("PAGILA_DIR", dataDir)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	b, err := os.ReadFile(filepath.Join(root, "observer.toml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.ReplaceAll(string(b), "127.0.0.1:8787", addr)
	cfg = strings.ReplaceAll(cfg, `"bin/plugins/webhook.wasm"`, `"`+testenv.GoPlugin(t, "plugins/webhook")+`"`)
	cfg = strings.ReplaceAll(cfg, `"bin/plugins/field-filter.wasm"`, `"`+testenv.GoPlugin(t, "plugins/field-filter")+`"`)
	dir := t.TempDir()
	path := filepath.Join(dir, "observer.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := runCLI(t, context.Background(), "--config", path, "--format", "json", "demo", "--writes", "33000", "--listen", addr)
	if code != 0 {
		t.Fatalf("demo: exit %d\n%s\n%s", code, out, stderr)
	}
	var sum demoSummary
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("summary: %v\n%s", err, out)
	}
	if sum.Writes != 33000 || sum.EventsRead != 33000 {
		t.Errorf("writes %d, events read %d: want 33000 each", sum.Writes, sum.EventsRead)
	}
	if sum.BigPayments == 0 || sum.RentalsReturned == 0 {
		t.Fatalf("the slice has %d big payments and %d returns: both observers should fire", sum.BigPayments, sum.RentalsReturned)
	}
	want := sum.BigPayments + sum.RentalsReturned
	if sum.Delivered != want || sum.DistinctDelivered != want {
		t.Errorf("receiver got %d deliveries (%d distinct), SQL says %d + %d", sum.Delivered, sum.DistinctDelivered, sum.BigPayments, sum.RentalsReturned)
	}
	if sum.Filtered == 0 || sum.DeadLettered != 0 {
		t.Errorf("filtered %d (want > 0: small payments), dead-lettered %d (want 0)", sum.Filtered, sum.DeadLettered)
	}
	if !strings.Contains(stderr, "progress: writes") {
		t.Errorf("no progress line on stderr:\n%s", stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "demo", "pagila.db")); err != nil {
		t.Errorf("demo database not created beside the config: %v", err)
	}
}

// TestDemoRefusesARunningObserversDatabase: the demo replaces its
// database, so it refuses while an observer leads that source.
func TestDemoRefusesARunningObserversDatabase(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "demo.db")
	path := filepath.Join(dir, "observer.toml")
	if err := os.WriteFile(path, []byte("[source]\ntype = \"sqlite\"\nname = \"demo\"\ndsn = \"demo.db\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	el := leader.NewSQLite(leader.SQLiteConfig{Path: db, Source: "demo", Group: "default", Holder: "elsewhere:1:abcdef"})
	lease, err := el.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer lease.Release(context.Background()) //nolint:errcheck // test
	code, _, stderr := runCLI(t, context.Background(), "--config", path, "demo", "--writes", "10")
	if code != exitUsage || !strings.Contains(stderr, "an observer (elsewhere:1:abcdef) is running on") || !strings.Contains(stderr, "stop it first") {
		t.Errorf("demo under a running observer: exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(db); err != nil {
		t.Errorf("the database was removed: %v", err)
	}
}
