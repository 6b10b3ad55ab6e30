package event

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/fraiseql/observer/abi"
)

func mustImage(t *testing.T, s string) map[string]any {
	t.Helper()
	m, err := DecodeImage([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestDebeziumRoundTrip(t *testing.T) {
	full := func() *Event {
		return &Event{
			ID: "main:42", Position: 42, Source: "main", Entity: "payment", Op: OpUpdate, Key: "17",
			Before: mustImage(t, `{"payment_id": 17, "amount": 4.99, "note": null}`),
			After: mustImage(t, `{"payment_id": 17, "amount": 9.990, "note": "x", "big": 123456789012345678901234567890,
				"nested": {"a": [1, 2.50, {"b": null}], "s": "é\u0000"}}`),
			ChangedFields: []string{"amount", "note"}, Tenant: "acme",
			CommitTime: "2024-05-01T10:00:00.123456789Z", TxID: "778",
			Trace: &abi.TraceContext{Traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", Tracestate: "k=v"},
		}
	}
	tests := []struct {
		name string
		edit func(*Event)
	}{
		{"full update", func(*Event) {}},
		{"insert, no before", func(e *Event) { e.Op, e.Before = OpInsert, nil }},
		{"delete, no after", func(e *Event) { e.Op, e.After = OpDelete, nil }},
		{"delete, no images at all", func(e *Event) { e.Op, e.Before, e.After = OpDelete, nil, nil }},
		{"empty images", func(e *Event) { e.Before, e.After = map[string]any{}, map[string]any{} }},
		{"nil changed fields", func(e *Event) { e.ChangedFields = nil }},
		{"empty changed fields", func(e *Event) { e.ChangedFields = []string{} }},
		{"no trace", func(e *Event) { e.Trace = nil }},
		{"empty trace", func(e *Event) { e.Trace = &abi.TraceContext{} }},
		{"traceparent only", func(e *Event) { e.Trace.Tracestate = "" }},
		{"no tenant, key, txid", func(e *Event) { e.Tenant, e.Key, e.TxID = "", "", "" }},
		{"txid not a plain number", func(e *Event) { e.TxID = "0778" }},
		{"txid text", func(e *Event) { e.TxID = "mysql-gtid:3E11FA47-71CA:23" }},
		{"commit time whole seconds", func(e *Event) { e.CommitTime = "2024-05-01T10:00:00Z" }},
		{"commit time with zeros", func(e *Event) { e.CommitTime = "2024-05-01T10:00:00.500000000Z" }},
		{"commit time with offset", func(e *Event) { e.CommitTime = "2024-05-01T12:00:00.5+02:00" }},
		{"commit time garbage", func(e *Event) { e.CommitTime = "yesterday" }},
		{"no commit time", func(e *Event) { e.CommitTime = "" }},
		{"before 1970", func(e *Event) { e.CommitTime = "1969-07-20T20:17:40.000000001Z" }},
		{"id not derived", func(e *Event) { e.ID = "custom-id" }},
		{"position zero", func(e *Event) { e.Position, e.ID = 0, "main:0" }},
		{"position max", func(e *Event) { e.Position = 1<<64 - 1; e.ID = ID(e.Source, e.Position) }},
		{"entity with schema", func(e *Event) { e.Entity = "public.payment" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := full()
			tt.edit(e)
			b, err := ToDebezium(e)
			if err != nil {
				t.Fatal(err)
			}
			got, err := FromDebezium(b, e.Source)
			if err != nil {
				t.Fatalf("FromDebezium(%s): %v", b, err)
			}
			if !reflect.DeepEqual(got, e) {
				gj, _ := json.Marshal(got)
				wj, _ := json.Marshal(e)
				t.Errorf("round trip changed the event\n got %s\nwant %s\nvia %s", gj, wj, b)
			}
			// The source name comes from the envelope when none is given.
			if again, err := FromDebezium(b, ""); err != nil || again.Source != e.Source {
				t.Errorf("FromDebezium(b, \"\") source = %v, %v", again, err)
			}
		})
	}
}

func TestToDebeziumShape(t *testing.T) {
	e := &Event{ID: "pg:9", Position: 9, Source: "pg", Entity: "rental", Op: OpInsert, Key: "5",
		After: mustImage(t, `{"rental_id": 5, "amount": 2.99}`), CommitTime: "2024-05-01T10:00:00.001Z", TxID: "42"}
	b, err := ToDebezium(e)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"before":null,"after":{"amount":2.99,"rental_id":5},"source":{"connector":"observer","name":"pg",` +
		`"ts_ms":1714557600001,"ts_ns":1714557600001000000,"table":"rental","txId":42,"observer_position":9,` +
		`"observer_key":"5"},"op":"c","ts_ms":1714557600001}`
	if string(b) != want {
		t.Errorf("ToDebezium:\n got %s\nwant %s", b, want)
	}
	if _, err := ToDebezium(&Event{Op: "TRUNCATE"}); err == nil || !strings.Contains(err.Error(), `op "TRUNCATE"`) {
		t.Errorf("bad op: %v", err)
	}
	if _, err := ToDebezium(nil); err == nil {
		t.Error("nil event accepted")
	}
}

func TestFromDebeziumConnector(t *testing.T) {
	// Shapes produced by Debezium's PostgreSQL and MySQL connectors.
	pgUpdate := `{"before":{"id":1,"status":"new","total":10.50},"after":{"id":1,"status":"paid","total":10.5,"paid":true},
		"source":{"version":"2.5.0.Final","connector":"postgresql","name":"dbserver1","ts_ms":1714557600123,
		"ts_us":1714557600123456,"ts_ns":1714557600123456000,"snapshot":"false","db":"shop","schema":"public",
		"table":"orders","txId":771,"lsn":24023128,"xmin":null},"op":"u","ts_ms":1714557600200,"transaction":null}`
	tests := []struct {
		name, msg, source string
		want              *Event
	}{
		{"postgres update", pgUpdate, "shop", &Event{
			ID: "shop:24023128", Position: 24023128, Source: "shop", Entity: "orders", Op: OpUpdate,
			Before: map[string]any{"id": json.Number("1"), "status": "new", "total": json.Number("10.50")},
			After:  map[string]any{"id": json.Number("1"), "status": "paid", "total": json.Number("10.5"), "paid": true},
			// total is textually different (10.50 vs 10.5), as Debezium sends it.
			ChangedFields: []string{"paid", "status", "total"},
			CommitTime:    "2024-05-01T10:00:00.123456Z", TxID: "771",
		}},
		{"source name from envelope", pgUpdate, "", nil},
		{"schema wrapper, snapshot read, ts_ms only", `{"schema":{"type":"struct"},"payload":{"before":null,"after":{"id":2},
			"source":{"connector":"postgresql","name":"db1","ts_ms":1714557600123,"table":"orders","lsn":5},"op":"r","ts_ms":1}}`, "", &Event{
			ID: "db1:5", Position: 5, Source: "db1", Entity: "orders", Op: OpInsert,
			After: map[string]any{"id": json.Number("2")}, CommitTime: "2024-05-01T10:00:00.123Z",
		}},
		{"mysql delete with pos", `{"before":{"id":3},"after":null,"source":{"connector":"mysql","name":"my","ts_ms":0,
			"db":"inventory","table":"customers","file":"mysql-bin.000003","pos":805,"gtid":null},"op":"d"}`, "inv", &Event{
			ID: "inv:805", Position: 805, Source: "inv", Entity: "customers", Op: OpDelete,
			Before: map[string]any{"id": json.Number("3")}, CommitTime: "1970-01-01T00:00:00Z",
		}},
		{"commit time from envelope ts_ms", `{"before":null,"after":{"id":4},"source":{"table":"t","lsn":1},"op":"c","ts_ms":1000}`, "s", &Event{
			ID: "s:1", Position: 1, Source: "s", Entity: "t", Op: OpInsert,
			After: map[string]any{"id": json.Number("4")}, CommitTime: "1970-01-01T00:00:01Z",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FromDebezium([]byte(tt.msg), tt.source)
			if err != nil {
				t.Fatal(err)
			}
			if tt.want == nil {
				if got.Source != "dbserver1" || got.ID != "dbserver1:24023128" {
					t.Errorf("source/id = %q/%q, want dbserver1", got.Source, got.ID)
				}
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				gj, _ := json.Marshal(got)
				wj, _ := json.Marshal(tt.want)
				t.Errorf("\n got %s\nwant %s", gj, wj)
			}
		})
	}
}

func TestFromDebeziumErrors(t *testing.T) {
	tests := []struct{ name, msg, want string }{
		{"tombstone", `null`, "tombstone"},
		{"empty", ``, "tombstone"},
		{"not json", `{"op":`, "not a JSON object"},
		{"array", `[1]`, "not a JSON object"},
		{"null payload", `{"schema":{},"payload":null}`, "payload is not a JSON object"},
		{"no op", `{"after":{},"source":{"table":"t","lsn":1}}`, "op is missing"},
		{"truncate", `{"source":{"table":"t","lsn":1},"op":"t"}`, `op "t" is not c, r, u or d`},
		{"image not object", `{"after":[1],"source":{"table":"t","lsn":1},"op":"c"}`, "after: row image is not a JSON object"},
		{"no source", `{"after":{},"op":"c"}`, "source is missing"},
		{"no table", `{"after":{},"source":{"lsn":1},"op":"c"}`, "source.table is missing"},
		{"table not string", `{"after":{},"source":{"table":5,"lsn":1},"op":"c"}`, "source.table is a number, want a string"},
		{"no position", `{"after":{},"source":{"table":"t"},"op":"c"}`, "source has no position"},
		{"negative lsn", `{"after":{},"source":{"table":"t","lsn":-1},"op":"c"}`, "source.lsn -1 is not a non-negative integer"},
		{"lsn string", `{"after":{},"source":{"table":"t","lsn":"0/16B3748"},"op":"c"}`, "source.lsn is a string, want a number"},
		{"bad changed fields", `{"after":{},"source":{"table":"t","observer_position":1,"observer_changed_fields":[1]},"op":"c"}`,
			"observer_changed_fields[0] is a number, want a string"},
		{"bad txid", `{"after":{},"source":{"table":"t","lsn":1,"txId":true},"op":"c"}`, "source.txId is a boolean"},
		{"bad ts", `{"after":{},"source":{"table":"t","lsn":1,"ts_ms":1.5},"op":"c"}`, "source.ts_ms 1.5 is not an integer"},
		{"several at once", `{"after":1,"source":{},"op":"x"}`, `op "x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := FromDebezium([]byte(tt.msg), "s")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
	_, err := FromDebezium([]byte(`{"after":1,"source":{},"op":"x"}`), "s")
	for _, w := range []string{"after:", "source.table", "no position"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("joined error %v lacks %q", err, w)
		}
	}
}

// FuzzFromDebezium: any bytes given as a Debezium envelope are either
// refused with an error or mapped to a valid event that survives the round
// trip ToDebezium → FromDebezium unchanged. Seeds live in
// testdata/fuzz/FuzzFromDebezium.
func FuzzFromDebezium(f *testing.F) {
	f.Add([]byte(`{"payload":{"op":"c","before":null,"after":{"id":1,"amount":9.99},"source":{"table":"payment","schema":"public","ts_ms":1700000000000,"txId":77},"ts_ms":1700000000001}}`))
	f.Add([]byte(`{"op":"u","before":{"id":1,"n":"a"},"after":{"id":1,"n":"b"},"source":{"table":"t","lsn":42}}`))
	f.Add([]byte(`{"op":"d","before":{"id":2},"after":null,"source":{"collection":"c","ord":3}}`))
	f.Add([]byte(`{"op":"x"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := FromDebezium(b, "dbz")
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		if ev == nil || !ev.Op.Valid() {
			t.Fatalf("accepted envelope gave a bad event: %+v", ev)
		}
		out, err := ToDebezium(ev)
		if err != nil {
			t.Fatalf("ToDebezium of an accepted event: %v", err)
		}
		back, err := FromDebezium(out, "dbz")
		if err != nil {
			t.Fatalf("round trip refused: %v\n%s", err, out)
		}
		a, _ := CanonicalJSON(ev)
		c, _ := CanonicalJSON(back)
		if string(a) != string(c) {
			t.Fatalf("round trip changed the event:\n%s\n%s", a, c)
		}
	})
}
