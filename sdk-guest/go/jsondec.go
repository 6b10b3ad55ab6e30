package observer

import (
	"encoding/json"
	"math/bits"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// The input decoder.
//
// Why hand-written: inside the sandbox every branch back to a loop header
// of the Go guest is costly (the host checks for interruption there), and
// encoding/json walks each byte three times through function pointers and
// reflection. This decoder makes one pass, scans string bodies eight bytes
// at a time, and slices every string that needs no unescaping out of one
// shared copy of the input instead of allocating it.
//
// It is a fast path, not a second definition of the format: it handles the
// inputs a host sends and gives up (ok == false) on anything unusual,
// whereupon DecodeInput decodes with encoding/json exactly as before. So a
// result it does produce must equal encoding/json's (checked by
// FuzzDecodeInput), and every error message still comes from encoding/json.
// It gives up on: any syntax error, a value of the wrong JSON type for its
// field, a null inside changed_fields, a duplicated known key (encoding/json
// merges those), a key that matches a field only case-insensitively, and
// nesting deeper than maxDepth.

// maxDepth bounds the nesting the fast path follows (and so its recursion).
// Deeper input goes to encoding/json, which allows 10000 levels.
const maxDepth = 512

type decoder struct {
	s    string     // the whole input; decoded strings are substrings of it
	i    int        // read offset
	slab []string   // backing store for strings and numbers boxed in images
	raw  *rawImages // if set, images are validated and kept as text here
}

// Boxing a string or json.Number in an `any` allocates its header; a row
// image boxes one per column. box instead stores the header in a slab
// shared by the call and makes the interface point at it: the interface
// and its value are exactly what the compiler would build (a type word and
// a pointer to an immutable string header), with one allocation per
// slabSize values. A slab entry is never written again once boxed.

const slabSize = 32

type eface struct{ typ, data unsafe.Pointer }

func typeWord(v any) unsafe.Pointer { return (*eface)(unsafe.Pointer(&v)).typ }

var (
	stringType = typeWord("")
	numberType = typeWord(json.Number(""))
)

func (d *decoder) box(s string, typ unsafe.Pointer) any {
	if len(d.slab) == cap(d.slab) {
		d.slab = make([]string, 0, slabSize)
	}
	d.slab = append(d.slab, s)
	var v any
	e := (*eface)(unsafe.Pointer(&v))
	e.typ, e.data = typ, unsafe.Pointer(&d.slab[len(d.slab)-1])
	return v
}

// load64 reads s[i:i+8] as a little-endian word; the caller checks bounds.
func load64(s string, i int) uint64 {
	return *(*uint64)(unsafe.Add(unsafe.Pointer(unsafe.StringData(s)), i))
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// special marks, in the high bit of each byte, the bytes of x that end the
// fast scan of a string body: '"', '\\', control characters and non-ASCII.
// Only the lowest marked byte is exact (borrows can mark bytes above it),
// which is all the scan uses.
func special(x uint64) uint64 {
	q := x ^ (lsb * '"')
	b := x ^ (lsb * '\\')
	return ((q - lsb) &^ q) | ((b - lsb) &^ b) | ((x - lsb*0x20) &^ x) | x
}

func (d *decoder) ws() {
	for d.i < len(d.s) {
		switch d.s[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// peek returns the next byte, 0 at the end.
func (d *decoder) peek() byte {
	if d.i < len(d.s) {
		return d.s[d.i]
	}
	return 0
}

// sep consumes whitespace, then ',' (more=true) or the closing byte.
func (d *decoder) sep(closing byte) (more, ok bool) {
	d.ws()
	switch d.peek() {
	case ',':
		d.i++
		d.ws()
		return true, true
	case closing:
		d.i++
		return false, true
	}
	return false, false
}

// scanStr validates the string starting at d.i (a '"') and moves past it.
// plain reports that its body needs no unescaping: no escape, no control
// character and valid UTF-8, so the body is the value.
func (d *decoder) scanStr() (start, end int, plain, ok bool) {
	s := d.s
	i := d.i + 1
	start = i
	for i+8 <= len(s) {
		if m := special(load64(s, i)) & msb; m != 0 {
			i += bits.TrailingZeros64(m) >> 3
			goto slow
		}
		i += 8
	}
slow:
	plain = true
	for i < len(s) {
		c := s[i]
		switch {
		case c == '"':
			d.i = i + 1
			return start, i, plain, true
		case c == '\\':
			plain = false
			i++
			if i >= len(s) {
				return 0, 0, false, false
			}
			switch s[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if i+5 > len(s) || !isHex4(s[i+1:i+5]) {
					return 0, 0, false, false
				}
				i += 5
			default:
				return 0, 0, false, false
			}
		case c < 0x20:
			return 0, 0, false, false
		case c < utf8.RuneSelf:
			i++
			// Back to eight at a time for the rest of the body.
			for i+8 <= len(s) {
				if m := special(load64(s, i)) & msb; m != 0 {
					i += bits.TrailingZeros64(m) >> 3
					break
				}
				i += 8
			}
		default:
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 {
				plain = false // encoding/json replaces it with U+FFFD
			}
			i += n
		}
	}
	return 0, 0, false, false
}

func isHex4(s string) bool {
	for i := 0; i < 4; i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// str decodes the string at d.i.
func (d *decoder) str() (string, bool) {
	if d.peek() != '"' {
		return "", false
	}
	start, end, plain, ok := d.scanStr()
	if !ok {
		return "", false
	}
	if plain {
		return d.s[start:end], true
	}
	return unquote(d.s[start:end]), true
}

// unquote decodes a validated string body with escapes or invalid UTF-8,
// exactly as encoding/json does (unquoteBytes): invalid UTF-8 and lone
// surrogates become U+FFFD.
func unquote(s string) string {
	b := make([]byte, 0, len(s)+utf8.UTFMax)
	for r := 0; r < len(s); {
		c := s[r]
		switch {
		case c == '\\':
			r++
			switch s[r] {
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				rr := hex4(s[r+1:])
				r += 5
				if utf16.IsSurrogate(rr) {
					if r+6 <= len(s) && s[r] == '\\' && s[r+1] == 'u' {
						if dec := utf16.DecodeRune(rr, hex4(s[r+2:])); dec != unicode.ReplacementChar {
							b = utf8.AppendRune(b, dec)
							r += 6
							continue
						}
					}
					rr = unicode.ReplacementChar
				}
				b = utf8.AppendRune(b, rr)
				continue
			default: // '"', '\\', '/'
				b = append(b, s[r])
			}
			r++
		case c < utf8.RuneSelf:
			b = append(b, c)
			r++
		default:
			rr, n := utf8.DecodeRuneInString(s[r:])
			b = utf8.AppendRune(b, rr)
			r += n
		}
	}
	return string(b)
}

func hex4(s string) rune {
	var r rune
	for i := 0; i < 4; i++ {
		c := s[i]
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		default:
			c = c - 'A' + 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

// num scans a JSON number at d.i and returns its text.
func (d *decoder) num() (string, bool) {
	s, i := d.s, d.i
	start := i
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i >= len(s):
		return "", false
	case s[i] == '0':
		i++
	case '1' <= s[i] && s[i] <= '9':
		i++
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
	default:
		return "", false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			return "", false
		}
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			return "", false
		}
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
	}
	d.i = i
	return s[start:i], true
}

// lit consumes the literal word (true, false, null) if it is next.
func (d *decoder) lit(word string) bool {
	if strings.HasPrefix(d.s[d.i:], word) {
		d.i += len(word)
		return true
	}
	return false
}

// null consumes a null if it is next.
func (d *decoder) null() bool { return d.peek() == 'n' && d.lit("null") }

// value decodes any JSON value the way encoding/json decodes into an `any`
// with UseNumber: map[string]any, []any, json.Number, string, bool, nil.
func (d *decoder) value(depth int) (any, bool) {
	switch c := d.peek(); {
	case c == '{':
		m, ok := d.object(depth + 1)
		return m, ok
	case c == '[':
		return d.array(depth + 1)
	case c == '"':
		s, ok := d.str()
		return d.box(s, stringType), ok
	case c == 't':
		return true, d.lit("true")
	case c == 'f':
		return false, d.lit("false")
	case c == 'n':
		return nil, d.lit("null")
	default:
		n, ok := d.num()
		return d.box(n, numberType), ok
	}
}

// object decodes the object at d.i (a '{') into a new map.
func (d *decoder) object(depth int) (map[string]any, bool) {
	if depth > maxDepth {
		return nil, false
	}
	d.i++
	m := make(map[string]any)
	d.ws()
	if d.peek() == '}' {
		d.i++
		return m, true
	}
	for {
		k, ok := d.str()
		if !ok || !d.colon() {
			return nil, false
		}
		v, ok := d.value(depth)
		if !ok {
			return nil, false
		}
		m[k] = v
		more, ok := d.sep('}')
		if !ok {
			return nil, false
		}
		if !more {
			return m, true
		}
	}
}

func (d *decoder) array(depth int) ([]any, bool) {
	if depth > maxDepth {
		return nil, false
	}
	d.i++
	a := make([]any, 0)
	d.ws()
	if d.peek() == ']' {
		d.i++
		return a, true
	}
	for {
		v, ok := d.value(depth)
		if !ok {
			return nil, false
		}
		a = append(a, v)
		more, ok := d.sep(']')
		if !ok {
			return nil, false
		}
		if !more {
			return a, true
		}
	}
}

// colon consumes whitespace, ':' and whitespace after an object key.
func (d *decoder) colon() bool {
	d.ws()
	if d.peek() != ':' {
		return false
	}
	d.i++
	d.ws()
	return true
}

// skip validates and passes over any value without building it.
func (d *decoder) skip(depth int) bool {
	switch c := d.peek(); c {
	case '{', '[':
		if depth+1 > maxDepth {
			return false
		}
		closing := byte('}')
		if c == '[' {
			closing = ']'
		}
		d.i++
		d.ws()
		if d.peek() == closing {
			d.i++
			return true
		}
		for {
			if c == '{' {
				if d.peek() != '"' {
					return false
				}
				if _, _, _, ok := d.scanStr(); !ok || !d.colon() {
					return false
				}
			}
			if !d.skip(depth + 1) {
				return false
			}
			more, ok := d.sep(closing)
			if !ok {
				return false
			}
			if !more {
				return true
			}
		}
	case '"':
		_, _, _, ok := d.scanStr()
		return ok
	case 't':
		return d.lit("true")
	case 'f':
		return d.lit("false")
	case 'n':
		return d.lit("null")
	}
	_, ok := d.num()
	return ok
}

// enter moves into the object at d.i, reporting whether it has members
// (then the decoder is at the first key).
func (d *decoder) enter() (members, ok bool) {
	if d.peek() != '{' {
		return false, false
	}
	d.i++
	d.ws()
	if d.peek() == '}' {
		d.i++
		return false, true
	}
	return true, true
}

// key reads a member's key and colon, leaving the decoder at the value.
func (d *decoder) key() (string, bool) {
	k, ok := d.str()
	return k, ok && d.colon()
}

// The members of a struct are decoded by a loop over enter, key, a switch
// that sets one bit per known field (a known key seen twice gives up, as
// encoding/json would merge the values) and sep. Unknown keys go to
// unknown.

// unknown passes over the value of an unknown key, giving up if the key
// would match one of names case-insensitively (encoding/json would use it).
func (d *decoder) unknown(key string, names []string) bool {
	for _, n := range names {
		if strings.EqualFold(key, n) {
			return false
		}
	}
	return d.skip(1)
}

var (
	inputNames   = []string{"abi", "context", "event", "config"}
	contextNames = []string{"observer", "plugin", "role", "attempt", "dry_run", "now", "trace"}
	eventNames   = []string{"id", "position", "source", "entity", "op", "key", "before", "after",
		"changed_fields", "tenant", "commit_time", "txid", "trace"}
	traceNames = []string{"traceparent", "tracestate"}
)

// strField decodes a string field; null leaves it unset.
func (d *decoder) strField(dst *string) bool {
	if d.null() {
		return true
	}
	s, ok := d.str()
	*dst = s
	return ok
}

func (d *decoder) mapField(dst *map[string]any) bool {
	if d.null() {
		*dst = nil
		return true
	}
	if d.peek() != '{' {
		return false
	}
	m, ok := d.object(1)
	*dst = m
	return ok
}

// rawImage validates an image (an object or null) and keeps its text.
func (d *decoder) rawImage(dst *string) bool {
	start := d.i
	if c := d.peek(); c != '{' && c != 'n' || !d.skip(0) {
		return false
	}
	*dst = d.s[start:d.i]
	return true
}

func (d *decoder) trace(dst **TraceContext) bool {
	if d.null() {
		*dst = nil
		return true
	}
	members, ok := d.enter()
	if !ok {
		return false
	}
	t := new(TraceContext)
	*dst = t
	var seen uint32
	for members {
		k, ok := d.key()
		if !ok {
			return false
		}
		var bit uint32
		switch k {
		case "traceparent":
			bit, ok = 1, d.strField(&t.Traceparent)
		case "tracestate":
			bit, ok = 2, d.strField(&t.Tracestate)
		default:
			ok = d.unknown(k, traceNames)
		}
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
		if members, ok = d.sep('}'); !ok {
			return false
		}
	}
	return true
}

func (d *decoder) context(c *CallContext) bool {
	if d.null() {
		return true
	}
	members, ok := d.enter()
	if !ok {
		return false
	}
	var seen uint32
	for members {
		k, ok := d.key()
		if !ok {
			return false
		}
		var bit uint32
		switch k {
		case "observer":
			bit, ok = 1, d.strField(&c.Observer)
		case "plugin":
			bit, ok = 2, d.strField(&c.Plugin)
		case "role":
			bit, ok = 4, d.strField(&c.Role)
		case "attempt":
			bit = 8
			if !d.null() {
				var n string
				if n, ok = d.num(); ok {
					i, err := strconv.ParseInt(n, 10, 0)
					c.Attempt, ok = int(i), err == nil
				}
			}
		case "dry_run":
			bit = 16
			switch {
			case d.null():
			case d.lit("true"):
				c.DryRun = true
			case d.lit("false"):
			default:
				ok = false
			}
		case "now":
			bit, ok = 32, d.strField(&c.Now)
		case "trace":
			bit, ok = 64, d.trace(&c.Trace)
		default:
			ok = d.unknown(k, contextNames)
		}
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
		if members, ok = d.sep('}'); !ok {
			return false
		}
	}
	return true
}

func (d *decoder) event(e *Event) bool {
	members, ok := d.enter()
	if !ok {
		return false
	}
	var seen uint32
	for members {
		k, ok := d.key()
		if !ok {
			return false
		}
		var bit uint32
		switch k {
		case "id":
			bit, ok = 1, d.strField(&e.ID)
		case "position":
			bit = 2
			if !d.null() {
				var n string
				if n, ok = d.num(); ok {
					p, err := strconv.ParseUint(n, 10, 64)
					e.Position, ok = p, err == nil
				}
			}
		case "source":
			bit, ok = 4, d.strField(&e.Source)
		case "entity":
			bit, ok = 8, d.strField(&e.Entity)
		case "op":
			bit, ok = 16, d.strField((*string)(&e.Op))
		case "key":
			bit, ok = 32, d.strField(&e.Key)
		case "before":
			bit = 64
			if d.raw != nil {
				ok = d.rawImage(&d.raw.before)
			} else {
				ok = d.mapField(&e.Before)
			}
		case "after":
			bit = 128
			if d.raw != nil {
				ok = d.rawImage(&d.raw.after)
			} else {
				ok = d.mapField(&e.After)
			}
		case "changed_fields":
			bit, ok = 256, d.strings(&e.ChangedFields)
		case "tenant":
			bit, ok = 512, d.strField(&e.Tenant)
		case "commit_time":
			bit, ok = 1024, d.strField(&e.CommitTime)
		case "txid":
			bit, ok = 2048, d.strField(&e.TxID)
		case "trace":
			bit, ok = 4096, d.trace(&e.Trace)
		default:
			ok = d.unknown(k, eventNames)
		}
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
		if members, ok = d.sep('}'); !ok {
			return false
		}
	}
	return true
}

// strings decodes an array of strings (a null element gives up).
func (d *decoder) strings(dst *[]string) bool {
	if d.null() {
		*dst = nil
		return true
	}
	if d.peek() != '[' {
		return false
	}
	d.i++
	a := make([]string, 0, 4)
	d.ws()
	if d.peek() == ']' {
		d.i++
		*dst = a
		return true
	}
	for {
		s, ok := d.str()
		if !ok {
			return false
		}
		a = append(a, s)
		more, ok := d.sep(']')
		if !ok {
			return false
		}
		if !more {
			*dst = a
			return true
		}
	}
}

// decodeInputFast decodes s as an Input, or reports ok == false for
// anything it does not handle (see the comment at the top of this file).
// The strings of the result share s's memory. With lazy, the images are
// left nil and their text is returned instead.
func decodeInputFast(s string, lazy bool) (*Input, *rawImages, bool) {
	// One allocation for the input, its event and the images' text.
	both := new(struct {
		in  Input
		ev  Event
		raw rawImages
	})
	d := &decoder{s: s}
	if lazy {
		d.raw = &both.raw
	}
	in := &both.in
	d.ws()
	members, ok := d.enter()
	if !ok {
		return nil, nil, false
	}
	var seen uint32
	for members {
		k, ok := d.key()
		if !ok {
			return nil, nil, false
		}
		var bit uint32
		switch k {
		case "abi":
			bit, ok = 1, d.strField(&in.ABI)
		case "context":
			bit, ok = 2, d.context(&in.Context)
		case "event":
			bit = 4
			if d.null() {
				in.Event = nil
			} else {
				in.Event = &both.ev
				ok = d.event(in.Event)
			}
		case "config":
			bit = 8
			start := d.i
			if ok = d.skip(0); ok {
				// A copy: a handler may keep or modify Config without
				// touching the strings that share the input.
				in.Config = json.RawMessage(d.s[start:d.i])
			}
		default:
			ok = d.unknown(k, inputNames)
		}
		if !ok || seen&bit != 0 {
			return nil, nil, false
		}
		seen |= bit
		if members, ok = d.sep('}'); !ok {
			return nil, nil, false
		}
	}
	// Anything but white space after the object is trailing data, which
	// the encoding/json path reports.
	d.ws()
	if d.i < len(s) {
		return nil, nil, false
	}
	return in, d.raw, true
}
