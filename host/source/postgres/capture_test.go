package postgres

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fraiseql/observer/abi"
	"github.com/fraiseql/observer/host/event"
	"github.com/fraiseql/observer/host/source"
)

// TestCaptureEvents installs capture on a table with a composite key and
// checks that INSERT, UPDATE and DELETE become the right events, including
// the writer's trace context and tenant from session settings.
func TestCaptureEvents(t *testing.T) {
	t.Parallel()
	dsn, conn := scratch(t)
	ctx := context.Background()
	exec(t, conn, `CREATE TABLE film_actor (actor_id int, film_id int, note text, score numeric, PRIMARY KEY (actor_id, film_id))`)
	if err := Install(ctx, conn, InstallOptions{Tables: []TableSpec{{Name: "film_actor", Entity: "casting"}}}); err != nil {
		t.Fatalf("install: %v", err)
	}
	// Installing twice is fine.
	if err := Install(ctx, conn, InstallOptions{Tables: []TableSpec{{Name: "public.film_actor", Entity: "casting"}}}); err != nil {
		t.Fatalf("install again: %v", err)
	}
	exec(t, conn,
		`INSERT INTO film_actor VALUES (1, 2, 'a', 12345678901234567890.5)`,
		`BEGIN`,
		`SET LOCAL observer.traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'`,
		`SET LOCAL observer.tracestate = 'congo=t61rcWkgMzE'`,
		`SET LOCAL observer.tenant = 'acme'`,
		`UPDATE film_actor SET note = 'b' WHERE actor_id = 1`,
		`COMMIT`,
		`DELETE FROM film_actor`,
	)
	r := openReader(t, Config{Name: "pg", DSN: dsn, PollInterval: 100 * time.Millisecond}, source.Cursor{})
	recs, fr := readN(t, r, 3, 20*time.Second)
	for _, rec := range recs {
		if rec.DecodeErr != nil {
			t.Fatalf("decode error: %v (raw %s)", rec.DecodeErr, rec.Raw)
		}
	}
	img := func(note string) map[string]any {
		return map[string]any{"actor_id": json.Number("1"), "film_id": json.Number("2"), "note": note, "score": json.Number("12345678901234567890.5")}
	}
	want := []struct {
		op      abi.Operation
		before  map[string]any
		after   map[string]any
		changed []string
		tenant  string
		trace   *abi.TraceContext
	}{
		{op: event.OpInsert, after: img("a")},
		{op: event.OpUpdate, before: img("a"), after: img("b"), changed: []string{"note"}, tenant: "acme",
			trace: &abi.TraceContext{Traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", Tracestate: "congo=t61rcWkgMzE"}},
		{op: event.OpDelete, before: img("b")},
	}
	for i, w := range want {
		ev := recs[i].Event
		if ev.Position != uint64(i+1) || ev.ID != event.ID("pg", uint64(i+1)) || ev.Source != "pg" {
			t.Errorf("event %d: position %d id %q source %q", i, ev.Position, ev.ID, ev.Source)
		}
		if ev.Entity != "casting" || ev.Key != "1,2" || ev.Op != w.op {
			t.Errorf("event %d: entity %q key %q op %q; want casting 1,2 %s", i, ev.Entity, ev.Key, ev.Op, w.op)
		}
		if !reflect.DeepEqual(ev.Before, w.before) || !reflect.DeepEqual(ev.After, w.after) {
			t.Errorf("event %d: before %v after %v; want %v %v", i, ev.Before, ev.After, w.before, w.after)
		}
		if !reflect.DeepEqual(ev.ChangedFields, w.changed) {
			t.Errorf("event %d: changed %v, want %v", i, ev.ChangedFields, w.changed)
		}
		if ev.Tenant != w.tenant || !reflect.DeepEqual(ev.Trace, w.trace) {
			t.Errorf("event %d: tenant %q trace %+v; want %q %+v", i, ev.Tenant, ev.Trace, w.tenant, w.trace)
		}
		if _, err := time.Parse(time.RFC3339Nano, ev.CommitTime); err != nil || !strings.HasSuffix(ev.CommitTime, "Z") {
			t.Errorf("event %d: commit time %q is not RFC 3339 UTC", i, ev.CommitTime)
		}
		if ev.TxID == "" || strings.Trim(ev.TxID, "0123456789") != "" {
			t.Errorf("event %d: txid %q is not a decimal number", i, ev.TxID)
		}
	}
	if recs[1].Event.TxID == recs[0].Event.TxID {
		t.Errorf("two transactions share txid %s", recs[0].Event.TxID)
	}
	if fr.Through != 3 || len(fr.Pending) != 0 {
		t.Errorf("frontier %+v, want through 3, nothing pending", fr)
	}
}

// TestCapturePartitioned captures a partitioned table (Pagila's payment is
// one): the trigger is cloned to each partition, including one attached
// after install, and the entity is the parent's name.
func TestCapturePartitioned(t *testing.T) {
	t.Parallel()
	dsn, conn := scratch(t)
	ctx := context.Background()
	exec(t, conn,
		`CREATE TABLE payment (payment_id int NOT NULL, payment_date date NOT NULL, amount numeric(5,2), PRIMARY KEY (payment_date, payment_id)) PARTITION BY RANGE (payment_date)`,
		`CREATE TABLE payment_p2022_01 PARTITION OF payment FOR VALUES FROM ('2022-01-01') TO ('2022-02-01')`,
		`CREATE TABLE payment_p2022_02 PARTITION OF payment FOR VALUES FROM ('2022-02-01') TO ('2022-03-01')`,
	)
	if err := Install(ctx, conn, InstallOptions{Tables: []TableSpec{{Name: "payment"}}}); err != nil {
		t.Fatalf("install: %v", err)
	}
	exec(t, conn,
		`CREATE TABLE payment_p2022_03 PARTITION OF payment FOR VALUES FROM ('2022-03-01') TO ('2022-04-01')`,
		`INSERT INTO payment VALUES (1, '2022-01-15', 9.99), (2, '2022-02-15', 1.50), (3, '2022-03-15', 0.99)`,
		`INSERT INTO payment_p2022_01 VALUES (4, '2022-01-20', 4.99)`,
		`UPDATE payment SET amount = 10.99 WHERE payment_id = 1`,
	)
	r := openReader(t, Config{Name: "pg", DSN: dsn, PollInterval: 100 * time.Millisecond}, source.Cursor{})
	recs, _ := readN(t, r, 5, 20*time.Second)
	wantKeys := []string{"2022-01-15,1", "2022-02-15,2", "2022-03-15,3", "2022-01-20,4", "2022-01-15,1"}
	for i, rec := range recs {
		if rec.DecodeErr != nil {
			t.Fatalf("decode error: %v", rec.DecodeErr)
		}
		if rec.Event.Entity != "payment" || rec.Event.Key != wantKeys[i] {
			t.Errorf("event %d: entity %q key %q, want payment %q", i, rec.Event.Entity, rec.Event.Key, wantKeys[i])
		}
	}
	if got := recs[4].Event; got.Op != event.OpUpdate || !reflect.DeepEqual(got.ChangedFields, []string{"amount"}) || got.After["amount"] != json.Number("10.99") {
		t.Errorf("update event: op %s changed %v after %v", got.Op, got.ChangedFields, got.After)
	}
}

func TestInstallErrors(t *testing.T) {
	t.Parallel()
	_, conn := scratch(t)
	exec(t, conn,
		`CREATE TABLE nokey (a int, b text)`,
		`CREATE TABLE ok (id int PRIMARY KEY, t text)`,
		`CREATE VIEW v AS SELECT 1 AS id`,
	)
	cases := []struct {
		name string
		spec TableSpec
		want string
	}{
		{"missing table", TableSpec{Name: "nope"}, `table "nope" does not exist`},
		{"no primary key", TableSpec{Name: "nokey"}, `table "nokey" has no primary key`},
		{"bad key column", TableSpec{Name: "ok", KeyColumns: []string{"idd"}}, `table "ok" has no key column "idd"`},
		{"bad tenant column", TableSpec{Name: "ok", TenantColumn: "org"}, `table "ok" has no tenant column "org"`},
		{"view", TableSpec{Name: "v"}, `"v" is not a table`},
		{"empty name", TableSpec{}, `empty name`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Install(context.Background(), conn, InstallOptions{Tables: []TableSpec{{Name: "ok"}, c.spec}})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
		})
	}
	// Nothing of a failed install remains: it is one transaction.
	var n int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_namespace WHERE nspname = 'observer'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("schema left behind by failed installs: count %d err %v", n, err)
	}
	// A table without a primary key works with explicit key columns.
	if err := Install(context.Background(), conn, InstallOptions{Tables: []TableSpec{{Name: "nokey", KeyColumns: []string{"a"}, TenantColumn: "b"}}}); err != nil {
		t.Fatalf("install with explicit key: %v", err)
	}
}

