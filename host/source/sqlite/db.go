package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// BusyTimeoutMillis is how long a connection waits for another one's lock
// before failing with SQLITE_BUSY.
const BusyTimeoutMillis = 10000

// DSN turns a database file path into a modernc.org/sqlite DSN that every
// connection of the observer and of a workload writer should use: WAL
// journal (a reader never blocks the writer nor the other way round),
// a busy timeout, and BEGIN IMMEDIATE for transactions (a writer takes the
// write lock at BEGIN, so two writers queue instead of failing to upgrade).
// A path that already carries query parameters is extended, not replaced.
func DSN(path string) string {
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	return fmt.Sprintf("%s%s_pragma=busy_timeout(%d)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate",
		path, sep, BusyTimeoutMillis)
}

// Open opens path with DSN's settings and checks that it is reachable.
func Open(ctx context.Context, path string) (*sql.DB, error) {
	db, err := sql.Open("sqlite", DSN(path))
	if err != nil {
		return nil, fmt.Errorf("open sqlite database %s: %w", path, err)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite database %s: %w", path, err)
	}
	return db, nil
}

// Execer is *sql.DB, *sql.Tx or *sql.Conn.
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// WriterContext is what a writing transaction leaves for the capture
// triggers: SQLite has no session settings, so it lives in the one-row
// table observer_context.
type WriterContext struct {
	Traceparent string
	Tracestate  string
	Tenant      string
}

// SetWriterContext records wc for the rest of the transaction tx. Because
// SQLite runs one write transaction at a time, no other writer can see it;
// call ClearWriterContext before committing, or the next transaction that
// does not set its own inherits it.
//
//	tx, _ := db.BeginTx(ctx, nil)
//	sqlite.SetWriterContext(ctx, tx, sqlite.WriterContext{Traceparent: tp})
//	tx.ExecContext(ctx, `UPDATE rental SET return_date = ? WHERE rental_id = ?`, ...)
//	sqlite.ClearWriterContext(ctx, tx)
//	tx.Commit()
func SetWriterContext(ctx context.Context, tx Execer, wc WriterContext) error {
	_, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO observer_context (id, traceparent, tracestate, tenant) VALUES (1, ?, ?, ?)`,
		nullIfEmpty(wc.Traceparent), nullIfEmpty(wc.Tracestate), nullIfEmpty(wc.Tenant))
	if err != nil {
		return fmt.Errorf("set writer context: %w", err)
	}
	return nil
}

// ClearWriterContext removes what SetWriterContext recorded.
func ClearWriterContext(ctx context.Context, tx Execer) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM observer_context`); err != nil {
		return fmt.Errorf("clear writer context: %w", err)
	}
	return nil
}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// quoteIdent quotes an SQLite identifier.
func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// quoteLiteral quotes an SQLite string constant.
func quoteLiteral(s string) string { return `'` + strings.ReplaceAll(s, `'`, `''`) + `'` }
