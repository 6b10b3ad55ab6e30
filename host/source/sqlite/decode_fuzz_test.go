package sqlite

import (
	"database/sql"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// FuzzDecodeRow: whatever an observer_change_log row holds (SQLite stores
// text, so anything can be there), decoding never panics and never loses
// the row: it is a well-formed event, or a decode error that names the row
// and carries the row as valid JSON for the dead-letter queue. Seeds live
// in testdata/fuzz/FuzzDecodeRow.
func FuzzDecodeRow(f *testing.F) {
	f.Add(int64(7), "orders", "INSERT", "1", "", `{"id":1,"total":9.99}`, `[]`, "", `{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}`, "2026-12-03T10:00:00.123456Z")
	f.Add(int64(8), "orders", "UPDATE", "1", `{"id":1}`, `{"id":1,"n":1e400}`, `["n"]`, "acme", "", "2026-12-03T10:00:00Z")
	f.Add(int64(9), "", "delete", "", "not json", "[1]", `{"a":1}`, "", "null", "yesterday")
	f.Fuzz(func(t *testing.T, id int64, entity, op, key, before, after, changed, tenant, trace, commit string) {
		ns := func(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }
		r := row{ID: id, Entity: ns(entity), Op: ns(op), Key: ns(key), Before: ns(before), After: ns(after),
			ChangedFields: ns(changed), Tenant: ns(tenant), TraceContext: ns(trace), CommitTime: ns(commit)}
		rec := decodeRow("src", r)
		if rec.Event == nil || rec.Event.Position != uint64(id) || rec.Event.Source != "src" {
			t.Fatalf("event identity lost: %+v", rec.Event)
		}
		if rec.DecodeErr != nil {
			if !json.Valid(rec.Raw) {
				t.Fatalf("raw row is not valid JSON: %q", rec.Raw)
			}
			if !strings.Contains(rec.DecodeErr.Error(), "row ") {
				t.Fatalf("decode error does not name the row: %v", rec.DecodeErr)
			}
			return
		}
		ev := rec.Event
		if id <= 0 || !ev.Op.Valid() || ev.Entity != entity || ev.Key != key {
			t.Fatalf("accepted a bad row as %+v", ev)
		}
		if _, err := time.Parse(time.RFC3339Nano, ev.CommitTime); err != nil {
			t.Fatalf("commit time %q: %v", ev.CommitTime, err)
		}
		if _, err := json.Marshal(ev); err != nil {
			t.Fatalf("event does not marshal: %v", err)
		}
	})
}
