package effect

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/fraiseql/observer/abi"
)

// Request is one attempt at one effect.
type Request struct {
	Effect abi.Effect
	// EventID, Observer and Plugin say whose effect this is; they appear in
	// headers, logs and errors.
	EventID  string
	Observer string
	Plugin   string
	// Index is the effect's position in the plugin's result.
	Index int
	// IdempotencyKey is stable per event, observer and index (see
	// event.IdempotencyKey), so a receiver can drop re-deliveries.
	IdempotencyKey string
	// Trace is the event's W3C trace context, nil if none.
	Trace  *abi.TraceContext
	Policy Policy
}

// Policy is what the operator allows and configures for one observer's
// effects.
type Policy struct {
	// AllowedHosts lists the hosts http effects may reach, as "host" (any
	// port) or "host:port". "*" allows any host. Empty allows none.
	AllowedHosts []string
	// Secret signs http request bodies (X-Observer-Signature); "" sends no
	// signature. Never logged.
	Secret string
	// Timeout bounds one attempt; 0 means the executor's default.
	Timeout time.Duration
}

// HostAllowed reports whether hostport ("example.com:443", as in a URL's
// Host with the default port filled in) is allowed by p. Host names compare
// case-insensitively; an entry without a port allows every port.
func (p Policy) HostAllowed(host, port string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, a := range p.AllowedHosts {
		if a == "*" {
			return true
		}
		ah, ap := splitHostPort(strings.ToLower(a))
		if ah == host && (ap == "" || ap == port) {
			return true
		}
	}
	return false
}

// GrantHosts is what a plugin's http effects may reach: the operator's
// allow-list, narrowed to the hosts the plugin's manifest asks for when it
// asks for any (abi/SPEC.md §3). "*" on either side stands for any host the
// other side names; an entry without a port matches every port, and the
// narrower of two matching entries is granted.
func GrantHosts(operator, requested []string) []string {
	if len(requested) == 0 {
		return operator
	}
	if slices.Contains(operator, "*") {
		return requested
	}
	if slices.Contains(requested, "*") {
		return operator
	}
	granted := []string{}
	for _, r := range requested {
		rh, rp := splitHostPort(strings.ToLower(r))
		for _, o := range operator {
			oh, op := splitHostPort(strings.ToLower(o))
			switch {
			case rh != oh:
			case op == "":
				granted = append(granted, r)
			case rp == "" || rp == op:
				granted = append(granted, o)
			}
		}
	}
	return slices.Compact(granted)
}

// splitHostPort splits "host:port", "[v6]:port", "host", "[v6]" or a bare
// IPv6 address.
func splitHostPort(s string) (host, port string) {
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return s, ""
		}
		host = s[1:end]
		if rest := s[end+1:]; strings.HasPrefix(rest, ":") {
			port = rest[1:]
		}
		return host, port
	}
	if strings.Count(s, ":") == 1 {
		h, p, _ := strings.Cut(s, ":")
		return h, p
	}
	return s, ""
}

// Result describes a finished attempt.
type Result struct {
	// Status is the HTTP status code, 0 for effects without one.
	Status   int
	Duration time.Duration
	// Detail is a short human-readable outcome.
	Detail string
}

// Executor carries out effects of one type. Implementations are safe for
// concurrent use.
type Executor interface {
	// Execute performs one attempt. A returned error is retryable unless
	// resilience.Permanent reports it permanent.
	Execute(ctx context.Context, req Request) (Result, error)
}

// Redacted replaces secrets in URLs.
const Redacted = "REDACTED"

// Redact returns rawURL with the password of any userinfo and every query
// value replaced by REDACTED, so the URL can go into errors and logs. Keys
// stay, for debugging: ?token=REDACTED&page=REDACTED. The fragment is
// dropped. A string that does not parse as a URL is replaced whole, since
// it cannot be known which part is secret.
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "<unparsable URL, " + Redacted + ">"
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), Redacted)
		} else {
			u.User = url.User(Redacted)
		}
	}
	if u.RawQuery != "" {
		q := u.Query()
		keys := make([]string, 0, len(q))
		for k := range q {
			keys = append(keys, k)
		}
		var b strings.Builder
		for i, k := range sortedStrings(keys) {
			if i > 0 {
				b.WriteByte('&')
			}
			b.WriteString(url.QueryEscape(k))
			b.WriteString("=" + Redacted)
		}
		u.RawQuery = b.String()
	}
	u.Fragment, u.RawFragment = "", ""
	return u.String()
}
