package postgres

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/fraiseql/observer/host/source"
)

// The dedup table lives beside the checkpoint, in the store's schema. It is
// created on first use, so stores of older versions gain it without a
// migration step.

var _ source.DedupStore = (*Store)(nil)

// dedupOnce guards the CREATE of one store's dedup table.
type dedupOnce struct {
	once sync.Once
	err  error
}

func (s *Store) dedupTable() string { return s.n.schema + `.done` }

func (s *Store) ensureDedup(ctx context.Context) error {
	s.dedup.once.Do(func() {
		tx, err := s.pool.Begin(ctx)
		if err != nil {
			s.dedup.err = err
			return
		}
		defer tx.Rollback(ctx) //nolint:errcheck // no-op after commit
		for _, q := range []string{
			lockSQL,
			`CREATE TABLE IF NOT EXISTS ` + s.dedupTable() + ` (
				source   text NOT NULL,
				grp      text NOT NULL,
				position bigint NOT NULL,
				observer text NOT NULL,
				event_id text NOT NULL,
				outcome  text NOT NULL,
				done_at  timestamptz NOT NULL DEFAULT now(),
				PRIMARY KEY (source, grp, position, observer)
			)`,
			`CREATE INDEX IF NOT EXISTS done_by_time ON ` + s.dedupTable() + ` (source, grp, done_at)`,
		} {
			if _, err := tx.Exec(ctx, q); err != nil {
				s.dedup.err = err
				return
			}
		}
		s.dedup.err = tx.Commit(ctx)
	})
	if s.dedup.err != nil {
		return fmt.Errorf("create dedup table %s: %w", s.dedupTable(), s.dedup.err)
	}
	return nil
}

// MaxDone returns the highest position recorded for (src, group).
func (s *Store) MaxDone(ctx context.Context, src, group string) (uint64, error) {
	if err := s.ensureDedup(ctx); err != nil {
		return 0, err
	}
	var p *int64
	if err := s.pool.QueryRow(ctx, `SELECT max(position) FROM `+s.dedupTable()+` WHERE source = $1 AND grp = $2`, src, group).Scan(&p); err != nil {
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
	ps := make([]int64, len(positions))
	for i, p := range positions {
		ps[i] = int64(p)
	}
	rows, err := s.pool.Query(ctx, `SELECT position, event_id, observer, outcome FROM `+s.dedupTable()+`
		WHERE source = $1 AND grp = $2 AND position = ANY($3)`, src, group, ps)
	if err != nil {
		return nil, fmt.Errorf("dedup: read records of source %q group %q: %w", src, group, err)
	}
	defer rows.Close()
	var out []source.DoneRecord
	for rows.Next() {
		var r source.DoneRecord
		var p int64
		if err := rows.Scan(&p, &r.EventID, &r.Observer, &r.Outcome); err != nil {
			return nil, fmt.Errorf("dedup: scan record: %w", err)
		}
		r.Position = uint64(p)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("dedup: read records of source %q group %q: %w", src, group, err)
	}
	return out, nil
}

// RecordDone stores recs in one statement; records already present stay.
func (s *Store) RecordDone(ctx context.Context, src, group string, recs []source.DoneRecord) error {
	if len(recs) == 0 {
		return nil
	}
	if err := s.ensureDedup(ctx); err != nil {
		return err
	}
	pos := make([]int64, len(recs))
	obs := make([]string, len(recs))
	ids := make([]string, len(recs))
	outs := make([]string, len(recs))
	for i, r := range recs {
		pos[i], obs[i], ids[i], outs[i] = int64(r.Position), r.Observer, r.EventID, r.Outcome
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO `+s.dedupTable()+` (source, grp, position, observer, event_id, outcome)
		SELECT $1, $2, * FROM unnest($3::bigint[], $4::text[], $5::text[], $6::text[])
		ON CONFLICT DO NOTHING`, src, group, pos, obs, ids, outs)
	if err != nil {
		return fmt.Errorf("dedup: record %d completed units of source %q group %q: %w", len(recs), src, group, err)
	}
	return nil
}

// PruneDone deletes records of (src, group) older than before.
func (s *Store) PruneDone(ctx context.Context, src, group string, before time.Time) (int64, error) {
	if err := s.ensureDedup(ctx); err != nil {
		return 0, err
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM `+s.dedupTable()+` WHERE source = $1 AND grp = $2 AND done_at < $3`, src, group, before)
	if err != nil {
		return 0, fmt.Errorf("dedup: prune records of source %q group %q: %w", src, group, err)
	}
	return tag.RowsAffected(), nil
}
