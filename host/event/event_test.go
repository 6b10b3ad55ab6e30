package event

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestID(t *testing.T) {
	if got := ID("main", 18446744073709551615); got != "main:18446744073709551615" {
		t.Errorf("ID = %q", got)
	}
}

func TestIdempotencyKey(t *testing.T) {
	k := IdempotencyKey("main:1", "obs", 0)
	if len(k) != 32 || strings.Trim(k, "0123456789abcdef") != "" {
		t.Errorf("key %q is not 32 hex digits", k)
	}
	if k != IdempotencyKey("main:1", "obs", 0) {
		t.Error("key not stable")
	}
	// Every input takes part, and the separators keep fields apart.
	for _, other := range []string{
		IdempotencyKey("main:2", "obs", 0), IdempotencyKey("main:1", "obs2", 0),
		IdempotencyKey("main:1", "obs", 1), IdempotencyKey("main:1o", "bs", 0),
	} {
		if other == k {
			t.Errorf("collision: %s", other)
		}
	}
}

func TestOrderKey(t *testing.T) {
	a := OrderKey(&Event{Entity: "ab", Key: "c"})
	b := OrderKey(&Event{Entity: "a", Key: "bc"})
	if a == b {
		t.Error("entity/key boundary is ambiguous")
	}
}

func TestDecodeImage(t *testing.T) {
	tests := []struct {
		in      string
		wantNil bool
		wantErr string
	}{
		{"", true, ""}, {"  null ", true, ""}, {`{}`, false, ""},
		{`{"a": 12345678901234567890.5}`, false, ""},
		{`[1]`, true, "not a JSON object"}, {`{"a":1} {"b":2}`, true, "trailing data"}, {`{"a":1} }`, true, "trailing data"}, {`{"a":1}]`, true, "trailing data"}, {`{"a":`, true, "not a JSON object"},
	}
	for _, tt := range tests {
		m, err := DecodeImage([]byte(tt.in))
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("DecodeImage(%q) error = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || (m == nil) != tt.wantNil {
			t.Errorf("DecodeImage(%q) = %v, %v", tt.in, m, err)
		}
	}
	m, _ := DecodeImage([]byte(`{"a": 12345678901234567890.5}`))
	if m["a"] != json.Number("12345678901234567890.5") {
		t.Errorf("number not kept exact: %#v", m["a"])
	}
}

func TestDecodeAndCanonicalJSON(t *testing.T) {
	src := `{"id":"s:1","position":1,"source":"s","entity":"t","op":"UPDATE","key":"k",
		"before":{"z":1,"a":{"y":2,"b":0.10}},"after":null,"changed_fields":["z"],"commit_time":"2024-01-01T00:00:00Z"}`
	e, err := Decode([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	c, err := CanonicalJSON(e)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"after":null,"before":{"a":{"b":0.10,"y":2},"z":1},"changed_fields":["z"],"commit_time":"2024-01-01T00:00:00Z",` +
		`"entity":"t","id":"s:1","key":"k","op":"UPDATE","position":1,"source":"s"}`
	if string(c) != want {
		t.Errorf("CanonicalJSON:\n got %s\nwant %s", c, want)
	}
	if _, err := Decode([]byte(`{"position":"x"}`)); err == nil || !strings.Contains(err.Error(), "decode event") {
		t.Errorf("Decode bad input: %v", err)
	}
}
