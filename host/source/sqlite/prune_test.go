package sqlite

import (
	"context"
	"slices"
	"testing"

	"github.com/fraiseql/observer/host/source"
)

func TestPrune(t *testing.T) {
	ctx := context.Background()
	path, db := setup(t, `CREATE TABLE item (id INTEGER PRIMARY KEY)`)
	if err := Install(ctx, db, InstallOptions{Tables: []TableSpec{{Name: "item"}}}); err != nil {
		t.Fatal(err)
	}
	if res, err := Prune(ctx, db); err != nil || res.Deleted != 0 {
		t.Fatalf("prune with no checkpoint: %+v, %v; want nothing deleted", res, err)
	}
	exec(t, db, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10) INSERT INTO item (id) SELECT i FROM n`)
	st, err := OpenStore(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.SaveCursor(ctx, "main", "fast", source.Cursor{Through: 8, Pending: []uint64{3}}); err != nil {
		t.Fatal(err)
	}
	if err := st.SaveCursor(ctx, "other", "slow", source.Cursor{Through: 6}); err != nil {
		t.Fatal(err)
	}
	res, err := Prune(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if res.Deleted != 5 || res.Bound != 6 || res.HeldBy != "other/slow" || res.Kept != 1 {
		t.Errorf("prune = %+v, want 5 deleted below 6 held by other/slow, 1 pending kept", res)
	}
	var left []int64
	rows, err := db.Query(`SELECT id FROM observer_change_log ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int64
		_ = rows.Scan(&id)
		left = append(left, id)
	}
	rows.Close()
	if want := []int64{3, 7, 8, 9, 10}; !slices.Equal(left, want) {
		t.Errorf("change log after prune = %v, want %v", left, want)
	}
}
