package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fraiseql/observer/abi"
	"github.com/fraiseql/observer/host/source"
)

type tlog struct{ t testing.TB }

func (w tlog) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

func setup(t *testing.T, ddl ...string) (string, *sql.DB) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "watched.db")
	db, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for _, s := range ddl {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("exec %q: %v", s, err)
		}
	}
	return path, db
}

func exec(t *testing.T, db Execer, sqls ...string) {
	t.Helper()
	for _, s := range sqls {
		if _, err := db.ExecContext(context.Background(), s); err != nil {
			t.Fatalf("exec %q: %v", s, err)
		}
	}
}

func openReader(t *testing.T, path string, cur source.Cursor) *Reader {
	t.Helper()
	r := New(Config{Name: "lite", Path: path, PollInterval: 20 * time.Millisecond}, slog.New(slog.NewTextHandler(tlog{t}, nil)))
	if err := r.Open(context.Background(), cur); err != nil {
		t.Fatalf("open reader: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func readN(t *testing.T, r *Reader, n int) ([]source.Record, source.Cursor) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []source.Record
	var fr source.Cursor
	for len(out) < n {
		b, err := r.Read(ctx, 1000)
		if err != nil {
			t.Fatalf("read: %d of %d records: %v", len(out), n, err)
		}
		out = append(out, b.Records...)
		fr = b.Frontier
	}
	if len(out) != n {
		t.Fatalf("read %d records, want %d", len(out), n)
	}
	return out, fr
}

func TestCaptureEvents(t *testing.T) {
	t.Parallel()
	path, db := setup(t, `CREATE TABLE film_actor (actor_id INTEGER, film_id INTEGER, note TEXT, pic BLOB, price REAL, PRIMARY KEY (actor_id, film_id))`)
	ctx := context.Background()
	for range 2 { // idempotent
		if err := Install(ctx, db, InstallOptions{Tables: []TableSpec{{Name: "film_actor", Entity: "casting"}}}); err != nil {
			t.Fatalf("install: %v", err)
		}
	}
	exec(t, db, `INSERT INTO film_actor VALUES (1, 2, 'a', x'CAFE', 9.99)`)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	tp := "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	if err := SetWriterContext(ctx, tx, WriterContext{Traceparent: tp, Tracestate: "a=b", Tenant: "acme"}); err != nil {
		t.Fatal(err)
	}
	exec(t, tx, `UPDATE film_actor SET note = NULL, price = 10.99 WHERE actor_id = 1`)
	if err := ClearWriterContext(ctx, tx); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	exec(t, db, `UPDATE film_actor SET note = NULL`, `DELETE FROM film_actor`)

	r := openReader(t, path, source.Cursor{})
	recs, fr := readN(t, r, 4)
	img := func(note any, price string) map[string]any {
		return map[string]any{"actor_id": json.Number("1"), "film_id": json.Number("2"), "note": note, "pic": "CAFE", "price": json.Number(price)}
	}
	want := []struct {
		op            abi.Operation
		before, after map[string]any
		changed       []string
		tenant        string
		trace         *abi.TraceContext
	}{
		{op: "INSERT", after: img("a", "9.99")},
		{op: "UPDATE", before: img("a", "9.99"), after: img(nil, "10.99"), changed: []string{"note", "price"}, tenant: "acme",
			trace: &abi.TraceContext{Traceparent: tp, Tracestate: "a=b"}},
		{op: "UPDATE", before: img(nil, "10.99"), after: img(nil, "10.99"), changed: []string{}},
		{op: "DELETE", before: img(nil, "10.99")},
	}
	for i, w := range want {
		if recs[i].DecodeErr != nil {
			t.Fatalf("event %d: %v", i, recs[i].DecodeErr)
		}
		ev := recs[i].Event
		if ev.Position != uint64(i+1) || ev.ID != fmt.Sprintf("lite:%d", i+1) || ev.Entity != "casting" || ev.Key != "1,2" || ev.Op != w.op {
			t.Errorf("event %d: %s pos %d entity %q key %q op %s", i, ev.ID, ev.Position, ev.Entity, ev.Key, ev.Op)
		}
		if !reflect.DeepEqual(ev.Before, w.before) || !reflect.DeepEqual(ev.After, w.after) {
			t.Errorf("event %d: before %v after %v, want %v %v", i, ev.Before, ev.After, w.before, w.after)
		}
		if !reflect.DeepEqual(ev.ChangedFields, w.changed) {
			t.Errorf("event %d: changed %#v, want %#v", i, ev.ChangedFields, w.changed)
		}
		if ev.Tenant != w.tenant || !reflect.DeepEqual(ev.Trace, w.trace) {
			t.Errorf("event %d: tenant %q trace %+v, want %q %+v", i, ev.Tenant, ev.Trace, w.tenant, w.trace)
		}
		if _, err := time.Parse(time.RFC3339Nano, ev.CommitTime); err != nil || !strings.HasSuffix(ev.CommitTime, "Z") {
			t.Errorf("event %d: commit time %q", i, ev.CommitTime)
		}
	}
	if fr.Through != 4 || fr.Pending != nil {
		t.Errorf("frontier %+v", fr)
	}
}

// TestWideTable: more columns than one SQL function call takes; NULLs kept.
func TestWideTable(t *testing.T) {
	t.Parallel()
	cols := []string{"id INTEGER PRIMARY KEY"}
	for i := range 150 {
		cols = append(cols, fmt.Sprintf("c%03d TEXT", i))
	}
	path, db := setup(t, `CREATE TABLE wide (`+strings.Join(cols, ", ")+`)`)
	if err := Install(context.Background(), db, InstallOptions{Tables: []TableSpec{{Name: "wide"}}}); err != nil {
		t.Fatal(err)
	}
	exec(t, db, `INSERT INTO wide (id, c000, c149) VALUES (1, 'first', 'last')`)
	recs, _ := readN(t, openReader(t, path, source.Cursor{}), 1)
	after := recs[0].Event.After
	if len(after) != 151 || after["c000"] != "first" || after["c149"] != "last" {
		t.Fatalf("image has %d columns, c000 %v c149 %v", len(after), after["c000"], after["c149"])
	}
	if v, ok := after["c075"]; !ok || v != nil {
		t.Fatalf("NULL column c075: %v present %v", v, ok)
	}
}

func TestInstallErrors(t *testing.T) {
	t.Parallel()
	_, db := setup(t, `CREATE TABLE nokey (a INTEGER, b TEXT)`, `CREATE TABLE ok (id INTEGER PRIMARY KEY)`, `CREATE VIEW v AS SELECT 1 AS id`)
	cases := []struct {
		name string
		spec TableSpec
		want string
	}{
		{"missing table", TableSpec{Name: "nope"}, `table "nope" does not exist`},
		{"no primary key", TableSpec{Name: "nokey"}, `table "nokey" has no primary key`},
		{"bad key column", TableSpec{Name: "ok", KeyColumns: []string{"idd"}}, `table "ok" has no key column "idd"`},
		{"bad tenant column", TableSpec{Name: "ok", TenantColumn: "org"}, `table "ok" has no tenant column "org"`},
		{"view", TableSpec{Name: "v"}, `"v" is a view, not a table`},
		{"own table", TableSpec{Name: "observer_change_log"}, `cannot be captured`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Install(context.Background(), db, InstallOptions{Tables: []TableSpec{{Name: "ok"}, c.spec}})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want error containing %q", err, c.want)
			}
		})
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE name LIKE 'observer%'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("failed installs left %d objects (%v)", n, err)
	}
	if err := Install(context.Background(), db, InstallOptions{Tables: []TableSpec{{Name: "nokey", KeyColumns: []string{"a"}, TenantColumn: "b"}}}); err != nil {
		t.Fatalf("explicit key: %v", err)
	}
}

