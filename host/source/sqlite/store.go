package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/fraiseql/observer/host/source"
)

// Store keeps cursors and dead letters in the watched SQLite file
// (observer_checkpoint, observer_dead_letter). It is safe for concurrent
// use.
type Store struct {
	db    *sql.DB
	dedup dedupOnce
}

var _ source.Store = (*Store)(nil)

// OpenStore opens path and creates the state tables if they are missing.
func OpenStore(ctx context.Context, path string) (*Store, error) {
	db, err := Open(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("open sqlite store: %w", err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err == nil {
		for _, s := range stateDDL {
			if _, err = tx.ExecContext(ctx, s); err != nil {
				break
			}
		}
		if err == nil {
			err = tx.Commit()
		} else {
			_ = tx.Rollback()
		}
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite store %s: create tables: %w", path, err)
	}
	return &Store{db: db}, nil
}

// DB returns the underlying database (escape hatch for tests and the CLI).
func (s *Store) DB() *sql.DB { return s.db }

// LoadCursor returns the saved cursor of (src, group).
func (s *Store) LoadCursor(ctx context.Context, src, group string) (source.Cursor, bool, error) {
	var raw string
	err := s.db.QueryRowContext(ctx, `SELECT cursor FROM observer_checkpoint WHERE source = ? AND grp = ?`, src, group).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return source.Cursor{}, false, nil
	}
	if err != nil {
		return source.Cursor{}, false, fmt.Errorf("load cursor of source %q group %q: %w", src, group, err)
	}
	var cur source.Cursor
	if err := json.Unmarshal([]byte(raw), &cur); err != nil {
		return source.Cursor{}, false, fmt.Errorf("load cursor of source %q group %q: stored value %q is not a cursor: %w", src, group, raw, err)
	}
	return cur.Normalize(), true, nil
}

// SaveCursor stores cur (normalized) for (src, group).
func (s *Store) SaveCursor(ctx context.Context, src, group string, cur source.Cursor) error {
	b, err := json.Marshal(cur.Normalize())
	if err != nil {
		return fmt.Errorf("save cursor of source %q group %q: %w", src, group, err)
	}
	save := func(q Execer) error {
		_, err := q.ExecContext(ctx, `INSERT INTO observer_checkpoint (source, grp, cursor, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (source, grp) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at`,
			src, group, string(b), time.Now().UTC().Format(time.RFC3339Nano))
		return err
	}
	if epoch, ok := source.EpochFrom(ctx); ok {
		err = s.fenced(ctx, src, group, "save cursor", epoch, save)
	} else {
		err = save(s.db)
	}
	if fe := (*source.FencedError)(nil); errors.As(err, &fe) {
		return fe
	}
	if err != nil {
		return fmt.Errorf("save cursor of source %q group %q: %w", src, group, err)
	}
	return nil
}

// PutDead parks d and returns its id. CreatedAt defaults to now.
func (s *Store) PutDead(ctx context.Context, d source.DeadLetter) (int64, error) {
	ev := d.Event
	if len(strings.TrimSpace(string(ev))) == 0 {
		ev = json.RawMessage("null")
	}
	if !json.Valid(ev) {
		return 0, fmt.Errorf("put dead letter for event %q: event is not valid JSON", d.EventID)
	}
	if d.Position > math.MaxInt64 {
		return 0, fmt.Errorf("put dead letter for event %q: position %d exceeds SQLite's integer range", d.EventID, d.Position)
	}
	created := d.CreatedAt
	if created.IsZero() {
		created = time.Now()
	}
	var id int64
	put := func(q Execer) error {
		res, err := q.ExecContext(ctx, `INSERT INTO observer_dead_letter
		(source, grp, observer, event_id, position, event, effect, stage, error, attempts, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			d.Source, d.Group, d.Observer, d.EventID, int64(d.Position), string(ev), d.Effect, d.Stage, d.Error, d.Attempts,
			created.UTC().Format(time.RFC3339Nano))
		if err != nil {
			return err
		}
		id, err = res.LastInsertId()
		return err
	}
	var err error
	if epoch, ok := source.EpochFrom(ctx); ok {
		err = s.fenced(ctx, d.Source, d.Group, "put dead letter", epoch, put)
	} else {
		err = put(s.db)
	}
	if fe := (*source.FencedError)(nil); errors.As(err, &fe) {
		return 0, fe
	}
	if err != nil {
		return 0, fmt.Errorf("put dead letter for event %q observer %q: %w", d.EventID, d.Observer, err)
	}
	return id, nil
}

const deadColumns = `id, source, grp, observer, event_id, position, event, effect, stage, error, attempts, created_at`

type scanner interface{ Scan(dest ...any) error }

func scanDead(sc scanner) (source.DeadLetter, error) {
	var d source.DeadLetter
	var pos int64
	var ev, created string
	if err := sc.Scan(&d.ID, &d.Source, &d.Group, &d.Observer, &d.EventID, &pos, &ev, &d.Effect, &d.Stage, &d.Error, &d.Attempts, &created); err != nil {
		return d, err
	}
	d.Position = uint64(pos)
	d.Event = json.RawMessage(ev)
	t, err := time.Parse(time.RFC3339Nano, created)
	if err != nil {
		return d, fmt.Errorf("dead letter %d: created_at %q: %w", d.ID, created, err)
	}
	d.CreatedAt = t
	return d, nil
}

// ListDead returns dead letters matching f, oldest first.
func (s *Store) ListDead(ctx context.Context, f source.DeadFilter) ([]source.DeadLetter, error) {
	q := `SELECT ` + deadColumns + ` FROM observer_dead_letter
		WHERE (?1 = '' OR source = ?1) AND (?2 = '' OR grp = ?2) AND (?3 = '' OR observer = ?3) ORDER BY id`
	args := []any{f.Source, f.Group, f.Observer}
	if f.Limit > 0 {
		q += ` LIMIT ?4`
		args = append(args, f.Limit)
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	defer rows.Close()
	var out []source.DeadLetter
	for rows.Next() {
		d, err := scanDead(rows)
		if err != nil {
			return nil, fmt.Errorf("list dead letters: %w", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	return out, nil
}

// GetDead returns one dead letter, or an error wrapping source.ErrNotFound.
func (s *Store) GetDead(ctx context.Context, id int64) (source.DeadLetter, error) {
	d, err := scanDead(s.db.QueryRowContext(ctx, `SELECT `+deadColumns+` FROM observer_dead_letter WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return source.DeadLetter{}, fmt.Errorf("dead letter %d: %w", id, source.ErrNotFound)
	}
	if err != nil {
		return source.DeadLetter{}, fmt.Errorf("get dead letter %d: %w", id, err)
	}
	return d, nil
}

// DeleteDead removes the given dead letters and returns how many existed.
func (s *Store) DeleteDead(ctx context.Context, ids ...int64) (int64, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	var total int64
	for chunk := range slices.Chunk(ids, 500) {
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		res, err := s.db.ExecContext(ctx, `DELETE FROM observer_dead_letter WHERE id IN (`+strings.TrimSuffix(strings.Repeat("?,", len(chunk)), ",")+`)`, args...)
		if err != nil {
			return total, fmt.Errorf("delete dead letters: %w", err)
		}
		n, _ := res.RowsAffected()
		total += n
	}
	return total, nil
}

// Close closes the database. Safe to call more than once.
func (s *Store) Close() error { return s.db.Close() }

// CapturedTables returns the tables `observer capture install` registered
// in this database, sorted.
func (s *Store) CapturedTables(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT table_name FROM observer_captured_table ORDER BY table_name`)
	if err != nil {
		return nil, fmt.Errorf("list captured tables: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return nil, fmt.Errorf("list captured tables: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}
