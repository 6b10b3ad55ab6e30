package postgres

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/fraiseql/observer/host/source"
)

// TestFencedWrites checks that a checkpoint save or dead letter carrying an
// old epoch is refused with a *source.FencedError and changes nothing,
// that the current epoch writes, and that writes without an epoch are not
// fenced at all.
func TestFencedWrites(t *testing.T) {
	t.Parallel()
	dsn, conn := scratch(t)
	ctx := context.Background()
	st, err := OpenStore(ctx, dsn, "fence_state")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	// Before any epoch is issued, a fenced write is refused (epoch 0 current).
	err = st.SaveCursor(source.WithEpoch(ctx, 1), "pg", "g", source.Cursor{Through: 1})
	var fe *source.FencedError
	if !errors.As(err, &fe) || fe.Current != 0 || fe.Epoch != 1 {
		t.Fatalf("save before any epoch: %v", err)
	}

	e1, err := IssueEpoch(ctx, conn, "fence_state", "pg", "g", "holder-1")
	if err != nil || e1 != 1 {
		t.Fatalf("first epoch: %d, %v", e1, err)
	}
	old := source.WithEpoch(ctx, e1)
	if err := st.SaveCursor(old, "pg", "g", source.Cursor{Through: 10, Pending: []uint64{4}}); err != nil {
		t.Fatalf("save under the current epoch: %v", err)
	}
	e2, err := IssueEpoch(ctx, conn, "fence_state", "pg", "g", "holder-2")
	if err != nil || e2 != 2 {
		t.Fatalf("second epoch: %d, %v", e2, err)
	}
	if l, ok, err := st.CurrentLeader(ctx, "pg", "g"); err != nil || !ok || l.Epoch != 2 || l.Holder != "holder-2" {
		t.Fatalf("current leader: %+v %v %v", l, ok, err)
	}

	tests := []struct {
		name  string
		write func() error
	}{
		{"save cursor forwards", func() error {
			return st.SaveCursor(old, "pg", "g", source.Cursor{Through: 99})
		}},
		{"save cursor backwards", func() error {
			return st.SaveCursor(old, "pg", "g", source.Cursor{Through: 2})
		}},
		{"put dead letter", func() error {
			_, err := st.PutDead(old, source.DeadLetter{Source: "pg", Group: "g", Observer: "o", EventID: "pg:5", Position: 5, Stage: "effect"})
			return err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.write()
			var fe *source.FencedError
			if !errors.As(err, &fe) || !errors.Is(err, source.ErrFenced) {
				t.Fatalf("want a FencedError, got %v", err)
			}
			if fe.Epoch != 1 || fe.Current != 2 || fe.Source != "pg" || fe.Group != "g" {
				t.Fatalf("fenced error fields: %+v", fe)
			}
		})
	}
	cur, _, err := st.LoadCursor(ctx, "pg", "g")
	if err != nil || cur.Through != 10 || len(cur.Pending) != 1 {
		t.Fatalf("cursor after refused saves: %+v %v", cur, err)
	}
	if dl, err := st.ListDead(ctx, source.DeadFilter{Source: "pg"}); err != nil || len(dl) != 0 {
		t.Fatalf("dead letters after a refused write: %d %v", len(dl), err)
	}

	// The new epoch writes; another group is fenced independently.
	cur2 := source.WithEpoch(ctx, e2)
	if err := st.SaveCursor(cur2, "pg", "g", source.Cursor{Through: 12}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.PutDead(cur2, source.DeadLetter{Source: "pg", Group: "g", Observer: "o", EventID: "pg:5", Position: 5, Stage: "effect"}); err != nil {
		t.Fatal(err)
	}
	if err := st.SaveCursor(cur2, "pg", "other", source.Cursor{Through: 1}); !errors.Is(err, source.ErrFenced) {
		t.Fatalf("epoch of group g used for group other: %v", err)
	}
	// Without an epoch nothing is fenced: the behaviour without failover.
	if err := st.SaveCursor(ctx, "pg", "g", source.Cursor{Through: 13}); err != nil {
		t.Fatal(err)
	}
	if cur, _, _ := st.LoadCursor(ctx, "pg", "g"); cur.Through != 13 {
		t.Fatalf("unfenced save: %+v", cur)
	}
}

// TestFenceRace runs saves of the old epoch concurrently with the issue of
// a new one: every save must either be refused or have committed before
// the new leader loads the cursor (IssueEpoch waits for the fenced
// transactions holding the leader row), so the cursor the new leader loads
// is never overwritten by the old one afterwards.
func TestFenceRace(t *testing.T) {
	t.Parallel()
	dsn, conn := scratch(t)
	ctx := context.Background()
	st, err := OpenStore(ctx, dsn, "")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := IssueEpoch(ctx, conn, "", "pg", "g", "old"); err != nil {
		t.Fatal(err)
	}
	old := source.WithEpoch(ctx, 1)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 4 {
		wg.Go(func() {
			for i := uint64(1); ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				err := st.SaveCursor(old, "pg", "g", source.Cursor{Through: i*10 + uint64(w)})
				if errors.Is(err, source.ErrFenced) {
					return
				}
				if err != nil {
					t.Errorf("save: %v", err)
					return
				}
			}
		})
	}
	c2, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close(ctx)
	if _, err := IssueEpoch(ctx, c2, "", "pg", "g", "new"); err != nil {
		t.Fatal(err)
	}
	loaded, _, err := st.LoadCursor(ctx, "pg", "g")
	if err != nil {
		t.Fatal(err)
	}
	wg.Wait() // every writer has now been refused
	close(stop)
	after, _, err := st.LoadCursor(ctx, "pg", "g")
	if err != nil {
		t.Fatal(err)
	}
	if after.Through != loaded.Through {
		t.Fatalf("the old epoch moved the checkpoint from %d to %d after the new leader loaded it", loaded.Through, after.Through)
	}
}
