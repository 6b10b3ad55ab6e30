package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/fraiseql/observer/host/event"
	"github.com/fraiseql/observer/host/resilience"
	"github.com/fraiseql/observer/host/source"
)

// run is the state of one Run.
type run struct {
	e     *Engine
	sched *scheduler
	wm    *watermark
	// space gets a token when an event finishes, waking a reader paused
	// by MaxInFlight.
	space chan struct{}
	// cpMu serialises saves; saved is the last cursor saved (or loaded).
	cpMu  sync.Mutex
	saved source.Cursor
	// rec records finished units for dedup (nil: dedup off); maxDone is
	// the highest position recorded before this run.
	rec     *recorder
	maxDone uint64
	// stopRead ends the read loop with a cause; depose uses it when the
	// store refuses a write because another process leads now.
	stopRead context.CancelCauseFunc
}

// depose stops a run whose store writes are fenced (source.ErrFenced):
// another process has become the leader and delivers from the checkpoint
// this one last saved, so this one stops reading at once and abandons its
// running work instead of draining it.
func (r *run) depose(err error) {
	r.stopRead(err)
}

// fencedCause returns the fencing error that stopped the run, nil if
// none did.
func fencedCause(readCtx context.Context) error {
	if c := context.Cause(readCtx); errors.Is(c, source.ErrFenced) {
		return c
	}
	return nil
}

