package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/fraiseql/observer/host/source"
)

// BenchmarkRead measures the reader's catch-up throughput: rows captured by
// the trigger, read back in batches of 1000 and decoded into events.
func BenchmarkRead(b *testing.B) {
	dsn, conn := scratchB(b)
	exec2(b, conn, `CREATE TABLE a (id int PRIMARY KEY, v text, amount numeric, at timestamptz)`)
	if err := Install(context.Background(), conn, InstallOptions{Tables: []TableSpec{{Name: "a"}}}); err != nil {
		b.Fatal(err)
	}
	const rows = 20000
	start := time.Now()
	exec2(b, conn, `INSERT INTO a SELECT g, 'row ' || g, g * 1.25, now() FROM generate_series(1, 20000) g`)
	b.Logf("trigger capture: %.0f rows/s (one INSERT of %d rows)", float64(rows)/time.Since(start).Seconds(), rows)
	b.ResetTimer()
	for b.Loop() {
		r := New(Config{Name: "bench", DSN: dsn}, nil)
		if err := r.Open(context.Background(), source.Cursor{}); err != nil {
			b.Fatal(err)
		}
		n := 0
		for n < rows {
			bt, err := r.Read(context.Background(), 1000)
			if err != nil {
				b.Fatal(err)
			}
			n += len(bt.Records)
		}
		r.Close()
	}
	b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "events/s")
}
