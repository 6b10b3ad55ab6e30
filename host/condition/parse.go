package condition

import (
	"strconv"
	"strings"
)

// Limits on a condition's source. They are far above any real rule and
// keep a hostile or mistaken config from costing much at load.
const (
	// MaxLen is the longest condition accepted, in bytes.
	MaxLen = 4096
	// MaxDepth is how deeply operators may nest.
	MaxDepth = 128
)

type nodeKind uint8

const (
	nLit nodeKind = iota
	nPath
	nNot
	nAnd
	nOr
	nCmp
	nFunc
)

// root is where a path starts.
type root uint8

const (
	rAfter root = iota
	rBefore
	rEntity
	rOp
	rKey
	rTenant
	rSource
)

var rootNames = [...]string{rAfter: "after", rBefore: "before", rEntity: "entity", rOp: "op", rKey: "key", rTenant: "tenant", rSource: "source"}

// cmpOp is a comparison operator; values are the token kinds.
type cmpOp = tokKind

type fnKind uint8

const (
	fHasField fnKind = iota
	fFieldChanged
	fFieldChangedTo
	fFieldChangedFrom
)

var fnNames = [...]string{fHasField: "has_field", fFieldChanged: "field_changed", fFieldChangedTo: "field_changed_to", fFieldChangedFrom: "field_changed_from"}

// segment is one step of a path: a map key, and the array index it also
// names when it is all digits (-1 otherwise).
type segment struct {
	name  string
	index int
}

// node is one element of the compiled tree. A single struct with a kind,
// rather than an interface per node type, keeps evaluation a switch over
// contiguous data with no dynamic dispatch or allocation.
type node struct {
	kind nodeKind
	lit  val       // nLit
	root root      // nPath
	path []segment // nPath, nFunc (the field)
	// field is the function's field argument as written (nFunc), matched
	// against changed_fields.
	field string
	op    cmpOp   // nCmp
	fn    fnKind  // nFunc
	kids  []*node // nNot: 1; nAnd, nOr: ≥2; nCmp: 2; nFunc: 0 or 1 (the value)
}

// Expr is a compiled condition. It is immutable after Parse and safe for
// concurrent use by many goroutines.
//
// A nil *Expr is the absent condition: it matches every event.
type Expr struct {
	src  string
	root *node
}

// Parse compiles a condition. Every error is a *SyntaxError pointing at
// the offending token.
func Parse(src string) (*Expr, error) {
	if len(src) > MaxLen {
		return nil, newSyntaxError(src, MaxLen, "condition is %d bytes long, the limit is %d", len(src), MaxLen)
	}
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	p := &parser{src: src, toks: toks}
	if p.peek().kind == tEOF {
		return nil, newSyntaxError(src, 0, "condition is empty, expected an expression such as after.amount > 10")
	}
	n, err := p.parseOr(0)
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		if isCmp(t.kind) {
			return nil, p.errAt(t, "unexpected %s: comparisons cannot be chained, combine them with &&", t.describe())
		}
		return nil, p.errAt(t, "unexpected %s after a complete expression, expected && or ||", t.describe())
	}
	return &Expr{src: src, root: n}, nil
}

// MustParse is Parse that panics on error, for conditions fixed in code.
func MustParse(src string) *Expr {
	e, err := Parse(src)
	if err != nil {
		panic(err)
	}
	return e
}

// Source returns the condition as written.
func (e *Expr) Source() string {
	if e == nil {
		return ""
	}
	return e.src
}

type parser struct {
	src  string
	toks []token
	i    int
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) next() token { t := p.toks[p.i]; p.i++; return t }

func (p *parser) errAt(t token, format string, args ...any) error {
	return newSyntaxError(p.src, t.pos, format, args...)
}

func (p *parser) deeper(depth int) error {
	if depth >= MaxDepth {
		return p.errAt(p.peek(), "expression nests deeper than %d levels", MaxDepth)
	}
	return nil
}

func isCmp(k tokKind) bool { return k >= tEq && k <= tGe }

