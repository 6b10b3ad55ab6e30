package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// PruneResult says what Prune did.
type PruneResult struct {
	// Deleted is the number of change-log rows removed.
	Deleted int64
	// Bound is the lowest checkpoint over every source and group in the
	// file; HeldBy names its "source/group".
	Bound  int64
	HeldBy string
	// Kept counts pending positions at or below Bound that were kept.
	Kept int64
}

// Prune deletes the change-log rows that every checkpoint in the file has
// passed: ids at or below the lowest checkpoint, except ids a checkpoint
// still lists as pending. With no checkpoint at all nothing is deleted.
// It runs in one write transaction, so no checkpoint moves meanwhile.
func Prune(ctx context.Context, db *sql.DB) (PruneResult, error) {
	var res PruneResult
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return res, fmt.Errorf("prune change log: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after commit
	err = tx.QueryRowContext(ctx, `SELECT json_extract(cursor, '$.through'), source || '/' || grp FROM observer_checkpoint
		ORDER BY json_extract(cursor, '$.through'), source, grp LIMIT 1`).Scan(&res.Bound, &res.HeldBy)
	if errors.Is(err, sql.ErrNoRows) {
		return res, nil
	}
	if err != nil {
		return res, fmt.Errorf("prune change log: lowest checkpoint: %w", err)
	}
	const pending = `SELECT DISTINCT p.value FROM observer_checkpoint c, json_each(c.cursor, '$.pending') p`
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM (`+pending+`) k WHERE k.value <= ?`, res.Bound).Scan(&res.Kept); err != nil {
		return res, fmt.Errorf("prune change log: pending: %w", err)
	}
	r, err := tx.ExecContext(ctx, `DELETE FROM observer_change_log WHERE id <= ? AND id NOT IN (`+pending+`)`, res.Bound)
	if err != nil {
		return res, fmt.Errorf("prune change log: %w", err)
	}
	if res.Deleted, err = r.RowsAffected(); err != nil {
		return res, fmt.Errorf("prune change log: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return res, fmt.Errorf("prune change log: commit: %w", err)
	}
	return res, nil
}
