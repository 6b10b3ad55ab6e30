package effect

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/fraiseql/observer/host/resilience"
)

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://example.com/hook", "https://example.com/hook"},
		{"https://u:p4ss@example.com/hook", "https://REDACTED@example.com/hook"},
		{"https://tok3n@example.com/", "https://REDACTED@example.com/"},
		{"https://sk_live_abc:@api.example.com/v1", "https://REDACTED@api.example.com/v1"},
		{"https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX1", "https://hooks.slack.com/services/T00000000/B00000000/REDACTED"},
		{"https://h/orders/3fa85f64-5717-4562-b3fc-2c963f66afa6/paid", "https://h/orders/REDACTED/paid"},
		{"https://h/hooks/rental-returned-by-customer", "https://h/hooks/rental-returned-by-customer"},
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
	cidr := Policy{AllowedHosts: []string{"10.0.0.0/8", "fd00::/8", "0:0::1"}}
	for _, tt := range []struct {
		host string
		want bool
	}{
		{"10.1.2.3", true}, {"11.0.0.1", false}, {"fd12::1", true}, {"fe80::1", false},
		{"::1", true}, // compared by value, not spelling
		{"::ffff:10.0.0.1", true},
		{"10.example.com", false},
	} {
		if got := cidr.HostAllowed(tt.host, "443"); got != tt.want {
			t.Errorf("CIDR HostAllowed(%s) = %v, want %v", tt.host, got, tt.want)
		}
	}
}

func TestPrivateAllowed(t *testing.T) {
	p := Policy{AllowedHosts: []string{"*", "hooks.internal", "127.0.0.1:8787", "10.0.0.0/8", "[fd00::5]", "[::1]:9000"}}
	tests := []struct {
		addr, port string
		want       bool
	}{
		{"127.0.0.1", "8787", true},
		{"127.0.0.1", "8788", false}, // the entry names a port
		{"127.0.0.2", "8787", false},
		{"10.200.0.1", "443", true},
		{"::ffff:10.200.0.1", "443", true},
		{"192.168.1.1", "443", false}, // "*" and names never allow private addresses
		{"fd00::5", "1", true},
		{"::1", "9000", true}, {"::1", "9001", false},
	}
	for _, tt := range tests {
		if got := p.PrivateAllowed(netip.MustParseAddr(tt.addr), tt.port); got != tt.want {
			t.Errorf("PrivateAllowed(%s, %s) = %v, want %v", tt.addr, tt.port, got, tt.want)
		}
	}
	if !(Policy{AllowPrivate: true}).PrivateAllowed(netip.MustParseAddr("192.168.1.1"), "80") {
		t.Error("AllowPrivate did not allow")
	}
	if (Policy{AllowedHosts: []string{"*"}}).PrivateAllowed(netip.MustParseAddr("127.0.0.1"), "80") {
		t.Error(`"*" allowed a loopback address`)
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
		{[]string{"10.0.0.0/8"}, []string{"10.1.2.3:80", "11.0.0.1", "x.example"}, []string{"10.1.2.3:80"}},
	}
	for _, c := range cases {
		got := GrantHosts(c.operator, c.requested)
		if !slices.Equal(got, c.want) {
			t.Errorf("GrantHosts(%v, %v) = %v, want %v", c.operator, c.requested, got, c.want)
		}
	}
}

func TestSetBodyScrubsBeforeCutting(t *testing.T) {
	const secret = "tok-0123456789-secret"
	tests := []struct {
		name string
		head string
		more bool
		want string // suffix of Body
	}{
		{"whole", "error for " + secret + " here", false, `error for REDACTED here`},
		{"across the snippet's end", strings.Repeat("a", MaxBodySnippet-5) + secret + " tail", true, "aaREDAC…"},
		{"cut by the read", strings.Repeat("b", 100) + secret[:9], true, "bbREDACTED…"},
		{"no value, cut", strings.Repeat("c", 300), true, "ccc…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := NewError("http", 0, nil, false).Scrub(secret, "short")
			e.SetBody([]byte(tt.head), tt.more)
			if !strings.HasSuffix(e.Body, tt.want) || strings.Contains(e.Body, secret[:6]) {
				t.Errorf("Body = %q, want suffix %q and no part of the secret", e.Body, tt.want)
			}
			if len(e.Body) > MaxBodySnippet+len("…") {
				t.Errorf("Body is %d bytes", len(e.Body))
			}
		})
	}
	if n := NewError("http", 0, nil, false).Scrub(secret, "abc").ScrubLen(); n != len(secret) {
		t.Errorf("ScrubLen = %d", n)
	}
}
