package metrics

import (
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fraiseql/observer/abi"
	"github.com/fraiseql/observer/host/engine"
	"github.com/fraiseql/observer/host/resilience"
	"github.com/fraiseql/observer/host/source"
)

// noObserver labels the work of no observer: a record that could not be
// decoded is one unit (and one dead letter) of no observer.
const noObserver = "(none)"

// Effect outcomes, the outcome label of the effect metrics.
const (
	EffectOK             = "ok"
	EffectError          = "error"           // failed; retried unless it was the last attempt
	EffectPermanentError = "permanent_error" // failed for good (4xx, host not allowed, …)
	EffectDryRun         = "dry_run"         // logged, not executed
)

var unitOutcomes = [...]string{engine.UnitDone, engine.UnitFiltered, engine.UnitDeadLettered, engine.UnitDeduplicated}

// obsChildren are one observer's resolved unit counters, by outcome.
type obsChildren struct {
	units [len(unitOutcomes)]prometheus.Counter
}

type pluginKey struct{ plugin, role string }

type pluginChildren struct {
	duration                  prometheus.Observer
	pass, drop, ok, errResult prometheus.Counter
}

type effectKey struct{ observer, typ string }

var effectOutcomes = [...]string{EffectOK, EffectError, EffectPermanentError, EffectDryRun}

type effectChildren struct {
	total    [len(effectOutcomes)]prometheus.Counter
	duration [len(effectOutcomes)]prometheus.Observer
}

type stageKey struct {
	retry           bool
	observer, stage string
}

// load returns the value of k in m, building it with mk on first use. Two
// racing first uses may both build; one wins and the other's children are
// the same series anyway (WithLabelValues is idempotent).
func load[K comparable, V any](m *sync.Map, k K, mk func() V) V {
	if v, ok := m.Load(k); ok {
		return v.(V)
	}
	v, _ := m.LoadOrStore(k, mk())
	return v.(V)
}

func (m *Metrics) observer(name string) *obsChildren {
	return load(&m.byObserver, name, func() *obsChildren {
		c := &obsChildren{}
		for i, o := range unitOutcomes {
			c.units[i] = m.units.WithLabelValues(name, o)
		}
		return c
	})
}

func (m *Metrics) plugin(name, role string) *pluginChildren {
	return load(&m.byPlugin, pluginKey{name, role}, func() *pluginChildren {
		c := &pluginChildren{duration: m.pluginDuration.WithLabelValues(name, role),
			errResult: m.pluginCalls.WithLabelValues(name, role, "error")}
		if role == abi.RoleFilter {
			c.pass = m.pluginCalls.WithLabelValues(name, role, "pass")
			c.drop = m.pluginCalls.WithLabelValues(name, role, "drop")
		} else {
			c.ok = m.pluginCalls.WithLabelValues(name, role, "ok")
		}
		return c
	})
}

func (m *Metrics) effect(observer, typ string) *effectChildren {
	return load(&m.byEffect, effectKey{observer, typ}, func() *effectChildren {
		c := &effectChildren{}
		for i, o := range effectOutcomes {
			c.total[i] = m.effects.WithLabelValues(observer, typ, o)
			c.duration[i] = m.effectDuration.WithLabelValues(typ, o)
		}
		return c
	})
}

func (m *Metrics) stageCounter(retry bool, observer, stage string) prometheus.Counter {
	return load(&m.byStage, stageKey{retry, observer, stage}, func() prometheus.Counter {
		if retry {
			return m.retries.WithLabelValues(observer, stage)
		}
		return m.deadLettered.WithLabelValues(observer, stage)
	})
}

func orNone(observer string) string {
	if observer == "" {
		return noObserver
	}
	return observer
}

// sourceOf is the source part of an event id "source:position".
func sourceOf(id string) string {
	if i := strings.LastIndexByte(id, ':'); i >= 0 {
		return id[:i]
	}
	return id
}

// Hooks returns the engine hooks that feed m. Pass them (joined with any
// others) to every engine the process builds. Routed is left nil: the
// metrics need no routing decisions, so they do not make the engine build
// them.
func (m *Metrics) Hooks() engine.Hooks {
	return engine.Hooks{
		EventFinished:  m.eventFinished,
		UnitFinished:   m.unitFinished,
		PluginDone:     m.pluginDone,
		EffectDone:     m.effectDone,
		RetryScheduled: m.retryScheduled,
		DeadLettered:   m.deadLetteredHook,
	}
}

func (m *Metrics) eventFinished(e engine.EventFinished) {
	src := sourceOf(e.EventID)
	load(&m.finishedBySource, src, func() prometheus.Counter { return m.eventsFinished.WithLabelValues(src) }).Inc()
	if e.Capture > 0 {
		m.stage(iCapture, e.Capture)
	}
	m.stage(iTotal, e.Total)
	m.throughput.add(m.opts.Now())
}

// Indices into stages.
const (
	iCapture = iota
	iRoute
	iPlugin
	iEffect
	iTotal
)

// stage records one sample of stage i (an index into stages).
func (m *Metrics) stage(i int, d time.Duration) {
	m.stageDuration[i].Observe(d.Seconds())
	m.windows[i].add(d)
}

func (m *Metrics) unitFinished(u engine.UnitFinished) {
	c := m.observer(orNone(u.Observer))
	for i, o := range unitOutcomes {
		if o == u.Outcome {
			c.units[i].Inc()
			break
		}
	}
	if u.Observer == "" || u.Outcome == engine.UnitDeduplicated || (u.Route == 0 && u.Plugin == 0 && u.Effect == 0) {
		// Nothing ran: a decode failure, a unit skipped by dedup, or one
		// doomed before it started.
		return
	}
	m.stage(iRoute, u.Route)
	m.stage(iPlugin, u.Plugin)
	// A filtered unit never reached its effects; count effect time only
	// for units that did.
	if u.Effect > 0 || u.Outcome == engine.UnitDone {
		m.stage(iEffect, u.Effect)
	}
}

func (m *Metrics) pluginDone(p engine.PluginDone) {
	c := m.plugin(p.Plugin, p.Role)
	c.duration.Observe(p.Duration.Seconds())
	switch {
	case p.Err != nil:
		c.errResult.Inc()
	case p.Role == abi.RoleFilter && p.Pass:
		c.pass.Inc()
	case p.Role == abi.RoleFilter:
		c.drop.Inc()
	default:
		c.ok.Inc()
	}
}

func (m *Metrics) effectDone(e engine.EffectDone) {
	c := m.effect(e.Observer, e.Type)
	i := 0 // EffectOK
	switch {
	case e.DryRun:
		i = 3
	case e.Err != nil && resilience.Permanent(e.Err):
		i = 2
	case e.Err != nil:
		i = 1
	}
	c.total[i].Inc()
	if !e.DryRun {
		c.duration[i].Observe(e.Duration.Seconds())
	}
}

func (m *Metrics) retryScheduled(r engine.RetryScheduled) {
	m.stageCounter(true, orNone(r.Observer), r.Stage).Inc()
}

func (m *Metrics) deadLetteredHook(d source.DeadLetter) {
	m.stageCounter(false, orNone(d.Observer), d.Stage).Inc()
}
