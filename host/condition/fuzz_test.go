package condition

import (
	"errors"
	"testing"
)

// FuzzParse checks that Parse never panics, that every error is a
// *SyntaxError with a position inside the source, and that an accepted
// condition evaluates without panicking and survives its canonical form:
// Parse(String()) succeeds, renders identically and evaluates the same.
// Seeds are in testdata/fuzz/FuzzParse plus those added below.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		benchCondition,
		"after.amount >= 9.99",
		"a == 1 && (b || !c)",
		"field_changed_from('x.y', -1.5e3) || has_field(\"z\")",
		"after.items.0.1 == 'a\\u00e9\\n'",
		"after.amount >> 3",
	} {
		f.Add(s)
	}
	ev := testEvent(f)
	f.Fuzz(func(t *testing.T, src string) {
		e, err := Parse(src)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error is %T, not *SyntaxError: %v", err, err)
			}
			if se.Pos < 0 || se.Pos > len(src) || se.Col < 1 || se.Line < 1 {
				t.Fatalf("bad position in %+v", se)
			}
			_ = se.Error()
			return
		}
		got, err := e.Eval(ev)
		if err != nil {
			t.Fatalf("Eval: %v", err)
		}
		canon := e.String()
		if len(canon) > MaxLen {
			return // the canonical form may be longer than the source
		}
		e2, err := Parse(canon)
		if err != nil {
			t.Fatalf("canonical form of %q does not parse: %q: %v", src, canon, err)
		}
		if c2 := e2.String(); c2 != canon {
			t.Fatalf("canonical form not stable: %q → %q", canon, c2)
		}
		if got2, _ := e2.Eval(ev); got2 != got {
			t.Fatalf("%q evaluates to %v but its canonical form %q to %v", src, got, canon, got2)
		}
	})
}
