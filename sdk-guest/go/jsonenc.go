package observer

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"unicode/utf8"
)

// The result encoder: the bytes json.Marshal would produce, without
// reflection. Types it does not know are handed to encoding/json, and any
// value it cannot encode (an invalid json.Number, invalid body_json) makes
// the whole value go through encoding/json, so error messages are
// unchanged.

// AppendJSON appends the JSON encoding of v to dst, byte for byte what
// json.Marshal(v) produces (HTML characters escaped, map keys sorted,
// numbers in json.Number kept as written). The generic forms of decoded
// JSON (map[string]any, []any, json.Number, string, bool, nil), string maps
// and slices, and the SDK's payload types are encoded without reflection;
// anything else goes through encoding/json.
func AppendJSON(dst []byte, v any) ([]byte, error) {
	return appendJSON(dst, v, true)
}

// AppendJSONNoEscape is AppendJSON without HTML escaping: what a
// json.Encoder with SetEscapeHTML(false) writes, without the newline.
func AppendJSONNoEscape(dst []byte, v any) ([]byte, error) {
	return appendJSON(dst, v, false)
}

func appendJSON(dst []byte, v any, html bool) ([]byte, error) {
	n := len(dst)
	if out, ok := appendValue(dst, v, html); ok {
		return out, nil
	}
	dst = dst[:n]
	b, err := marshal(v, html)
	if err != nil {
		return dst, err
	}
	return append(dst, b...), nil
}

// marshal is encoding/json, the reference and the fallback.
func marshal(v any, html bool) ([]byte, error) {
	if html {
		return json.Marshal(v)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// appendValue encodes v, reporting false if encoding/json must decide
// (an error, or a value the caller should hand over whole).
func appendValue(dst []byte, v any, html bool) ([]byte, bool) {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...), true
	case string:
		return appendString(dst, x, html), true
	case json.Number:
		s := string(x)
		if s == "" {
			s = "0"
		}
		if !isValidNumber(s) {
			return dst, false
		}
		return append(dst, s...), true
	case bool:
		return strconv.AppendBool(dst, x), true
	case map[string]any:
		if x == nil {
			return append(dst, "null"...), true
		}
		dst = append(dst, '{')
		for i, k := range sortedKeys(x) {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, k, html)
			dst = append(dst, ':')
			var ok bool
			if dst, ok = appendValue(dst, x[k], html); !ok {
				return dst, false
			}
		}
		return append(dst, '}'), true
	case []any:
		if x == nil {
			return append(dst, "null"...), true
		}
		dst = append(dst, '[')
		for i, e := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			var ok bool
			if dst, ok = appendValue(dst, e, html); !ok {
				return dst, false
			}
		}
		return append(dst, ']'), true
	case map[string]string:
		return appendStringMap(dst, x, html), true
	case []string:
		return appendStrings(dst, x, html), true
	case *Event:
		if x == nil {
			return append(dst, "null"...), true
		}
		return appendEvent(dst, x, html)
	case Event:
		return appendEvent(dst, &x, html)
	case *FilterResult:
		if x == nil {
			return append(dst, "null"...), true
		}
		return appendFilterResult(dst, x, html)
	case FilterResult:
		return appendFilterResult(dst, &x, html)
	case *ActResult:
		if x == nil {
			return append(dst, "null"...), true
		}
		return appendActResult(dst, x, html)
	case ActResult:
		return appendActResult(dst, &x, html)
	}
	b, err := marshal(v, html)
	if err != nil {
		return dst, false
	}
	return append(dst, b...), true
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func appendStringMap(dst []byte, m map[string]string, html bool) []byte {
	if m == nil {
		return append(dst, "null"...)
	}
	dst = append(dst, '{')
	for i, k := range sortedKeys(m) {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, k, html)
		dst = append(dst, ':')
		dst = appendString(dst, m[k], html)
	}
	return append(dst, '}')
}

func appendStrings(dst []byte, a []string, html bool) []byte {
	if a == nil {
		return append(dst, "null"...)
	}
	dst = append(dst, '[')
	for i, s := range a {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, s, html)
	}
	return append(dst, ']')
}

// field appends `,"name":` (the comma unless first).
func field(dst []byte, first bool, name string) []byte {
	if !first {
		dst = append(dst, ',')
	}
	dst = append(dst, '"')
	dst = append(dst, name...)
	return append(dst, '"', ':')
}

