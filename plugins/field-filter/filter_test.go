package main

import (
	"strings"
	"testing"

	observer "github.com/fraiseql/observer/sdk-guest/go"
)

func TestFilterNative(t *testing.T) {
	p := &observer.Plugin{Name: "field-filter", Filter: filter}
	in := func(cfg, after string) []byte {
		return []byte(`{"abi":"1.0","context":{"now":"2026-01-01T00:00:00Z"},"event":{"id":"pg:1","op":"INSERT","entity":"t","before":null,"after":` + after + `},"config":` + cfg + `}`)
	}
	for _, tc := range []struct{ cfg, after, want string }{
		{`{"field":"after.amount","op":">=","value":9.99}`, `{"amount":9.99}`, `"pass":true`},
		{`{"field":"after.amount","op":">","value":9.99}`, `{"amount":9.99}`, `"pass":false`},
		{`{"field":"after.amount","op":">","value":1}`, `{"amount":1e999999999}`, `cannot be compared`},
		{`{"field":"after.t","op":"<","value":"2026-01-02"}`, `{"t":"2026-01-01T10:00:00Z"}`, `"pass":true`},
		{`{"field":"after.x","op":"changed"}`, `{"x":1}`, `changed from (absent) to 1`},
		{`{"field":"after.x","op":"in","value":3}`, `{"x":1}`, `must be an array`},
		{`{"field":"after.x","op":"exists","value":3}`, `{"x":1}`, `not used by op`},
	} {
		got := string(p.Invoke("filter", in(tc.cfg, tc.after)))
		if !strings.Contains(got, tc.want) {
			t.Errorf("config %s after %s: %s, want %s", tc.cfg, tc.after, got, tc.want)
		}
	}
}
