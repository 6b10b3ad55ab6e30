package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"time"

	"github.com/fraiseql/observer/abi"
)

// DebeziumPrefix starts every extension field ToDebezium adds to "source".
const DebeziumPrefix = "observer_"

// DebeziumConnector is the source.connector value ToDebezium writes.
const DebeziumConnector = "observer"

var opToDebezium = map[abi.Operation]string{OpInsert: "c", OpUpdate: "u", OpDelete: "d"}

// dbzEnvelope fixes the field order of ToDebezium's output.
type dbzEnvelope struct {
	Before map[string]any `json:"before"`
	After  map[string]any `json:"after"`
	Source dbzSource      `json:"source"`
	Op     string         `json:"op"`
	TsMs   *int64         `json:"ts_ms,omitempty"`
}

type dbzSource struct {
	Connector     string    `json:"connector"`
	Name          string    `json:"name"`
	TsMs          *int64    `json:"ts_ms,omitempty"`
	TsNs          *int64    `json:"ts_ns,omitempty"`
	Table         string    `json:"table"`
	TxID          any       `json:"txId,omitempty"`
	Position      uint64    `json:"observer_position"`
	ID            string    `json:"observer_id,omitempty"`
	Key           string    `json:"observer_key"`
	ChangedFields *[]string `json:"observer_changed_fields,omitempty"`
	Tenant        string    `json:"observer_tenant,omitempty"`
	Traceparent   *string   `json:"observer_traceparent,omitempty"`
	Tracestate    *string   `json:"observer_tracestate,omitempty"`
	CommitTime    string    `json:"observer_commit_time,omitempty"`
}

// ToDebezium renders e as a Debezium change event value (no schema
// wrapper); FromDebezium reads one back.
//
// A Debezium change event value (JSON converter, with or without the
// schema/payload wrapper) is
//
//	{"before": {…}|null, "after": {…}|null,
//	 "source": {"connector", "name", "ts_ms", "ts_ns", "db", "schema", "table", "txId", "lsn"|"pos", …},
//	 "op": "c"|"u"|"d"|"r", "ts_ms": …}
//
// and maps onto the Event as follows:
//
//	op           c, r (snapshot read) → INSERT; u → UPDATE; d → DELETE
//	before/after the row images, numbers kept exact (json.Number)
//	source.table Entity (source.schema and source.db are not part of the
//	             entity, as in this project's own sources, whose entity
//	             is the table name)
//	source.name  Source, unless FromDebezium is given a source name
//	source.txId  TxID (a number when TxID is a plain decimal, else a string)
//	source.ts_ns CommitTime (ts_us, ts_ms, then the envelope's ts_ms as
//	             fallbacks when reading); ToDebezium writes ts_ms and ts_ns
//
// Debezium has no place for the rest of the Event, so ToDebezium adds these
// fields to "source", all prefixed "observer_", which Debezium consumers
// ignore:
//
//	observer_position        Position (always written)
//	observer_key             Key (always written; Debezium carries the key
//	                         in the message key, not the value)
//	observer_changed_fields  ChangedFields (written unless nil)
//	observer_tenant          Tenant (written unless empty)
//	observer_traceparent,
//	observer_tracestate      Trace (both written when Trace is not nil)
//	observer_id              ID, written only when it is not ID(Source, Position)
//	observer_commit_time     CommitTime, written only when ts_ns cannot
//	                         reproduce it exactly (not RFC 3339 in UTC as
//	                         time.RFC3339Nano renders it)
//
// With those, FromDebezium(ToDebezium(e), e.Source) equals e exactly.
//
// An envelope without observer_position came from a real Debezium
// connector. Then Position is source.lsn (PostgreSQL) or source.pos (MySQL),
// Key is empty (so events of one entity are all ordered together, which is
// safe), ChangedFields of an UPDATE with both images are the top-level
// columns whose values differ, sorted, and Tenant and Trace are empty.
// Images must be plain JSON: configure the connector with
// decimal.handling.mode=string or double, since precise mode encodes
// decimals as bytes that are not readable without the schema.
func ToDebezium(e *Event) ([]byte, error) {
	if e == nil {
		return nil, errors.New("debezium: event is nil")
	}
	op, ok := opToDebezium[e.Op]
	if !ok {
		return nil, fmt.Errorf("debezium: event %s: op %q is not INSERT, UPDATE or DELETE", e.ID, e.Op)
	}
	env := dbzEnvelope{
		Before: e.Before,
		After:  e.After,
		Op:     op,
		Source: dbzSource{
			Connector: DebeziumConnector,
			Name:      e.Source,
			Table:     e.Entity,
			Position:  e.Position,
			Key:       e.Key,
			Tenant:    e.Tenant,
		},
	}
	if e.ID != ID(e.Source, e.Position) {
		env.Source.ID = e.ID
	}
	if e.TxID != "" {
		if n, err := strconv.ParseUint(e.TxID, 10, 64); err == nil && strconv.FormatUint(n, 10) == e.TxID {
			env.Source.TxID = n
		} else {
			env.Source.TxID = e.TxID
		}
	}
	if e.ChangedFields != nil {
		cf := e.ChangedFields
		env.Source.ChangedFields = &cf
	}
	if e.Trace != nil {
		tp, ts := e.Trace.Traceparent, e.Trace.Tracestate
		env.Source.Traceparent, env.Source.Tracestate = &tp, &ts
	}
	if e.CommitTime != "" {
		t, err := time.Parse(time.RFC3339Nano, e.CommitTime)
		if err == nil {
			ms, ns := t.UnixMilli(), t.UnixNano()
			env.TsMs, env.Source.TsMs, env.Source.TsNs = &ms, &ms, &ns
		}
		if err != nil || t.UTC().Format(time.RFC3339Nano) != e.CommitTime {
			env.Source.CommitTime = e.CommitTime
		}
	}
	b, err := json.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("debezium: event %s: %w", e.ID, err)
	}
	return b, nil
}

