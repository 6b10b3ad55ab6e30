package observer_test

import (
	"encoding/json"
	"strings"
	"testing"

	observer "github.com/fraiseql/observer/sdk-guest/go"
)

const input = `{"abi":"1.0","context":{"observer":"o","plugin":"p","role":"filter","attempt":2,"now":"2026-01-01T00:00:00Z"},
"event":{"id":"pg:7","position":7,"source":"pg","entity":"public.rental","op":"UPDATE","key":"9",
"before":{"status":"out","address":{"city":"Lyon"}},
"after":{"status":"returned","amount":123456789012345678901.25,"address":{"city":"Paris"},"items":[{"sku":"a"},{"sku":"b"}],"gone":null},
"changed_fields":["status"],"commit_time":"2026-01-01T00:00:00Z"}}`

func TestLookup(t *testing.T) {
	in, e := observer.DecodeInput([]byte(input))
	if e != nil {
		t.Fatal(e)
	}
	for _, tc := range []struct {
		path string
		want string // JSON of the value, "" for not found
	}{
		{"after.status", `"returned"`},
		{"after.amount", `123456789012345678901.25`},
		{"after.address.city", `"Paris"`},
		{"before.address.city", `"Lyon"`},
		{"after.items.1.sku", `"b"`},
		{"after.items.2.sku", ""},
		{"after.gone", `null`},
		{"after.nope", ""},
		{"event.id", `"pg:7"`},
		{"entity", `"public.rental"`},
		{"op", `"UPDATE"`},
		{"position", `7`},
		{"changed_fields.0", `"status"`},
		{"context.attempt", `2`},
		{"context.now", `"2026-01-01T00:00:00Z"`},
		{"event.after.status", `"returned"`},
		{"bogus.x", ""},
	} {
		v, ok := observer.Lookup(in, tc.path)
		got := ""
		if ok {
			b, _ := json.Marshal(v)
			got = string(b)
		}
		if got != tc.want {
			t.Errorf("Lookup(%q) = %s, want %s", tc.path, got, tc.want)
		}
	}
	if err := observer.CheckPath("aftr.x"); err == nil || !strings.Contains(err.Error(), "aftr") {
		t.Errorf("CheckPath(aftr.x) = %v", err)
	}
}

func TestInvoke(t *testing.T) {
	p := &observer.Plugin{Name: "t", Filter: func(in *observer.Input) (observer.FilterResult, error) {
		if in.Event.Op == observer.OpDelete {
			return observer.FilterResult{}, observer.Retryable("later", "not now")
		}
		return observer.Pass("ok"), nil
	}}
	for _, tc := range []struct {
		role, input, want string
	}{
		{"filter", input, `{"abi":"1.0","pass":true,"reason":"ok"}`},
		{"filter", strings.Replace(input, `"UPDATE"`, `"DELETE"`, 1), `{"abi":"1.0","pass":false,"error":{"message":"not now","retryable":true,"code":"later"}}`},
		{"filter", `{"abi": "1.0", "event": `, `"code":"bad_input"`},
		{"filter", ``, `"code":"bad_input"`},
		{"filter", `{"abi":"2.0","event":{}}`, `speaks ABI 1.x`},
		{"filter", `{"abi":"1.0","event":null}`, `input has no event`},
		{"act", input, `"code":"no_handler"`},
	} {
		got := string(p.Invoke(tc.role, []byte(tc.input)))
		if !strings.Contains(got, tc.want) {
			t.Errorf("Invoke(%s, %.30q) = %s, want %s", tc.role, tc.input, got, tc.want)
		}
	}
	m := p.Manifest()
	if m.ABI != "1.0" || len(m.Roles) != 1 || m.Roles[0] != "filter" {
		t.Errorf("manifest = %+v", m)
	}
}
