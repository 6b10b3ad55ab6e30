package postgres

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/fraiseql/observer/abi"
)

// FuzzDecodeRow: whatever a change-log row holds, decoding never panics, a
// row is never silently lost (only a FraiseQL NOOP is skipped), a decoded
// event is well formed, and a failed one carries its id and valid raw JSON.
// Seeds live in testdata/fuzz/FuzzDecodeRow.
func FuzzDecodeRow(f *testing.F) {
	f.Add("INSERT", "film", "1", []byte(`null`), []byte(`{"a":1}`), []byte(`null`), []byte(`{"traceparent":"00-x"}`), false)
	f.Add("update", "Order", "", []byte(`{"a":1}`), []byte(`{"a":2}`), []byte(`{"a":true}`), []byte(``), true)
	f.Add("NOOP", "Order", "k", []byte(``), []byte(``), []byte(``), []byte(``), true)
	f.Fuzz(func(t *testing.T, op, entity, key string, before, after, changed, trace []byte, fraiseql bool) {
		mode := decodeNative
		if fraiseql {
			mode = decodeFraiseQL
		}
		now := time.Unix(1700000000, 5).UTC()
		r := row{ID: 42, Entity: &entity, Op: &op, Key: &key, Before: before, After: after, ChangedFields: changed, TraceContext: trace, CommitTime: &now}
		rec, skip := decodeRow("src", mode, r)
		if skip {
			if !fraiseql || strings.ToUpper(strings.TrimSpace(op)) != "NOOP" {
				t.Fatalf("row skipped: op %q fraiseql %v", op, fraiseql)
			}
			return
		}
		if rec.Event == nil || rec.Event.ID != "src:42" || rec.Event.Position != 42 || rec.Event.Source != "src" {
			t.Fatalf("event identity lost: %+v", rec.Event)
		}
		if rec.DecodeErr != nil {
			if !json.Valid(rec.Raw) {
				t.Fatalf("raw row is not valid JSON: %q", rec.Raw)
			}
			if !strings.Contains(rec.DecodeErr.Error(), "row 42") {
				t.Fatalf("decode error does not name the row: %v", rec.DecodeErr)
			}
			return
		}
		ev := rec.Event
		if !ev.Op.Valid() || ev.Entity == "" || ev.Entity != entity || ev.Key != key {
			t.Fatalf("bad event: %+v", ev)
		}
		if _, err := time.Parse(time.RFC3339Nano, ev.CommitTime); err != nil {
			t.Fatalf("commit time %q: %v", ev.CommitTime, err)
		}
		if _, err := json.Marshal(ev); err != nil {
			t.Fatalf("event does not marshal: %v", err)
		}
	})
}

func TestDecodeRow(t *testing.T) {
	s := func(v string) *string { return &v }
	now := time.Date(2024, 1, 2, 3, 4, 5, 6, time.FixedZone("x", 3600))
	cases := []struct {
		name    string
		mode    decodeMode
		r       row
		wantErr string
		check   func(t *testing.T, rec abi.Event)
	}{
		{name: "insert", r: row{ID: 1, Entity: s("a"), Op: s("INSERT"), Key: s("1"), After: []byte(`{"n":1}`), CommitTime: &now, TxID: s("77")},
			check: func(t *testing.T, e abi.Event) {
				if e.CommitTime != "2024-01-02T02:04:05.000000006Z" || e.TxID != "77" || e.After["n"] != json.Number("1") {
					t.Errorf("%+v", e)
				}
			}},
		{name: "null entity", r: row{ID: 1, Op: s("INSERT"), CommitTime: &now}, wantErr: "entity is empty"},
		{name: "bad op", r: row{ID: 1, Entity: s("a"), Op: s("TRUNCATE"), CommitTime: &now}, wantErr: `op "TRUNCATE"`},
		{name: "before not object", r: row{ID: 1, Entity: s("a"), Op: s("DELETE"), Before: []byte(`"x"`), CommitTime: &now}, wantErr: "before:"},
		{name: "after trailing data", r: row{ID: 1, Entity: s("a"), Op: s("INSERT"), After: []byte(`{} {}`), CommitTime: &now}, wantErr: "after:"},
		{name: "changed not names", r: row{ID: 1, Entity: s("a"), Op: s("UPDATE"), ChangedFields: []byte(`[1]`), CommitTime: &now}, wantErr: "changed fields"},
		{name: "trace not strings", r: row{ID: 1, Entity: s("a"), Op: s("UPDATE"), TraceContext: []byte(`{"traceparent":1}`), CommitTime: &now}, wantErr: "trace context"},
		{name: "no commit time", r: row{ID: 1, Entity: s("a"), Op: s("UPDATE")}, wantErr: "commit time"},
		{name: "native does not know NOOP", r: row{ID: 1, Entity: s("a"), Op: s("NOOP"), CommitTime: &now}, wantErr: `op "NOOP"`},
		{name: "fraiseql lowercase delete moves image to before", mode: decodeFraiseQL,
			r: row{ID: 1, Entity: s("a"), Op: s(" delete "), After: []byte(`{"n":1}`), ChangedFields: []byte(`{"b":1,"a":2}`), CommitTime: &now},
			check: func(t *testing.T, e abi.Event) {
				if e.Op != "DELETE" || e.After != nil || e.Before["n"] == nil || strings.Join(e.ChangedFields, ",") != "a,b" {
					t.Errorf("%+v", e)
				}
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec, skip := decodeRow("s", c.mode, c.r)
			if skip {
				t.Fatal("skipped")
			}
			if c.wantErr != "" {
				if rec.DecodeErr == nil || !strings.Contains(rec.DecodeErr.Error(), c.wantErr) {
					t.Fatalf("got %v, want error containing %q", rec.DecodeErr, c.wantErr)
				}
				if !json.Valid(rec.Raw) {
					t.Fatalf("raw %q", rec.Raw)
				}
				return
			}
			if rec.DecodeErr != nil {
				t.Fatal(rec.DecodeErr)
			}
			c.check(t, *rec.Event)
		})
	}
}
