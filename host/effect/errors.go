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
	// scrub lists values that must not appear in Error(), longest first.
	scrub []string
}

// minScrub is the shortest value Scrub hides: shorter ones would mangle
// ordinary text (a query value "1" or "json" is no secret), and a
// credential that short protects nothing anyway. Redact still hides short
// values in the URL itself.
const minScrub = 6

// Scrub makes Error() replace every occurrence of each value (of at least
// 6 bytes) with REDACTED, wherever it comes from: the cause, the body
// snippet, a redirect target. Executors pass the secret and the parts of
// the URL that Redact hides (URLSecrets), so that a receiver echoing its
// URL or a library quoting it cannot leak them. It returns e.
func (e *Error) Scrub(values ...string) *Error {
	for _, v := range values {
		if len(v) >= minScrub && !slices.Contains(e.scrub, v) {
			e.scrub = append(e.scrub, v)
		}
	}
	slices.SortFunc(e.scrub, func(a, b string) int { return len(b) - len(a) })
	return e
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
	out := b.String()
	for _, v := range e.scrub {
		out = strings.ReplaceAll(out, v, Redacted)
	}
	return out
}

// SetBody sets e.Body to the snippet of a response body's start, with
// every value given to Scrub replaced first, so that a value the snippet
// would cut in half cannot leak its beginning either. head is what was
// read; more says the body went on beyond it. Read at least
// MaxBodySnippet plus the longest scrubbed value, so that every value
// starting inside the snippet is whole in head.
func (e *Error) SetBody(head []byte, more bool) {
	s := string(head)
	for _, v := range e.scrub {
		s = strings.ReplaceAll(s, v, Redacted)
	}
	out := Snippet([]byte(s))
	cut := more || strings.HasSuffix(out, "…")
	if cut {
		out = strings.TrimSuffix(out, "…")
		// The cut may fall inside a value: hide a tail that begins one.
	tail:
		for _, v := range e.scrub {
			for k := min(len(v)-1, len(out)); k >= minScrub/2; k-- {
				if strings.HasSuffix(out, v[:k]) {
					out = out[:len(out)-k] + Redacted
					break tail
				}
			}
		}
		out += "…"
	}
	e.Body = out
}

// ScrubLen is the length of the longest value given to Scrub.
func (e *Error) ScrubLen() int {
	if len(e.scrub) == 0 {
		return 0
	}
	return len(e.scrub[0])
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
