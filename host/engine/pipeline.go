package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/fraiseql/observer/abi"
	"github.com/fraiseql/observer/host/effect"
	"github.com/fraiseql/observer/host/event"
	"github.com/fraiseql/observer/host/source"
)

// eventState is one read event: finished when remaining reaches zero.
type eventState struct {
	ev        *event.Event
	raw       json.RawMessage // the record's Raw, for decode failures
	remaining atomic.Int32
	matched   int32 // units created for it; set before any runs
	readAt    time.Time
}

// unit is the work of one observer on one event. Its progress survives a
// retry: a retry resumes at the step that failed, so filters that passed
// are not asked again, and effects already executed are not re-sent.
type unit struct {
	ev *eventState
	o  *observer // nil for a decode failure
	// attempt is the attempt number of the current step, from 1; it
	// restarts at 1 whenever a step succeeds.
	attempt int
	filter  int          // next filter to run
	acted   bool         // the action ran; effects holds its result
	effects []abi.Effect // the action's effects
	next    int          // next effect to execute
	// fail is set when the unit is doomed before it runs (decode or
	// condition failure): it is dead-lettered without running anything.
	fail *StageError
	// in is the input of the current plugin call, reused across calls to
	// save an allocation per call; plugins must not keep it.
	in abi.Input
	// started is when the unit first ran; plugin and effect the time
	// spent in plugin calls and effects, over all attempts.
	started        time.Time
	plugin, effect time.Duration
}

type outcome uint8

const (
	outDone     outcome = iota // every effect executed
	outFiltered                // a filter dropped the event
	outFailed                  // runUnit returned an error
)

// runUnit runs u from where it stands to the end or the first failure.
func (e *Engine) runUnit(ctx context.Context, u *unit) (outcome, *StageError) {
	if u.fail != nil {
		return outFailed, u.fail
	}
	o, ev := u.o, u.ev.ev
	if u.started.IsZero() {
		u.started = time.Now()
	}
	hook := e.cfg.Hooks.PluginDone
	for u.filter < len(o.Filters) {
		st := o.Filters[u.filter]
		name := st.Plugin.Name()
		in := e.input(u, name, abi.RoleFilter, st.Config)
		t0 := time.Now()
		res, err := st.Plugin.Filter(ctx, in)
		d := time.Since(t0)
		u.plugin += d
		if err == nil && res.Error != nil {
			err = &PluginError{Plugin: name, Role: abi.RoleFilter, Err: *res.Error}
		}
		if hook != nil {
			hook(PluginDone{EventID: ev.ID, Position: ev.Position, Observer: o.Name, Plugin: name, Role: abi.RoleFilter,
				Attempt: u.attempt, Duration: d, Pass: res.Pass, Reason: res.Reason, Err: err})
		}
		if err != nil {
			return outFailed, &StageError{Stage: StageFilter, Observer: o.Name, Plugin: name, Effect: -1, Err: err}
		}
		if !res.Pass {
			if e.log.Enabled(ctx, slog.LevelDebug) {
				e.log.LogAttrs(ctx, slog.LevelDebug, "event filtered out",
					slog.String(logEventID, ev.ID), slog.String(logObserver, o.Name),
					slog.String(logPlugin, name), slog.String("reason", res.Reason))
			}
			return outFiltered, nil
		}
		u.filter++
		u.attempt = 1
	}
	if !u.acted {
		in := e.input(u, o.actor, abi.RoleAct, o.Action.Config)
		t0 := time.Now()
		res, err := o.Action.Plugin.Act(ctx, in)
		d := time.Since(t0)
		u.plugin += d
		if err == nil && res.Error != nil {
			err = &PluginError{Plugin: o.actor, Role: abi.RoleAct, Err: *res.Error}
		}
		if hook != nil {
			hook(PluginDone{EventID: ev.ID, Position: ev.Position, Observer: o.Name, Plugin: o.actor, Role: abi.RoleAct,
				Attempt: u.attempt, Duration: d, Effects: len(res.Effects), Err: err})
		}
		if err != nil {
			return outFailed, &StageError{Stage: StageAct, Observer: o.Name, Plugin: o.actor, Effect: -1, Err: err}
		}
		u.effects = res.Effects
		u.acted = true
		u.attempt = 1
	}
	for u.next < len(u.effects) {
		if err := e.execute(ctx, u, u.next); err != nil {
			return outFailed, &StageError{Stage: StageEffect, Observer: o.Name, Plugin: o.actor, Effect: u.next, Err: err}
		}
		u.next++
		u.attempt = 1
	}
	return outDone, nil
}

func (e *Engine) input(u *unit, plugin, role string, cfg json.RawMessage) *abi.Input {
	ev := u.ev.ev
	u.in = abi.Input{
		ABI: abi.VersionString,
		Context: abi.CallContext{
			Observer: u.o.Name,
			Plugin:   plugin,
			Role:     role,
			Attempt:  u.attempt,
			DryRun:   u.o.DryRun,
			Now:      e.cfg.Now().UTC().Format(time.RFC3339Nano),
			Trace:    ev.Trace,
		},
		Event:  ev,
		Config: cfg,
	}
	return &u.in
}

