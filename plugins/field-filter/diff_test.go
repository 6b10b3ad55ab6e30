package main

import (
	"bytes"
	"strings"
	"testing"

	observer "github.com/fraiseql/observer/sdk-guest/go"
)

// values are JSON literals used both as configured values and as column
// values: numbers exact and odd, numeric strings, other strings (escapes,
// HTML, invalid UTF-8 written as escapes), and every other JSON type.
var values = []string{
	`0`, `-0`, `0.0`, `1`, `-1`, `9.99`, `9.990`, `11.99`, `10`, `1e1`, `1E+1`, `100e-1`, `0.1e2`, `-2.5e-3`,
	`123456789012345678901234567890.000001`, `123456789012345678901234567890`, `1e1000`, `1e1001`, `1e-1000`, `1e-1001`,
	`1e999999999`, `0.000000000000000000001`, `"9.50"`, `" 9.5 "`, `"1/2"`, `"0x10"`, `"1e5"`, `"abc"`, `""`, `"Zoë"`,
	`"<b>&amp;"`, `"\ud800"`, `"\u00e9"`, `"é"`, `"2026-01-02"`, `"2026-01-01T10:00:00Z"`, `true`, `false`, `null`,
	`[]`, `[1,"a"]`, `[1, 9.99, "9.99"]`, `{}`, `{"b":1,"a":[2]}`, `"` + strings.Repeat("x", 100) + `"`,
}

var testOps = []string{"==", "!=", "<", ">", "<=", ">=", "in", "exists", "changed", "~"}

func inputFor(cfg, before, after string) []byte {
	return []byte(`{"abi":"1.0","context":{"now":"2026-01-01T00:00:00Z"},"event":{"id":"pg:1","op":"UPDATE","entity":"t","key":"k",` +
		`"before":` + before + `,"after":` + after + `},"config":` + cfg + `}`)
}

// TestMatchesReference runs the plugin and its reference on every op,
// every value against every value, and odd configs, and wants the same
// bytes out. The plugin's filterer is shared, so later cases hit its cache.
func TestMatchesReference(t *testing.T) {
	ref := &observer.Plugin{Name: "field-filter", Filter: refFilter}
	got := &observer.Plugin{Name: "field-filter", Filter: newFilterer().filter, LazyImages: true}
	check := func(in []byte) {
		t.Helper()
		want := ref.Invoke("filter", in)
		for pass := 0; pass < 2; pass++ { // the second pass hits the cache
			if out := got.Invoke("filter", in); !bytes.Equal(out, want) {
				t.Fatalf("input %s:\ngot  %s\nwant %s", in, out, want)
			}
		}
	}
	n := 0
	for _, op := range testOps {
		for _, v := range values {
			for _, col := range values {
				cfg := `{"field":"after.x","op":"` + op + `","value":` + v + `}`
				if op == "exists" || op == "changed" {
					cfg = `{"field":"x","op":"` + op + `"}`
				}
				check(inputFor(cfg, `{"x":`+v+`}`, `{"x":`+col+`}`))
				n++
			}
		}
	}
	for _, cfg := range []string{
		`null`, `{}`, `[]`, `"x"`, `{"field":"after.x"}`, `{"field":"after.x","op":">"}`, `{"field":"aftr.x","op":"exists"}`,
		`{"field":"after.x","op":"exists","value":1}`, `{"field":"after.x","op":"in","value":1}`, `{"Field":"after.x","op":"exists"}`,
		`{"field":"after.x","op":"exists","extra":1}`, `{"field":" after.x ","op":"exists"}`, `{"field":"after..x","op":"exists"}`,
		`{"field":"before.x","op":"changed"}`, `{"field":"event.after.x","op":"changed"}`, `{"field":"op","op":"==","value":"UPDATE"}`,
		`{"field":"after","op":"==","value":{"x":1}}`, `{"field":"event.id","op":"in","value":["pg:1"]}`, `{"field":"context.now","op":">","value":"2025"}`,
		`{"field":"after.x.0","op":"==","value":1}`, `{"field":"changed_fields","op":"==","value":null}`, `{"field":"position","op":">=","value":0}`,
	} {
		check(inputFor(cfg, `{"x":1}`, `{"x":[1,2]}`))
		check(inputFor(cfg, `null`, `null`))
		n += 2
	}
	t.Logf("%d inputs, identical output", n)
}

func FuzzMatchesReference(f *testing.F) {
	f.Add(">=", "9.99", "11.99")
	f.Add("==", `"9.50"`, "9.5")
	f.Add("in", `[1,"a"]`, `"a"`)
	f.Add("changed", "", `{"y":1}`)
	ref := &observer.Plugin{Name: "field-filter", Filter: refFilter}
	got := &observer.Plugin{Name: "field-filter", Filter: newFilterer().filter, LazyImages: true}
	f.Fuzz(func(t *testing.T, op, value, col string) {
		cfg := `{"field":"after.x","op":"` + op + `","value":` + value + `}`
		if value == "" {
			cfg = `{"field":"after.x","op":"` + op + `"}`
		}
		in := inputFor(cfg, `{"x":`+value+`}`, `{"x":`+col+`}`)
		if want, out := ref.Invoke("filter", in), got.Invoke("filter", in); !bytes.Equal(out, want) {
			t.Fatalf("input %s:\ngot  %s\nwant %s", in, out, want)
		}
	})
}