func (p *parser) parseOr(depth int) (*node, error) {
	if err := p.deeper(depth); err != nil {
		return nil, err
	}
	first, err := p.parseAnd(depth + 1)
	if err != nil {
		return nil, err
	}
	if p.peek().kind != tOr {
		return first, nil
	}
	n := &node{kind: nOr}
	n.kids = appendFlat(n.kids, first, nOr)
	for p.peek().kind == tOr {
		p.next()
		k, err := p.parseAnd(depth + 1)
		if err != nil {
			return nil, err
		}
		n.kids = appendFlat(n.kids, k, nOr)
	}
	return n, nil
}

func (p *parser) parseAnd(depth int) (*node, error) {
	if err := p.deeper(depth); err != nil {
		return nil, err
	}
	first, err := p.parseUnary(depth + 1)
	if err != nil {
		return nil, err
	}
	if p.peek().kind != tAnd {
		return first, nil
	}
	n := &node{kind: nAnd}
	n.kids = appendFlat(n.kids, first, nAnd)
	for p.peek().kind == tAnd {
		p.next()
		k, err := p.parseUnary(depth + 1)
		if err != nil {
			return nil, err
		}
		n.kids = appendFlat(n.kids, k, nAnd)
	}
	return n, nil
}

// appendFlat merges a parenthesised a || (b || c) into one n-ary node: the
// meaning is the same and String then has one canonical form.
func appendFlat(kids []*node, k *node, kind nodeKind) []*node {
	if k.kind == kind {
		return append(kids, k.kids...)
	}
	return append(kids, k)
}

// parseUnary: '!' binds looser than a comparison, so !a == b means
// !(a == b), which is what people mean when they write it.
func (p *parser) parseUnary(depth int) (*node, error) {
	if err := p.deeper(depth); err != nil {
		return nil, err
	}
	if p.peek().kind == tNot {
		p.next()
		k, err := p.parseUnary(depth + 1)
		if err != nil {
			return nil, err
		}
		return &node{kind: nNot, kids: []*node{k}}, nil
	}
	return p.parseCmp(depth + 1)
}

func (p *parser) parseCmp(depth int) (*node, error) {
	l, err := p.parseOperand(depth)
	if err != nil {
		return nil, err
	}
	t := p.peek()
	if !isCmp(t.kind) {
		return l, nil
	}
	p.next()
	r, err := p.parseOperand(depth)
	if err != nil {
		return nil, err
	}
	if t2 := p.peek(); isCmp(t2.kind) {
		return nil, p.errAt(t2, "unexpected %s: comparisons cannot be chained, combine them with &&", t2.describe())
	}
	return &node{kind: nCmp, op: t.kind, kids: []*node{l, r}}, nil
}

const expectValue = "expected a value (number, 'string', true, false, null, a field path such as after.amount, a function call or '(')"

func (p *parser) parseOperand(depth int) (*node, error) {
	if err := p.deeper(depth); err != nil {
		return nil, err
	}
	t := p.next()
	switch t.kind {
	case tLParen:
		n, err := p.parseOr(depth + 1)
		if err != nil {
			return nil, err
		}
		if c := p.peek(); c.kind != tRParen {
			col := newSyntaxError(p.src, t.pos, "").Col
			if isCmp(c.kind) {
				return nil, p.errAt(c, "unexpected %s: comparisons cannot be chained, combine them with &&", c.describe())
			}
			return nil, p.errAt(c, "unexpected %s, expected ')' to close the '(' at column %d", c.describe(), col)
		}
		p.next()
		return n, nil
	case tNumber:
		return &node{kind: nLit, lit: val{k: kNum, s: t.text}}, nil
	case tString:
		return &node{kind: nLit, lit: val{k: kStr, s: t.text}}, nil
	case tIdent:
		switch t.text {
		case "true":
			return &node{kind: nLit, lit: val{k: kBool, b: true}}, nil
		case "false":
			return &node{kind: nLit, lit: val{k: kBool}}, nil
		case "null":
			return &node{kind: nLit, lit: val{k: kNull}}, nil
		}
		if p.peek().kind == tLParen {
			return p.parseCall(t, depth)
		}
		return p.parsePath(t)
	case tEOF:
		return nil, p.errAt(t, "unexpected end of condition, %s", expectValue)
	}
	return nil, p.errAt(t, "unexpected %s, %s", t.describe(), expectValue)
}

