package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"unicode/utf8"

	observer "github.com/fraiseql/observer/sdk-guest/go"
)

// config is the plugin's Input.Config.
type config struct {
	Field string           `json:"field"`
	Op    string           `json:"op"`
	Value *json.RawMessage `json:"value"`
}

// rule is a validated config.
type rule struct {
	field string
	op    string
	value any    // decoded Value (json.Number for numbers)
	set   []any  // for "in"
	shown string // show(value), for reasons
}

var ops = map[string]bool{"==": true, "!=": true, "<": true, ">": true, "<=": true, ">=": true, "exists": true, "changed": true, "in": true}

func parseConfig(raw json.RawMessage) (*rule, error) {
	if len(bytes.TrimSpace(raw)) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return nil, observer.Errorf(observer.CodeBadConfig, `config is missing: want {"field": "after.x", "op": ">=", "value": ...}`)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	var c config
	if err := dec.Decode(&c); err != nil {
		return nil, observer.Errorf(observer.CodeBadConfig, "config: %v (known keys: field, op, value)", err)
	}
	if c.Field == "" {
		return nil, observer.Errorf(observer.CodeBadConfig, `config.field is required: a path such as "after.amount"`)
	}
	check := c.Field
	if c.Op == "changed" {
		check = "after." + columnPath(c.Field)
	}
	if err := observer.CheckPath(check); err != nil {
		return nil, observer.Errorf(observer.CodeBadConfig, "config.field: %v", err)
	}
	if !ops[c.Op] {
		return nil, observer.Errorf(observer.CodeBadConfig, "config.op %q is not one of == != < > <= >= exists changed in", c.Op)
	}
	r := &rule{field: strings.TrimSpace(c.Field), op: c.Op, shown: "null"}
	if c.Op == "exists" || c.Op == "changed" {
		if c.Value != nil {
			return nil, observer.Errorf(observer.CodeBadConfig, "config.value is not used by op %q; remove it", c.Op)
		}
		return r, nil
	}
	if c.Value == nil {
		return nil, observer.Errorf(observer.CodeBadConfig, "config.value is required for op %q", c.Op)
	}
	vd := json.NewDecoder(bytes.NewReader(*c.Value))
	vd.UseNumber()
	if err := vd.Decode(&r.value); err != nil {
		return nil, observer.Errorf(observer.CodeBadConfig, "config.value: %v", err)
	}
	r.shown = show(r.value)
	if c.Op == "in" {
		set, ok := r.value.([]any)
		if !ok {
			return nil, observer.Errorf(observer.CodeBadConfig, "config.value must be an array for op \"in\", got %s", *c.Value)
		}
		r.set = set
	}
	return r, nil
}

// maxCachedRules bounds the parsed configs kept between calls.
const maxCachedRules = 256

// filterer memoizes parseConfig: an instance serves many calls for a few
// observers, and the config of each is the same bytes every time. A cached
// rule is only ever read, so the result of a call does not depend on which
// calls the instance served before (abi/SPEC.md, section 2).
type filterer struct {
	rules map[string]*rule
}

func newFilterer() *filterer { return &filterer{rules: make(map[string]*rule)} }

func (f *filterer) filter(in *observer.Input) (observer.FilterResult, error) {
	r, ok := f.rules[string(in.Config)]
	if !ok {
		var err error
		if r, err = parseConfig(in.Config); err != nil {
			return observer.FilterResult{}, err
		}
		if len(f.rules) >= maxCachedRules {
			clear(f.rules)
		}
		f.rules[string(in.Config)] = r
	}
	return r.eval(in), nil
}

// filter is the uncached handler.
func filter(in *observer.Input) (observer.FilterResult, error) {
	r, err := parseConfig(in.Config)
	if err != nil {
		return observer.FilterResult{}, err
	}
	return r.eval(in), nil
}