func TestUninstall(t *testing.T) {
	t.Parallel()
	_, conn := scratch(t)
	ctx := context.Background()
	exec(t, conn, `CREATE TABLE a (id int PRIMARY KEY)`, `CREATE TABLE b (id int PRIMARY KEY)`)
	if err := Install(ctx, conn, InstallOptions{Tables: []TableSpec{{Name: "a"}, {Name: "b"}}}); err != nil {
		t.Fatal(err)
	}
	triggers := func() int {
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_trigger WHERE tgname = 'observer_capture'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	logged := func() int {
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM observer.change_log`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := triggers(); n != 2 {
		t.Fatalf("%d triggers after install, want 2", n)
	}
	if err := Uninstall(ctx, conn, UninstallOptions{Tables: []string{"a"}}); err != nil {
		t.Fatal(err)
	}
	exec(t, conn, `INSERT INTO a VALUES (1)`, `INSERT INTO b VALUES (1)`)
	if n := triggers(); n != 1 {
		t.Fatalf("%d triggers after uninstalling a, want 1", n)
	}
	if n := logged(); n != 1 {
		t.Fatalf("%d change-log rows, want 1 (only b is captured)", n)
	}
	// All registered tables; twice, since it is idempotent.
	for range 2 {
		if err := Uninstall(ctx, conn, UninstallOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	exec(t, conn, `INSERT INTO b VALUES (2)`)
	if n := triggers(); n != 0 {
		t.Fatalf("%d triggers after uninstall, want 0", n)
	}
	if n := logged(); n != 1 {
		t.Fatalf("%d change-log rows after uninstall, want 1", n)
	}
	for range 2 {
		if err := Uninstall(ctx, conn, UninstallOptions{DropSchema: true}); err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_namespace WHERE nspname = 'observer'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("schema still there after DropSchema: %d %v", n, err)
	}
}

// TestDecodeErrorRow: a row that cannot be decoded is delivered with the
// reason and the raw row, and the rows after it still arrive.
func TestDecodeErrorRow(t *testing.T) {
	t.Parallel()
	dsn, conn := scratch(t)
	ctx := context.Background()
	exec(t, conn, `CREATE TABLE a (id int PRIMARY KEY)`)
	if err := Install(ctx, conn, InstallOptions{Tables: []TableSpec{{Name: "a"}}}); err != nil {
		t.Fatal(err)
	}
	exec(t, conn,
		`INSERT INTO observer.change_log (txid, entity, op, key, before, after) VALUES (pg_current_xact_id(), 'a', 'MERGE', '1', '[1,2]', NULL)`,
		`INSERT INTO a VALUES (7)`,
	)
	r := openReader(t, Config{Name: "pg", DSN: dsn, PollInterval: 100 * time.Millisecond}, source.Cursor{})
	recs, _ := readN(t, r, 2, 20*time.Second)
	bad := recs[0]
	if bad.DecodeErr == nil {
		t.Fatalf("bad row decoded without error: %+v", bad.Event)
	}
	for _, want := range []string{"row 1", `op "MERGE"`, "before"} {
		if !strings.Contains(bad.DecodeErr.Error(), want) {
			t.Errorf("decode error %q does not mention %s", bad.DecodeErr, want)
		}
	}
	if bad.Event == nil || bad.Event.ID != "pg:1" || !strings.Contains(string(bad.Raw), `"MERGE"`) {
		t.Errorf("bad record: event %+v raw %s", bad.Event, bad.Raw)
	}
	if recs[1].DecodeErr != nil || recs[1].Event.Key != "7" {
		t.Errorf("good row after the bad one: %+v %v", recs[1].Event, recs[1].DecodeErr)
	}
}

// TestDropStateSparesASharedSchema: with the observer's state in a schema
// the application uses too (public), DropSchema drops the observer's
// objects and leaves the application's tables, data, views and the schema
// itself; an observer-only schema disappears whole.
func TestDropStateSparesASharedSchema(t *testing.T) {
	t.Parallel()
	dsn, conn := scratch(t)
	ctx := context.Background()
	exec(t, conn, `CREATE TABLE orders (id int PRIMARY KEY, status text)`, `CREATE TABLE precious (id int)`,
		`INSERT INTO precious VALUES (1), (2)`, `CREATE VIEW precious_v AS SELECT id FROM precious`)
	if err := Install(ctx, conn, InstallOptions{Schema: "public", Tables: []TableSpec{{Name: "orders"}}}); err != nil {
		t.Fatal(err)
	}
	st, err := OpenStore(ctx, dsn, "public") // the dedup and leader tables too
	if err != nil {
		t.Fatal(err)
	}
	if err := st.RecordDone(ctx, "s", "g", []source.DoneRecord{{Position: 1, EventID: "s:1", Observer: "o", Outcome: "done"}}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	exec(t, conn, `INSERT INTO orders VALUES (1, 'new')`)
	if err := Uninstall(ctx, conn, UninstallOptions{Schema: "public", DropSchema: true}); err != nil {
		t.Fatal(err)
	}
	var precious, views, observerTables, triggers int
	if err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM precious), (SELECT count(*) FROM pg_views WHERE viewname = 'precious_v'),
		(SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename IN ('change_log', 'checkpoint', 'dead_letter', 'captured_table', 'done', 'leader')),
		(SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal)`).Scan(&precious, &views, &observerTables, &triggers); err != nil {
		t.Fatal(err)
	}
	if precious != 2 || views != 1 || observerTables != 0 || triggers != 0 {
		t.Fatalf("after drop-state in public: precious rows %d (want 2), views %d (want 1), observer tables %d (want 0), triggers %d (want 0)",
			precious, views, observerTables, triggers)
	}
	exec(t, conn, `INSERT INTO orders VALUES (2, 'still works')`)
}
