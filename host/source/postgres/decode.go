package postgres

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fraiseql/observer/abi"
	"github.com/fraiseql/observer/host/event"
	"github.com/fraiseql/observer/host/source"
)

// row is one change-log row as scanned, whatever the mode. Every column but
// the id is nullable here: a NULL where the schema promises none must become
// a decode error on that row, not a scan error that stops the whole batch.
type row struct {
	ID            int64
	TxID          *string
	Entity        *string
	Op            *string
	Key           *string
	Before        []byte
	After         []byte
	ChangedFields []byte // JSON: array of strings (or object, FraiseQL), or null
	Tenant        *string
	TraceContext  []byte
	CommitTime    *time.Time
}

// decodeMode says how loosely a row's op and images are read.
type decodeMode int

const (
	decodeNative decodeMode = iota
	decodeFraiseQL
)

// decodeRow turns a row into a Record. skip is true for FraiseQL NOOP rows,
// which record that a mutation changed nothing: there is no change to
// deliver, and the position simply moves past them.
func decodeRow(src string, mode decodeMode, r row) (rec source.Record, skip bool) {
	pos := uint64(r.ID)
	ev := &event.Event{ID: event.ID(src, pos), Position: pos, Source: src}
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	if r.ID <= 0 {
		bad("id %d is not positive", r.ID)
	}
	if r.Entity == nil || *r.Entity == "" {
		bad("entity is empty")
	} else {
		ev.Entity = *r.Entity
	}
	if r.Key != nil {
		ev.Key = *r.Key
	}
	var op string
	if r.Op != nil {
		op = *r.Op
	}
	switch o := abi.Operation(strings.ToUpper(strings.TrimSpace(op))); {
	case o.Valid():
		ev.Op = o
	case mode == decodeFraiseQL && o == "NOOP":
		return source.Record{}, true
	default:
		bad("op %q is not INSERT, UPDATE or DELETE", op)
	}
	var err error
	if ev.Before, err = event.DecodeImage(r.Before); err != nil {
		bad("before: %w", err)
	}
	if ev.After, err = event.DecodeImage(r.After); err != nil {
		bad("after: %w", err)
	}
	if mode == decodeFraiseQL && ev.Op == event.OpDelete && ev.Before == nil && ev.After != nil {
		// FraiseQL logs a deleted object in object_data; the canonical
		// event carries what was deleted as the before image.
		ev.Before, ev.After = ev.After, nil
	}
	if ev.ChangedFields, err = decodeChanged(r.ChangedFields); err != nil {
		bad("changed fields: %w", err)
	}
	if r.Tenant != nil {
		ev.Tenant = *r.Tenant
	}
	if r.CommitTime == nil {
		bad("commit time is missing")
	} else {
		ev.CommitTime = r.CommitTime.UTC().Format(time.RFC3339Nano)
	}
	if r.TxID != nil {
		ev.TxID = *r.TxID
	}
	if ev.Trace, err = decodeTrace(r.TraceContext); err != nil {
		bad("trace context: %w", err)
	}
	if len(errs) == 0 {
		return source.Record{Event: ev}, false
	}
	return source.Record{
		Event:     ev,
		DecodeErr: &source.DecodeError{Source: src, Position: pos, Err: errors.Join(errs...)},
		Raw:       rawRow(r),
	}, false
}

// decodeChanged accepts a JSON array of strings, or (FraiseQL stores
// updated_fields either way) an object whose keys are the fields.
func decodeChanged(b []byte) ([]string, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || bytes.Equal(b, []byte("null")) {
		return nil, nil
	}
	switch b[0] {
	case '[':
		var fs []string
		if err := json.Unmarshal(b, &fs); err != nil {
			return nil, fmt.Errorf("not an array of strings: %w", err)
		}
		return fs, nil
	case '{':
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("not a JSON object: %w", err)
		}
		fs := make([]string, 0, len(m))
		for k := range m {
			fs = append(fs, k)
		}
		slices.Sort(fs)
		return fs, nil
	}
	return nil, fmt.Errorf("want an array of field names, got %.40q", b)
}

func decodeTrace(b []byte) (*abi.TraceContext, error) {
	m, err := event.DecodeImage(b)
	if err != nil {
		return nil, err
	}
	if m == nil {
		return nil, nil
	}
	var tc abi.TraceContext
	for k, dst := range map[string]*string{"traceparent": &tc.Traceparent, "tracestate": &tc.Tracestate} {
		v, ok := m[k]
		if !ok || v == nil {
			continue
		}
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("%s is not a string", k)
		}
		*dst = s
	}
	if tc.IsZero() {
		return nil, nil
	}
	return &tc, nil
}

// rawRow renders the row as JSON for the dead-letter queue, keeping
// whatever the columns held even when it is not valid JSON.
func rawRow(r row) json.RawMessage {
	js := func(b []byte) json.RawMessage {
		if b == nil {
			return nil
		}
		if json.Valid(b) {
			return b
		}
		s, _ := json.Marshal(string(b))
		return s
	}
	out, err := json.Marshal(struct {
		ID            int64           `json:"id"`
		TxID          *string         `json:"txid,omitempty"`
		Entity        *string         `json:"entity"`
		Op            *string         `json:"op"`
		Key           *string         `json:"key"`
		Before        json.RawMessage `json:"before"`
		After         json.RawMessage `json:"after"`
		ChangedFields json.RawMessage `json:"changed_fields"`
		Tenant        *string         `json:"tenant,omitempty"`
		TraceContext  json.RawMessage `json:"trace_context,omitempty"`
		CommitTime    *time.Time      `json:"commit_time"`
	}{r.ID, r.TxID, r.Entity, r.Op, r.Key, js(r.Before), js(r.After), js(r.ChangedFields), r.Tenant, js(r.TraceContext), r.CommitTime})
	if err != nil {
		// Only reachable through invalid UTF-8 made valid above; keep the id.
		return json.RawMessage(fmt.Sprintf(`{"id":%d}`, r.ID))
	}
	return out
}