// Run loads the cursor of (source, group) from the store, opens the source
// at it and processes events until ctx is cancelled, saving the checkpoint
// every CheckpointInterval when it moved.
//
// When ctx is cancelled Run stops reading, lets the units already running
// finish for up to ShutdownTimeout (then cancels them), abandons retries
// waiting on their timers, saves the final checkpoint with a fresh
// context, closes the source and returns nil. Everything not finished at
// that point is pending in the saved cursor and is delivered again by the
// next Run; nothing finished is.
//
// Run returns an error only for what retrying cannot fix: the cursor cannot
// be loaded, the source cannot be opened or fails, the final checkpoint
// cannot be saved, or the store refused a write because another process
// leads the source and group now (an error matching source.ErrFenced; see
// host/leader). A deposed run stops reading at once, cancels its running
// work and saves nothing more. Run may be called once per Engine.
func (e *Engine) Run(ctx context.Context) error {
	if !e.running.CompareAndSwap(false, true) {
		return errors.New("engine: Run called more than once")
	}
	defer e.markStarted()
	name, group := e.src.Name(), e.cfg.Group
	cur, _, err := e.store.LoadCursor(ctx, name, group)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("engine: load cursor of source %q group %q: %w", name, group, err)
	}
	cur = cur.Normalize()
	// Until the first save, the checkpoint is the one loaded.
	e.stats.cpThrough.Store(cur.Through)
	e.stats.cpPending.Store(int64(len(cur.Pending)))
	e.stats.cpLowest.Store(lowest(cur.Pending))
	if err := e.src.Open(ctx, cur); err != nil {
		e.src.Close()
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("engine: open source %q at %d (+%d pending): %w", name, cur.Through, len(cur.Pending), err)
	}
	e.markStarted()
	e.log.LogAttrs(ctx, slog.LevelInfo, "engine started",
		slog.String(logSource, name), slog.String(logGroup, group),
		slog.Uint64(logThrough, cur.Through), slog.Int(logPending, len(cur.Pending)),
		slog.Int("observers", len(e.obs)), slog.Int("concurrency", e.cfg.Concurrency))

	r := &run{e: e, sched: newScheduler(), wm: newWatermark(cur), space: make(chan struct{}, 1), saved: cur}
	var recWG sync.WaitGroup
	recCtx, stopRec := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRec()
	if d := e.cfg.Dedup; d != nil {
		md, err := d.MaxDone(ctx, name, group)
		if err != nil {
			e.src.Close()
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("engine: dedup records of source %q group %q: %w", name, group, err)
		}
		r.maxDone = md
		r.rec = &recorder{store: d, src: name, group: group, log: e.log, flushInterval: dedupFlushInterval}
		recWG.Go(func() { r.rec.loop(recCtx, e.cfg.DedupRetention) })
	}
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()

	var workers sync.WaitGroup
	for range e.cfg.Concurrency {
		workers.Go(func() { r.work(workCtx) })
	}
	cpCtx, stopCP := context.WithCancel(context.WithoutCancel(ctx))
	var cp sync.WaitGroup
	cp.Go(func() { r.checkpointLoop(cpCtx) })

	readCtx, stopRead := context.WithCancelCause(ctx)
	defer stopRead(nil)
	r.stopRead = stopRead
	readErr := r.readLoop(readCtx)
	fenced := fencedCause(readCtx)

	// Stop: nothing new starts; running units get ShutdownTimeout, unless
	// this process no longer leads (fenced, or its lease lost): then its
	// work is the new leader's, and finishing it would only duplicate it.
	r.sched.stop()
	if cause := context.Cause(readCtx); errors.Is(cause, source.ErrDeposed) {
		e.log.LogAttrs(ctx, slog.LevelError, "deposed: this process no longer leads this source and group; abandoning running work",
			slog.String(logSource, name), slog.String(logGroup, group), slog.String(logError, cause.Error()))
		cancelWork()
		waitTimeout(&workers, e.cfg.ShutdownTimeout)
	} else if !waitTimeout(&workers, e.cfg.ShutdownTimeout) {
		e.log.LogAttrs(ctx, slog.LevelWarn, "shutdown timeout: cancelling running work",
			slog.Duration("timeout", e.cfg.ShutdownTimeout))
		cancelWork()
		if !waitTimeout(&workers, e.cfg.ShutdownTimeout) {
			// A call ignores cancellation. Its unit is unfinished, so the
			// cursor below keeps it pending; saving now loses nothing.
			e.log.LogAttrs(ctx, slog.LevelError, "work still running after cancellation; saving the checkpoint anyway")
		}
	}
	stopCP()
	cp.Wait()
	stopRec()
	recWG.Wait()

	saveCtx, cancelSave := context.WithTimeout(context.WithoutCancel(ctx), finalSaveTimeout)
	if r.rec != nil {
		// Best effort: a record lost here only allows a duplicate if this
		// run's checkpoint is not saved either.
		for try := 0; try < 3 && r.rec.flush(saveCtx) != nil && saveCtx.Err() == nil; try++ {
			time.Sleep(100 * time.Millisecond)
		}
	}
	var saveErr error
	if fenced == nil {
		saveErr = r.saveFinal(saveCtx)
	}
	cancelSave()
	if err := e.src.Close(); err != nil {
		e.log.LogAttrs(ctx, slog.LevelWarn, "closing source", slog.String(logSource, name), slog.String(logError, err.Error()))
	}
	st := e.Stats()
	e.log.LogAttrs(ctx, slog.LevelInfo, "engine stopped",
		slog.String(logSource, name), slog.String(logGroup, group),
		slog.Uint64(logThrough, st.CheckpointThrough), slog.Int(logPending, st.CheckpointPending),
		slog.Uint64("events_read", st.EventsRead), slog.Uint64("events_finished", st.EventsFinished))
	return errors.Join(readErr, saveErr, fenced)
}

// finalSaveTimeout bounds the retries of the last checkpoint save.
const finalSaveTimeout = 30 * time.Second

func waitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// readLoop reads and dispatches batches until ctx ends or the source fails.
func (r *run) readLoop(ctx context.Context) error {
	e := r.e
	maxIn := int64(e.cfg.MaxInFlight)
	var b batchScratch
	for {
		n := e.stats.inFlight.Load()
		for n >= maxIn {
			select {
			case <-r.space:
			case <-ctx.Done():
				return nil
			}
			n = e.stats.inFlight.Load()
		}
		batch, err := e.src.Read(ctx, int(min(int64(e.cfg.BatchSize), maxIn-n)))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("engine: read source %q: %w", e.src.Name(), err)
		}
		r.dispatch(ctx, batch, &b)
	}
}

