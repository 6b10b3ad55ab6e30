package engine

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/fraiseql/observer/host/source"
)

// Dedup: the engine remembers, durably, which (event, observer) units
// finished, so that an event delivered again after a crash (it finished,
// but the process died before the checkpoint passed it) does not repeat
// that observer's effects or dead letters. The records are written in
// batches a few milliseconds after the units finish; a crash inside that
// window can still repeat the work of those units, which is what the
// effects' idempotency keys are for.
//
// Only events at or below the highest recorded position (read once at
// start) can be re-deliveries, so in steady state a batch costs no lookup.

// dedupFlushInterval is how often finished units are recorded.
const dedupFlushInterval = 50 * time.Millisecond

// dedupMaxPending bounds the records waiting for a store that keeps
// failing; beyond it the oldest are dropped (they only save duplicates).
const dedupMaxPending = 100_000

// DefaultDedupRetention is how long records are kept when
// Config.DedupRetention is zero.
const DefaultDedupRetention = 7 * 24 * time.Hour

// recorder batches DoneRecords into the DedupStore.
type recorder struct {
	store         source.DedupStore
	src, group    string
	log           *slog.Logger
	mu            sync.Mutex
	pending       []source.DoneRecord
	dropped       int
	failing       bool
	flushInterval time.Duration
}

func (rc *recorder) add(r source.DoneRecord) {
	rc.mu.Lock()
	if len(rc.pending) >= dedupMaxPending {
		n := copy(rc.pending, rc.pending[1:])
		rc.pending = rc.pending[:n]
		rc.dropped++
	}
	rc.pending = append(rc.pending, r)
	rc.mu.Unlock()
}

// flush writes what is pending; on failure the records stay for the next.
func (rc *recorder) flush(ctx context.Context) error {
	rc.mu.Lock()
	batch := rc.pending
	rc.pending = nil
	dropped := rc.dropped
	rc.dropped = 0
	rc.mu.Unlock()
	if dropped > 0 {
		rc.log.LogAttrs(ctx, slog.LevelWarn, "dedup: records dropped while the store was failing; their units may repeat after a crash",
			slog.Int("dropped", dropped))
	}
	if len(batch) == 0 {
		return nil
	}
	err := rc.store.RecordDone(ctx, rc.src, rc.group, batch)
	if err != nil {
		rc.mu.Lock()
		rc.pending = append(batch, rc.pending...)
		rc.mu.Unlock()
		if !rc.failing && ctx.Err() == nil {
			rc.log.LogAttrs(ctx, slog.LevelWarn, "dedup: cannot record finished units; will retry",
				slog.Int("records", len(batch)), slog.String(logError, err.Error()))
		}
		rc.failing = true
		return err
	}
	rc.failing = false
	return nil
}

// loop flushes every flushInterval until ctx ends, and prunes records
// older than retention every hour (and once at start).
func (rc *recorder) loop(ctx context.Context, retention time.Duration) {
	t := time.NewTicker(rc.flushInterval)
	defer t.Stop()
	var lastPrune time.Time
	for {
		if time.Since(lastPrune) >= time.Hour {
			lastPrune = time.Now()
			n, err := rc.store.PruneDone(ctx, rc.src, rc.group, time.Now().Add(-retention))
			switch {
			case err != nil && ctx.Err() == nil:
				rc.log.LogAttrs(ctx, slog.LevelWarn, "dedup: prune failed", slog.String(logError, err.Error()))
			case n > 0:
				rc.log.LogAttrs(ctx, slog.LevelInfo, "dedup: pruned old records", slog.Int64("records", n), slog.Duration("retention", retention))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = rc.flush(ctx)
		}
	}
}

// completedUnits looks up which units of the batch's events finished in an
// earlier run. It returns nil when no event can be a re-delivery. A store
// that fails is retried briefly; after that the batch runs without dedup
// (at-least-once still holds; duplicates carry the same idempotency keys).
func (r *run) completedUnits(ctx context.Context, positions []uint64) map[uint64][]string {
	if r.rec == nil || r.e.cfg.Replay || len(positions) == 0 {
		return nil
	}
	var maybe []uint64
	for _, p := range positions {
		if p <= r.maxDone {
			maybe = append(maybe, p)
		}
	}
	if len(maybe) == 0 {
		return nil
	}
	e := r.e
	var recs []source.DoneRecord
	var err error
	delay := 50 * time.Millisecond
	for try := 1; try <= 4; try++ {
		recs, err = e.cfg.Dedup.Completed(ctx, e.src.Name(), e.cfg.Group, maybe)
		if err == nil || ctx.Err() != nil {
			break
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
		delay *= 2
	}
	if err != nil {
		if ctx.Err() == nil {
			e.log.LogAttrs(ctx, slog.LevelWarn, "dedup: cannot read records; processing the batch without dedup",
				slog.Int("events", len(maybe)), slog.String(logError, err.Error()))
		}
		return nil
	}
	if len(recs) == 0 {
		return nil
	}
	out := make(map[uint64][]string, len(recs))
	for _, rc := range recs {
		out[rc.Position] = append(out[rc.Position], rc.Observer)
	}
	return out
}