func appendEvent(dst []byte, e *Event, html bool) ([]byte, bool) {
	dst = append(dst, `{"id":`...)
	dst = appendString(dst, e.ID, html)
	dst = append(dst, `,"position":`...)
	dst = strconv.AppendUint(dst, e.Position, 10)
	dst = append(dst, `,"source":`...)
	dst = appendString(dst, e.Source, html)
	dst = append(dst, `,"entity":`...)
	dst = appendString(dst, e.Entity, html)
	dst = append(dst, `,"op":`...)
	dst = appendString(dst, string(e.Op), html)
	dst = append(dst, `,"key":`...)
	dst = appendString(dst, e.Key, html)
	dst = append(dst, `,"before":`...)
	var ok bool
	if dst, ok = appendValue(dst, e.Before, html); !ok {
		return dst, false
	}
	dst = append(dst, `,"after":`...)
	if dst, ok = appendValue(dst, e.After, html); !ok {
		return dst, false
	}
	dst = append(dst, `,"changed_fields":`...)
	dst = appendStrings(dst, e.ChangedFields, html)
	if e.Tenant != "" {
		dst = append(dst, `,"tenant":`...)
		dst = appendString(dst, e.Tenant, html)
	}
	dst = append(dst, `,"commit_time":`...)
	dst = appendString(dst, e.CommitTime, html)
	if e.TxID != "" {
		dst = append(dst, `,"txid":`...)
		dst = appendString(dst, e.TxID, html)
	}
	if e.Trace != nil {
		dst = append(dst, `,"trace":`...)
		dst = appendTrace(dst, e.Trace, html)
	}
	return append(dst, '}'), true
}

func appendTrace(dst []byte, t *TraceContext, html bool) []byte {
	dst = append(dst, '{')
	first := true
	if t.Traceparent != "" {
		dst = field(dst, first, "traceparent")
		dst = appendString(dst, t.Traceparent, html)
		first = false
	}
	if t.Tracestate != "" {
		dst = field(dst, first, "tracestate")
		dst = appendString(dst, t.Tracestate, html)
	}
	return append(dst, '}')
}

func appendError(dst []byte, e *Error, html bool) []byte {
	dst = append(dst, `{"message":`...)
	dst = appendString(dst, e.Message, html)
	if e.Retryable {
		dst = append(dst, `,"retryable":true`...)
	}
	if e.Code != "" {
		dst = append(dst, `,"code":`...)
		dst = appendString(dst, e.Code, html)
	}
	return append(dst, '}')
}

func appendFilterResult(dst []byte, r *FilterResult, html bool) ([]byte, bool) {
	dst = append(dst, '{')
	if r.ABI != "" {
		dst = append(dst, `"abi":`...)
		dst = appendString(dst, r.ABI, html)
		dst = append(dst, ',')
	}
	if r.Pass {
		dst = append(dst, `"pass":true`...)
	} else {
		dst = append(dst, `"pass":false`...)
	}
	if r.Reason != "" {
		dst = append(dst, `,"reason":`...)
		dst = appendString(dst, r.Reason, html)
	}
	if r.Error != nil {
		dst = append(dst, `,"error":`...)
		dst = appendError(dst, r.Error, html)
	}
	return append(dst, '}'), true
}

func appendActResult(dst []byte, r *ActResult, html bool) ([]byte, bool) {
	dst = append(dst, '{')
	if r.ABI != "" {
		dst = append(dst, `"abi":`...)
		dst = appendString(dst, r.ABI, html)
		dst = append(dst, ',')
	}
	dst = append(dst, `"effects":`...)
	if r.Effects == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, '[')
		for i := range r.Effects {
			if i > 0 {
				dst = append(dst, ',')
			}
			var ok bool
			if dst, ok = appendEffect(dst, &r.Effects[i], html); !ok {
				return dst, false
			}
		}
		dst = append(dst, ']')
	}
	if r.Error != nil {
		dst = append(dst, `,"error":`...)
		dst = appendError(dst, r.Error, html)
	}
	return append(dst, '}'), true
}

