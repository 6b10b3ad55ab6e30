package main

import (
	"strings"
	"testing"

	observer "github.com/fraiseql/observer/sdk-guest/go"
)

// The conformance suite (make conformance) checks the built module against
// examples/plugins/vectors/min-amount; these run the same handler natively.
func TestFilter(t *testing.T) {
	const event = `{"id": "pg:1", "op": "INSERT", "after": {"amount": AMOUNT}}`
	for _, tc := range []struct {
		name, amount, config, want string
	}{
		{"above", "11.99", `{"min": 9.99}`, `"pass":true`},
		{"equal", "9.99", `{"min": 9.99}`, `"pass":true`},
		{"below", "4.99", `{"min": 9.99}`, `"reason":"amount 4.99 \u003c min 9.99"`},
		{"string amount", `"11.99"`, `{"min": 1}`, `"reason":"after.amount is not a number"`},
		{"beyond float64", "1e999", `{"min": 1}`, `"pass":true`},
		{"no min", "1", `{}`, `"code":"bad_config"`},
		{"min not a number", "1", `{"min": "5"}`, `"code":"bad_config"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := `{"abi": "1.0", "context": {"now": "2026-01-01T00:00:00Z"}, "event": ` +
				strings.Replace(event, "AMOUNT", tc.amount, 1) + `, "config": ` + tc.config + `}`
			out := string(observer.Invoke("filter", []byte(in)))
			if !strings.Contains(out, tc.want) {
				t.Fatalf("got %s, want it to contain %s", out, tc.want)
			}
		})
	}
}
