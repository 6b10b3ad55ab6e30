// Package event holds the canonical change event and the pure functions
// derived from it: canonical JSON, stable identifiers and keys, and the
// Debezium envelope mapping. It does no I/O.
//
// The Event type itself is abi.Event: the host and the plugins see the same
// struct, so the payload cannot drift from what the host routes on.
package event

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/fraiseql/observer/abi"
)

// Event is the canonical change event. See abi.Event.
type Event = abi.Event

// Operation is INSERT, UPDATE or DELETE.
type Operation = abi.Operation

const (
	OpInsert = abi.OpInsert
	OpUpdate = abi.OpUpdate
	OpDelete = abi.OpDelete
)

// ID returns the stable event id for a position in a source.
func ID(source string, position uint64) string {
	return source + ":" + strconv.FormatUint(position, 10)
}

// OrderKey returns the key under which events must be processed in order:
// entity and key together.
func OrderKey(e *Event) string { return e.Entity + "\x00" + e.Key }

// IdempotencyKey is stable per event, observer and effect index, so a
// re-delivered event produces the same key for the same effect.
func IdempotencyKey(eventID, observer string, effectIndex int) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%d", eventID, observer, effectIndex)
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// DecodeImage decodes a JSON object row image, keeping numbers exact
// (json.Number). JSON null or empty input gives a nil map.
func DecodeImage(b []byte) (map[string]any, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || bytes.Equal(b, []byte("null")) {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("row image is not a JSON object: %w", err)
	}
	// Decoder.More is no test for trailing data: it answers false
	// before a stray "}" or "]".
	if len(bytes.TrimSpace(b[dec.InputOffset():])) > 0 {
		return nil, fmt.Errorf("row image has trailing data after the JSON object")
	}
	return m, nil
}

// Decode decodes an event from its JSON form, keeping numbers exact.
func Decode(b []byte) (*Event, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var e Event
	if err := dec.Decode(&e); err != nil {
		return nil, fmt.Errorf("decode event: %w", err)
	}
	return &e, nil
}

// CanonicalJSON renders v as JSON with object keys sorted at every depth
// and no insignificant white space. Use it wherever a hash or key is derived
// from a payload.
func CanonicalJSON(v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var generic any
	if err := dec.Decode(&generic); err != nil {
		return nil, err
	}
	// encoding/json sorts map keys; going through a generic value turns
	// every struct into a map.
	return json.Marshal(generic)
}
