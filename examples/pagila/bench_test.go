package pagila_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"
)

// BenchmarkPagilaReplay measures the whole pipeline on PostgreSQL: Pagila
// writes replayed as fast as the database takes them, captured by the
// triggers, read, routed, run through the WASM filter and webhook plugins
// and delivered over loopback HTTP to a receiver that verifies signatures.
// It reports captured events per second (first write to last delivery) and
// the commit-to-effect latency of each delivery (p50, p99).
func BenchmarkPagilaReplay(b *testing.B) {
	ctx := context.Background()
	for range b.N {
		b.StopTimer()
		p := newPagila(b, 6000, "")
		pr := p.start()
		time.Sleep(2 * time.Second) // let it finish starting
		b.StartTimer()
		start := time.Now()
		if err := p.replay(ctx, p.steps); err != nil {
			b.Fatal(err)
		}
		writeDone := time.Since(start)
		want := p.expected(ctx)
		p.wait(want.total(), 5*time.Minute, pr)
		elapsed := time.Since(start)
		b.StopTimer()
		pr.stop(b)

		var lat []time.Duration
		for _, d := range p.recv.Deliveries() {
			var body struct {
				Committed  string `json:"committed"`
				CommitTime string `json:"commit_time"`
			}
			if err := json.Unmarshal(d.Body, &body); err != nil {
				b.Fatal(err)
			}
			ts := body.Committed
			if ts == "" {
				ts = body.CommitTime
			}
			c, err := time.Parse(time.RFC3339Nano, ts)
			if err != nil {
				b.Fatalf("commit time %q: %v", ts, err)
			}
			lat = append(lat, d.At.Sub(c))
		}
		slices.Sort(lat)
		pct := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) / 1000 }
		b.ReportMetric(float64(len(p.steps))/elapsed.Seconds(), "events/s")
		b.ReportMetric(float64(len(p.steps))/writeDone.Seconds(), "writes/s")
		b.ReportMetric(float64(want.total())/elapsed.Seconds(), "webhooks/s")
		b.ReportMetric(pct(0.50), "p50-ms")
		b.ReportMetric(pct(0.99), "p99-ms")
		b.Logf("%d writes (%d webhooks) in %s; writes done after %s; latency p50 %.1f ms p99 %.1f ms",
			len(p.steps), want.total(), elapsed.Round(time.Millisecond), writeDone.Round(time.Millisecond), pct(0.5), pct(0.99))
	}
}
