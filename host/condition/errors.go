package condition

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// SyntaxError is a condition that does not parse. Pos is the byte offset of
// the offending token (0-based); Line and Col are 1-based, Col counting
// characters (runes) from the start of the line.
type SyntaxError struct {
	Src  string
	Pos  int
	Line int
	Col  int
	Msg  string
}

func (e *SyntaxError) Error() string {
	if e.Line > 1 || strings.Contains(e.Src, "\n") {
		return fmt.Sprintf("condition %q: at line %d, column %d: %s", e.Src, e.Line, e.Col, e.Msg)
	}
	return fmt.Sprintf("condition %q: at column %d: %s", e.Src, e.Col, e.Msg)
}

// newSyntaxError computes Line and Col from pos.
func newSyntaxError(src string, pos int, format string, args ...any) *SyntaxError {
	if pos < 0 {
		pos = 0
	}
	if pos > len(src) {
		pos = len(src)
	}
	line, start := 1, 0
	for i := 0; i < pos; i++ {
		if src[i] == '\n' {
			line++
			start = i + 1
		}
	}
	return &SyntaxError{
		Src:  src,
		Pos:  pos,
		Line: line,
		Col:  utf8.RuneCountInString(src[start:pos]) + 1,
		Msg:  fmt.Sprintf(format, args...),
	}
}
