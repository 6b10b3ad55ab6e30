package postgres

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fraiseql/observer/host/source"
)

func installA(t *testing.T, conn *pgx.Conn) {
	t.Helper()
	exec(t, conn, `CREATE TABLE a (id int PRIMARY KEY, v text)`)
	if err := Install(context.Background(), conn, InstallOptions{Tables: []TableSpec{{Name: "a"}}}); err != nil {
		t.Fatalf("install: %v", err)
	}
}

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// TestLongTransaction is the case the hole algorithm exists for: a
// transaction holding id 1 commits after id 2 was read; 1 is still
// delivered. A rolled-back transaction's id is dropped, not kept forever.
func TestLongTransaction(t *testing.T) {
	t.Parallel()
	dsn, conn := scratch(t)
	installA(t, conn)
	ctx := context.Background()
	a, b := connect(t, dsn), connect(t, dsn)

	exec(t, a, `BEGIN`, `INSERT INTO a VALUES (10, 'long')`) // draws id 1, stays open
	exec(t, b, `INSERT INTO a VALUES (11, 'short')`)         // id 2, committed

	r := openReader(t, Config{Name: "pg", DSN: dsn, PollInterval: 50 * time.Millisecond}, source.Cursor{})
	recs, fr := readN(t, r, 1, 20*time.Second)
	if recs[0].Event.Key != "11" || fr.Through != 2 || !reflect.DeepEqual(fr.Pending, []uint64{1}) {
		t.Fatalf("first read: key %q frontier %+v; want key 11, through 2, pending [1]", recs[0].Event.Key, fr)
	}
	exec(t, a, `COMMIT`)
	recs, fr = readN(t, r, 1, 20*time.Second)
	if recs[0].Event.Key != "10" || recs[0].Event.Position != 1 || fr.Through != 2 || len(fr.Pending) != 0 {
		t.Fatalf("after commit: key %q position %d frontier %+v; want key 10 at 1, through 2, nothing pending",
			recs[0].Event.Key, recs[0].Event.Position, fr)
	}

	// Rolled back: id 3 never appears; the hole goes once every
	// transaction that could own it has ended.
	exec(t, a, `BEGIN`, `INSERT INTO a VALUES (12, 'doomed')`) // id 3
	exec(t, b, `INSERT INTO a VALUES (13, 'kept')`)            // id 4
	recs, fr = readN(t, r, 1, 20*time.Second)
	if recs[0].Event.Key != "13" || !reflect.DeepEqual(fr.Pending, []uint64{3}) {
		t.Fatalf("before rollback: key %q frontier %+v; want key 13, pending [3]", recs[0].Event.Key, fr)
	}
	exec(t, a, `ROLLBACK`)
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		bt, err := r.Read(rctx, 100)
		if err != nil {
			t.Fatalf("hole of a rolled-back transaction never dropped: frontier %+v: %v", r.Frontier(), err)
		}
		if len(bt.Records) != 0 {
			t.Fatalf("unexpected records %v", positions(bt.Records))
		}
		if len(bt.Frontier.Pending) == 0 {
			if bt.Frontier.Through != 4 {
				t.Fatalf("frontier %+v, want through 4", bt.Frontier)
			}
			break
		}
	}
}

