package effect

import (
	"context"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/fraiseql/observer/abi"
	"github.com/fraiseql/observer/host/resilience"
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
	// AllowedHosts lists the hosts http effects may reach: "host" (any
	// port), "host:port", an IP address ("10.0.0.5", "[fd00::1]:8080"), a
	// CIDR range ("10.0.0.0/8", any port) or "*" (any host). Empty allows
	// none. IP and CIDR entries also allow connecting to those addresses
	// when they are private (see PrivateAllowed); "*" does not.
	AllowedHosts []string
	// AllowPrivate lets http effects connect to private, loopback,
	// link-local and other non-public addresses (host/effect/http lists
	// them) whatever the host name resolves to. Without it, only the
	// private addresses named by IP or CIDR entries of AllowedHosts may be
	// reached.
	AllowPrivate bool
	// Secret signs http request bodies (X-Observer-Signature); "" sends no
	// signature. Never logged, and scrubbed from every error text.
	Secret string
	// Timeout bounds one attempt; 0 means the executor's default.
	Timeout time.Duration
	// Breaker configures the circuit breaker of each endpoint this
	// observer's http effects reach. The zero value disables it.
	Breaker resilience.BreakerConfig
}

// HostAllowed reports whether host and port (from a URL, with the default
// port filled in) are allowed by p. Host names compare case-insensitively
// and IP addresses by value; an entry without a port allows every port; a
// CIDR entry allows every address in it.
func (p Policy) HostAllowed(host, port string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	ip, ipErr := netip.ParseAddr(host)
	for _, a := range p.AllowedHosts {
		if a == "*" {
			return true
		}
		if pfx, err := netip.ParsePrefix(a); err == nil {
			if ipErr == nil && pfx.Contains(ip.Unmap()) {
				return true
			}
			continue
		}
		ah, ap := splitHostPort(strings.ToLower(a))
		if ap != "" && ap != port {
			continue
		}
		if ah == host {
			return true
		}
		if aip, err := netip.ParseAddr(ah); err == nil && ipErr == nil && aip.Unmap() == ip.Unmap() {
			return true
		}
	}
	return false
}

// PrivateAllowed reports whether p lets an http effect connect to the
// resolved address ip:port when ip is not public: AllowPrivate, or an IP
// entry of AllowedHosts equal to ip (with no port or this port), or a CIDR
// entry containing it. Host-name entries and "*" never allow a private
// address: a name can be made to resolve anywhere.
func (p Policy) PrivateAllowed(ip netip.Addr, port string) bool {
	if p.AllowPrivate {
		return true
	}
	ip = ip.Unmap().WithZone("")
	for _, a := range p.AllowedHosts {
		if pfx, err := netip.ParsePrefix(a); err == nil {
			if pfx.Contains(ip) {
				return true
			}
			continue
		}
		ah, ap := splitHostPort(a)
		if ap != "" && ap != port {
			continue
		}
		if aip, err := netip.ParseAddr(ah); err == nil && aip.Unmap().WithZone("") == ip {
			return true
		}
	}
	return false
}

// GrantHosts is what a plugin's http effects may reach: the operator's
// allow-list, narrowed to the hosts the plugin's manifest asks for when it
// asks for any (abi/SPEC.md §3). "*" on either side stands for any host the
// other side names; an entry without a port matches every port, and the
// narrower of two matching entries is granted. An operator's CIDR entry
// grants the requested IP addresses it contains.
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
		rip, rerr := netip.ParseAddr(rh)
		for _, o := range operator {
			if pfx, err := netip.ParsePrefix(o); err == nil {
				if rerr == nil && pfx.Contains(rip.Unmap()) {
					granted = append(granted, r)
				}
				continue
			}
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

// Redacted replaces secrets in URLs and error texts.
const Redacted = "REDACTED"

// Redact returns rawURL fit for errors and logs: any userinfo becomes
// REDACTED (user names are tokens as often as passwords are: Stripe-style
// "https://sk_live_…@api…"), every query value becomes REDACTED (keys
// stay, for debugging: ?page=REDACTED&token=REDACTED), path segments that
// look like credentials (SecretLike: the token at the end of a Slack or
// Discord webhook URL) become REDACTED, and the fragment is dropped. A
// string that does not parse as a URL is replaced whole, since it cannot
// be known which part is secret.
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "<unparsable URL, " + Redacted + ">"
	}
	if u.User != nil {
		u.User = url.User(Redacted)
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
	if u.Path != "" {
		segs := strings.Split(u.Path, "/")
		changed := false
		for i, s := range segs {
			if SecretLike(s) {
				segs[i], changed = Redacted, true
			}
		}
		if changed {
			u.Path, u.RawPath = strings.Join(segs, "/"), ""
		}
	}
	u.Fragment, u.RawFragment = "", ""
	return u.String()
}

// SecretLike reports whether a URL path segment looks like a credential
// rather than a route: at least 20 characters, only letters, digits, '-'
// and '_', with both letters and digits. It also catches UUIDs and long
// hex ids, which is the price of keeping webhook tokens out of logs.
func SecretLike(seg string) bool {
	if len(seg) < 20 {
		return false
	}
	letters, digits := false, false
	for i := 0; i < len(seg); i++ {
		switch c := seg[i]; {
		case c >= '0' && c <= '9':
			digits = true
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
			letters = true
		case c == '-' || c == '_':
		default:
			return false
		}
	}
	return letters && digits
}

// URLSecrets returns the parts of rawURL that Redact hides and that must
// not appear anywhere else either (a receiver may echo its URL in an error
// body): the userinfo's user name and password, the query values and the
// secret-like path segments, decoded and as written. Pass them to
// Error.Scrub.
func URLSecrets(rawURL string) []string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return []string{rawURL}
	}
	var out []string
	if u.User != nil {
		out = append(out, u.User.Username())
		if pw, ok := u.User.Password(); ok {
			out = append(out, pw)
		}
		// And as written, percent-encoding included.
		if j := strings.Index(rawURL, "//"); j >= 0 {
			auth := rawURL[j+2:]
			if k := strings.IndexAny(auth, "/?#"); k >= 0 {
				auth = auth[:k]
			}
			if i := strings.LastIndexByte(auth, '@'); i >= 0 {
				user, pw, _ := strings.Cut(auth[:i], ":")
				out = append(out, auth[:i], user, pw)
			}
		}
	}
	for _, vs := range u.Query() {
		out = append(out, vs...)
	}
	for kv := range strings.SplitSeq(u.RawQuery, "&") {
		if _, v, ok := strings.Cut(kv, "="); ok {
			out = append(out, v)
		}
	}
	for s := range strings.SplitSeq(u.Path, "/") {
		if SecretLike(s) {
			out = append(out, s)
		}
	}
	return out
}