func (p *parser) parsePath(head token) (*node, error) {
	n := &node{kind: nPath, root: rAfter}
	switch head.text {
	case "after":
		n.root = rAfter
	case "before":
		n.root = rBefore
	case "entity", "op", "key", "tenant", "source":
		for r, name := range rootNames {
			if name == head.text {
				n.root = root(r)
			}
		}
		if p.peek().kind == tDot {
			return nil, p.errAt(p.peek(), "%s is an event field with no sub-fields; write after.%s for a column named %s", head.text, head.text, head.text)
		}
		return n, nil
	default:
		// A bare name is a column of the new row image.
		n.path = append(n.path, newSegment(head.text))
	}
	for p.peek().kind == tDot {
		dot := p.next()
		t := p.next()
		switch t.kind {
		case tIdent:
			n.path = append(n.path, newSegment(t.text))
		case tNumber:
			// "items.0.1" lexes 0.1 as one number: split it back into
			// indexes; anything else is not a segment.
			for part := range strings.SplitSeq(t.text, ".") {
				if part == "" || strings.Trim(part, "0123456789") != "" {
					return nil, p.errAt(t, "path segment %s is not a name or an array index", t.text)
				}
				n.path = append(n.path, newSegment(part))
			}
		default:
			return nil, p.errAt(dot, "'.' must be followed by a field name or an array index, got %s", t.describe())
		}
	}
	return n, nil
}

func newSegment(name string) segment {
	s := segment{name: name, index: -1}
	if name != "" && strings.Trim(name, "0123456789") == "" && len(name) <= 9 {
		i, _ := strconv.Atoi(name)
		s.index = i
	}
	return s
}

func (p *parser) parseCall(name token, depth int) (*node, error) {
	fn := -1
	for i, n := range fnNames {
		if n == name.text {
			fn = i
		}
	}
	if fn < 0 {
		return nil, p.errAt(name, "unknown function %s, known: has_field, field_changed, field_changed_to, field_changed_from", name.text)
	}
	n := &node{kind: nFunc, fn: fnKind(fn)}
	wantArgs := 1
	if n.fn == fFieldChangedTo || n.fn == fFieldChangedFrom {
		wantArgs = 2
	}
	usage := name.text + "('field')"
	if wantArgs == 2 {
		usage = name.text + "('field', value)"
	}
	p.next() // '('
	arg := p.next()
	if arg.kind != tString {
		return nil, p.errAt(arg, "%s: the first argument must be a quoted field name, as in %s; got %s", name.text, usage, arg.describe())
	}
	if err := p.setField(n, arg, name.text); err != nil {
		return nil, err
	}
	if wantArgs == 2 {
		if c := p.next(); c.kind != tComma {
			return nil, p.errAt(c, "%s takes two arguments, as in %s; got %s", name.text, usage, c.describe())
		}
		v, err := p.parseOr(depth + 1)
		if err != nil {
			return nil, err
		}
		n.kids = []*node{v}
	}
	if c := p.next(); c.kind != tRParen {
		if c.kind == tComma {
			return nil, p.errAt(c, "%s takes %d argument(s), as in %s", name.text, wantArgs, usage)
		}
		return nil, p.errAt(c, "unexpected %s, expected ')' to close %s(", c.describe(), name.text)
	}
	return n, nil
}

// setField validates a function's field argument: a column name or a
// dotted path within the row image.
func (p *parser) setField(n *node, arg token, fn string) error {
	f := arg.text
	if f == "" {
		return p.errAt(arg, "%s: field name is empty", fn)
	}
	if strings.HasPrefix(f, "after.") || strings.HasPrefix(f, "before.") {
		_, rest, _ := strings.Cut(f, ".")
		return p.errAt(arg, "%s: field names are relative to the row image, write %s not %s", fn, quote(rest), quote(f))
	}
	for part := range strings.SplitSeq(f, ".") {
		if part == "" {
			return p.errAt(arg, "%s: field path %s has an empty segment", fn, quote(f))
		}
		n.path = append(n.path, newSegment(part))
	}
	n.field = f
	return nil
}
