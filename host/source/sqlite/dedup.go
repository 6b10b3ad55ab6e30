package sqlite

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/fraiseql/observer/host/source"
)

var _ source.DedupStore = (*Store)(nil)

// dedupOnce guards the CREATE of the dedup table, made on first use so that
// databases of older versions gain it without a migration step.
type dedupOnce struct {
	once sync.Once
	err  error
}

func (s *Store) ensureDedup(ctx context.Context) error {
	s.dedup.once.Do(func() {
		for _, q := range []string{
			`CREATE TABLE IF NOT EXISTS observer_done (
				source   TEXT NOT NULL,
				grp      TEXT NOT NULL,
				position INTEGER NOT NULL,
				observer TEXT NOT NULL,
				event_id TEXT NOT NULL,
				outcome  TEXT NOT NULL,
				done_at  TEXT NOT NULL,
				PRIMARY KEY (source, grp, position, observer)
			)`,
			`CREATE INDEX IF NOT EXISTS observer_done_by_time ON observer_done (source, grp, done_at)`,
		} {
			if _, err := s.db.ExecContext(ctx, q); err != nil {
				s.dedup.err = err
				return
			}
		}
	})
	if s.dedup.err != nil {
		return fmt.Errorf("create dedup table observer_done: %w", s.dedup.err)
	}
	return nil
}

// MaxDone returns the highest position recorded for (src, group).
func (s *Store) MaxDone(ctx context.Context, src, group string) (uint64, error) {
	if err := s.ensureDedup(ctx); err != nil {
		return 0, err
	}
	var p *int64
	if err := s.db.QueryRowContext(ctx, `SELECT max(position) FROM observer_done WHERE source = ? AND grp = ?`, src, group).Scan(&p); err != nil {
		return 0, fmt.Errorf("dedup: highest position of source %q group %q: %w", src, group, err)
	}
	if p == nil {
		return 0, nil
	}
	return uint64(*p), nil
}

// Completed returns the records of positions.
func (s *Store) Completed(ctx context.Context, src, group string, positions []uint64) ([]source.DoneRecord, error) {
	if len(positions) == 0 {
		return nil, nil
	}
	if err := s.ensureDedup(ctx); err != nil {
		return nil, err
	}
	var out []source.DoneRecord
	// SQLite limits bound parameters; 500 per statement is far below it.
	for start := 0; start < len(positions); start += 500 {
		chunk := positions[start:min(start+500, len(positions))]
		args := make([]any, 0, len(chunk)+2)
		args = append(args, src, group)
		for _, p := range chunk {
			args = append(args, int64(p))
		}
		q := `SELECT position, event_id, observer, outcome FROM observer_done WHERE source = ? AND grp = ? AND position IN (?` +
			strings.Repeat(",?", len(chunk)-1) + `)`
		rows, err := s.db.QueryContext(ctx, q, args...)
		if err != nil {
			return nil, fmt.Errorf("dedup: read records of source %q group %q: %w", src, group, err)
		}
		for rows.Next() {
			var r source.DoneRecord
			var p int64
			if err := rows.Scan(&p, &r.EventID, &r.Observer, &r.Outcome); err != nil {
				rows.Close()
				return nil, fmt.Errorf("dedup: scan record: %w", err)
			}
			r.Position = uint64(p)
			out = append(out, r)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("dedup: read records of source %q group %q: %w", src, group, err)
		}
	}
	return out, nil
}

// RecordDone stores recs in one transaction; records already present stay.
func (s *Store) RecordDone(ctx context.Context, src, group string, recs []source.DoneRecord) error {
	if len(recs) == 0 {
		return nil
	}
	if err := s.ensureDedup(ctx); err != nil {
		return err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("dedup: record completed units of source %q group %q: %w", src, group, err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after commit
	st, err := tx.PrepareContext(ctx, `INSERT INTO observer_done (source, grp, position, observer, event_id, outcome, done_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`)
	if err != nil {
		return fmt.Errorf("dedup: record completed units of source %q group %q: %w", src, group, err)
	}
	defer st.Close()
	now := time.Now().UTC().Format(time.RFC3339Nano)
	for _, r := range recs {
		if _, err := st.ExecContext(ctx, src, group, int64(r.Position), r.Observer, r.EventID, r.Outcome, now); err != nil {
			return fmt.Errorf("dedup: record event %s observer %q: %w", r.EventID, r.Observer, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("dedup: record %d completed units of source %q group %q: %w", len(recs), src, group, err)
	}
	return nil
}

// PruneDone deletes records of (src, group) older than before.
func (s *Store) PruneDone(ctx context.Context, src, group string, before time.Time) (int64, error) {
	if err := s.ensureDedup(ctx); err != nil {
		return 0, err
	}
	res, err := s.db.ExecContext(ctx, `DELETE FROM observer_done WHERE source = ? AND grp = ? AND done_at < ?`,
		src, group, before.UTC().Format(time.RFC3339Nano))
	if err != nil {
		return 0, fmt.Errorf("dedup: prune records of source %q group %q: %w", src, group, err)
	}
	return res.RowsAffected()
}