// execute runs effect i of u, or logs it in a dry run.
func (e *Engine) execute(ctx context.Context, u *unit, i int) error {
	o, ev, eff := u.o, u.ev.ev, u.effects[i]
	h := e.cfg.Hooks.EffectDone
	if o.DryRun {
		attrs := []slog.Attr{
			slog.String(logEventID, ev.ID), slog.String(logObserver, o.Name),
			slog.String(logPlugin, o.actor), slog.Int(logEffect, i), slog.String(logType, eff.Type),
			slog.Bool(logDryRun, true),
		}
		if eff.HTTP != nil {
			// Only the host: a URL's path or query may carry a token.
			if pu, err := url.Parse(eff.HTTP.URL); err == nil {
				attrs = append(attrs, slog.String("method", eff.HTTP.Method), slog.String(logHost, pu.Host))
			}
		}
		e.log.LogAttrs(ctx, slog.LevelInfo, "dry run: effect not executed", attrs...)
		e.stats.effectsOK.Add(1)
		if h != nil {
			h(EffectDone{EventID: ev.ID, Position: ev.Position, Observer: o.Name, Index: i, Type: eff.Type, Attempt: u.attempt, DryRun: true})
		}
		return nil
	}
	x, ok := e.exec[eff.Type]
	if !ok {
		e.stats.effectsFailed.Add(1)
		return effect.NewError(eff.Type, i, fmt.Errorf("no executor for effect type %q (have %s)", eff.Type, e.execTypes), true)
	}
	req := effect.Request{
		Effect:         eff,
		EventID:        ev.ID,
		Observer:       o.Name,
		Plugin:         o.actor,
		Index:          i,
		IdempotencyKey: event.IdempotencyKey(ev.ID, o.Name, i),
		Trace:          ev.Trace,
		Policy:         o.Effect,
	}
	t0 := time.Now()
	res, err := x.Execute(ctx, req)
	d := time.Since(t0)
	u.effect += d
	if err != nil {
		e.stats.effectsFailed.Add(1)
	} else {
		e.stats.effectsOK.Add(1)
	}
	if h != nil {
		h(EffectDone{EventID: ev.ID, Position: ev.Position, Observer: o.Name, Index: i, Type: eff.Type,
			Attempt: u.attempt, IdempotencyKey: req.IdempotencyKey, Duration: d, Result: res, Err: err})
	}
	// An executor's error names the effect, index and (redacted) target.
	return err
}

// deadLetter parks u with its failure. A failing store is retried with
// backoff until it accepts the row or ctx ends: a dead letter is never
// dropped. It returns false when ctx ended first, or when the store
// refused the write because this process no longer leads (it then calls
// depose with the refusal); the unit then stays unfinished and is
// delivered again after a restart or by the new leader.
func (e *Engine) deadLetter(ctx context.Context, u *unit, se *StageError, depose func(error)) bool {
	ev := u.ev.ev
	d := source.DeadLetter{
		Source:   e.src.Name(),
		Group:    e.cfg.Group,
		EventID:  ev.ID,
		Position: ev.Position,
		Effect:   se.Effect,
		Stage:    se.Stage,
		Error:    se.Err.Error(),
		Attempts: u.attempt,
	}
	if u.o != nil {
		d.Observer = u.o.Name
	}
	if u.ev.raw != nil {
		d.Event = u.ev.raw
	} else if b, err := json.Marshal(ev); err == nil {
		d.Event = b
	} else {
		d.Event, _ = json.Marshal(map[string]string{"id": ev.ID, "marshal_error": err.Error()})
	}
	delay := 100 * time.Millisecond
	for try := 1; ; try++ {
		id, err := e.store.PutDead(ctx, d)
		if err == nil {
			d.ID = id
			break
		}
		if errors.Is(err, source.ErrFenced) {
			// Another process leads now and will deliver the event again;
			// this one must stop (run.depose), not retry.
			depose(err)
			return false
		}
		if ctx.Err() != nil {
			return false
		}
		e.log.LogAttrs(ctx, slog.LevelError, "cannot store dead letter, retrying",
			slog.String(logEventID, ev.ID), slog.String(logObserver, d.Observer),
			slog.String(logStage, d.Stage), slog.Int(logAttempt, try), slog.Duration(logDelay, delay),
			slog.String(logError, err.Error()))
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
		delay = min(delay*2, 10*time.Second)
	}
	e.stats.deadLettered.Add(1)
	e.log.LogAttrs(ctx, slog.LevelWarn, "event dead-lettered",
		slog.String(logEventID, ev.ID), slog.Uint64(logPosition, ev.Position),
		slog.String(logObserver, d.Observer), slog.String(logPlugin, se.Plugin),
		slog.String(logStage, d.Stage), effectAttr(d.Effect),
		slog.Int(logAttempt, d.Attempts), slog.String(logError, d.Error))
	if h := e.cfg.Hooks.DeadLettered; h != nil {
		h(d)
	}
	return true
}
