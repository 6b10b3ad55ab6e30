package condition

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/fraiseql/observer/host/event"
)

// testEvent is an UPDATE decoded the way sources decode rows, so numbers
// are json.Number.
func testEvent(t testing.TB) *event.Event {
	t.Helper()
	before, err := event.DecodeImage([]byte(`{
		"id": 7, "amount": "ignored", "price": 9.99, "status": "pending", "qty": 3,
		"big": 9007199254740993, "note": null, "active": true,
		"address": {"city": "Lyon", "zip": "69001"},
		"items": [{"sku": "A-1", "n": 1}]
	}`))
	if err != nil {
		t.Fatal(err)
	}
	after, err := event.DecodeImage([]byte(`{
		"id": 7, "amount": 10.50, "price": 9.99, "status": "paid", "qty": 3,
		"big": 9007199254740993, "note": null, "active": false,
		"address": {"city": "Paris", "zip": "75001"},
		"items": [{"sku": "A-1", "n": 1}, {"sku": "B-2", "n": 2}],
		"paid_at": "2024-05-01T10:00:00Z", "key": "column-key"
	}`))
	if err != nil {
		t.Fatal(err)
	}
	return &event.Event{
		ID: "main:42", Position: 42, Source: "main", Entity: "payment", Op: event.OpUpdate,
		Key: "7", Before: before, After: after, ChangedFields: []string{"status", "amount"},
		Tenant: "acme", CommitTime: "2024-05-01T10:00:00.000000000Z",
	}
}

func TestEval(t *testing.T) {
	ev := testEvent(t)
	tests := []struct {
		cond string
		want bool
	}{
		// Literals and booleans.
		{"true", true},
		{"false", false},
		{"null == null", true},
		{"!false", true},
		{"!!true", true},
		// Exact numbers.
		{"after.amount == 10.5", true},
		{"after.amount == 10.50", true},
		{"after.amount == 1050e-2", true},
		{"after.amount > 10.49999999999999999999", true},
		{"after.amount < 10.50000000000000000001", true},
		{"after.amount >= 10.5 && after.amount <= 10.5", true},
		{"after.price >= 9.99", true},
		{"after.price > 9.99", false},
		{"after.price == 9.990", true},
		{"after.big == 9007199254740993", true},
		{"after.big > 9007199254740992", true},
		{"after.big == 9007199254740992", false},
		{"after.qty == 3", true},
		{"after.qty > -3", true},
		{"-0 == 0", true},
		{"-1 < -0.5", true},
		{"-2 < -10", false},
		{"0.001 < 1e-2", true},
		{"1E3 == 1000", true},
		// Strings.
		{"after.status == 'paid'", true},
		{`after.status == "paid"`, true},
		{"after.status != 'paid'", false},
		{"after.status > 'p'", true},
		{"after.paid_at >= '2024-01-01'", true},
		{"after.paid_at < '2024-01-01'", false},
		{`'it\'s' == "it's"`, true},
		{`"a\u00e9" == 'aé'`, true},
		// Mixed kinds: == false, ordering false, never an error.
		{"after.amount == '10.5'", false},
		{"after.amount != '10.5'", true},
		{"after.status > 5", false},
		{"after.status < 5", false},
		{"after.qty > null", false},
		{"after.active == 'true'", false},
		// Null and missing.
		{"after.note == null", true},
		{"after.missing == null", true},
		{"after.missing.deeper == null", true},
		{"after.missing != null", false},
		{"after.status.x == null", true},
		{"after.missing > 1", false},
		{"after.missing < 1", false},
		{"before.amount == 'ignored'", true},
		// Booleans from paths.
		{"before.active", true},
		{"after.active", false},
		{"!after.active", true},
		{"after.qty", false}, // only true is true
		{"after.active == false", true},
		// Nested paths and arrays.
		{"after.address.city == 'Paris'", true},
		{"before.address.city == 'Lyon'", true},
		{"after.items.1.sku == 'B-2'", true},
		{"after.items.0.n == 1", true},
		{"after.items.2.sku == null", true},
		{"after.items.x == null", true},
		{"after.items.0 == before.items.0", true},
		{"after.items == before.items", false},
		{"after.address != before.address", true},
		// Top-level event fields and bare names.
		{"entity == 'payment'", true},
		{"op == 'UPDATE'", true},
		{"op == 'update'", false},
		{"key == '7'", true},
		{"after.key == 'column-key'", true},
		{"tenant == 'acme'", true},
		{"source == 'main'", true},
		{"amount == 10.5", true},
		{"status == 'paid' && qty == 3", true},
		{"address.city == 'Paris'", true},
		{"before == null", false},
		// Logic and precedence.
		{"true || false && false", true},
		{"(true || false) && false", false},
		{"!after.status == 'pending'", true}, // !(after.status == 'pending')
		{"!(after.qty == 3) || op == 'UPDATE'", true},
		{"(!after.active) == true", true},
		{"(after.qty == 3) == true", true},
		// Functions.
		{"has_field('amount')", true},
		{"has_field('note')", true}, // present even though null
		{"has_field('nope')", false},
		{"has_field('address.city')", true},
		{"has_field('items.1.sku')", true},
		{"has_field('items.5.sku')", false},
		{"field_changed('status')", true},
		{"field_changed('amount')", true}, // listed in changed_fields
		{"field_changed('active')", true}, // not listed, values differ
		{"field_changed('qty')", false},   // same value
		{"field_changed('price')", false}, // same exact number
		{"field_changed('address.city')", true},
		{"field_changed('address.zip')", true},
		{"field_changed('items.0.sku')", false},
		{"field_changed('items')", true},
		{"field_changed('paid_at')", true},  // absent before
		{"field_changed('missing')", false}, // absent both sides
		{"field_changed_to('status', 'paid')", true},
		{"field_changed_to('status', 'pending')", false},
		{"field_changed_from('status', 'pending')", true},
		{"field_changed_from('status', 'paid')", false},
		{"field_changed_to('qty', 3)", false}, // not changed
		{"field_changed_to('amount', 10.500)", true},
		{"field_changed_to('active', before.qty == 3)", false},
		{"field_changed_to('active', !before.active)", true},
		{"field_changed_from('address.city', after.address.city)", false},
		{"field_changed('status') && after.amount >= 10 && !has_field('deleted_at')", true},
	}
	for _, tt := range tests {
		t.Run(tt.cond, func(t *testing.T) {
			e, err := Parse(tt.cond)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			got, err := e.Eval(ev)
			if err != nil {
				t.Fatalf("Eval: %v", err)
			}
			if got != tt.want {
				t.Errorf("Eval = %v, want %v (canonical %s)", got, tt.want, e)
			}
			// The canonical form means the same.
			e2, err := Parse(e.String())
			if err != nil {
				t.Fatalf("Parse(String() = %q): %v", e.String(), err)
			}
			if got2, _ := e2.Eval(ev); got2 != got {
				t.Errorf("canonical %q evaluates to %v, original to %v", e.String(), got2, got)
			}
		})
	}
}

