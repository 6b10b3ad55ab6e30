package postgres

import (
	"context"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fraiseql/observer/host/source"
)

// Inspector reads the change log of a Reader's configuration through a
// pool, outside the reader's order: the head for lag, one event for
// `observer debug-event`, the dead-letter count. Safe for concurrent use.
type Inspector struct {
	pool  *pgxpool.Pool
	cfg   Config
	state names // where the store keeps dead letters

	once  sync.Once
	err   error
	sel   string // buildSelect's SELECT, built on first use
	idCol string
	table string
}

var _ source.Inspector = (*Inspector)(nil)

// NewInspector returns an Inspector of the change log cfg describes (the
// Reader's Config), with dead letters in stateSchema ("" means "observer").
// It borrows pool, which the caller closes.
func NewInspector(pool *pgxpool.Pool, cfg Config, stateSchema string) (*Inspector, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if stateSchema == "" {
		stateSchema = DefaultSchema
	}
	return &Inspector{pool: pool, cfg: cfg, state: namesFor(stateSchema),
		table: pgx.Identifier{cfg.Schema, cfg.Table}.Sanitize()}, nil
}

func (in *Inspector) prepare(ctx context.Context) error {
	in.once.Do(func() {
		in.sel, in.idCol, in.err = buildSelect(ctx, in.pool, &in.cfg)
	})
	return in.err
}

// Head returns the highest id, how many rows lie above through and the
// commit time of the first of them.
func (in *Inspector) Head(ctx context.Context, through uint64) (source.Head, error) {
	if err := in.prepare(ctx); err != nil {
		return source.Head{}, fmt.Errorf("postgres source %q: head: %w", in.cfg.Name, err)
	}
	var h source.Head
	var maxID *int64
	// max(id) is an index lookup; the count is bounded by the backlog.
	q := `SELECT (SELECT max(` + in.idCol + `) FROM ` + in.table + `),
		(SELECT count(*) FROM ` + in.table + ` WHERE ` + in.idCol + ` > $1)`
	if err := in.pool.QueryRow(ctx, q, int64(through)).Scan(&maxID, &h.Behind); err != nil {
		return source.Head{}, fmt.Errorf("postgres source %q: head of %s: %w", in.cfg.Name, in.table, err)
	}
	if maxID != nil {
		h.Position = uint64(*maxID)
	}
	if h.Behind > 0 {
		rows, err := scanRows(ctx, in.pool, in.sel+" WHERE "+in.idCol+" > $1 ORDER BY "+in.idCol+" LIMIT 1", int64(through))
		if err != nil {
			return source.Head{}, fmt.Errorf("postgres source %q: oldest unread row of %s: %w", in.cfg.Name, in.table, err)
		}
		if len(rows) == 1 && rows[0].CommitTime != nil {
			h.OldestUnread = *rows[0].CommitTime
		}
	}
	return h, nil
}

// Event reads and decodes the row at position.
func (in *Inspector) Event(ctx context.Context, position uint64) (source.Record, error) {
	if err := in.prepare(ctx); err != nil {
		return source.Record{}, fmt.Errorf("postgres source %q: read event: %w", in.cfg.Name, err)
	}
	rows, err := scanRows(ctx, in.pool, in.sel+" WHERE "+in.idCol+" = $1", int64(position))
	if err != nil {
		return source.Record{}, fmt.Errorf("postgres source %q: read row %d of %s: %w", in.cfg.Name, position, in.table, err)
	}
	if len(rows) == 0 {
		return source.Record{}, fmt.Errorf("postgres source %q: row %d of %s: %w", in.cfg.Name, position, in.table, source.ErrNotFound)
	}
	mode := decodeNative
	if in.cfg.Mode == ModeFraiseQL {
		mode = decodeFraiseQL
	}
	rec, skip := decodeRow(in.cfg.Name, mode, rows[0])
	if skip {
		return source.Record{}, fmt.Errorf("postgres source %q: row %d of %s is a FraiseQL NOOP (not an event): %w", in.cfg.Name, position, in.table, source.ErrNotFound)
	}
	return rec, nil
}

// DeadCount returns the number of dead letters of (src, group).
func (in *Inspector) DeadCount(ctx context.Context, src, group string) (int64, error) {
	var n int64
	err := in.pool.QueryRow(ctx, `SELECT count(*) FROM `+in.state.deadLetter+` WHERE source = $1 AND grp = $2`, src, group).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count dead letters of source %q group %q: %w", src, group, err)
	}
	return n, nil
}
