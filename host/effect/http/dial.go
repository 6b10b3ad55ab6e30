package http

import (
	"context"
	"fmt"
	"net"
	nethttp "net/http"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fraiseql/observer/host/effect"
)

// NonPublic reports whether ip is not a public unicast address, and which
// rule says so. IPv4-mapped IPv6 addresses are judged by their IPv4
// address, and so are the IPv4 addresses embedded in NAT64
// (64:ff9b::/96), 6to4 (2002::/16) and IPv4-compatible (::/96) addresses,
// which a gateway may turn into a connection to that IPv4 address.
func NonPublic(ip netip.Addr) (rule string, ok bool) {
	ip = ip.WithZone("")
	if ip.Is4In6() {
		ip = ip.Unmap()
	}
	if ip.Is6() {
		b := ip.As16()
		var v4 netip.Addr
		switch {
		case ip == netip.IPv6Unspecified():
			return "unspecified", true
		case ip == netip.IPv6Loopback():
			return "loopback", true
		case b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && allZero(b[4:12]):
			v4 = netip.AddrFrom4([4]byte(b[12:16]))
		case b[0] == 0x20 && b[1] == 0x02:
			v4 = netip.AddrFrom4([4]byte(b[2:6]))
		case allZero(b[:12]):
			v4 = netip.AddrFrom4([4]byte(b[12:16]))
		}
		if v4.IsValid() {
			if r, bad := NonPublic(v4); bad {
				return r + ", embedded in the IPv6 address", true
			}
			return "", false
		}
	}
	switch {
	case ip.IsUnspecified():
		return "unspecified", true
	case ip.IsLoopback():
		return "loopback", true
	case ip.IsLinkLocalUnicast():
		return "link-local", true
	case ip.IsMulticast():
		return "multicast", true
	case ip.Is4():
		b := ip.As4()
		switch {
		case b[0] == 0:
			return `"this network", 0.0.0.0/8`, true
		case b[0] == 10, b[0] == 172 && b[1]&0xf0 == 16, b[0] == 192 && b[1] == 168:
			return "private, RFC 1918", true
		case b[0] == 100 && b[1]&0xc0 == 64:
			return "carrier-grade NAT, RFC 6598", true
		case b[0] == 192 && b[1] == 0 && b[2] == 0:
			return "IETF protocol assignments, RFC 6890", true
		case b[0] >= 240:
			return "reserved or broadcast, 240.0.0.0/4", true
		}
	case ip.Is6():
		b := ip.As16()
		switch {
		case b[0]&0xfe == 0xfc:
			return "unique local, RFC 4193", true
		case b[0] == 0xfe && b[1]&0xc0 == 0xc0:
			return "site-local, RFC 3879", true
		}
	}
	return "", false
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// PrivateAddressError is a connection refused before it was made: the
// address a host name resolved to (or the IP in the URL) is not public and
// the plugin's policy does not allow it. It is permanent.
type PrivateAddressError struct {
	Addr netip.Addr
	Port string
	// Rule names the kind of address ("loopback", "private, RFC 1918" …).
	Rule string
}

func (e *PrivateAddressError) Error() string {
	return fmt.Sprintf("%s is not a public address (%s)", e.Addr, e.Rule)
}

// Permanent is true: the same name will resolve the same way.
func (e *PrivateAddressError) Permanent() bool { return true }

// guard checks every address the dialer is about to connect to, after DNS
// resolution, so that a name re-bound to a private address between the
// allow-list check and the connection is still refused.
type guard struct {
	policy effect.Policy
}

func (g guard) control(_ context.Context, _, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		// Fail closed: an address that cannot be checked is not dialled.
		return fmt.Errorf("cannot check the address %q before connecting: %w", address, err)
	}
	rule, bad := NonPublic(ap.Addr())
	if !bad {
		return nil
	}
	port := strconv.Itoa(int(ap.Port()))
	if g.policy.PrivateAllowed(ap.Addr(), port) {
		return nil
	}
	return &PrivateAddressError{Addr: ap.Addr().WithZone(""), Port: port, Rule: rule}
}

// privateKey names what p allows among non-public addresses: "" nothing,
// "*" everything (allow_private), else its IP and CIDR entries. Policies
// with the same key share a transport and its connection pool; different
// keys must not, or a connection dialled under one policy would be reused
// under another that forbids its address.
func privateKey(p effect.Policy) string {
	if p.AllowPrivate {
		return "*"
	}
	var first string
	n := 0
	for _, a := range p.AllowedHosts {
		if isIPEntry(a) {
			if n == 0 {
				first = a
			}
			n++
		}
	}
	switch n {
	case 0:
		return ""
	case 1:
		return first // no allocation for the common single-receiver case
	}
	var b strings.Builder
	for _, a := range p.AllowedHosts {
		if isIPEntry(a) {
			b.WriteString(a)
			b.WriteByte(',')
		}
	}
	return b.String()
}

// isIPEntry reports whether an allow_hosts entry is an IP address (with or
// without a port) or a CIDR range.
func isIPEntry(a string) bool {
	if strings.IndexByte(a, '/') >= 0 {
		_, err := netip.ParsePrefix(a)
		return err == nil
	}
	h := a
	if strings.HasPrefix(a, "[") {
		if end := strings.IndexByte(a, ']'); end > 0 {
			h = a[1:end]
		}
	} else if strings.Count(a, ":") == 1 {
		h, _, _ = strings.Cut(a, ":")
	}
	_, err := netip.ParseAddr(h)
	return err == nil
}

// clientFor returns the client whose dialer enforces p's private-address
// rule, creating it on first use.
func (x *Executor) clientFor(p effect.Policy) *nethttp.Client {
	key := privateKey(p)
	x.mu.RLock()
	c := x.clients[key]
	x.mu.RUnlock()
	if c != nil {
		return c
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if c = x.clients[key]; c != nil {
		return c
	}
	t := x.base.Clone()
	// Direct connections only: through a proxy the address connected to
	// would be the proxy's, and the proxy would reach private addresses
	// on our behalf.
	t.Proxy = nil
	t.DialTLSContext = nil
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second,
		ControlContext: guard{policy: effect.Policy{AllowPrivate: p.AllowPrivate, AllowedHosts: p.AllowedHosts}}.control}
	t.DialContext = d.DialContext
	c = &nethttp.Client{Transport: t, CheckRedirect: noRedirects}
	x.clients[key] = c
	return c
}

func noRedirects(*nethttp.Request, []*nethttp.Request) error { return nethttp.ErrUseLastResponse }