func TestEvalOperations(t *testing.T) {
	img := func(s string) map[string]any {
		m, err := event.DecodeImage([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	insert := &event.Event{Op: event.OpInsert, After: img(`{"a": 1, "n": null}`)}
	del := &event.Event{Op: event.OpDelete, Before: img(`{"a": 1, "gone": "x"}`)}
	updNoBefore := &event.Event{Op: event.OpUpdate, After: img(`{"a": 2, "b": 3}`), ChangedFields: []string{"a"}}
	tests := []struct {
		name string
		ev   *event.Event
		cond string
		want bool
	}{
		{"insert has_field", insert, "has_field('a')", true},
		{"insert changed", insert, "field_changed('a')", true},
		{"insert null not changed", insert, "field_changed('n')", false},
		{"insert changed_to", insert, "field_changed_to('a', 1)", true},
		{"insert changed_from null", insert, "field_changed_from('a', null)", true},
		{"insert before null", insert, "before == null && before.a == null", true},
		{"delete has_field looks at before", del, "has_field('gone')", true},
		{"delete has_field missing", del, "has_field('other')", false},
		{"delete after null", del, "after == null && a == null", true},
		{"delete changed", del, "field_changed_from('gone', 'x')", true},
		{"update without before: listed", updNoBefore, "field_changed('a')", true},
		{"update without before: not listed", updNoBefore, "field_changed('b')", false},
		{"no tenant is null", insert, "tenant == null", true},
		{"go numbers", &event.Event{After: map[string]any{"f": 0.1, "i": int64(-3), "u": uint64(1 << 63)}},
			"after.f == 0.1 && after.i < 0 && after.u == 9223372036854775808", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := MustParse(tt.cond).Eval(tt.ev)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("%s = %v, want %v", tt.cond, got, tt.want)
			}
		})
	}
}

func TestNilExprAndEvent(t *testing.T) {
	var e *Expr
	if ok, err := e.Eval(nil); !ok || err != nil {
		t.Errorf("nil Expr: Eval = %v, %v; want true, nil", ok, err)
	}
	if e.String() != "" || e.Source() != "" {
		t.Error("nil Expr renders as non-empty")
	}
	if _, err := MustParse("true").Eval(nil); err == nil {
		t.Error("Eval(nil event) did not fail")
	}
}

func TestString(t *testing.T) {
	tests := []struct{ in, want string }{
		{"amount>10", "after.amount > 10"},
		{"  a==1&&b!=2||c<3  ", "after.a == 1 && after.b != 2 || after.c < 3"},
		{"a || (b || c)", "after.a || after.b || after.c"},
		{"(a && b) && c", "after.a && after.b && after.c"},
		{"(a || b) && c", "(after.a || after.b) && after.c"},
		{"!a == 1", "!(after.a == 1)"},
		{"(!a) == true", "(!after.a) == true"},
		{"!!a", "!!after.a"},
		{"!(a && b)", "!(after.a && after.b)"},
		{"'x' == \"y\\n\\\"\"", `"x" == "y\n\""`},
		{"has_field( 'a.b' )", `has_field("a.b")`},
		{"field_changed_to('s', (a || b))", `field_changed_to("s", after.a || after.b)`},
		{"items.0.1 == 2", "after.items.0.1 == 2"},
		{"entity=='x' && op == 'DELETE'", `entity == "x" && op == "DELETE"`},
		{"x == 9.990", "after.x == 9.990"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			e := MustParse(tt.in)
			if got := e.String(); got != tt.want {
				t.Errorf("String() = %s, want %s", got, tt.want)
			}
			if e.Source() != tt.in {
				t.Errorf("Source() = %q", e.Source())
			}
			if again := MustParse(e.String()).String(); again != tt.want {
				t.Errorf("String not stable: %s → %s", tt.want, again)
			}
		})
	}
}

