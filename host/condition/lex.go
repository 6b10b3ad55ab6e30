package condition

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

type tokKind uint8

const (
	tEOF tokKind = iota
	tIdent
	tNumber
	tString
	tDot
	tComma
	tLParen
	tRParen
	tNot
	tAnd
	tOr
	tEq
	tNe
	tLt
	tLe
	tGt
	tGe
)

var tokNames = [...]string{
	tEOF: "end of condition", tIdent: "name", tNumber: "number", tString: "string",
	tDot: "'.'", tComma: "','", tLParen: "'('", tRParen: "')'", tNot: "'!'",
	tAnd: "'&&'", tOr: "'||'", tEq: "'=='", tNe: "'!='", tLt: "'<'", tLe: "'<='",
	tGt: "'>'", tGe: "'>='",
}

type token struct {
	kind tokKind
	pos  int
	text string // source text; for tString the decoded value
}

func (t token) describe() string {
	switch t.kind {
	case tIdent:
		return "name " + strconv.Quote(t.text)
	case tNumber:
		return "number " + t.text
	case tString:
		return "string " + strconv.Quote(t.text)
	}
	return tokNames[t.kind]
}

// lex splits src into tokens. Errors point at the offending byte.
func lex(src string) ([]token, error) {
	var toks []token
	i := 0
	for i < len(src) {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(':
			toks = append(toks, token{tLParen, i, "("})
			i++
		case c == ')':
			toks = append(toks, token{tRParen, i, ")"})
			i++
		case c == ',':
			toks = append(toks, token{tComma, i, ","})
			i++
		case c == '.':
			toks = append(toks, token{tDot, i, "."})
			i++
		case c == '!':
			if i+1 < len(src) && src[i+1] == '=' {
				toks = append(toks, token{tNe, i, "!="})
				i += 2
			} else {
				toks = append(toks, token{tNot, i, "!"})
				i++
			}
		case c == '=':
			if i+1 < len(src) && src[i+1] == '=' {
				toks = append(toks, token{tEq, i, "=="})
				i += 2
			} else {
				return nil, newSyntaxError(src, i, "unexpected '=', use '==' to compare")
			}
		case c == '<' || c == '>':
			k, text := tLt, "<"
			if c == '>' {
				k, text = tGt, ">"
			}
			if i+1 < len(src) && src[i+1] == '=' {
				k++ // tLe / tGe follow tLt / tGt
				text += "="
			}
			toks = append(toks, token{k, i, text})
			i += len(text)
		case c == '&':
			if i+1 < len(src) && src[i+1] == '&' {
				toks = append(toks, token{tAnd, i, "&&"})
				i += 2
			} else {
				return nil, newSyntaxError(src, i, "unexpected '&', use '&&' for and")
			}
		case c == '|':
			if i+1 < len(src) && src[i+1] == '|' {
				toks = append(toks, token{tOr, i, "||"})
				i += 2
			} else {
				return nil, newSyntaxError(src, i, "unexpected '|', use '||' for or")
			}
		case c == '\'' || c == '"':
			s, n, err := lexString(src, i)
			if err != nil {
				return nil, err
			}
			toks = append(toks, token{tString, i, s})
			i += n
		case c == '-' || isDigit(c):
			n, err := lexNumber(src, i)
			if err != nil {
				return nil, err
			}
			toks = append(toks, token{tNumber, i, src[i : i+n]})
			i += n
		case isIdentStart(c):
			j := i + 1
			for j < len(src) && isIdentPart(src[j]) {
				j++
			}
			toks = append(toks, token{tIdent, i, src[i:j]})
			i = j
		default:
			r, _ := utf8.DecodeRuneInString(src[i:])
			return nil, newSyntaxError(src, i, "unexpected character %q", r)
		}
	}
	toks = append(toks, token{tEOF, len(src), ""})
	return toks, nil
}

func isDigit(c byte) bool      { return c >= '0' && c <= '9' }
func isIdentStart(c byte) bool { return c == '_' || (c|0x20) >= 'a' && (c|0x20) <= 'z' }
func isIdentPart(c byte) bool  { return isIdentStart(c) || isDigit(c) }

// lexNumber scans -?digits(.digits)?([eE][+-]?digits)? at src[i:] and
// returns its length.
func lexNumber(src string, i int) (int, error) {
	j := i
	if src[j] == '-' {
		j++
	}
	start := j
	for j < len(src) && isDigit(src[j]) {
		j++
	}
	if j == start {
		return 0, newSyntaxError(src, i, "'-' must be followed by a digit")
	}
	if j < len(src) && src[j] == '.' && j+1 < len(src) && isDigit(src[j+1]) {
		j++
		for j < len(src) && isDigit(src[j]) {
			j++
		}
	}
	if j < len(src) && (src[j] == 'e' || src[j] == 'E') {
		k := j + 1
		if k < len(src) && (src[k] == '+' || src[k] == '-') {
			k++
		}
		if k >= len(src) || !isDigit(src[k]) {
			return 0, newSyntaxError(src, j, "exponent of number %s has no digits", src[i:j])
		}
		for k < len(src) && isDigit(src[k]) {
			k++
		}
		j = k
	}
	if j < len(src) && isIdentPart(src[j]) {
		return 0, newSyntaxError(src, j, "unexpected %q after number %s", src[j], src[i:j])
	}
	return j - i, nil
}

// lexString decodes a quoted string at src[i:] (quote ' or "), returning
// the value and the number of source bytes consumed. Escapes: \\ \' \" \n
// \r \t and \uXXXX.
func lexString(src string, i int) (string, int, error) {
	q := src[i]
	j := i + 1
	// Fast path: no escapes.
	for j < len(src) && src[j] != q && src[j] != '\\' {
		j++
	}
	if j < len(src) && src[j] == q {
		return src[i+1 : j], j + 1 - i, nil
	}
	var b strings.Builder
	b.WriteString(src[i+1 : j])
	for j < len(src) {
		c := src[j]
		switch {
		case c == q:
			return b.String(), j + 1 - i, nil
		case c == '\\':
			if j+1 >= len(src) {
				return "", 0, newSyntaxError(src, j, "unterminated escape at end of string")
			}
			switch e := src[j+1]; e {
			case '\\', '\'', '"':
				b.WriteByte(e)
				j += 2
			case 'n':
				b.WriteByte('\n')
				j += 2
			case 'r':
				b.WriteByte('\r')
				j += 2
			case 't':
				b.WriteByte('\t')
				j += 2
			case 'u':
				if j+6 > len(src) {
					return "", 0, newSyntaxError(src, j, `escape \u needs four hex digits`)
				}
				v, err := strconv.ParseUint(src[j+2:j+6], 16, 32)
				if err != nil {
					return "", 0, newSyntaxError(src, j, `escape \u needs four hex digits, got %q`, src[j+2:j+6])
				}
				b.WriteRune(rune(v))
				j += 6
			default:
				r, _ := utf8.DecodeRuneInString(src[j+1:])
				return "", 0, newSyntaxError(src, j, `unknown escape \%c in string (use \\ \' \" \n \r \t or \uXXXX)`, r)
			}
		default:
			b.WriteByte(c)
			j++
		}
	}
	return "", 0, newSyntaxError(src, i, "unterminated string: no closing %c", q)
}

// quote renders s as a double-quoted condition string literal that lex
// decodes back to s.
func quote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if c < 0x20 || c == 0x7f {
				b.WriteString(`\u00`)
				b.WriteByte("0123456789abcdef"[c>>4])
				b.WriteByte("0123456789abcdef"[c&15])
			} else {
				b.WriteByte(c)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}
