package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fraiseql/observer/host/source"
)

// Store keeps cursors and dead letters in the observer schema of a
// PostgreSQL database (by default the watched one, so the checkpoint lives
// next to the data it describes). It is safe for concurrent use.
type Store struct {
	pool  *pgxpool.Pool
	n     names
	dedup dedupOnce
	// stateSchema holds SCHEMA.leader, whose epochs fence writes (fence.go).
	stateSchema string
}

var _ source.Store = (*Store)(nil)

// OpenStore connects a pool to dsn and creates the schema's state tables if
// they are missing. schema "" means "observer".
func OpenStore(ctx context.Context, dsn, schema string) (*Store, error) {
	if schema == "" {
		schema = DefaultSchema
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "observer-store"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	s := &Store{pool: pool, n: namesFor(schema), stateSchema: schema}
	if err := s.ensure(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres store in schema %q: %w", schema, err)
	}
	return s, nil
}

func (s *Store) ensure(ctx context.Context) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // no-op after commit
	for _, q := range append([]string{lockSQL}, stateDDL(s.n)...) {
		if _, err := tx.Exec(ctx, q); err != nil {
			return err
		}
	}
	return tx.Commit(ctx)
}

// Pool returns the underlying pool (escape hatch for tests and the CLI).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// LoadCursor returns the saved cursor of (src, group).
func (s *Store) LoadCursor(ctx context.Context, src, group string) (source.Cursor, bool, error) {
	var raw []byte
	err := s.pool.QueryRow(ctx, `SELECT cursor::text FROM `+s.n.checkpoint+` WHERE source = $1 AND grp = $2`, src, group).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return source.Cursor{}, false, nil
	}
	if err != nil {
		return source.Cursor{}, false, fmt.Errorf("load cursor of source %q group %q: %w", src, group, err)
	}
	var cur source.Cursor
	if err := json.Unmarshal(raw, &cur); err != nil {
		return source.Cursor{}, false, fmt.Errorf("load cursor of source %q group %q: stored value %s is not a cursor: %w", src, group, raw, err)
	}
	return cur.Normalize(), true, nil
}

// SaveCursor stores cur (normalized) for (src, group).
func (s *Store) SaveCursor(ctx context.Context, src, group string, cur source.Cursor) error {
	b, err := json.Marshal(cur.Normalize())
	if err != nil {
		return fmt.Errorf("save cursor of source %q group %q: %w", src, group, err)
	}
	if epoch, ok := source.EpochFrom(ctx); ok {
		err = s.fenced(ctx, src, group, "save cursor", epoch, func(q writer) error {
			return s.saveCursor(ctx, q, src, group, b)
		})
	} else {
		err = s.saveCursor(ctx, s.pool, src, group, b)
	}
	if fe := (*source.FencedError)(nil); errors.As(err, &fe) {
		return fe
	}
	if err != nil {
		return fmt.Errorf("save cursor of source %q group %q: %w", src, group, err)
	}
	return nil
}

func (s *Store) saveCursor(ctx context.Context, q writer, src, group string, cur []byte) error {
	_, err := q.Exec(ctx, `INSERT INTO `+s.n.checkpoint+` (source, grp, cursor, updated_at)
		VALUES ($1, $2, $3::jsonb, now())
		ON CONFLICT (source, grp) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at`,
		src, group, string(cur))
	return err
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
		return 0, fmt.Errorf("put dead letter for event %q: position %d exceeds bigint", d.EventID, d.Position)
	}
	var created any
	if !d.CreatedAt.IsZero() {
		created = d.CreatedAt
	}
	var id int64
	put := func(q writer) error {
		return q.QueryRow(ctx, `INSERT INTO `+s.n.deadLetter+`
		(source, grp, observer, event_id, position, event, effect, stage, error, attempts, created_at)
		VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, $10, coalesce($11::timestamptz, now()))
		RETURNING id`,
			d.Source, d.Group, d.Observer, d.EventID, int64(d.Position), string(ev), d.Effect, d.Stage, d.Error, d.Attempts, created).Scan(&id)
	}
	var err error
	if epoch, ok := source.EpochFrom(ctx); ok {
		err = s.fenced(ctx, d.Source, d.Group, "put dead letter", epoch, put)
	} else {
		err = put(s.pool)
	}
	if fe := (*source.FencedError)(nil); errors.As(err, &fe) {
		return 0, fe
	}
	if err != nil {
		return 0, fmt.Errorf("put dead letter for event %q observer %q: %w", d.EventID, d.Observer, err)
	}
	return id, nil
}

const deadColumns = `id, source, grp, observer, event_id, position, event::text, effect, stage, error, attempts, created_at`

func scanDead(row pgx.Row) (source.DeadLetter, error) {
	var d source.DeadLetter
	var pos int64
	var ev string
	err := row.Scan(&d.ID, &d.Source, &d.Group, &d.Observer, &d.EventID, &pos, &ev, &d.Effect, &d.Stage, &d.Error, &d.Attempts, &d.CreatedAt)
	d.Position = uint64(pos)
	d.Event = json.RawMessage(ev)
	d.CreatedAt = d.CreatedAt.UTC()
	return d, err
}

// ListDead returns dead letters matching f, oldest first.
func (s *Store) ListDead(ctx context.Context, f source.DeadFilter) ([]source.DeadLetter, error) {
	q := `SELECT ` + deadColumns + ` FROM ` + s.n.deadLetter + `
		WHERE ($1 = '' OR source = $1) AND ($2 = '' OR grp = $2) AND ($3 = '' OR observer = $3)
		ORDER BY id`
	args := []any{f.Source, f.Group, f.Observer}
	if f.Limit > 0 {
		q += ` LIMIT $4`
		args = append(args, f.Limit)
	}
	rows, err := s.pool.Query(ctx, q, args...)
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
	d, err := scanDead(s.pool.QueryRow(ctx, `SELECT `+deadColumns+` FROM `+s.n.deadLetter+` WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
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
	tag, err := s.pool.Exec(ctx, `DELETE FROM `+s.n.deadLetter+` WHERE id = ANY($1)`, ids)
	if err != nil {
		return 0, fmt.Errorf("delete dead letters: %w", err)
	}
	return tag.RowsAffected(), nil
}

// Close closes the pool. Safe to call more than once.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}