// TestHoleOwnerAboveXmax: the owner of a missing id may have a transaction
// id at or above the reading snapshot's xmax (xmax is only "latest completed
// + 1"), so xmax cannot stamp a hole. Here V takes its xid first, T takes a
// higher one and draws the lower change-log id, V commits: with no other
// activity the snapshot's xmin and xmax both equal T's xid. The hole must
// stay until T ends.
func TestHoleOwnerAboveXmax(t *testing.T) {
	t.Parallel()
	dsn, conn := scratch(t)
	installA(t, conn)
	v, tt := connect(t, dsn), connect(t, dsn)
	exec(t, v, `BEGIN`, `SELECT pg_current_xact_id()`)
	exec(t, tt, `BEGIN`, `INSERT INTO a VALUES (1, 'owner')`) // id 1, the higher xid
	exec(t, v, `INSERT INTO a VALUES (2, 'v')`, `COMMIT`)     // id 2

	r := openReader(t, Config{Name: "pg", DSN: dsn, PollInterval: 20 * time.Millisecond}, source.Cursor{})
	recs, _ := readN(t, r, 1, 20*time.Second)
	if recs[0].Event.Position != 2 {
		t.Fatalf("first read: position %d", recs[0].Event.Position)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	b, err := r.Read(ctx, 10) // many polls while T is still open
	cancel()
	if err == nil {
		t.Fatalf("read returned %d records and frontier %+v while the owner of id 1 is still open", len(b.Records), b.Frontier)
	}
	if fr := r.Frontier(); !reflect.DeepEqual(fr.Pending, []uint64{1}) {
		t.Fatalf("hole of a running transaction dropped: frontier %+v", fr)
	}
	exec(t, tt, `COMMIT`)
	recs, _ = readN(t, r, 1, 20*time.Second)
	if recs[0].Event.Position != 1 {
		t.Fatalf("after commit: position %d, want 1", recs[0].Event.Position)
	}
}

// TestResumeFromCursor round-trips a cursor through the Store and checks
// that a reader opened from it delivers exactly the pending ids and the rows
// above Through, in order.
func TestResumeFromCursor(t *testing.T) {
	t.Parallel()
	dsn, conn := scratch(t)
	installA(t, conn)
	ctx := context.Background()
	for i := 1; i <= 8; i++ {
		exec(t, conn, fmt.Sprintf(`INSERT INTO a VALUES (%d, 'x')`, i))
	}
	st, err := OpenStore(ctx, dsn, "")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, ok, err := st.LoadCursor(ctx, "pg", "g"); ok || err != nil {
		t.Fatalf("cursor before any save: ok %v err %v", ok, err)
	}
	if err := st.SaveCursor(ctx, "pg", "g", source.Cursor{Through: 5, Pending: []uint64{4, 2, 4, 9}}); err != nil {
		t.Fatal(err)
	}
	cur, ok, err := st.LoadCursor(ctx, "pg", "g")
	if err != nil || !ok {
		t.Fatalf("load cursor: ok %v err %v", ok, err)
	}
	if want := (source.Cursor{Through: 5, Pending: []uint64{2, 4}}); !reflect.DeepEqual(cur, want) {
		t.Fatalf("loaded cursor %+v, want %+v (normalized)", cur, want)
	}
	r := openReader(t, Config{Name: "pg", DSN: dsn, PollInterval: 50 * time.Millisecond}, cur)
	recs, fr := readN(t, r, 5, 20*time.Second)
	if got := positions(recs); !reflect.DeepEqual(got, []uint64{2, 4, 6, 7, 8}) {
		t.Fatalf("positions %v, want [2 4 6 7 8]", got)
	}
	if fr.Through != 8 || len(fr.Pending) != 0 {
		t.Fatalf("frontier %+v", fr)
	}
}

// TestNotifyWakesReader: with a 30 s poll interval, a committed row still
// arrives within moments, because the commit's NOTIFY wakes the reader.
func TestNotifyWakesReader(t *testing.T) {
	t.Parallel()
	dsn, conn := scratch(t)
	installA(t, conn)
	r := openReader(t, Config{Name: "pg", DSN: dsn, PollInterval: 30 * time.Second}, source.Cursor{})
	wrote := make(chan error, 1)
	go func() {
		time.Sleep(300 * time.Millisecond) // the reader is waiting by now
		_, err := conn.Exec(context.Background(), `INSERT INTO a VALUES (1, 'wake')`)
		wrote <- err
	}()
	start := time.Now()
	recs, _ := readN(t, r, 1, 10*time.Second)
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("row arrived after %v; NOTIFY did not wake the reader", d)
	}
	if recs[0].Event.Key != "1" {
		t.Fatalf("got key %q", recs[0].Event.Key)
	}
	t.Logf("row arrived %v after the reader started waiting", time.Since(start))
}

// TestReconnect kills the reader's backend again and again while writers
// commit rows. With one writer every row arrives exactly once and in id
// order. With several concurrent writers whose transactions overlap (so
// ids commit out of order and holes appear), every committed row still
// arrives exactly once, and each key's changes arrive in order.
func TestReconnect(t *testing.T) {
	t.Parallel()
	for _, writers := range []int{1, 4} {
		t.Run(fmt.Sprintf("writers=%d", writers), func(t *testing.T) {
			t.Parallel()
			testReconnect(t, writers)
		})
	}
}

