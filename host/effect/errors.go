package effect

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Error is a failed effect attempt. It names the effect, and for http the
// method, the redacted URL, the status and the start of the response body.
// Permanent reports whether retrying cannot help.
type Error struct {
	// Effect is the effect type ("http", "log").
	Effect string
	// Index is the effect's position in the plugin's result.
	Index  int
	Plugin string
	// Method and URL (already redacted) for http effects.
	Method string
	URL    string
	// Status is the HTTP status received, 0 if none.
	Status int
	// Body is the start of the response body, truncated to MaxBodySnippet.
	Body string
	// Err is the underlying cause, nil for a plain bad status.
	Err       error
	permanent bool
}

// MaxBodySnippet is how much of a response body an Error keeps.
const MaxBodySnippet = 256

// NewError returns an Error; permanent marks it as not worth retrying.
func NewError(effect string, index int, err error, permanent bool) *Error {
	return &Error{Effect: effect, Index: index, Err: err, permanent: permanent}
}

// Permanent reports whether retrying cannot help.
func (e *Error) Permanent() bool { return e.permanent }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s effect %d", e.Effect, e.Index)
	if e.Plugin != "" {
		fmt.Fprintf(&b, " of plugin %s", e.Plugin)
	}
	if e.Method != "" || e.URL != "" {
		fmt.Fprintf(&b, " (%s %s)", e.Method, e.URL)
	}
	if e.Status != 0 {
		fmt.Fprintf(&b, ": status %d %s", e.Status, http.StatusText(e.Status))
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	if e.Body != "" {
		b.WriteString(": response body ")
		b.WriteString(strconv.Quote(e.Body))
	}
	if e.permanent {
		b.WriteString(" (permanent, not retried)")
	}
	return b.String()
}

// Snippet returns the start of b as text: at most MaxBodySnippet bytes, cut
// at a UTF-8 boundary, with "…" when truncated and white space collapsed.
func Snippet(b []byte) string {
	cut := len(b) > MaxBodySnippet
	if cut {
		b = b[:MaxBodySnippet]
		for len(b) > 0 && !utf8.Valid(b) && len(b) > MaxBodySnippet-4 {
			b = b[:len(b)-1]
		}
	}
	s := strings.Join(strings.Fields(string(b)), " ")
	if cut {
		s += "…"
	}
	return s
}

func sortedStrings(s []string) []string {
	slices.Sort(s)
	return s
}
