package sqlite

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/fraiseql/observer/host/source"
)

// BenchmarkRead measures catch-up throughput: rows captured by the
// triggers, read back in batches of 1000 and decoded into events.
func BenchmarkRead(b *testing.B) {
	path := filepath.Join(b.TempDir(), "bench.db")
	db, err := Open(context.Background(), path)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE a (id INTEGER PRIMARY KEY, v TEXT, amount REAL, at TEXT)`); err != nil {
		b.Fatal(err)
	}
	if err := Install(context.Background(), db, InstallOptions{Tables: []TableSpec{{Name: "a"}}}); err != nil {
		b.Fatal(err)
	}
	const rows = 20000
	start := time.Now()
	if _, err := db.Exec(`WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 20000)
		INSERT INTO a SELECT n, 'row ' || n, n * 1.25, datetime('now') FROM g`); err != nil {
		b.Fatal(err)
	}
	b.Logf("trigger capture: %.0f rows/s (one INSERT of %d rows)", float64(rows)/time.Since(start).Seconds(), rows)
	b.ResetTimer()
	for b.Loop() {
		r := New(Config{Name: "bench", Path: path}, nil)
		if err := r.Open(context.Background(), source.Cursor{}); err != nil {
			b.Fatal(err)
		}
		for n := 0; n < rows; {
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