func TestSyntaxErrors(t *testing.T) {
	tests := []struct {
		src     string
		col     int
		wantMsg string
	}{
		{"after.amount >> 3", 15, "unexpected '>'"},
		{"", 1, "condition is empty"},
		{"   ", 1, "condition is empty"},
		{"a = 1", 3, "use '==' to compare"},
		{"a & b", 3, "use '&&'"},
		{"a | b", 3, "use '||'"},
		{"a == 'abc", 6, "unterminated string"},
		{`a == "x\q"`, 8, `unknown escape \q`},
		{`a == "\u12"`, 7, `four hex digits`},
		{"a == 1 b", 8, `unexpected name "b" after a complete expression`},
		{"a < b < c", 7, "comparisons cannot be chained"},
		{"(a < b < c)", 8, "comparisons cannot be chained"},
		{"(a == 1", 8, "expected ')' to close the '(' at column 1"},
		{"a == 1)", 7, "unexpected ')' after a complete expression"},
		{"a ==", 5, "unexpected end of condition, expected a value"},
		{"&& a", 1, "unexpected '&&', expected a value"},
		{"a.", 2, "'.' must be followed by a field name"},
		{"a.'b'", 2, "'.' must be followed by a field name"},
		{"a.1e5 == 1", 3, "not a name or an array index"},
		{"a == 1abc", 7, `unexpected 'a' after number 1`},
		{"a == -x", 6, "'-' must be followed by a digit"},
		{"a == 1e", 7, "exponent of number 1 has no digits"},
		{"entity.name == 'x'", 7, "entity is an event field with no sub-fields"},
		{"len('a')", 1, "unknown function len"},
		{"has_field(a)", 11, "first argument must be a quoted field name, as in has_field('field')"},
		{"has_field()", 11, "first argument must be a quoted field name"},
		{"has_field('')", 11, "field name is empty"},
		{"has_field('a..b')", 11, `field path "a..b" has an empty segment`},
		{"has_field('after.amount')", 11, `write "amount" not "after.amount"`},
		{"has_field('a', 1)", 14, "has_field takes 1 argument(s)"},
		{"field_changed_to('a')", 21, "field_changed_to takes two arguments, as in field_changed_to('field', value)"},
		{"field_changed_to('a', 1", 24, "expected ')' to close field_changed_to("},
		{"a == 1 # comment", 8, "unexpected character '#'"},
		{"a == «x»", 6, "unexpected character '«'"},
		{"x == 1 &&\n  y >> 2", 6, "unexpected '>'"},
		{strings.Repeat("!", MaxDepth+5) + "a", 0, "nests deeper than"},
		{strings.Repeat("(", 200) + "a" + strings.Repeat(")", 200), 0, "nests deeper than"},
		{strings.Repeat("a", MaxLen+1), 0, "the limit is 4096"},
	}
	for _, tt := range tests {
		name := tt.src
		if len(name) > 40 {
			name = name[:40]
		}
		t.Run(name, func(t *testing.T) {
			_, err := Parse(tt.src)
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%q) error = %v, want *SyntaxError", tt.src, err)
			}
			if !strings.Contains(se.Msg, tt.wantMsg) {
				t.Errorf("message %q does not contain %q", se.Msg, tt.wantMsg)
			}
			if tt.col != 0 && se.Col != tt.col {
				t.Errorf("column = %d, want %d (%v)", se.Col, tt.col, err)
			}
			if se.Src != tt.src || se.Pos < 0 || se.Pos > len(tt.src) {
				t.Errorf("Src/Pos wrong: %+v", se)
			}
		})
	}
}