func (r *rule) eval(in *observer.Input) observer.FilterResult {
	if r.op == "changed" {
		return r.changed(in)
	}
	got, ok := observer.Lookup(in, r.field)
	if r.op == "exists" {
		if ok && got != nil {
			return observer.Pass(r.field + " exists")
		}
		return observer.Drop(r.field + " does not exist")
	}
	if !ok {
		return observer.Drop(r.field + " is absent")
	}
	switch r.op {
	case "==", "!=":
		eq := equal(got, r.value)
		if eq == (r.op == "==") {
			return observer.Pass(r.field + " = " + show(got) + " " + r.op + " " + r.shown)
		}
		return observer.Drop(r.field + " = " + show(got) + ", not " + r.op + " " + r.shown)
	case "in":
		for _, v := range r.set {
			if equal(got, v) {
				return observer.Pass(r.field + " = " + show(got) + " is in the set")
			}
		}
		return observer.Drop(r.field + " = " + show(got) + " is not in the set")
	}
	c, ok := compare(got, r.value)
	if !ok {
		return observer.Drop(r.field + " = " + show(got) + " cannot be compared with " + r.shown)
	}
	var pass bool
	switch r.op {
	case "<":
		pass = c < 0
	case ">":
		pass = c > 0
	case "<=":
		pass = c <= 0
	case ">=":
		pass = c >= 0
	}
	if pass {
		return observer.Pass(r.field + " = " + show(got) + " " + r.op + " " + r.shown)
	}
	return observer.Drop(r.field + " = " + show(got) + " is not " + r.op + " " + r.shown)
}

// changed compares the field in the before and after images. The field is
// a path inside the row ("after.status", "before.status" and "status" all
// name the column status).
func (r *rule) changed(in *observer.Input) observer.FilterResult {
	rest := columnPath(r.field)
	b, bok := observer.Lookup(in, "before."+rest)
	a, aok := observer.Lookup(in, "after."+rest)
	if bok != aok || (aok && !equal(a, b)) {
		return observer.Pass(rest + " changed from " + showOpt(b, bok) + " to " + showOpt(a, aok))
	}
	return observer.Drop(rest + " did not change")
}

// columnPath strips an image root from a path: "after.a.b", "before.a.b"
// and "a.b" all name the path a.b inside a row.
func columnPath(field string) string {
	field = strings.TrimSpace(field)
	for _, p := range []string{"event.after.", "event.before.", "after.", "before."} {
		if strings.HasPrefix(field, p) {
			return strings.TrimPrefix(field, p)
		}
	}
	return field
}

// maxExponent bounds the decimal exponent compared exactly: a number such
// as 1e999999999 would otherwise cost gigabytes as a big.Rat.
const maxExponent = 1000

// num is a number that passed the checks in number: its text if that is
// in JSON number syntax (compared exactly by cmpDecimal, without big
// arithmetic), else the rational big.Rat parsed from it.
type num struct {
	s string
	d decimal
	r *big.Rat
}

// number returns v as an exact number if it is a JSON number or a string
// holding one.
func number(v any) (num, bool) {
	var s string
	switch x := v.(type) {
	case json.Number:
		s = string(x)
	case string:
		s = strings.TrimSpace(x)
		if s == "" {
			return num{}, false
		}
	case float64:
		s = strconv.FormatFloat(x, 'g', -1, 64)
	default:
		return num{}, false
	}
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		e, err := strconv.Atoi(strings.TrimPrefix(s[i+1:], "+"))
		if err != nil || e > maxExponent || e < -maxExponent {
			return num{}, false
		}
	}
	if len(s) > 4096 {
		return num{}, false
	}
	if d, ok := parseDecimal(s); ok {
		return num{s: s, d: d}, true
	}
	r, ok := new(big.Rat).SetString(s)
	return num{r: r}, ok
}

func (n num) rat() *big.Rat {
	if n.r != nil {
		return n.r
	}
	r, _ := new(big.Rat).SetString(n.s)
	return r
}

// cmp compares two numbers exactly.
func (n num) cmp(m num) int {
	if n.r == nil && m.r == nil {
		return cmpDecimal(n.d, m.d)
	}
	return n.rat().Cmp(m.rat())
}

// decimal is a number in JSON syntax as ±0.digits × 10^exp, with digits
// free of leading and trailing zeros (empty for zero).
type decimal struct {
	neg    bool
	digits string // or, with frac, the integer part
	frac   string
	exp    int
}

