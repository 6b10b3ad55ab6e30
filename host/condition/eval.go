package condition

import (
	"errors"
	"strings"

	"github.com/fraiseql/observer/host/event"
)

// errNilEvent is returned by Eval for a nil event.
var errNilEvent = errors.New("condition: evaluate: event is nil")

// Eval reports whether ev satisfies the condition. A nil *Expr matches
// every event.
//
// Missing paths evaluate to null and type mismatches make a comparison
// false, so Eval never fails because of what a row holds; the only error
// is a nil event. Eval does not allocate for events decoded with
// event.DecodeImage (json.Number numbers) and is safe for concurrent use.
func (e *Expr) Eval(ev *event.Event) (bool, error) {
	if e == nil {
		return true, nil
	}
	if ev == nil {
		return false, errNilEvent
	}
	return truthy(eval(e.root, ev)), nil
}

// truthy: only the boolean true counts as true in a boolean context; a
// path holding a number, a string or null is false.
func truthy(v val) bool { return v.k == kBool && v.b }

func eval(n *node, ev *event.Event) val {
	switch n.kind {
	case nLit:
		return n.lit
	case nPath:
		return resolve(n, ev)
	case nNot:
		return boolVal(!truthy(eval(n.kids[0], ev)))
	case nAnd:
		for _, k := range n.kids {
			if !truthy(eval(k, ev)) {
				return boolVal(false)
			}
		}
		return boolVal(true)
	case nOr:
		for _, k := range n.kids {
			if truthy(eval(k, ev)) {
				return boolVal(true)
			}
		}
		return boolVal(false)
	case nCmp:
		l, r := eval(n.kids[0], ev), eval(n.kids[1], ev)
		switch n.op {
		case tEq:
			return boolVal(equal(l, r))
		case tNe:
			return boolVal(!equal(l, r))
		}
		c, ok := order(l, r)
		if !ok {
			return boolVal(false)
		}
		switch n.op {
		case tLt:
			return boolVal(c < 0)
		case tLe:
			return boolVal(c <= 0)
		case tGt:
			return boolVal(c > 0)
		default: // tGe
			return boolVal(c >= 0)
		}
	case nFunc:
		return boolVal(call(n, ev))
	}
	return val{}
}

func resolve(n *node, ev *event.Event) val {
	switch n.root {
	case rAfter:
		if ev.After == nil {
			return val{}
		}
		v, _ := lookup(ev.After, n.path)
		return fromAny(v)
	case rBefore:
		if ev.Before == nil {
			return val{}
		}
		v, _ := lookup(ev.Before, n.path)
		return fromAny(v)
	case rEntity:
		return val{k: kStr, s: ev.Entity}
	case rOp:
		return val{k: kStr, s: string(ev.Op)}
	case rKey:
		return val{k: kStr, s: ev.Key}
	case rSource:
		return val{k: kStr, s: ev.Source}
	case rTenant:
		if ev.Tenant == "" {
			return val{}
		}
		return val{k: kStr, s: ev.Tenant}
	}
	return val{}
}

// lookup walks path from an image. ok reports whether every step existed
// (a present JSON null counts as existing).
func lookup(img map[string]any, path []segment) (v any, ok bool) {
	if img == nil {
		return nil, false
	}
	if len(path) == 0 {
		return img, true
	}
	var cur any = img
	for _, s := range path {
		switch c := cur.(type) {
		case map[string]any:
			cur, ok = c[s.name]
			if !ok {
				return nil, false
			}
		case []any:
			if s.index < 0 || s.index >= len(c) {
				return nil, false
			}
			cur = c[s.index]
		default:
			return nil, false
		}
	}
	return cur, true
}

func call(n *node, ev *event.Event) bool {
	switch n.fn {
	case fHasField:
		img := ev.After
		if ev.Op == event.OpDelete {
			img = ev.Before
		}
		_, ok := lookup(img, n.path)
		return ok
	case fFieldChanged:
		return changed(n, ev)
	case fFieldChangedTo:
		if !changed(n, ev) {
			return false
		}
		a, _ := lookup(ev.After, n.path)
		return equal(fromAny(a), eval(n.kids[0], ev))
	case fFieldChangedFrom:
		if !changed(n, ev) {
			return false
		}
		b, _ := lookup(ev.Before, n.path)
		return equal(fromAny(b), eval(n.kids[0], ev))
	}
	return false
}

// changed is field_changed: the field is listed in changed_fields, or its
// value differs between the before and after images. An UPDATE missing
// one of its images relies on changed_fields alone, since a missing image
// says nothing about the field.
func changed(n *node, ev *event.Event) bool {
	for _, f := range ev.ChangedFields {
		if f == n.field {
			return true
		}
	}
	if ev.Op == event.OpUpdate && (ev.Before == nil || ev.After == nil) {
		return false
	}
	b, _ := lookup(ev.Before, n.path)
	a, _ := lookup(ev.After, n.path)
	return !equal(fromAny(b), fromAny(a))
}

// String renders the condition in canonical form: bare names written as
// after.name, strings double-quoted, one space around binary operators and
// only the parentheses the grammar needs. Parse(e.String()) yields an
// equivalent condition with the same String.
func (e *Expr) String() string {
	if e == nil {
		return ""
	}
	var b strings.Builder
	render(&b, e.root)
	return b.String()
}

func render(b *strings.Builder, n *node) {
	switch n.kind {
	case nLit:
		switch n.lit.k {
		case kNull:
			b.WriteString("null")
		case kBool:
			if n.lit.b {
				b.WriteString("true")
			} else {
				b.WriteString("false")
			}
		case kNum:
			b.WriteString(n.lit.s)
		case kStr:
			b.WriteString(quote(n.lit.s))
		}
	case nPath:
		b.WriteString(rootNames[n.root])
		for _, s := range n.path {
			b.WriteByte('.')
			b.WriteString(s.name)
		}
	case nNot:
		b.WriteByte('!')
		renderWrapped(b, n.kids[0], nAnd, nOr, nCmp)
	case nAnd:
		for i, k := range n.kids {
			if i > 0 {
				b.WriteString(" && ")
			}
			renderWrapped(b, k, nOr)
		}
	case nOr:
		for i, k := range n.kids {
			if i > 0 {
				b.WriteString(" || ")
			}
			render(b, k)
		}
	case nCmp:
		renderWrapped(b, n.kids[0], nAnd, nOr, nNot, nCmp)
		b.WriteByte(' ')
		b.WriteString(tokNames[n.op][1 : len(tokNames[n.op])-1])
		b.WriteByte(' ')
		renderWrapped(b, n.kids[1], nAnd, nOr, nNot, nCmp)
	case nFunc:
		b.WriteString(fnNames[n.fn])
		b.WriteByte('(')
		b.WriteString(quote(n.field))
		if len(n.kids) > 0 {
			b.WriteString(", ")
			render(b, n.kids[0])
		}
		b.WriteByte(')')
	}
}

// renderWrapped renders n, in parentheses if its kind is one of wrap.
func renderWrapped(b *strings.Builder, n *node, wrap ...nodeKind) {
	for _, k := range wrap {
		if n.kind == k {
			b.WriteByte('(')
			render(b, n)
			b.WriteByte(')')
			return
		}
	}
	render(b, n)
}
