package main

import (
	"strings"
	"testing"

	observer "github.com/fraiseql/observer/sdk-guest/go"
)

// The conformance suite (make conformance) checks the built module against
// examples/plugins/vectors/notify; these run the same handler natively.
func TestAct(t *testing.T) {
	const event = `{"id": "pg:7", "entity": "public.payment", "op": "DELETE", "before": {"amount": 1}, "after": null}`
	for _, tc := range []struct {
		name, config, want string
	}{
		{"posts", `{"url": "https://hooks.example.com/n"}`,
			`{"type":"http","http":{"method":"POST","url":"https://hooks.example.com/n","headers":{"content-type":"application/json"},"body":"{\"event\":\"pg:7\",\"entity\":\"public.payment\",\"op\":\"DELETE\"}"}}`},
		{"no url", `{"method": "POST"}`, `"message":"config.url is missing`},
		{"url not a string", `{"url": 5}`, `"code":"bad_config"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := `{"abi": "1.0", "context": {"now": "2026-01-01T00:00:00Z"}, "event": ` + event + `, "config": ` + tc.config + `}`
			out := string(observer.Invoke("act", []byte(in)))
			if !strings.Contains(out, tc.want) {
				t.Fatalf("got %s, want it to contain %s", out, tc.want)
			}
		})
	}
}