// batchScratch is reused across batches to keep dispatch allocation-free
// beyond the per-event state and per-unit records.
type batchScratch struct {
	positions []uint64
	units     []pending
	routes    []routed
	states    []*eventState
}

func (r *run) dispatch(ctx context.Context, batch source.Batch, b *batchScratch) {
	e := r.e
	readAt := time.Now()
	b.positions, b.units, b.states = b.positions[:0], b.units[:0], b.states[:0]
	for i := range batch.Records {
		rec := &batch.Records[i]
		if rec.Event == nil {
			// Contract violation: nothing to track or dead-letter.
			e.log.LogAttrs(ctx, slog.LevelError, "source returned a record without an event; skipped",
				slog.String(logSource, e.src.Name()), slog.Any(logError, rec.DecodeErr))
			b.states = append(b.states, nil)
			continue
		}
		b.positions = append(b.positions, rec.Event.Position)
		b.states = append(b.states, &eventState{ev: rec.Event, raw: rec.Raw, readAt: readAt})
	}
	// Register first: a unit may finish before dispatch returns.
	e.stats.inFlight.Add(int64(len(b.positions)))
	r.wm.add(b.positions, batch.Frontier)
	prev := r.completedUnits(ctx, b.positions)

	var done []*eventState
	for i := range batch.Records {
		es := b.states[i]
		if es == nil {
			continue
		}
		e.stats.read.Add(1)
		rec := &batch.Records[i]
		if h := e.cfg.Hooks.Routed; h != nil {
			rt := Routed{Event: es.ev, ReadAt: readAt, DecodeErr: rec.DecodeErr}
			if rec.DecodeErr == nil {
				rt.Decisions = e.Decide(es.ev)
			}
			h(rt)
		}
		if rec.DecodeErr != nil && slices.Contains(prev[es.ev.Position], "") {
			r.deduplicated(es, nil)
			done = append(done, es)
			continue
		}
		if rec.DecodeErr != nil {
			es.matched = 1
			es.remaining.Store(1)
			e.stats.matched.Add(1)
			b.units = append(b.units, pending{key: queueKey{obs: -1}, u: &unit{ev: es, attempt: 1,
				fail: &StageError{Stage: StageDecode, Effect: -1, Err: resilience.MarkPermanent(rec.DecodeErr)}}})
			continue
		}
		b.routes = e.route(es.ev, b.routes[:0])
		if p := prev[es.ev.Position]; len(p) > 0 {
			b.routes = slices.DeleteFunc(b.routes, func(rt routed) bool {
				if !slices.Contains(p, rt.o.Name) {
					return false
				}
				r.deduplicated(es, rt.o)
				return true
			})
		}
		if len(b.routes) == 0 {
			done = append(done, es)
			continue
		}
		e.stats.matched.Add(1)
		es.matched = int32(len(b.routes))
		es.remaining.Store(es.matched)
		key := event.OrderKey(es.ev)
		for _, rt := range b.routes {
			rt.o.stats.inFlight.Add(1)
			b.units = append(b.units, pending{key: queueKey{obs: rt.o.idx, key: key}, u: &unit{ev: es, o: rt.o, attempt: 1, fail: rt.err}})
		}
	}
	r.sched.enqueue(b.units)
	clear(b.units)
	clear(b.states)
	for _, es := range done {
		r.finishEvent(es, 0)
	}
}

