package engine

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fraiseql/observer/abi"
	"github.com/fraiseql/observer/host/effect"
	"github.com/fraiseql/observer/host/event"
	"github.com/fraiseql/observer/host/source"
)

// genSource produces n events on demand, over keys distinct keys.
type genSource struct {
	n, keys int
	next    uint64
	keyStr  []string
}

func (g *genSource) Name() string { return "gen" }
func (g *genSource) Open(ctx context.Context, cur source.Cursor) error {
	g.next = cur.Through + 1
	g.keyStr = make([]string, g.keys)
	for i := range g.keyStr {
		g.keyStr[i] = strconv.Itoa(i)
	}
	return nil
}
func (g *genSource) Read(ctx context.Context, max int) (source.Batch, error) {
	left := uint64(g.n) - (g.next - 1)
	if left == 0 {
		<-ctx.Done()
		return source.Batch{}, ctx.Err()
	}
	k := min(uint64(max), left)
	recs := make([]source.Record, k)
	evs := make([]event.Event, k)
	for i := range recs {
		p := g.next + uint64(i)
		evs[i] = event.Event{ID: "gen:" + strconv.FormatUint(p, 10), Position: p, Source: "gen", Entity: "orders", Op: event.OpInsert, Key: g.keyStr[p%uint64(g.keys)]}
		recs[i].Event = &evs[i]
	}
	g.next += k
	return source.Batch{Records: recs, Frontier: source.Cursor{Through: g.next - 1}}, nil
}
func (g *genSource) Close() error { return nil }

type nopExec struct{}

func (nopExec) Execute(ctx context.Context, req effect.Request) (effect.Result, error) {
	return effect.Result{Status: 200}, nil
}

type nopActor struct{ res abi.ActResult }

func (a *nopActor) Name() string { return "nop" }
func (a *nopActor) Act(ctx context.Context, in *abi.Input) (abi.ActResult, error) {
	return a.res, nil
}

// BenchmarkEngine measures the engine's own cost per event: an in-process
// source, a Go-native action returning one effect, a no-op executor.
func BenchmarkEngine(b *testing.B) {
	for _, keys := range []int{1, 64, 4096} {
		b.Run("keys="+strconv.Itoa(keys), func(b *testing.B) {
			var finished atomic.Int64
			done := make(chan struct{})
			want := int64(b.N)
			actor := &nopActor{res: abi.ActResult{Effects: []abi.Effect{{Type: abi.EffectLog, Log: &abi.LogEffect{Message: "x"}}}}}
			e, err := New(Config{
				Concurrency: 4, BatchSize: 512, MaxInFlight: 8192, CheckpointInterval: 100 * time.Millisecond,
				Observers: []Observer{{Name: "o", Entity: "orders", Action: ActStep{Plugin: actor}}},
				Hooks: Hooks{EventFinished: func(EventFinished) {
					if finished.Add(1) == want {
						close(done)
					}
				}},
			}, &genSource{n: b.N, keys: keys}, newMemStore(), map[string]effect.Executor{abi.EffectLog: nopExec{}}, nil)
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			errc := make(chan error, 1)
			b.ReportAllocs()
			b.ResetTimer()
			began := time.Now()
			go func() { errc <- e.Run(ctx) }()
			<-done
			el := time.Since(began)
			b.StopTimer()
			cancel()
			if err := <-errc; err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/el.Seconds(), "events/s")
		})
	}
}