func TestUninstall(t *testing.T) {
	t.Parallel()
	_, db := setup(t, `CREATE TABLE a (id INTEGER PRIMARY KEY)`, `CREATE TABLE b (id INTEGER PRIMARY KEY)`)
	ctx := context.Background()
	if err := Install(ctx, db, InstallOptions{Tables: []TableSpec{{Name: "a"}, {Name: "b"}}}); err != nil {
		t.Fatal(err)
	}
	count := func(q string) int {
		var n int
		if err := db.QueryRow(q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	const trigs = `SELECT count(*) FROM sqlite_master WHERE type = 'trigger'`
	if n := count(trigs); n != 6 {
		t.Fatalf("%d triggers, want 6", n)
	}
	if err := Uninstall(ctx, db, UninstallOptions{Tables: []string{"a"}}); err != nil {
		t.Fatal(err)
	}
	exec(t, db, `INSERT INTO a VALUES (1)`, `INSERT INTO b VALUES (1)`)
	if n := count(`SELECT count(*) FROM observer_change_log`); n != 1 {
		t.Fatalf("%d log rows, want 1", n)
	}
	for range 2 {
		if err := Uninstall(ctx, db, UninstallOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if n := count(trigs); n != 0 {
		t.Fatalf("%d triggers after uninstall", n)
	}
	for range 2 {
		if err := Uninstall(ctx, db, UninstallOptions{DropAll: true}); err != nil {
			t.Fatal(err)
		}
	}
	if n := count(`SELECT count(*) FROM sqlite_master WHERE name LIKE 'observer%'`); n != 0 {
		t.Fatalf("%d observer objects after DropAll", n)
	}
	exec(t, db, `INSERT INTO b VALUES (2)`) // writes still work
}

// TestResumeFromCursor: a cursor saved in the Store, with pending ids,
// re-delivers exactly the pending ids and the rows above Through.
func TestResumeFromCursor(t *testing.T) {
	t.Parallel()
	path, db := setup(t, `CREATE TABLE a (id INTEGER PRIMARY KEY)`)
	ctx := context.Background()
	if err := Install(ctx, db, InstallOptions{Tables: []TableSpec{{Name: "a"}}}); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 8; i++ {
		exec(t, db, fmt.Sprintf(`INSERT INTO a VALUES (%d)`, i))
	}
	st, err := OpenStore(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, ok, err := st.LoadCursor(ctx, "lite", "g"); ok || err != nil {
		t.Fatalf("before save: %v %v", ok, err)
	}
	if err := st.SaveCursor(ctx, "lite", "g", source.Cursor{Through: 5, Pending: []uint64{4, 2, 2, 7}}); err != nil {
		t.Fatal(err)
	}
	cur, ok, err := st.LoadCursor(ctx, "lite", "g")
	if err != nil || !ok || !reflect.DeepEqual(cur, source.Cursor{Through: 5, Pending: []uint64{2, 4}}) {
		t.Fatalf("loaded %+v %v %v", cur, ok, err)
	}
	r := openReader(t, path, cur)
	recs, fr := readN(t, r, 5)
	got := make([]uint64, len(recs))
	for i, rec := range recs {
		got[i] = rec.Event.Position
	}
	if !reflect.DeepEqual(got, []uint64{2, 4, 6, 7, 8}) || fr.Through != 8 || fr.Pending != nil {
		t.Fatalf("positions %v frontier %+v; want [2 4 6 7 8], through 8", got, fr)
	}
}

// TestConcurrentWriters: writers on their own connections commit while the
// reader polls; every row arrives once, in order, with no lock errors
// reaching the writers.
func TestConcurrentWriters(t *testing.T) {
	t.Parallel()
	path, db := setup(t, `CREATE TABLE a (id INTEGER PRIMARY KEY, w INTEGER, v TEXT)`)
	ctx := context.Background()
	if err := Install(ctx, db, InstallOptions{Tables: []TableSpec{{Name: "a"}}}); err != nil {
		t.Fatal(err)
	}
	r := openReader(t, path, source.Cursor{})
	const writers, txs, rows = 3, 100, 5
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wdb, err := Open(ctx, path)
			if err != nil {
				errs <- err
				return
			}
			defer wdb.Close()
			for i := range txs {
				tx, err := wdb.BeginTx(ctx, nil)
				if err != nil {
					errs <- fmt.Errorf("writer %d: %w", w, err)
					return
				}
				for j := range rows {
					if _, err := tx.Exec(`INSERT INTO a VALUES (?, ?, 'x')`, (w*txs+i)*rows+j+1, w); err != nil {
						tx.Rollback()
						errs <- fmt.Errorf("writer %d: %w", w, err)
						return
					}
				}
				if err := tx.Commit(); err != nil {
					errs <- fmt.Errorf("writer %d: %w", w, err)
					return
				}
			}
		}()
	}
	recs, _ := readN(t, r, writers*txs*rows)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	pos := make([]uint64, len(recs))
	for i, rec := range recs {
		pos[i] = rec.Event.Position
	}
	if !slices.IsSorted(pos) || pos[0] != 1 || int(pos[len(pos)-1]) != len(pos) {
		t.Fatalf("positions not exactly 1..%d in order", len(pos))
	}
}

func TestDecodeErrorRow(t *testing.T) {
	t.Parallel()
	path, db := setup(t, `CREATE TABLE a (id INTEGER PRIMARY KEY)`)
	if err := Install(context.Background(), db, InstallOptions{Tables: []TableSpec{{Name: "a"}}}); err != nil {
		t.Fatal(err)
	}
	exec(t, db, `INSERT INTO observer_change_log (entity, op, key, after) VALUES ('a', 'UPSERT', '1', '[1]')`, `INSERT INTO a VALUES (5)`)
	recs, _ := readN(t, openReader(t, path, source.Cursor{}), 2)
	if recs[0].DecodeErr == nil || !strings.Contains(recs[0].DecodeErr.Error(), `op "UPSERT"`) || !strings.Contains(recs[0].DecodeErr.Error(), "after") {
		t.Fatalf("decode error: %v", recs[0].DecodeErr)
	}
	if recs[0].Event.ID != "lite:1" || !json.Valid(recs[0].Raw) || !strings.Contains(string(recs[0].Raw), "UPSERT") {
		t.Fatalf("bad record: %+v raw %s", recs[0].Event, recs[0].Raw)
	}
	if recs[1].DecodeErr != nil || recs[1].Event.Key != "5" {
		t.Fatalf("row after the bad one: %+v %v", recs[1].Event, recs[1].DecodeErr)
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	path, _ := setup(t)
	for _, c := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no change log", Config{Name: "lite", Path: path}, "observer_change_log does not exist"},
		{"no name", Config{Path: path}, "name is empty"},
		{"no path", Config{Name: "lite"}, "path is empty"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := New(c.cfg, nil)
			defer r.Close()
			if err := r.Open(context.Background(), source.Cursor{}); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
}

func TestStoreDeadLetters(t *testing.T) {
	t.Parallel()
	path, _ := setup(t)
	ctx := context.Background()
	st, err := OpenStore(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	created := time.Date(2024, 5, 1, 12, 0, 0, 123456789, time.UTC)
	ids := []int64{}
	for _, d := range []source.DeadLetter{
		{Source: "lite", Group: "g", Observer: "o1", EventID: "lite:7", Position: 7, Event: json.RawMessage(`{"after":{"n":12345678901234567890.25}}`), Effect: 2, Stage: "effect", Error: "http 500", Attempts: 5, CreatedAt: created},
		{Source: "lite", Group: "g", Observer: "o2", EventID: "lite:8", Position: 8, Effect: -1, Stage: "decode", Error: "bad op", Attempts: 1},
		{Source: "x", Group: "g", Observer: "o2", EventID: "x:1", Position: 1, Effect: -1, Stage: "filter", Error: "trap", Attempts: 3},
	} {
		id, err := st.PutDead(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if _, err := st.PutDead(ctx, source.DeadLetter{EventID: "bad", Event: json.RawMessage(`{`)}); err == nil || !strings.Contains(err.Error(), "not valid JSON") {
		t.Fatalf("invalid JSON: %v", err)
	}
	d, err := st.GetDead(ctx, ids[0])
	if err != nil || d.Observer != "o1" || d.Position != 7 || d.Effect != 2 || !d.CreatedAt.Equal(created) ||
		string(d.Event) != `{"after":{"n":12345678901234567890.25}}` {
		t.Fatalf("get: %+v %v", d, err)
	}
	for _, c := range []struct {
		f    source.DeadFilter
		want int
	}{{source.DeadFilter{}, 3}, {source.DeadFilter{Source: "lite"}, 2}, {source.DeadFilter{Observer: "o2"}, 2},
		{source.DeadFilter{Source: "lite", Observer: "o2"}, 1}, {source.DeadFilter{Limit: 2}, 2}, {source.DeadFilter{Group: "h"}, 0}} {
		if l, err := st.ListDead(ctx, c.f); err != nil || len(l) != c.want {
			t.Errorf("%+v: %d (%v), want %d", c.f, len(l), err, c.want)
		}
	}
	if n, err := st.DeleteDead(ctx, ids[0], ids[1], 12345); n != 2 || err != nil {
		t.Fatalf("delete: %d %v", n, err)
	}
	if _, err := st.GetDead(ctx, ids[0]); !errors.Is(err, source.ErrNotFound) {
		t.Fatalf("get deleted: %v", err)
	}
}

// TestDropAllForgetsDedupRecords: after DropAll and a new install, the new
// change log starts again at 1, so dedup records and leases left behind
// would skip its events: DropAll removes them with the rest.
func TestDropAllForgetsDedupRecords(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "app.db")
	st, err := OpenStore(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	db := st.DB()
	if _, err := db.Exec(`CREATE TABLE a (id INTEGER PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	if err := Install(ctx, db, InstallOptions{Tables: []TableSpec{{Name: "a"}}}); err != nil {
		t.Fatal(err)
	}
	if err := st.RecordDone(ctx, "s", "g", []source.DoneRecord{{Position: 1, EventID: "s:1", Observer: "o", Outcome: "done"}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := TakeLease(ctx, db, "s", "g", "h", time.Minute, time.Now(), nil); err != nil {
		t.Fatal(err)
	}
	if err := Uninstall(ctx, db, UninstallOptions{DropAll: true}); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name LIKE 'observer_%'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d observer tables left after DropAll (%v)", n, err)
	}
}