// work is one worker: it runs ready queues' head units until the stop.
func (r *run) work(ctx context.Context) {
	e := r.e
	for {
		q, u := r.sched.next()
		if q == nil {
			return
		}
		out, se := e.runUnit(ctx, u)
		switch out {
		case outDone:
			r.finishUnit(u, UnitDone)
			r.sched.advance(q)
			continue
		case outFiltered:
			e.stats.filtered.Add(1)
			u.o.stats.filtered.Add(1)
			r.finishUnit(u, UnitFiltered)
			r.sched.advance(q)
			continue
		}
		if ctx.Err() != nil {
			// The shutdown timeout cancelled the call; that says nothing
			// about the event. Leave it unfinished.
			r.sched.abandon(q)
			continue
		}
		maxAttempts := 1
		if u.o != nil {
			maxAttempts = u.o.Retry.MaxAttempts
		}
		wait, counts, hinted := resilience.WaitHint(se)
		if hinted && !counts && u.fail == nil && u.o != nil {
			// Not tried at all (a circuit breaker is open): the unit waits,
			// keeping its attempt count, and is never dead-lettered for it.
			// Its queue waits; other keys and endpoints keep flowing.
			if !r.sched.retry(q, max(wait, time.Millisecond)) {
				continue
			}
			e.stats.waits.Add(1)
			if h := e.cfg.Hooks.RetryScheduled; h != nil {
				ev := u.ev.ev
				h(RetryScheduled{EventID: ev.ID, Position: ev.Position, Observer: u.o.Name, Stage: se.Stage,
					Effect: se.Effect, Attempt: u.attempt, Delay: wait, Err: se, Waiting: true})
			}
			continue
		}
		if u.fail != nil || resilience.Permanent(se) || u.attempt >= maxAttempts {
			if e.deadLetter(ctx, u, se, r.depose) {
				r.finishUnit(u, UnitDeadLettered)
				r.sched.advance(q)
			} else {
				r.sched.abandon(q)
			}
			continue
		}
		failed := u.attempt
		delay := u.o.Retry.Delay(failed, nil)
		if hinted && wait > delay {
			delay = wait // the receiver asked for longer (Retry-After)
		}
		ev := u.ev.ev
		// Written before the timer exists; the scheduler's mutex orders it
		// before the next worker's read.
		u.attempt++
		if !r.sched.retry(q, delay) {
			continue // stopping: abandoned, stays pending
		}
		e.stats.retries.Add(1)
		u.o.stats.retries.Add(1)
		e.log.LogAttrs(ctx, slog.LevelInfo, "will retry",
			slog.String(logEventID, ev.ID), slog.Uint64(logPosition, ev.Position),
			slog.String(logObserver, u.o.Name), slog.String(logPlugin, se.Plugin),
			slog.String(logStage, se.Stage), effectAttr(se.Effect),
			slog.Int(logAttempt, failed), slog.Duration(logDelay, delay),
			slog.String(logError, se.Err.Error()))
		if h := e.cfg.Hooks.RetryScheduled; h != nil {
			h(RetryScheduled{EventID: ev.ID, Position: ev.Position, Observer: u.o.Name, Stage: se.Stage,
				Effect: se.Effect, Attempt: failed, Delay: delay, Err: se})
		}
	}
}

// deduplicated counts a unit not run because an earlier run finished it.
func (r *run) deduplicated(es *eventState, o *observer) {
	e := r.e
	e.stats.dedups.Add(1)
	name := ""
	if o != nil {
		o.stats.dedups.Add(1)
		name = o.Name
	}
	if h := e.cfg.Hooks.UnitFinished; h != nil {
		h(UnitFinished{EventID: es.ev.ID, Position: es.ev.Position, Observer: name, Outcome: UnitDeduplicated})
	}
}

func (r *run) finishUnit(u *unit, outcome string) {
	e := r.e
	if r.rec != nil && (outcome == UnitDone || outcome == UnitDeadLettered) {
		dr := source.DoneRecord{Position: u.ev.ev.Position, EventID: u.ev.ev.ID, Outcome: outcome}
		if u.o != nil {
			dr.Observer = u.o.Name
		}
		r.rec.add(dr)
	}
	if o := u.o; o != nil {
		o.stats.inFlight.Add(-1)
		switch outcome {
		case UnitDone:
			o.stats.done.Add(1)
		case UnitDeadLettered:
			o.stats.deadLettered.Add(1)
		}
	}
	if h := e.cfg.Hooks.UnitFinished; h != nil {
		uf := UnitFinished{EventID: u.ev.ev.ID, Position: u.ev.ev.Position, Outcome: outcome,
			Plugin: u.plugin, Effect: u.effect}
		if !u.started.IsZero() {
			uf.Route = u.started.Sub(u.ev.readAt)
		}
		if u.o != nil {
			uf.Observer = u.o.Name
		}
		h(uf)
	}
	if u.ev.remaining.Add(-1) == 0 {
		r.finishEvent(u.ev, int(u.ev.matched))
	}
}

