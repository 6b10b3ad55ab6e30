package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// PruneResult says what Prune did.
type PruneResult struct {
	// Deleted is the number of change-log rows removed.
	Deleted int64
	// Bound is the lowest checkpoint over every source and group of the
	// schema: rows at or below it were candidates. HeldBy names the
	// "source/group" whose checkpoint it is.
	Bound  int64
	HeldBy string
	// Kept counts pending positions at or below Bound that were kept.
	Kept int64
}

// Prune deletes the change-log rows that every checkpoint in the schema
// has passed: ids at or below the lowest checkpoint, except ids some
// checkpoint still lists as pending (unfinished events and holes whose
// transaction may yet commit). Every reader of this change log keeps its
// checkpoint in the same schema, so the lowest one bounds what anybody may
// still read. With no checkpoint at all nothing is deleted.
func Prune(ctx context.Context, db DB, schema string) (PruneResult, error) {
	if schema == "" {
		schema = DefaultSchema
	}
	n := namesFor(schema)
	var res PruneResult
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		// Block checkpoint writers for the duration, so no cursor moves
		// between reading the bound and deleting below it.
		if _, err := tx.Exec(ctx, `LOCK TABLE `+n.checkpoint+` IN SHARE MODE`); err != nil {
			return err
		}
		err := tx.QueryRow(ctx, `SELECT (cursor->>'through')::bigint, source || '/' || grp FROM `+n.checkpoint+`
			ORDER BY (cursor->>'through')::bigint, source, grp LIMIT 1`).Scan(&res.Bound, &res.HeldBy)
		if err == pgx.ErrNoRows {
			return nil
		}
		if err != nil {
			return err
		}
		pending := `SELECT DISTINCT (p.value)::bigint AS id FROM ` + n.checkpoint + ` c,
			jsonb_array_elements_text(coalesce(c.cursor->'pending', '[]'::jsonb)) p`
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM (`+pending+`) k WHERE k.id <= $1`, res.Bound).Scan(&res.Kept); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM `+n.changeLog+` WHERE id <= $1 AND id NOT IN (`+pending+`)`, res.Bound)
		if err != nil {
			return err
		}
		res.Deleted = tag.RowsAffected()
		return nil
	})
	if err != nil {
		return PruneResult{}, fmt.Errorf("prune change log in schema %q: %w", schema, err)
	}
	return res, nil
}
