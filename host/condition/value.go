package condition

import (
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
)

type kind uint8

const (
	kNull kind = iota
	kBool
	kNum
	kStr
	kObj
	kArr
	kOther
)

// val is an evaluated operand. It is passed by value and never escapes,
// so evaluating a condition does not allocate. Numbers are kept as their
// decimal text (s) and compared exactly by cmpDecimal.
type val struct {
	k kind
	b bool
	s string
	x any // kObj: map[string]any; kArr: []any; kOther: anything else
}

func boolVal(b bool) val { return val{k: kBool, b: b} }

// fromAny classifies a decoded JSON value. Event images hold json.Number,
// string, bool, nil, map[string]any and []any; Go numbers (from events
// built in code) are accepted too, rendered to their exact decimal text.
func fromAny(v any) val {
	switch x := v.(type) {
	case nil:
		return val{}
	case json.Number:
		return val{k: kNum, s: string(x)}
	case string:
		return val{k: kStr, s: x}
	case bool:
		return val{k: kBool, b: x}
	case map[string]any:
		if x == nil {
			return val{}
		}
		return val{k: kObj, x: v}
	case []any:
		if x == nil {
			return val{}
		}
		return val{k: kArr, x: v}
	case float64:
		return val{k: kNum, s: strconv.FormatFloat(x, 'g', -1, 64)}
	case float32:
		return val{k: kNum, s: strconv.FormatFloat(float64(x), 'g', -1, 32)}
	case int:
		return val{k: kNum, s: strconv.FormatInt(int64(x), 10)}
	case int64:
		return val{k: kNum, s: strconv.FormatInt(x, 10)}
	case int32:
		return val{k: kNum, s: strconv.FormatInt(int64(x), 10)}
	case uint64:
		return val{k: kNum, s: strconv.FormatUint(x, 10)}
	case uint32:
		return val{k: kNum, s: strconv.FormatUint(uint64(x), 10)}
	case uint:
		return val{k: kNum, s: strconv.FormatUint(uint64(x), 10)}
	}
	return val{k: kOther, x: v}
}

// equal is the == of the language: same kind and same value; numbers by
// exact numeric value (1.50 == 1.5), objects and arrays deeply. Values of
// different kinds are never equal (the string "5" is not the number 5).
func equal(a, b val) bool {
	if a.k != b.k {
		return false
	}
	switch a.k {
	case kNull:
		return true
	case kBool:
		return a.b == b.b
	case kStr:
		return a.s == b.s
	case kNum:
		c, ok := cmpDecimal(a.s, b.s)
		if !ok {
			return a.s == b.s
		}
		return c == 0
	case kObj:
		ma, mb := a.x.(map[string]any), b.x.(map[string]any)
		if len(ma) != len(mb) {
			return false
		}
		for k, va := range ma {
			vb, ok := mb[k]
			if !ok || !equal(fromAny(va), fromAny(vb)) {
				return false
			}
		}
		return true
	case kArr:
		sa, sb := a.x.([]any), b.x.([]any)
		if len(sa) != len(sb) {
			return false
		}
		for i := range sa {
			if !equal(fromAny(sa[i]), fromAny(sb[i])) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a.x, b.x)
}

// order compares two numbers or two strings; ok is false for any other
// pair, which makes < <= > >= false.
func order(a, b val) (c int, ok bool) {
	switch {
	case a.k == kNum && b.k == kNum:
		return cmpDecimal(a.s, b.s)
	case a.k == kStr && b.k == kStr:
		return strings.Compare(a.s, b.s), true
	}
	return 0, false
}

// decimal is a parsed decimal number: its digits are ip followed by fp,
// the value is ±0.d₁d₂… × 10^exp with d₁ the first non-zero digit at
// index first.
type decimal struct {
	neg    bool
	zero   bool
	ip, fp string
	first  int
	exp    int
}

// expLimit bounds exponents so that the arithmetic below cannot overflow;
// numbers beyond 10^±expLimit compare as if they were at the limit's
// magnitude class, which no real row reaches.
const expLimit = 1 << 40

// parseDecimal parses -?digits(.digits)?([eE][+-]?digits)? without
// allocating. ok is false for anything else.
func parseDecimal(s string) (d decimal, ok bool) {
	i := 0
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		d.neg = s[i] == '-'
		i++
	}
	st := i
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	d.ip = s[st:i]
	if i < len(s) && s[i] == '.' {
		i++
		st = i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		d.fp = s[st:i]
	}
	if d.ip == "" && d.fp == "" {
		return d, false
	}
	e := 0
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		eneg := false
		if i < len(s) && (s[i] == '-' || s[i] == '+') {
			eneg = s[i] == '-'
			i++
		}
		st = i
		for i < len(s) && isDigit(s[i]) {
			if e < expLimit {
				e = e*10 + int(s[i]-'0')
			}
			i++
		}
		if i == st {
			return d, false
		}
		if eneg {
			e = -e
		}
	}
	if i != len(s) {
		return d, false
	}
	n := len(d.ip) + len(d.fp)
	d.first = n
	for j := 0; j < n; j++ {
		if d.digit(j) != '0' {
			d.first = j
			break
		}
	}
	d.zero = d.first == n
	d.exp = len(d.ip) - d.first + e
	return d, true
}

func (d *decimal) digit(i int) byte {
	if i < len(d.ip) {
		return d.ip[i]
	}
	i -= len(d.ip)
	if i < len(d.fp) {
		return d.fp[i]
	}
	return '0'
}

func (d *decimal) ndigits() int { return len(d.ip) + len(d.fp) - d.first }

// cmpDecimal compares two decimal strings exactly (-1, 0, +1). ok is
// false if either is not a number.
func cmpDecimal(a, b string) (int, bool) {
	if a == b {
		_, ok := parseDecimal(a)
		return 0, ok
	}
	da, ok1 := parseDecimal(a)
	db, ok2 := parseDecimal(b)
	if !ok1 || !ok2 {
		return 0, false
	}
	sa, sb := da.sign(), db.sign()
	if sa != sb {
		if sa < sb {
			return -1, true
		}
		return 1, true
	}
	if sa == 0 {
		return 0, true
	}
	c := cmpMagnitude(&da, &db)
	if sa < 0 {
		c = -c
	}
	return c, true
}

func (d *decimal) sign() int {
	switch {
	case d.zero:
		return 0
	case d.neg:
		return -1
	}
	return 1
}

func cmpMagnitude(a, b *decimal) int {
	if a.exp != b.exp {
		if a.exp < b.exp {
			return -1
		}
		return 1
	}
	n := max(a.ndigits(), b.ndigits())
	for i := 0; i < n; i++ {
		x, y := a.digit(a.first+i), b.digit(b.first+i)
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}
