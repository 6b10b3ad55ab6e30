package main

import (
	"strings"
	"testing"

	observer "github.com/fraiseql/observer/sdk-guest/go"
)

func TestTemplateNative(t *testing.T) {
	p := &observer.Plugin{Name: "webhook", Act: act}
	in := func(body string) []byte {
		return []byte(`{"abi":"1.0","context":{"now":"2026-01-01T00:00:00Z"},"event":{"id":"pg:1","op":"INSERT","entity":"t","key":"k","before":null,"after":{"a":1.50,"s":"x<y","o":{"k":[1,2]}}},"config":{"url":"https://h.example/x","body":` + body + `}}`)
	}
	for _, tc := range []struct{ body, want string }{
		{`"{{ after.a }}"`, `"body":"1.50"`},
		{`"{{after.s}}"`, `"body":"\"x\u003cy\""`},
		{`"{{ raw after.s }}"`, `"body":"x\u003cy"`},
		{`"{{ after.o }}"`, `"body":"{\"k\":[1,2]}"`},
		{`"{{ before.a }}|{{ raw before.a }}|"`, `"body":"null||"`},
		{`"{{ after.a"`, `not closed`},
		{`"a }} b"`, `with no`},
		{`"{{ raw }}"`, `path`},
		{`"{{ a b c }}"`, `must be {{ path }}`},
	} {
		got := string(p.Invoke("act", in(tc.body)))
		if !strings.Contains(got, tc.want) {
			t.Errorf("body %s: %s, want %s", tc.body, got, tc.want)
		}
	}
}
