package main

// The field-filter as first written (encoding/json, big.Rat, fmt): the
// reference that the optimized plugin must match byte for byte.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"strings"

	observer "github.com/fraiseql/observer/sdk-guest/go"
)

// refRule is a validated refConfig.
type refRule struct {
	field string
	op    string
	value any   // decoded Value (json.Number for numbers)
	set   []any // for "in"
}

var refOps = map[string]bool{"==": true, "!=": true, "<": true, ">": true, "<=": true, ">=": true, "exists": true, "changed": true, "in": true}

func refParseConfig(raw json.RawMessage) (*refRule, error) {
	if len(bytes.TrimSpace(raw)) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return nil, observer.Errorf(observer.CodeBadConfig, `config is missing: want {"field": "after.x", "op": ">=", "value": ...}`)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	var c config // the same type, for the same error messages
	if err := dec.Decode(&c); err != nil {
		return nil, observer.Errorf(observer.CodeBadConfig, "config: %v (known keys: field, op, value)", err)
	}
	if c.Field == "" {
		return nil, observer.Errorf(observer.CodeBadConfig, `config.field is required: a path such as "after.amount"`)
	}
	check := c.Field
	if c.Op == "changed" {
		check = "after." + refColumnPath(c.Field)
	}
	if err := observer.CheckPath(check); err != nil {
		return nil, observer.Errorf(observer.CodeBadConfig, "config.field: %v", err)
	}
	if !refOps[c.Op] {
		return nil, observer.Errorf(observer.CodeBadConfig, "config.op %q is not one of == != < > <= >= exists changed in", c.Op)
	}
	r := &refRule{field: strings.TrimSpace(c.Field), op: c.Op}
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
	if c.Op == "in" {
		set, ok := r.value.([]any)
		if !ok {
			return nil, observer.Errorf(observer.CodeBadConfig, "config.value must be an array for op \"in\", got %s", *c.Value)
		}
		r.set = set
	}
	return r, nil
}

func refFilter(in *observer.Input) (observer.FilterResult, error) {
	r, err := refParseConfig(in.Config)
	if err != nil {
		return observer.FilterResult{}, err
	}
	return r.eval(in), nil
}

func (r *refRule) eval(in *observer.Input) observer.FilterResult {
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
		eq := refEqual(got, r.value)
		if eq == (r.op == "==") {
			return observer.Pass(fmt.Sprintf("%s = %s %s %s", r.field, refShow(got), r.op, refShow(r.value)))
		}
		return observer.Drop(fmt.Sprintf("%s = %s, not %s %s", r.field, refShow(got), r.op, refShow(r.value)))
	case "in":
		for _, v := range r.set {
			if refEqual(got, v) {
				return observer.Pass(fmt.Sprintf("%s = %s is in the set", r.field, refShow(got)))
			}
		}
		return observer.Drop(fmt.Sprintf("%s = %s is not in the set", r.field, refShow(got)))
	}
	c, ok := refCompare(got, r.value)
	if !ok {
		return observer.Drop(fmt.Sprintf("%s = %s cannot be compared with %s", r.field, refShow(got), refShow(r.value)))
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
		return observer.Pass(fmt.Sprintf("%s = %s %s %s", r.field, refShow(got), r.op, refShow(r.value)))
	}
	return observer.Drop(fmt.Sprintf("%s = %s is not %s %s", r.field, refShow(got), r.op, refShow(r.value)))
}

// changed compares the field in the before and after images. The field is
// a path inside the row ("after.status", "before.status" and "status" all
// name the column status).
func (r *refRule) changed(in *observer.Input) observer.FilterResult {
	rest := refColumnPath(r.field)
	b, bok := observer.Lookup(in, "before."+rest)
	a, aok := observer.Lookup(in, "after."+rest)
	if bok != aok || (aok && !refEqual(a, b)) {
		return observer.Pass(fmt.Sprintf("%s changed from %s to %s", rest, refShowOpt(b, bok), refShowOpt(a, aok)))
	}
	return observer.Drop(fmt.Sprintf("%s did not change", rest))
}

// refColumnPath strips an image root from a path: "after.a.b", "before.a.b"
// and "a.b" all name the path a.b inside a row.
func refColumnPath(field string) string {
	field = strings.TrimSpace(field)
	for _, p := range []string{"event.after.", "event.before.", "after.", "before."} {
		if strings.HasPrefix(field, p) {
			return strings.TrimPrefix(field, p)
		}
	}
	return field
}

// refMaxExponent bounds the decimal exponent compared exactly: a refNumber such
// as 1e999999999 would otherwise cost gigabytes as a big.Rat.
const refMaxExponent = 1000

// refNumber returns v as an exact rational if it is a JSON refNumber or a string
// holding one.
func refNumber(v any) (*big.Rat, bool) {
	var s string
	switch x := v.(type) {
	case json.Number:
		s = string(x)
	case string:
		s = strings.TrimSpace(x)
		if s == "" {
			return nil, false
		}
	case float64:
		s = strconv.FormatFloat(x, 'g', -1, 64)
	default:
		return nil, false
	}
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		e, err := strconv.Atoi(strings.TrimPrefix(s[i+1:], "+"))
		if err != nil || e > refMaxExponent || e < -refMaxExponent {
			return nil, false
		}
	}
	if len(s) > 4096 {
		return nil, false
	}
	r, ok := new(big.Rat).SetString(s)
	return r, ok
}

// refEqual compares JSON values: numbers numerically (a numeric string equals
// the refNumber it spells), everything else by its canonical JSON form.
func refEqual(a, b any) bool {
	_, aNum := a.(json.Number)
	_, bNum := b.(json.Number)
	if aNum || bNum {
		x, ok1 := refNumber(a)
		y, ok2 := refNumber(b)
		if ok1 && ok2 {
			return x.Cmp(y) == 0
		}
		return false
	}
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(ja, jb)
}

// refCompare orders two values: numerically if both are numbers (or numeric
// strings with at least one refNumber), else strings lexically (so RFC 3339
// timestamps order by time). Other pairs are not comparable.
func refCompare(a, b any) (int, bool) {
	_, aNum := a.(json.Number)
	_, bNum := b.(json.Number)
	if aNum || bNum {
		x, ok1 := refNumber(a)
		y, ok2 := refNumber(b)
		if !ok1 || !ok2 {
			return 0, false
		}
		return x.Cmp(y), true
	}
	as, ok1 := a.(string)
	bs, ok2 := b.(string)
	if ok1 && ok2 {
		return strings.Compare(as, bs), true
	}
	return 0, false
}

func refShow(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	if len(b) > 80 {
		return string(b[:77]) + "..."
	}
	return string(b)
}

func refShowOpt(v any, ok bool) string {
	if !ok {
		return "(absent)"
	}
	return refShow(v)
}
