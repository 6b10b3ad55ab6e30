package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/fraiseql/observer/host/source"
)

// Leadership fencing. Each time a process becomes the leader of a (source,
// group) it takes the next epoch from the row of SCHEMA.leader
// (IssueEpoch); its checkpoint saves and dead-letter writes then carry that
// epoch (source.WithEpoch) and are made in a transaction that first reads
// the row FOR SHARE and refuses the write when the row holds another
// epoch. IssueEpoch locks the leader table EXCLUSIVE before it updates the
// row, which waits for those writes, so a write either commits before the
// new epoch exists (and the new leader, which loads the checkpoint after
// IssueEpoch, sees it) or is refused.

// writer is what the writes need from a pool or a transaction.
type writer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func leaderTable(schema string) string {
	if schema == "" {
		schema = DefaultSchema
	}
	return pgx.Identifier{schema, "leader"}.Sanitize()
}

func leaderDDL(schema string) []string {
	if schema == "" {
		schema = DefaultSchema
	}
	return []string{
		`CREATE SCHEMA IF NOT EXISTS ` + pgx.Identifier{schema}.Sanitize(),
		`CREATE TABLE IF NOT EXISTS ` + leaderTable(schema) + ` (
			source      text NOT NULL,
			grp         text NOT NULL,
			epoch       bigint NOT NULL,
			holder      text NOT NULL,
			acquired_at timestamptz NOT NULL DEFAULT now(),
			PRIMARY KEY (source, grp)
		)`,
	}
}

// IssueEpoch records holder as the leader of (src, group) and returns its
// epoch, one more than the last one issued (1 the first time). It creates
// SCHEMA.leader if it is missing.
//
// Call it on the connection that holds the leadership's advisory lock:
// if that session has died (and with it the lock), the call fails instead
// of issuing an epoch to a process that no longer leads.
func IssueEpoch(ctx context.Context, conn *pgx.Conn, schema, src, group, holder string) (int64, error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("issue leadership epoch for source %q group %q: %w", src, group, err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // no-op after commit
	for _, q := range append([]string{lockSQL}, leaderDDL(schema)...) {
		if _, err := tx.Exec(ctx, q); err != nil {
			return 0, fmt.Errorf("issue leadership epoch for source %q group %q: create %s: %w", src, group, leaderTable(schema), err)
		}
	}
	// EXCLUSIVE conflicts with the ROW SHARE lock every fenced write takes
	// (SELECT … FOR SHARE) and, unlike the row lock alone, queues fairly:
	// fenced writes arriving from now on wait behind this transaction
	// instead of starving it.
	if _, err := tx.Exec(ctx, `LOCK TABLE `+leaderTable(schema)+` IN EXCLUSIVE MODE`); err != nil {
		return 0, fmt.Errorf("issue leadership epoch for source %q group %q: lock %s: %w", src, group, leaderTable(schema), err)
	}
	var epoch int64
	err = tx.QueryRow(ctx, `INSERT INTO `+leaderTable(schema)+` AS l (source, grp, epoch, holder, acquired_at)
		VALUES ($1, $2, 1, $3, now())
		ON CONFLICT (source, grp) DO UPDATE SET epoch = l.epoch + 1, holder = excluded.holder, acquired_at = excluded.acquired_at
		RETURNING epoch`, src, group, holder).Scan(&epoch)
	if err != nil {
		return 0, fmt.Errorf("issue leadership epoch for source %q group %q: %w", src, group, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("issue leadership epoch for source %q group %q: commit: %w", src, group, err)
	}
	return epoch, nil
}

// Leader is the row of SCHEMA.leader for one (source, group).
type Leader struct {
	Epoch  int64
	Holder string
}

// CurrentLeader returns the newest epoch issued for (src, group) and its
// holder; ok is false when none has been issued.
func (s *Store) CurrentLeader(ctx context.Context, src, group string) (l Leader, ok bool, err error) {
	return LeaderOf(ctx, s.pool, s.stateSchema, src, group)
}

// fenced runs write in a transaction that first checks that epoch is the
// newest issued for (src, group), holding the leader row FOR SHARE until
// the commit.
func (s *Store) fenced(ctx context.Context, src, group, op string, epoch int64, write func(writer) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // no-op after commit
	var current int64
	err = tx.QueryRow(ctx, `SELECT epoch FROM `+leaderTable(s.stateSchema)+` WHERE source = $1 AND grp = $2 FOR SHARE`, src, group).Scan(&current)
	var pe *pgconn.PgError
	switch {
	case err == nil, errors.Is(err, pgx.ErrNoRows):
	case errors.As(err, &pe) && pe.Code == "42P01":
		// No leader table: no epoch was ever issued here.
	default:
		return fmt.Errorf("check leadership epoch: %w", err)
	}
	if current != epoch {
		return &source.FencedError{Source: src, Group: group, Op: op, Epoch: epoch, Current: current}
	}
	if err := write(tx); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// RowQuerier is a connection, pool or transaction.
type RowQuerier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// LeaderOf returns the newest epoch issued for (src, group) in schema and
// its holder, read through q; ok is false when none has been issued.
func LeaderOf(ctx context.Context, q RowQuerier, schema, src, group string) (l Leader, ok bool, err error) {
	err = q.QueryRow(ctx, `SELECT epoch, holder FROM `+leaderTable(schema)+` WHERE source = $1 AND grp = $2`, src, group).Scan(&l.Epoch, &l.Holder)
	var pe *pgconn.PgError
	switch {
	case errors.Is(err, pgx.ErrNoRows), errors.As(err, &pe) && pe.Code == "42P01": // no row, or no table yet
		return Leader{}, false, nil
	case err != nil:
		return Leader{}, false, fmt.Errorf("read leader of source %q group %q: %w", src, group, err)
	}
	return l, true, nil
}
