package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/fraiseql/observer/host/source"
)

// Inspector reads the change log of an SQLite database outside the
// reader's order: the head for lag, one event for `observer debug-event`,
// the dead-letter count. Safe for concurrent use.
type Inspector struct {
	db   *sql.DB
	name string
}

var _ source.Inspector = (*Inspector)(nil)

// NewInspector returns an Inspector of db's change log for the source named
// name. It borrows db, which the caller closes.
func NewInspector(db *sql.DB, name string) *Inspector { return &Inspector{db: db, name: name} }

// Head returns the highest id, the rows above through and the commit time
// of the first of them.
func (in *Inspector) Head(ctx context.Context, through uint64) (source.Head, error) {
	var h source.Head
	var maxID sql.NullInt64
	var oldest sql.NullString
	err := in.db.QueryRowContext(ctx, `SELECT
		(SELECT max(id) FROM observer_change_log),
		(SELECT count(*) FROM observer_change_log WHERE id > ?1),
		(SELECT commit_time FROM observer_change_log WHERE id > ?1 ORDER BY id LIMIT 1)`, int64(through)).
		Scan(&maxID, &h.Behind, &oldest)
	if err != nil {
		return source.Head{}, fmt.Errorf("sqlite source %q: head of observer_change_log: %w", in.name, err)
	}
	if maxID.Valid {
		h.Position = uint64(maxID.Int64)
	}
	if oldest.Valid {
		if t, err := time.Parse(time.RFC3339Nano, oldest.String); err == nil {
			h.OldestUnread = t
		}
	}
	return h, nil
}

// Event reads and decodes the row at position.
func (in *Inspector) Event(ctx context.Context, position uint64) (source.Record, error) {
	rows, err := scanRows(ctx, in.db, selectCols+` WHERE id = ?`, int64(position))
	if err != nil {
		return source.Record{}, fmt.Errorf("sqlite source %q: read row %d of observer_change_log: %w", in.name, position, err)
	}
	if len(rows) == 0 {
		return source.Record{}, fmt.Errorf("sqlite source %q: row %d of observer_change_log: %w", in.name, position, source.ErrNotFound)
	}
	return decodeRow(in.name, rows[0]), nil
}

// DeadCount returns the number of dead letters of (src, group).
func (in *Inspector) DeadCount(ctx context.Context, src, group string) (int64, error) {
	var n int64
	if err := in.db.QueryRowContext(ctx, `SELECT count(*) FROM observer_dead_letter WHERE source = ? AND grp = ?`, src, group).Scan(&n); err != nil {
		return 0, fmt.Errorf("count dead letters of source %q group %q: %w", src, group, err)
	}
	return n, nil
}
