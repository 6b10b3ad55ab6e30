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
	"testing"
	"time"

	"github.com/fraiseql/observer/internal/testenv"
	"github.com/jackc/pgx/v5"
)

// TestRunFraiseQLCompatibility: an existing FraiseQL change log
// (core.tb_entity_change_log, filled by FraiseQL, not by our triggers) is
// read with mode = "fraiseql" and no schema setting; the observer's own
// state goes to the observer schema, and the traceparent FraiseQL recorded
// reaches the receiver.
func TestRunFraiseQLCompatibility(t *testing.T) {
	dsn := testenv.Postgres(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, q := range []string{
		`CREATE SCHEMA core`,
		`CREATE TABLE core.tb_entity_change_log (
			pk_entity_change_log bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
			id uuid NOT NULL DEFAULT gen_random_uuid(),
			object_type text NOT NULL,
			modification_type text NOT NULL,
			object_id uuid,
			object_data jsonb,
			object_data_before jsonb,
			updated_fields text[],
			tenant_id uuid,
			created_at timestamptz NOT NULL DEFAULT now(),
			trace_context jsonb)`,
		`INSERT INTO core.tb_entity_change_log (object_type, modification_type, object_id, object_data, object_data_before, trace_context) VALUES
			('Order', 'INSERT', '11111111-1111-1111-1111-111111111111', '{"total": 150.00}', NULL,
			 '{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}'),
			('Order', 'INSERT', '33333333-3333-3333-3333-333333333333', '{"total": 20}', NULL, NULL),
			('Order', 'update', '11111111-1111-1111-1111-111111111111', '{"total": 180}', '{"total": 150.00}', NULL)`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	var mu sync.Mutex
	var got []map[string]any
	var traces []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b bytes.Buffer
		_, _ = b.ReadFrom(r.Body)
		var m map[string]any
		_ = json.Unmarshal(b.Bytes(), &m)
		mu.Lock()
		got = append(got, m)
		traces = append(traces, r.Header.Get("traceparent"))
		mu.Unlock()
	}))
	defer srv.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "observer.toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`
[admin]
address = "127.0.0.1:0"
[source]
type = "postgres"
name = "app"
dsn = %q
mode = "fraiseql"
poll_interval = "50ms"
[plugins.webhook]
path = %q
allow_hosts = [%q]
[[observers]]
name = "big-orders"
entity = "Order"
condition = "total > 100"
action = { plugin = "webhook", config = { url = "%s/orders", body = '{"key": {{ key }}, "op": {{ op }}, "total": {{ after.total }}}' } }
`, dsn, testenv.GoPlugin(t, "plugins/webhook"), strings.TrimPrefix(srv.URL, "http://"), srv.URL)), 0o644); err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan int, 1)
	var errb bytes.Buffer
	go func() {
		done <- Main(runCtx, []string{"--config", cfg, "run", "--progress", "0"}, &bytes.Buffer{}, &errb)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // nothing more should come
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("run exit %d:\n%s", code, errb.String())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 {
		t.Fatalf("receiver got %d deliveries, want 2 (the 150 insert and the 180 update): %v\n%s", len(got), got, errb.String())
	}
	if got[0]["op"] != "INSERT" || got[1]["op"] != "UPDATE" || got[0]["key"] != "11111111-1111-1111-1111-111111111111" {
		t.Errorf("deliveries %v: want the INSERT then the UPDATE of order 1111…", got)
	}
	if traces[0] != "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" {
		t.Errorf("traceparent %q: FraiseQL's trace context did not reach the effect", traces[0])
	}
	var through int64
	if err := conn.QueryRow(ctx, `SELECT (cursor->>'through')::bigint FROM observer.checkpoint WHERE source = 'app'`).Scan(&through); err != nil {
		t.Fatalf("checkpoint in the observer schema: %v", err)
	}
	if through != 3 {
		t.Errorf("checkpoint through %d, want 3", through)
	}
}
