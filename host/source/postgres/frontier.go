package postgres

import (
	"maps"
	"slices"

	"github.com/fraiseql/observer/host/source"
)

// frontier is the reader's in-memory position: the highest id read and the
// holes below it. It is pure data so the algorithm can be tested on its own;
// the reader applies a step to a copy and keeps it only if the whole step
// succeeded, so a failed read changes nothing.
type frontier struct {
	through uint64
	// holes maps a missing id to its stamp: a transaction id assigned (and
	// committed) after a snapshot in which the id was missing. 0 means not
	// stamped yet: found missing in the current step, or pending from a
	// cursor before the first read.
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
// are delivered next time). A stamped hole that is still not visible is
// dropped once the snapshot's xmin has reached its stamp: every transaction
// that could own it has ended, so it was rolled back (or the sequence value
// was never used).
func (f *frontier) resolveHoles(xmin uint64, visible map[uint64]bool, delivered []uint64) {
	for _, id := range delivered {
		delete(f.holes, id)
	}
	for id, stamp := range f.holes {
		if !visible[id] && stamp != 0 && stamp <= xmin {
			delete(f.holes, id)
		}
	}
}

// advance records new rows read above through, in id order. Every id skipped
// between consecutive rows (or between through and the first row) becomes an
// unstamped hole.
func (f *frontier) advance(ids []uint64) {
	for _, id := range ids {
		if id <= f.through {
			continue // cannot happen with "id > through ORDER BY id"
		}
		for g := f.through + 1; g < id; g++ {
			f.holes[g] = 0
		}
		f.through = id
	}
}

// unstamped reports whether some hole still needs a stamp.
func (f frontier) unstamped() bool {
	for _, stamp := range f.holes {
		if stamp == 0 {
			return true
		}
	}
	return false
}

// stamp gives every unstamped hole the stamp xid, which must have been
// assigned after the snapshot that found those holes missing, and be
// committed before any later snapshot is compared with it.
func (f *frontier) stamp(xid uint64) {
	for id, stamp := range f.holes {
		if stamp == 0 {
			f.holes[id] = xid
		}
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