// FromDebezium reads a Debezium change event value (JSON converter, with
// or without the schema/payload wrapper). sourceName, if not empty, names
// the event's source (and so its ID); otherwise source.name is used. See
// ToDebezium for the mapping. A tombstone (null), an op other than c, r, u, d, or a
// missing table or position is an error naming what was wrong.
func FromDebezium(b []byte, sourceName string) (*Event, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || bytes.Equal(b, []byte("null")) {
		return nil, errors.New("debezium: empty or null message (a tombstone) holds no change event")
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return nil, fmt.Errorf("debezium: message is not a JSON object: %w", err)
	}
	if p, ok := top["payload"]; ok {
		if _, hasOp := top["op"]; !hasOp {
			top = nil
			if err := json.Unmarshal(p, &top); err != nil || top == nil {
				return nil, fmt.Errorf("debezium: payload is not a JSON object")
			}
		}
	}
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	e := &Event{}
	var opStr string
	if err := json.Unmarshal(top["op"], &opStr); err != nil || opStr == "" {
		bad("op is missing or not a string")
	}
	switch opStr {
	case "c", "r":
		e.Op = OpInsert
	case "u":
		e.Op = OpUpdate
	case "d":
		e.Op = OpDelete
	case "":
	default:
		bad("op %q is not c, r, u or d", opStr)
	}
	var err error
	if e.Before, err = DecodeImage(top["before"]); err != nil {
		bad("before: %w", err)
	}
	if e.After, err = DecodeImage(top["after"]); err != nil {
		bad("after: %w", err)
	}
	src, err := DecodeImage(top["source"])
	if err != nil {
		bad("source: %w", err)
	}
	if src == nil {
		bad("source is missing")
		src = map[string]any{}
	}
	str := func(key string) (string, bool) {
		v, ok := src[key]
		if !ok || v == nil {
			return "", false
		}
		s, isStr := v.(string)
		if !isStr {
			bad("source.%s is %s, want a string", key, jsonKind(v))
		}
		return s, isStr
	}
	num := func(m map[string]any, where, key string) (json.Number, bool) {
		v, ok := m[key]
		if !ok || v == nil {
			return "", false
		}
		n, isNum := v.(json.Number)
		if !isNum {
			bad("%s%s is %s, want a number", where, key, jsonKind(v))
		}
		return n, isNum
	}
	uintOf := func(where, key string, n json.Number) uint64 {
		u, err := strconv.ParseUint(string(n), 10, 64)
		if err != nil {
			bad("%s%s %s is not a non-negative integer", where, key, n)
		}
		return u
	}

	if e.Entity, _ = str("table"); e.Entity == "" {
		bad("source.table is missing or empty")
	}
	e.Source = sourceName
	if name, _ := str("name"); e.Source == "" {
		e.Source = name
	}
	switch v := src["txId"].(type) {
	case nil:
	case json.Number:
		e.TxID = string(v)
	case string:
		e.TxID = v
	default:
		bad("source.txId is %s, want a number or a string", jsonKind(v))
	}

	// Commit time: exact text if recorded, else the finest timestamp.
	if ct, ok := str(DebeziumPrefix + "commit_time"); ok {
		e.CommitTime = ct
	} else {
		var t time.Time
		var have bool
		for _, f := range []struct {
			m     map[string]any
			where string
			key   string
			unit  time.Duration
		}{{src, "source.", "ts_ns", time.Nanosecond}, {src, "source.", "ts_us", time.Microsecond}, {src, "source.", "ts_ms", time.Millisecond}} {
			if n, ok := num(f.m, f.where, f.key); ok {
				i, err := strconv.ParseInt(string(n), 10, 64)
				if err != nil {
					bad("%s%s %s is not an integer", f.where, f.key, n)
					break
				}
				t, have = unixIn(i, f.unit), true
				break
			}
		}
		if !have {
			var envTs json.Number
			if raw, ok := top["ts_ms"]; ok && json.Unmarshal(raw, &envTs) == nil && envTs != "" {
				if i, err := strconv.ParseInt(string(envTs), 10, 64); err == nil {
					t, have = time.UnixMilli(i), true
				}
			}
		}
		if have {
			e.CommitTime = t.UTC().Format(time.RFC3339Nano)
		}
	}

	if n, ok := num(src, "source.", DebeziumPrefix+"position"); ok {
		// Written by ToDebezium: the observer_ fields are authoritative.
		e.Position = uintOf("source.", DebeziumPrefix+"position", n)
		e.Key, _ = str(DebeziumPrefix + "key")
		e.Tenant, _ = str(DebeziumPrefix + "tenant")
		if v, ok := src[DebeziumPrefix+"changed_fields"]; ok && v != nil {
			e.ChangedFields = stringList(v, bad)
		}
		tp, hasTP := str(DebeziumPrefix + "traceparent")
		ts, hasTS := str(DebeziumPrefix + "tracestate")
		if hasTP || hasTS {
			e.Trace = &abi.TraceContext{Traceparent: tp, Tracestate: ts}
		}
	} else {
		// From a Debezium connector.
		if n, ok := num(src, "source.", "lsn"); ok {
			e.Position = uintOf("source.", "lsn", n)
		} else if n, ok := num(src, "source.", "pos"); ok {
			e.Position = uintOf("source.", "pos", n)
		} else {
			bad("source has no position: none of %sposition, lsn or pos", DebeziumPrefix)
		}
		if e.Op == OpUpdate && e.Before != nil && e.After != nil {
			e.ChangedFields = diffColumns(e.Before, e.After)
		}
	}
	e.ID = ID(e.Source, e.Position)
	if id, ok := str(DebeziumPrefix + "id"); ok {
		e.ID = id
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("debezium: %w", errors.Join(errs...))
	}
	return e, nil
}

func unixIn(n int64, unit time.Duration) time.Time {
	per := int64(time.Second / unit)
	return time.Unix(n/per, (n%per)*int64(unit))
}

func stringList(v any, bad func(string, ...any)) []string {
	arr, ok := v.([]any)
	if !ok {
		bad("source.%schanged_fields is %s, want an array of strings", DebeziumPrefix, jsonKind(v))
		return nil
	}
	out := make([]string, 0, len(arr))
	for i, x := range arr {
		s, ok := x.(string)
		if !ok {
			bad("source.%schanged_fields[%d] is %s, want a string", DebeziumPrefix, i, jsonKind(x))
			continue
		}
		out = append(out, s)
	}
	return out
}

// diffColumns lists, sorted, the top-level columns whose values differ
// between two images (present in one only counts as different).
func diffColumns(before, after map[string]any) []string {
	out := []string{}
	for k, a := range after {
		if b, ok := before[k]; !ok || !reflect.DeepEqual(a, b) {
			out = append(out, k)
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}
