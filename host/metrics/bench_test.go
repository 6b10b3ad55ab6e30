package metrics_test

import (
	"errors"
	"testing"
	"time"

	"github.com/fraiseql/observer/abi"
	"github.com/fraiseql/observer/host/engine"
	"github.com/fraiseql/observer/host/metrics"
)

// BenchmarkHooks measures the metrics' cost per event for a typical event:
// one observer, one filter call, one action call, one effect, the unit and
// the event finishing (six hook calls). b.N counts events.
func BenchmarkHooks(b *testing.B) {
	m := metrics.New(metrics.Options{NoRuntimeCollectors: true})
	h := m.Hooks()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			oneEvent(h)
		}
	})
}

// BenchmarkHooksFailing is the same event whose effect fails (the
// classification walks the error chain).
func BenchmarkHooksFailing(b *testing.B) {
	m := metrics.New(metrics.Options{NoRuntimeCollectors: true})
	h := m.Hooks()
	err := errors.New("503")
	b.ReportAllocs()
	for b.Loop() {
		h.PluginDone(engine.PluginDone{EventID: "db:1", Observer: "orders", Plugin: "webhook", Role: abi.RoleAct, Attempt: 1, Duration: 40 * time.Microsecond, Effects: 1})
		h.EffectDone(engine.EffectDone{EventID: "db:1", Observer: "orders", Index: 0, Type: abi.EffectHTTP, Attempt: 1, Duration: time.Millisecond, Err: err})
		h.RetryScheduled(engine.RetryScheduled{EventID: "db:1", Observer: "orders", Stage: engine.StageEffect, Attempt: 1, Delay: time.Second, Err: err})
	}
}

func oneEvent(h engine.Hooks) {
	h.PluginDone(engine.PluginDone{EventID: "db:1", Observer: "orders", Plugin: "field-filter", Role: abi.RoleFilter, Attempt: 1, Duration: 20 * time.Microsecond, Pass: true})
	h.PluginDone(engine.PluginDone{EventID: "db:1", Observer: "orders", Plugin: "webhook", Role: abi.RoleAct, Attempt: 1, Duration: 40 * time.Microsecond, Effects: 1})
	h.EffectDone(engine.EffectDone{EventID: "db:1", Observer: "orders", Index: 0, Type: abi.EffectHTTP, Attempt: 1, Duration: time.Millisecond})
	h.UnitFinished(engine.UnitFinished{EventID: "db:1", Observer: "orders", Outcome: engine.UnitDone, Route: 50 * time.Microsecond, Plugin: 60 * time.Microsecond, Effect: time.Millisecond})
	h.EventFinished(engine.EventFinished{EventID: "db:1", Matched: 1, Capture: 2 * time.Millisecond, Total: 1200 * time.Microsecond})
}