func (r *run) finishEvent(es *eventState, matched int) {
	e := r.e
	// The hook runs before the watermark lets the event go, so no
	// checkpoint covers an event its hook has not seen yet.
	if h := e.cfg.Hooks.EventFinished; h != nil {
		ef := EventFinished{EventID: es.ev.ID, Position: es.ev.Position, Matched: matched, Total: time.Since(es.readAt)}
		if ct, err := time.Parse(time.RFC3339Nano, es.ev.CommitTime); err == nil {
			ef.Capture = max(es.readAt.Sub(ct), 0)
		}
		h(ef)
	}
	r.wm.finish(es.ev.Position)
	e.stats.finished.Add(1)
	if e.stats.inFlight.Add(-1) < int64(e.cfg.MaxInFlight) {
		select {
		case r.space <- struct{}{}:
		default:
		}
	}
}

// checkpointLoop saves the cursor every CheckpointInterval when it moved.
// A failed save is logged and tried again at the next tick: the previous
// checkpoint stays valid, only older.
func (r *run) checkpointLoop(ctx context.Context) {
	t := time.NewTicker(r.e.cfg.CheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			err := r.save(ctx)
			if errors.Is(err, source.ErrFenced) {
				r.depose(err)
				return
			}
			if err != nil && ctx.Err() == nil {
				r.e.log.LogAttrs(ctx, slog.LevelWarn, "checkpoint save failed; will retry",
					slog.String(logSource, r.e.src.Name()), slog.String(logError, err.Error()))
			}
		}
	}
}

// save stores the current cursor if it differs from the last one saved.
func (r *run) save(ctx context.Context) error {
	r.cpMu.Lock()
	defer r.cpMu.Unlock()
	cur := r.wm.cursor()
	if sameCursor(cur, r.saved) {
		return nil
	}
	e := r.e
	if err := e.store.SaveCursor(ctx, e.src.Name(), e.cfg.Group, cur); err != nil {
		if errors.Is(err, source.ErrFenced) {
			return err // names the source, group and epochs itself
		}
		return fmt.Errorf("engine: %w", err) // the store's error names the source and group
	}
	r.saved = cur
	e.stats.cpThrough.Store(cur.Through)
	e.stats.cpPending.Store(int64(len(cur.Pending)))
	e.stats.cpLowest.Store(lowest(cur.Pending))
	e.stats.cpAt.Store(time.Now().UnixNano())
	if h := e.cfg.Hooks.CheckpointSaved; h != nil {
		h(cur)
	}
	return nil
}

// lowest is the smallest of a cursor's pending positions, 0 for none.
func lowest(pending []uint64) uint64 {
	if len(pending) == 0 {
		return 0
	}
	return slices.Min(pending)
}

// saveFinal saves the last checkpoint, retrying until ctx ends.
func (r *run) saveFinal(ctx context.Context) error {
	delay := 50 * time.Millisecond
	for {
		err := r.save(ctx)
		if err == nil {
			return nil
		}
		if errors.Is(err, source.ErrFenced) {
			return err // another process leads: retrying cannot succeed
		}
		r.e.log.LogAttrs(ctx, slog.LevelWarn, "final checkpoint save failed; retrying",
			slog.String(logSource, r.e.src.Name()), slog.String(logError, err.Error()))
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("final checkpoint (events after the previous one will be delivered again): %w", err)
		case <-t.C:
		}
		delay = min(delay*2, 2*time.Second)
	}
}
