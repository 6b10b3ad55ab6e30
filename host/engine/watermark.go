package engine

import (
	"slices"
	"sync"

	"github.com/fraiseql/observer/host/source"
)

// watermark turns the source's frontier and the set of unfinished events
// into the cursor to save: every position the frontier covers is finished
// except the frontier's own holes and the events still in flight.
//
// One map of in-flight positions (with a count, in case a source ever
// delivers a position twice) under one mutex: adding and removing is O(1)
// on the hot path and only a checkpoint, once per interval, walks it.
type watermark struct {
	mu         sync.Mutex
	frontier   source.Cursor
	unfinished map[uint64]int32
}

func newWatermark(start source.Cursor) *watermark {
	return &watermark{frontier: start, unfinished: make(map[uint64]int32)}
}

// add records a batch: its positions become unfinished and its frontier
// current, together, so a concurrent checkpoint sees both or neither.
func (w *watermark) add(positions []uint64, frontier source.Cursor) {
	w.mu.Lock()
	for _, p := range positions {
		w.unfinished[p]++
	}
	w.frontier = frontier
	w.mu.Unlock()
}

func (w *watermark) finish(pos uint64) {
	w.mu.Lock()
	if n := w.unfinished[pos]; n <= 1 {
		delete(w.unfinished, pos)
	} else {
		w.unfinished[pos] = n - 1
	}
	w.mu.Unlock()
}

// cursor is the checkpoint as of now.
func (w *watermark) cursor() source.Cursor {
	w.mu.Lock()
	c := source.Cursor{
		Through: w.frontier.Through,
		Pending: make([]uint64, 0, len(w.frontier.Pending)+len(w.unfinished)),
	}
	c.Pending = append(c.Pending, w.frontier.Pending...)
	for p := range w.unfinished {
		c.Pending = append(c.Pending, p)
	}
	w.mu.Unlock()
	return c.Normalize()
}

func sameCursor(a, b source.Cursor) bool {
	return a.Through == b.Through && slices.Equal(a.Pending, b.Pending)
}
