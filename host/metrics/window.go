package metrics

import (
	"slices"
	"sync/atomic"
	"time"
)

// window keeps the latest n samples of a duration in a ring of atomics:
// a writer claims a slot with one atomic add and stores into it, so
// concurrent writers never wait for each other or for a reader. A reader
// copies the ring; a slot being written during the copy shows its old or
// new value, either a real sample.
type window struct {
	next    atomic.Uint64
	samples []atomic.Int64 // nanoseconds
}

func newWindow(n int) *window { return &window{samples: make([]atomic.Int64, n)} }

func (w *window) add(d time.Duration) {
	i := w.next.Add(1) - 1
	w.samples[i%uint64(len(w.samples))].Store(int64(d))
}

// Percentiles of the samples in the window.
type Percentiles struct {
	// Count is the number of samples the figures are computed from (at
	// most the window size); Total the samples ever added.
	Count uint64        `json:"count"`
	Total uint64        `json:"total"`
	P50   time.Duration `json:"-"`
	P95   time.Duration `json:"-"`
	P99   time.Duration `json:"-"`
	Max   time.Duration `json:"-"`
}

// percentiles sorts a copy of the window and reads the nearest-rank
// percentiles: exact over the samples held.
func (w *window) percentiles() Percentiles {
	total := w.next.Load()
	n := min(total, uint64(len(w.samples)))
	if n == 0 {
		return Percentiles{}
	}
	vals := make([]int64, n)
	for i := range vals {
		vals[i] = w.samples[i].Load()
	}
	slices.Sort(vals)
	rank := func(p float64) time.Duration {
		// Nearest rank: the smallest sample ≥ p of all samples.
		k := int(p*float64(n)+0.999999999) - 1
		k = max(0, min(k, int(n)-1))
		return time.Duration(vals[k])
	}
	return Percentiles{Count: n, Total: total, P50: rank(0.50), P95: rank(0.95), P99: rank(0.99), Max: time.Duration(vals[n-1])}
}

// rateSlots is the number of one-second buckets rate keeps: a minute and
// some slack, so the last full minute is always there.
const rateSlots = 64

// rate counts events per wall-clock second in a ring of buckets, so the
// throughput over the last seconds needs no goroutine and no lock.
type rate struct {
	slots [rateSlots]rateSlot
}

type rateSlot struct {
	sec atomic.Int64 // unix second this slot counts
	n   atomic.Uint64
}

func (r *rate) init() {
	for i := range r.slots {
		r.slots[i].sec.Store(-1)
	}
}

func (r *rate) add(now time.Time) {
	s := now.Unix()
	slot := &r.slots[uint64(s)%rateSlots]
	if old := slot.sec.Load(); old != s {
		// The first writer of a new second recycles the slot. A writer
		// racing with it may lose its count: the figure is for display.
		if slot.sec.CompareAndSwap(old, s) {
			slot.n.Store(0)
		}
	}
	slot.n.Add(1)
}

// perSecond is the mean rate over the whole seconds [now−over, now): the
// current, partial second is left out.
func (r *rate) perSecond(now time.Time, over time.Duration) float64 {
	secs := int64(over / time.Second)
	if secs <= 0 {
		return 0
	}
	secs = min(secs, rateSlots-2)
	cur := now.Unix()
	var sum uint64
	for s := cur - secs; s < cur; s++ {
		slot := &r.slots[uint64(s)%rateSlots]
		if slot.sec.Load() == s {
			sum += slot.n.Load()
		}
	}
	return float64(sum) / float64(secs)
}
