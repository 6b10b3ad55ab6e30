package effect

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/fraiseql/observer/host/resilience"
)

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://example.com/hook", "https://example.com/hook"},
		{"https://u:p4ss@example.com/hook", "https://u:REDACTED@example.com/hook"},
		{"https://tok3n@example.com/", "https://REDACTED@example.com/"},
		{"https://example.com/h?token=abc&page=2&token=def", "https://example.com/h?page=REDACTED&token=REDACTED"},
		{"https://example.com/h#frag-secret", "https://example.com/h"},
		{"http://[::1", "<unparsable URL, REDACTED>"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestHostAllowed(t *testing.T) {
	p := Policy{AllowedHosts: []string{"127.0.0.1:9000", "Example.COM", "[::1]:8080", "svc.local:80"}}
	tests := []struct {
		host, port string
		want       bool
	}{
		{"127.0.0.1", "9000", true}, {"127.0.0.1", "9001", false},
		{"example.com", "443", true}, {"EXAMPLE.com.", "8443", true}, {"sub.example.com", "443", false},
		{"::1", "8080", true}, {"::1", "80", false},
		{"svc.local", "80", true}, {"svc.local", "443", false},
	}
	for _, tt := range tests {
		if got := p.HostAllowed(tt.host, tt.port); got != tt.want {
			t.Errorf("HostAllowed(%s, %s) = %v, want %v", tt.host, tt.port, got, tt.want)
		}
	}
	if (Policy{}).HostAllowed("127.0.0.1", "80") {
		t.Error("empty allow-list allowed a host")
	}
	if !(Policy{AllowedHosts: []string{"*"}}).HostAllowed("anything", "1") {
		t.Error(`"*" did not allow`)
	}
}

func TestErrorTextAndClassification(t *testing.T) {
	cause := errors.New("connection reset")
	e := NewError("http", 2, cause, false)
	e.Plugin, e.Method, e.URL, e.Status, e.Body = "webhook", "POST", Redact("http://h/x?t=s"), 503, "busy"
	want := `http effect 2 of plugin webhook (POST http://h/x?t=REDACTED): status 503 Service Unavailable: connection reset: response body "busy"`
	if e.Error() != want {
		t.Errorf("Error() =\n %s\nwant\n %s", e, want)
	}
	wrapped := fmt.Errorf("effect: %w", e)
	if resilience.Permanent(wrapped) || !errors.Is(wrapped, cause) {
		t.Error("retryable error misclassified or cause lost")
	}
	p := NewError("log", 0, errors.New("bad level"), true)
	if !resilience.Permanent(fmt.Errorf("x: %w", p)) || !strings.HasSuffix(p.Error(), "(permanent, not retried)") {
		t.Errorf("permanent error: %v", p)
	}
}

func TestSnippet(t *testing.T) {
	if got := Snippet([]byte("  a\n\tb  ")); got != "a b" {
		t.Errorf("Snippet = %q", got)
	}
	long := strings.Repeat("é", MaxBodySnippet) // 2 bytes each
	got := Snippet([]byte(long))
	if !strings.HasSuffix(got, "…") || len(got) > MaxBodySnippet+len("…") || strings.ContainsRune(strings.TrimSuffix(got, "…"), '\uFFFD') {
		t.Errorf("Snippet cut badly: %d bytes, %q", len(got), got[len(got)-8:])
	}
}

func TestGrantHosts(t *testing.T) {
	cases := []struct {
		operator, requested, want []string
	}{
		{[]string{"a.example:443"}, nil, []string{"a.example:443"}},
		{[]string{"a.example", "b.example"}, []string{"b.example:8443"}, []string{"b.example:8443"}},
		{[]string{"a.example:443"}, []string{"a.example"}, []string{"a.example:443"}},
		{[]string{"a.example:443"}, []string{"a.example:80"}, []string{}},
		{[]string{"a.example"}, []string{"evil.example"}, []string{}},
		{[]string{"*"}, []string{"x.example"}, []string{"x.example"}},
		{[]string{"x.example"}, []string{"*"}, []string{"x.example"}},
		{[]string{"A.Example"}, []string{"a.example:9000"}, []string{"a.example:9000"}},
	}
	for _, c := range cases {
		got := GrantHosts(c.operator, c.requested)
		if !slices.Equal(got, c.want) {
			t.Errorf("GrantHosts(%v, %v) = %v, want %v", c.operator, c.requested, got, c.want)
		}
	}
}