// parseDecimal splits s if it is in JSON number syntax.
func parseDecimal(s string) (decimal, bool) {
	var d decimal
	i := 0
	if i < len(s) && s[i] == '-' {
		d.neg = true
		i++
	}
	start := i
	for i < len(s) && '0' <= s[i] && s[i] <= '9' {
		i++
	}
	intPart := s[start:i]
	if intPart == "" || len(intPart) > 1 && intPart[0] == '0' {
		return d, false
	}
	var frac string
	if i < len(s) && s[i] == '.' {
		i++
		start = i
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
		if frac = s[start:i]; frac == "" {
			return d, false
		}
	}
	exp := 0
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		eneg := false
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			eneg = s[i] == '-'
			i++
		}
		start = i
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			if exp < 1<<20 { // number bounds exponents to ±1000 before this
				exp = exp*10 + int(s[i]-'0')
			}
			i++
		}
		if i == start {
			return d, false
		}
		if eneg {
			exp = -exp
		}
	}
	if i != len(s) {
		return d, false
	}
	// Normalize to 0.digits × 10^exp over intPart+frac without copying:
	// leading zeros of the integer part (just "0") and of the fraction.
	exp += len(intPart)
	if intPart == "0" {
		intPart = ""
		exp--
		for len(frac) > 0 && frac[0] == '0' {
			frac = frac[1:]
			exp--
		}
	}
	if intPart == "" {
		frac = strings.TrimRight(frac, "0")
	} else if strings.TrimRight(frac, "0") == "" {
		frac = ""
		intPart = strings.TrimRight(intPart, "0")
	} else {
		frac = strings.TrimRight(frac, "0")
	}
	d.digits, d.frac, d.exp = intPart, frac, exp
	if d.digits == "" && d.frac == "" {
		d.neg, d.exp = false, 0
	}
	return d, true
}

func (d decimal) digit(i int) byte {
	if i < len(d.digits) {
		return d.digits[i]
	}
	if i -= len(d.digits); i < len(d.frac) {
		return d.frac[i]
	}
	return 0
}

func (d decimal) zero() bool { return d.digits == "" && d.frac == "" }

// cmpDecimal compares two numbers in JSON syntax exactly.
func cmpDecimal(x, y decimal) int {
	sign := 1
	switch {
	case x.zero() && y.zero():
		return 0
	case x.zero():
		if y.neg {
			return 1
		}
		return -1
	case y.zero():
		if x.neg {
			return -1
		}
		return 1
	case x.neg != y.neg:
		if x.neg {
			return -1
		}
		return 1
	case x.neg:
		sign = -1
	}
	if x.exp != y.exp {
		if x.exp > y.exp {
			return sign
		}
		return -sign
	}
	n := max(len(x.digits)+len(x.frac), len(y.digits)+len(y.frac))
	for i := 0; i < n; i++ {
		if c, e := x.digit(i), y.digit(i); c != e {
			if c > e {
				return sign
			}
			return -sign
		}
	}
	return 0
}

// equal compares JSON values: numbers numerically (a numeric string equals
// the number it spells), everything else by its canonical JSON form.
func equal(a, b any) bool {
	_, aNum := a.(json.Number)
	_, bNum := b.(json.Number)
	if aNum || bNum {
		x, ok1 := number(a)
		y, ok2 := number(b)
		if ok1 && ok2 {
			return x.cmp(y) == 0
		}
		return false
	}
	// Valid UTF-8 strings have equal JSON forms exactly when they are equal.
	if as, ok := a.(string); ok {
		if bs, ok := b.(string); ok && utf8.ValidString(as) && utf8.ValidString(bs) {
			return as == bs
		}
	}
	var bufA, bufB [64]byte
	ja, err1 := observer.AppendJSON(bufA[:0], a)
	jb, err2 := observer.AppendJSON(bufB[:0], b)
	return err1 == nil && err2 == nil && bytes.Equal(ja, jb)
}

// compare orders two values: numerically if both are numbers (or numeric
// strings with at least one number), else strings lexically (so RFC 3339
// timestamps order by time). Other pairs are not comparable.
func compare(a, b any) (int, bool) {
	_, aNum := a.(json.Number)
	_, bNum := b.(json.Number)
	if aNum || bNum {
		x, ok1 := number(a)
		y, ok2 := number(b)
		if !ok1 || !ok2 {
			return 0, false
		}
		return x.cmp(y), true
	}
	as, ok1 := a.(string)
	bs, ok2 := b.(string)
	if ok1 && ok2 {
		return strings.Compare(as, bs), true
	}
	return 0, false
}

func show(v any) string {
	// A number from the input is shown as written (what AppendJSON gives
	// for a valid json.Number), without a copy.
	if n, ok := v.(json.Number); ok && len(n) <= 80 {
		if _, valid := parseDecimal(string(n)); valid {
			return string(n)
		}
	}
	var buf [96]byte
	b, err := observer.AppendJSON(buf[:0], v)
	if err != nil {
		return fmt.Sprint(v)
	}
	if len(b) > 80 {
		return string(b[:77]) + "..."
	}
	return string(b)
}

func showOpt(v any, ok bool) string {
	if !ok {
		return "(absent)"
	}
	return show(v)
}