func appendEffect(dst []byte, e *Effect, html bool) ([]byte, bool) {
	dst = append(dst, `{"type":`...)
	dst = appendString(dst, e.Type, html)
	if h := e.HTTP; h != nil {
		dst = append(dst, `,"http":{"method":`...)
		dst = appendString(dst, h.Method, html)
		dst = append(dst, `,"url":`...)
		dst = appendString(dst, h.URL, html)
		if len(h.Headers) > 0 {
			dst = append(dst, `,"headers":`...)
			dst = appendStringMap(dst, h.Headers, html)
		}
		if h.Body != "" {
			dst = append(dst, `,"body":`...)
			dst = appendString(dst, h.Body, html)
		}
		if len(h.BodyJSON) > 0 {
			dst = append(dst, `,"body_json":`...)
			var ok bool
			if dst, ok = appendCompact(dst, h.BodyJSON, html); !ok {
				return dst, false
			}
		}
		dst = append(dst, '}')
	}
	if l := e.Log; l != nil {
		dst = append(dst, `,"log":{`...)
		if l.Level != "" {
			dst = append(dst, `"level":`...)
			dst = appendString(dst, l.Level, html)
			dst = append(dst, ',')
		}
		dst = append(dst, `"message":`...)
		dst = appendString(dst, l.Message, html)
		if len(l.Fields) > 0 {
			dst = append(dst, `,"fields":`...)
			dst = appendStringMap(dst, l.Fields, html)
		}
		dst = append(dst, '}')
	}
	return append(dst, '}'), true
}

// appendCompact appends a json.RawMessage as encoding/json does: validated,
// with insignificant whitespace removed and (html) <, >, &, U+2028 and
// U+2029 escaped inside strings. Invalid JSON reports false.
func appendCompact(dst []byte, raw []byte, html bool) ([]byte, bool) {
	d := &decoder{s: string(raw)}
	d.ws()
	start := d.i
	if !d.skip(0) {
		return dst, false
	}
	end := d.i
	d.ws()
	if d.i != len(d.s) {
		return dst, false
	}
	s := d.s
	if plainCompact(s[start:end], html) {
		return append(dst, s[start:end]...), true
	}
	for i := start; i < end; i++ {
		switch c := s[i]; c {
		case ' ', '\t', '\n', '\r':
		case '"':
			d.i = i
			d.scanStr()
			if html {
				dst = appendEscapedHTML(dst, s[i:d.i])
			} else {
				dst = append(dst, s[i:d.i]...)
			}
			i = d.i - 1
		default:
			dst = append(dst, c)
		}
	}
	return dst, true
}

// plainCompact reports that a valid JSON text is already compact and, for
// html, needs no escaping: no whitespace byte (inside strings they are
// escaped, so any is insignificant), no '<', '>' or '&', and no non-ASCII
// byte (which could start U+2028 or U+2029). Eight bytes at a time.
func plainCompact(s string, html bool) bool {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := load64(s, i)
		m := hasByte(x, ' ') | hasByte(x, '\t') | hasByte(x, '\n') | hasByte(x, '\r')
		if html {
			m |= hasByte(x, '<') | hasByte(x, '>') | hasByte(x, '&') | x
		}
		if m&msb != 0 {
			return false
		}
	}
	for ; i < len(s); i++ {
		switch c := s[i]; {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			return false
		case html && (c == '<' || c == '>' || c == '&' || c >= utf8.RuneSelf):
			return false
		}
	}
	return true
}

// appendEscapedHTML copies a JSON string token, escaping <, >, &, U+2028
// and U+2029 as json.HTMLEscape does.
func appendEscapedHTML(dst []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '<' || c == '>' || c == '&' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			start = i + 1
		}
		// U+2028 and U+2029 are E2 80 A8 and E2 80 A9.
		if c == 0xE2 && i+2 < len(s) && s[i+1] == 0x80 && s[i+2]&^1 == 0xA8 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[s[i+2]&0xF])
			start = i + 3
		}
	}
	return append(dst, s[start:]...)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string exactly as encoding/json does
// (appendString in encode.go): invalid UTF-8 becomes \ufffd, U+2028 and
// U+2029 are escaped, and with html so are <, > and &.
func appendString(dst []byte, s string, html bool) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		// Eight plain bytes at a time: no '"', '\\', control or
		// non-ASCII byte, and (for html) no '<', '>' or '&'.
		for i+8 <= len(s) {
			x := load64(s, i)
			m := special(x)
			if html {
				m |= hasByte(x, '<') | hasByte(x, '>') | hasByte(x, '&')
			}
			if m&msb != 0 {
				break
			}
			i += 8
		}
		if i >= len(s) {
			break
		}
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && (!html || b != '<' && b != '>' && b != '&') {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// hasByte marks (in the high bit of each byte) bytes of x equal to c; only
// the lowest mark is exact.
func hasByte(x uint64, c byte) uint64 {
	y := x ^ (lsb * uint64(c))
	return (y - lsb) &^ y
}

// isValidNumber is encoding/json's check of a json.Number's text.
func isValidNumber(s string) bool {
	d := decoder{s: s}
	_, ok := d.num()
	return ok && d.i == len(s)
}