func testReconnect(t *testing.T, writers int) {
	dsn, conn := scratch(t)
	installA(t, conn)
	const perWriter = 150 // transactions; each inserts 10 rows and updates the writer's counter row
	for w := range writers {
		exec(t, conn, fmt.Sprintf(`INSERT INTO a VALUES (%d, '0')`, -w-1))
	}
	name := fmt.Sprintf("pg_reconnect_%d", writers)
	r := openReader(t, Config{Name: name, DSN: dsn, PollInterval: 50 * time.Millisecond,
		ReconnectMin: 10 * time.Millisecond, ReconnectMax: 200 * time.Millisecond}, source.Cursor{Through: uint64(writers)})

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, writers+1)
	for w := range writers {
		wc, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() { // the workload: overlapping small transactions
			defer wg.Done()
			defer wc.Close(context.Background())
			for i := range perWriter {
				base := (w*perWriter + i) * 10
				err := pgx.BeginFunc(ctx, wc, func(tx pgx.Tx) error {
					if _, err := tx.Exec(ctx, `INSERT INTO a SELECT g, 'w' FROM generate_series($1::int, $1::int + 4) g`, base); err != nil {
						return err
					}
					time.Sleep(time.Duration(w) * time.Millisecond) // hold ids while others commit
					if _, err := tx.Exec(ctx, `UPDATE a SET v = $2 WHERE id = $1`, -w-1, fmt.Sprint(i+1)); err != nil {
						return err
					}
					_, err := tx.Exec(ctx, `INSERT INTO a SELECT g, 'w' FROM generate_series($1::int, $1::int + 3) g`, base+5)
					return err
				})
				if err != nil {
					errs <- fmt.Errorf("writer %d: %w", w, err)
					return
				}
				time.Sleep(time.Millisecond)
			}
		}()
	}
	kills := 0
	stopKiller := make(chan struct{})
	killerDone := make(chan struct{})
	kc, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close(context.Background())
	go func() { // the fault: terminate the reader's backend
		defer close(killerDone)
		tick := time.NewTicker(30 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopKiller:
				return
			case <-tick.C:
				var n int
				if err := kc.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`, "observer-reader:"+name).Scan(&n); err == nil {
					kills += n
				}
			}
		}
	}()
	writersDone := make(chan struct{})
	go func() { wg.Wait(); close(writersDone) }()

	total := writers * perWriter * 10
	var got []source.Record
	seen := map[uint64]bool{}
	for len(got) < total {
		b, err := r.Read(ctx, 97)
		if err != nil {
			t.Fatalf("read after %d of %d rows: %v (frontier %+v)", len(got), total, err, r.Frontier())
		}
		for _, rec := range b.Records {
			if rec.DecodeErr != nil {
				t.Fatalf("decode: %v", rec.DecodeErr)
			}
			if seen[rec.Event.Position] {
				t.Fatalf("position %d delivered twice", rec.Event.Position)
			}
			seen[rec.Event.Position] = true
			got = append(got, rec)
		}
	}
	<-writersDone
	close(stopKiller)
	<-killerDone
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	var committed []uint64
	rows, err := conn.Query(context.Background(), `SELECT id FROM observer.change_log WHERE id > $1 ORDER BY id`, writers)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		committed = append(committed, uint64(id))
	}
	delivered := positions(got)
	sorted := slices.Sorted(slices.Values(delivered))
	if !reflect.DeepEqual(sorted, committed) {
		t.Fatalf("delivered %d positions, committed %d: sets differ", len(delivered), len(committed))
	}
	if writers == 1 && !slices.IsSorted(delivered) {
		t.Fatalf("one writer: positions not delivered in order")
	}
	last := map[string]uint64{} // per key: the last position delivered
	for _, rec := range got {
		k := rec.Event.Key
		if p, ok := last[k]; ok && p > rec.Event.Position {
			t.Fatalf("key %s: position %d delivered after %d", k, rec.Event.Position, p)
		}
		last[k] = rec.Event.Position
	}
	if kills < 5 {
		t.Fatalf("only %d backends terminated; the test did not exercise reconnects", kills)
	}
	outOfOrder := 0
	for i := 1; i < len(delivered); i++ {
		if delivered[i] < delivered[i-1] {
			outOfOrder++
		}
	}
	t.Logf("%d rows delivered exactly once across %d terminated connections; %d delivered after a higher id (holes)", total, kills, outOfOrder)
}

// TestOpenErrors: Open fails at once for what retrying cannot fix.
func TestOpenErrors(t *testing.T) {
	t.Parallel()
	dsn, _ := scratch(t)
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no change log", Config{Name: "pg", DSN: dsn}, `change-log table "observer"."change_log" does not exist`},
		{"bad dsn", Config{Name: "pg", DSN: "postgres://[::1"}, `postgres source "pg"`},
		{"bad mode", Config{Name: "pg", DSN: dsn, Mode: "binlog"}, `mode "binlog"`},
		{"no name", Config{DSN: dsn}, `name is empty`},
		{"fraiseql without table", Config{Name: "pg", DSN: dsn, Mode: ModeFraiseQL}, `"core"."tb_entity_change_log" does not exist`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			r := New(c.cfg, testLogger(t))
			defer r.Close()
			err := r.Open(ctx, source.Cursor{})
			if err == nil || !strings.Contains(err.Error(), c.want) || errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("got %v, want an immediate error containing %q", err, c.want)
			}
		})
	}
}

// TestFraiseQL reads a FraiseQL-shaped core.tb_entity_change_log.
func TestFraiseQL(t *testing.T) {
	t.Parallel()
	dsn, conn := scratch(t)
	exec(t, conn,
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
		`INSERT INTO core.tb_entity_change_log (object_type, modification_type, object_id, object_data, tenant_id, trace_context) VALUES
			('Order', 'INSERT', '11111111-1111-1111-1111-111111111111', '{"total": 9.99}', '22222222-2222-2222-2222-222222222222',
			 '{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}')`,
		`INSERT INTO core.tb_entity_change_log (object_type, modification_type, object_id, object_data, object_data_before, updated_fields) VALUES
			('Order', 'update', '11111111-1111-1111-1111-111111111111', '{"total": 19.99}', '{"total": 9.99}', '{total}')`,
		`INSERT INTO core.tb_entity_change_log (object_type, modification_type, object_id) VALUES ('Order', 'NOOP', '11111111-1111-1111-1111-111111111111')`,
		`INSERT INTO core.tb_entity_change_log (object_type, modification_type, object_id, object_data) VALUES
			('Order', 'delete', '11111111-1111-1111-1111-111111111111', '{"total": 19.99}')`,
		`INSERT INTO core.tb_entity_change_log (object_type, modification_type, object_id) VALUES ('Order', 'UPSERT', '11111111-1111-1111-1111-111111111111')`,
	)
	r := openReader(t, Config{Name: "fq", DSN: dsn, Mode: ModeFraiseQL, PollInterval: 50 * time.Millisecond}, source.Cursor{})
	recs, fr := readN(t, r, 4, 20*time.Second)
	if got := positions(recs); !reflect.DeepEqual(got, []uint64{1, 2, 4, 5}) {
		t.Fatalf("positions %v, want [1 2 4 5] (3 is a NOOP)", got)
	}
	if fr.Through != 5 {
		t.Fatalf("frontier %+v", fr)
	}
	ins, upd, del, bad := recs[0].Event, recs[1].Event, recs[2].Event, recs[3]
	if ins.Op != "INSERT" || ins.Entity != "Order" || ins.Key != "11111111-1111-1111-1111-111111111111" ||
		ins.Tenant != "22222222-2222-2222-2222-222222222222" || ins.Trace == nil || ins.Trace.Traceparent == "" || ins.After["total"] == nil {
		t.Errorf("insert: %+v trace %+v", ins, ins.Trace)
	}
	if upd.Op != "UPDATE" || !reflect.DeepEqual(upd.ChangedFields, []string{"total"}) || upd.Before["total"] == nil {
		t.Errorf("update: %+v", upd)
	}
	if del.Op != "DELETE" || del.After != nil || del.Before["total"] == nil {
		t.Errorf("delete: before %v after %v", del.Before, del.After)
	}
	if bad.DecodeErr == nil || !strings.Contains(bad.DecodeErr.Error(), `op "UPSERT"`) {
		t.Errorf("unknown op: %v", bad.DecodeErr)
	}
	for _, rec := range recs[:3] {
		if rec.DecodeErr != nil {
			t.Errorf("decode %d: %v", rec.Event.Position, rec.DecodeErr)
		}
	}
}