func TestSyntaxErrorText(t *testing.T) {
	_, err := Parse("after.amount >> 3")
	want := `condition "after.amount >> 3": at column 15: unexpected '>', expected a value (number, 'string', true, false, null, a field path such as after.amount, a function call or '(')`
	if err == nil || err.Error() != want {
		t.Errorf("error text:\n got %v\nwant %s", err, want)
	}
	_, err = Parse("x == 1 &&\n  y >> 2")
	if err == nil || !strings.Contains(err.Error(), "at line 2, column 6: unexpected '>'") {
		t.Errorf("multi-line error text: %v", err)
	}
	var se *SyntaxError
	if errors.As(err, &se) && (se.Line != 2 || se.Pos != 15) {
		t.Errorf("Line/Pos = %d/%d, want 2/15", se.Line, se.Pos)
	}
}

func TestCmpDecimal(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"0", "0", 0}, {"0", "-0", 0}, {"0.000", "0e10", 0}, {"1", "1.0", 0}, {"1", "10e-1", 0},
		{"100", "1e2", 0}, {"0.5", "5e-1", 0}, {"1", "2", -1}, {"2", "1", 1}, {"-1", "1", -1},
		{"-1", "-2", 1}, {"-0.1", "0", -1}, {"0", "0.0000001", -1}, {"123.456", "123.4559999", 1},
		{"99999999999999999999999", "1e23", -1}, {"1e23", "100000000000000000000000", 0},
		{"0.3", "0.30000000000000004", -1}, {"007", "7", 0}, {"1e999999999999999", "1e999999999999998", 0},
		{"12", "3", 1}, {"1.2", "1.15", 1}, {"-1.2", "-1.15", -1},
	}
	for _, tt := range tests {
		got, ok := cmpDecimal(tt.a, tt.b)
		if !ok || got != tt.want {
			t.Errorf("cmpDecimal(%s, %s) = %d, %v; want %d", tt.a, tt.b, got, ok, tt.want)
		}
		back, _ := cmpDecimal(tt.b, tt.a)
		if back != -tt.want {
			t.Errorf("cmpDecimal(%s, %s) = %d, not antisymmetric", tt.b, tt.a, back)
		}
	}
	for _, bad := range []string{"", "-", "abc", "1.2.3", "1e", "--1", ".", "1x", "0x10", "NaN"} {
		if _, ok := cmpDecimal(bad, "1"); ok {
			t.Errorf("cmpDecimal(%q) accepted", bad)
		}
	}
	// An invalid json.Number in an image is never equal to a number and
	// never ordered, but equals the identical invalid text.
	ev := &event.Event{After: map[string]any{"n": json.Number("abc")}}
	for cond, want := range map[string]bool{"after.n == 1": false, "after.n > 1": false, "after.n == after.n": true} {
		if got, _ := MustParse(cond).Eval(ev); got != want {
			t.Errorf("%s = %v, want %v", cond, got, want)
		}
	}
}

func TestEvalDoesNotAllocate(t *testing.T) {
	ev := testEvent(t)
	e := MustParse(benchCondition)
	allocs := testing.AllocsPerRun(200, func() {
		if ok, _ := e.Eval(ev); !ok {
			t.Fatal("benchmark condition does not match")
		}
	})
	if allocs != 0 {
		t.Errorf("Eval allocates %.1f times per call, want 0", allocs)
	}
}

const benchCondition = `entity == 'payment' && op == 'UPDATE' && after.amount >= 9.99 && ` +
	`field_changed_to('status', 'paid') && after.address.city != before.address.city && !has_field('deleted_at')`

func BenchmarkEval(b *testing.B) {
	ev := testEvent(b)
	for _, bc := range []struct{ name, cond string }{
		{"simple", "after.amount >= 9.99"},
		{"typical", benchCondition},
		{"deep-equal", "after.items != before.items"},
	} {
		e := MustParse(bc.cond)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.Eval(ev); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(benchCondition); err != nil {
			b.Fatal(err)
		}
	}
}
