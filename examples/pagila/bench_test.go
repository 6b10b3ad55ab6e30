package pagila_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"
)

// benchRentals bounds the replayed slice: rentals 1..6000 with their
// returns and payments, about 18,000 writes.
const benchRentals = 6000

// BenchmarkPagilaReplay measures the whole pipeline on PostgreSQL: Pagila
// writes captured by the triggers, read, routed, run through the WASM filter
// and webhook plugins and delivered over loopback HTTP to a receiver that
// verifies signatures.
//
//   - live: the observer runs while the workload writes as fast as the
//     database takes it; reports the commit-to-effect latency of every
//     delivery (p50, p99) and the rates.
//   - catch-up: the workload is written first, then the observer starts and
//     drains the change log; reports events/s, the observer's capacity.
func BenchmarkPagilaReplay(b *testing.B) {
	b.Run("live", func(b *testing.B) {
		ctx := context.Background()
		for range b.N {
			b.StopTimer()
			p := newPagila(b, benchRentals, "")
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
			lat := latencies(b, p)
			b.ReportMetric(float64(len(p.steps))/writeDone.Seconds(), "writes/s")
			b.ReportMetric(float64(len(p.steps))/elapsed.Seconds(), "events/s")
			b.ReportMetric(percentile(lat, 0.50), "p50-ms")
			b.ReportMetric(percentile(lat, 0.99), "p99-ms")
			b.Logf("live: %d writes (%d webhooks) in %s, writes done after %s; commit-to-effect p50 %.1f ms, p99 %.1f ms",
				len(p.steps), want.total(), elapsed.Round(time.Millisecond), writeDone.Round(time.Millisecond),
				percentile(lat, 0.5), percentile(lat, 0.99))
		}
	})
	b.Run("catch-up", func(b *testing.B) {
		ctx := context.Background()
		for range b.N {
			b.StopTimer()
			p := newPagila(b, benchRentals, "")
			if err := p.replay(ctx, p.steps); err != nil {
				b.Fatal(err)
			}
			want := p.expected(ctx)
			b.StartTimer()
			start := time.Now()
			pr := p.start()
			p.wait(want.total(), 5*time.Minute, pr)
			elapsed := time.Since(start)
			b.StopTimer()
			pr.stop(b)
			b.ReportMetric(float64(len(p.steps))/elapsed.Seconds(), "events/s")
			b.ReportMetric(float64(want.total())/elapsed.Seconds(), "webhooks/s")
			b.Logf("catch-up: %d events (%d webhooks) drained in %s, start-up included",
				len(p.steps), want.total(), elapsed.Round(time.Millisecond))
		}
	})
}

// latencies returns each delivery's time from the change's commit_time to
// its arrival at the receiver.
func latencies(b *testing.B, p *pagila) []time.Duration {
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
	return lat
}

// percentile returns the q-quantile of sorted durations, in milliseconds.
func percentile(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return float64(sorted[int(q*float64(len(sorted)-1))].Microseconds()) / 1000
}
