package postgres

import (
	"maps"
	"slices"

	"github.com/fraiseql/observer/host/source"
)

// snapshot is the part of a pg_snapshot the hole algorithm needs: every
// transaction id below xmin has ended, and every id at or above xmax had not
// started when the snapshot was taken.
type snapshot struct {
	xmin, xmax uint64
}

// frontier is the reader's in-memory position: the highest id read and the
// holes below it. It is pure data so the algorithm can be tested on its own;
// the reader applies a step to a copy and keeps it only if the read
// transaction succeeded, so a failed read changes nothing.
type frontier struct {
	through uint64
	// holes maps a missing id to the xmax of the first snapshot that saw it
	// missing; 0 means not observed by a snapshot yet (pending ids from a
	// cursor, until the first read).
	holes map[uint64]uint64
}

func newFrontier(cur source.Cursor) frontier {
	cur = cur.Normalize()
	f := frontier{through: cur.Through, holes: make(map[uint64]uint64, len(cur.Pending))}
	for _, id := range cur.Pending {
		f.holes[id] = 0
	}
	return f
}

func (f frontier) clone() frontier {
	return frontier{through: f.through, holes: maps.Clone(f.holes)}
}

func (f frontier) holeIDs() []uint64 {
	ids := slices.Collect(maps.Keys(f.holes))
	slices.Sort(ids)
	return ids
}

func (f frontier) cursor() source.Cursor {
	ids := f.holeIDs()
	if len(ids) == 0 {
		ids = nil
	}
	return source.Cursor{Through: f.through, Pending: ids}
}

// resolveHoles applies one snapshot's re-check of the holes. delivered are
// the hole ids being returned now; visible are all hole ids the snapshot can
// see (a superset of delivered when the batch is full: those stay holes and
// are delivered next time). A hole not visible is stamped with the
// snapshot's xmax if it had no stamp, and dropped once xmin has reached its
// stamp: every transaction that could own it has ended, so it was rolled
// back (or the sequence value was never used).
func (f *frontier) resolveHoles(s snapshot, visible map[uint64]bool, delivered []uint64) {
	for _, id := range delivered {
		delete(f.holes, id)
	}
	for id, x := range f.holes {
		if visible[id] {
			continue
		}
		if x == 0 {
			x = s.xmax
			f.holes[id] = x
		}
		if x <= s.xmin {
			delete(f.holes, id)
		}
	}
}

// advance records new rows read above through, in id order. Every id skipped
// between consecutive rows becomes a hole stamped with the snapshot's xmax;
// when the snapshot has no transaction in progress (xmin = xmax) a skipped id
// can never appear, so none is recorded.
func (f *frontier) advance(s snapshot, ids []uint64) {
	for _, id := range ids {
		if id <= f.through {
			continue // cannot happen with "id > through ORDER BY id"
		}
		if s.xmax > s.xmin {
			for g := f.through + 1; g < id; g++ {
				f.holes[g] = s.xmax
			}
		}
		f.through = id
	}
}

// equal reports whether two frontiers hold the same position and holes.
func (f frontier) equal(g frontier) bool {
	if f.through != g.through || len(f.holes) != len(g.holes) {
		return false
	}
	for id := range f.holes {
		if _, ok := g.holes[id]; !ok {
			return false
		}
	}
	return true
}
