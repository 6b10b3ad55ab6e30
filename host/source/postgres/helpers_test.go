package postgres

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fraiseql/observer/host/source"
	"github.com/fraiseql/observer/internal/testenv"
)

// tlog routes slog output to the test log.
type tlog struct{ t testing.TB }

func (w tlog) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tlog{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// scratch returns a fresh database's URL and an open connection to it.
func scratch(t *testing.T) (string, *pgx.Conn) { return scratchB(t) }

func scratchB(t testing.TB) (string, *pgx.Conn) {
	t.Helper()
	dsn := testenv.Postgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect scratch database: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return dsn, conn
}

func exec(t *testing.T, conn *pgx.Conn, sqls ...string) { exec2(t, conn, sqls...) }

func exec2(t testing.TB, conn *pgx.Conn, sqls ...string) {
	t.Helper()
	for _, s := range sqls {
		if _, err := conn.Exec(context.Background(), s); err != nil {
			t.Fatalf("exec %q: %v", s, err)
		}
	}
}

// openReader opens a Reader on dsn from cur and closes it at the end.
func openReader(t *testing.T, cfg Config, cur source.Cursor) *Reader {
	t.Helper()
	r := New(cfg, testLogger(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.Open(ctx, cur); err != nil {
		t.Fatalf("open reader: %v", err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// readN reads until n records arrived or the timeout passes.
func readN(t *testing.T, r *Reader, n int, timeout time.Duration) ([]source.Record, source.Cursor) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out []source.Record
	var fr source.Cursor
	for len(out) < n {
		b, err := r.Read(ctx, 1000)
		if err != nil {
			t.Fatalf("read: got %d of %d records before: %v", len(out), n, err)
		}
		out = append(out, b.Records...)
		fr = b.Frontier
	}
	if len(out) != n {
		t.Fatalf("read %d records, want %d", len(out), n)
	}
	return out, fr
}

func positions(recs []source.Record) []uint64 {
	out := make([]uint64, len(recs))
	for i, r := range recs {
		out[i] = r.Event.Position
	}
	return out
}
