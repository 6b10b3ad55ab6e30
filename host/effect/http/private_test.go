package http

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/fraiseql/observer/host/effect"
	"github.com/fraiseql/observer/host/resilience"
)

func TestNonPublic(t *testing.T) {
	tests := []struct {
		addr string
		rule string // "" for public
	}{
		{"127.0.0.1", "loopback"},
		{"127.8.9.10", "loopback"},
		{"10.1.2.3", "private, RFC 1918"},
		{"172.16.0.1", "private, RFC 1918"},
		{"172.31.255.255", "private, RFC 1918"},
		{"172.32.0.1", ""},
		{"192.168.1.1", "private, RFC 1918"},
		{"100.64.0.1", "carrier-grade NAT, RFC 6598"},
		{"100.127.255.255", "carrier-grade NAT, RFC 6598"},
		{"100.128.0.1", ""},
		{"169.254.169.254", "link-local"}, // cloud metadata endpoints
		{"0.0.0.0", "unspecified"},
		{"0.1.2.3", `"this network", 0.0.0.0/8`},
		{"192.0.0.8", "IETF protocol assignments, RFC 6890"},
		{"224.0.0.1", "multicast"},
		{"239.255.255.250", "multicast"},
		{"240.0.0.1", "reserved or broadcast, 240.0.0.0/4"},
		{"255.255.255.255", "reserved or broadcast, 240.0.0.0/4"},
		{"8.8.8.8", ""},
		{"93.184.216.34", ""},
		{"::", "unspecified"},
		{"::1", "loopback"},
		{"fe80::1", "link-local"},
		{"fe80::1%eth0", "link-local"},
		{"fc00::1", "unique local, RFC 4193"},
		{"fd12:3456::1", "unique local, RFC 4193"},
		{"fec0::1", "site-local, RFC 3879"},
		{"ff02::1", "multicast"},
		{"::ffff:127.0.0.1", "loopback"},
		{"::ffff:10.0.0.1", "private, RFC 1918"},
		{"::ffff:8.8.8.8", ""},
		{"64:ff9b::a00:1", "private, RFC 1918, embedded in the IPv6 address"},
		{"64:ff9b::808:808", ""},
		{"2002:7f00:1::", "loopback, embedded in the IPv6 address"},
		{"2002:808:808::", ""},
		{"::10.0.0.1", "private, RFC 1918, embedded in the IPv6 address"},
		{"2606:4700:4700::1111", ""},
		{"2001:db8::1", ""},
	}
	for _, tt := range tests {
		rule, bad := NonPublic(netip.MustParseAddr(tt.addr))
		if rule != tt.rule || bad != (tt.rule != "") {
			t.Errorf("NonPublic(%s) = %q, %v; want %q", tt.addr, rule, bad, tt.rule)
		}
	}
}

// TestPrivateAddressRefusedAtDial: the allow-list admits the host name,
// but the address it resolves to is checked when connecting. "localhost"
// resolves to 127.0.0.1 like a DNS name re-bound to an internal address
// would; it is refused unless the operator allowed that address.
func TestPrivateAddressRefusedAtDial(t *testing.T) {
	rc := newReceiver(t, nil)
	_, port, _ := net.SplitHostPort(rc.hostport())
	byName := "http://localhost:" + port + "/hook?token=abcdef123456"
	byIP := rc.URL + "/hook"
	refused := []struct {
		name    string
		url     string
		allowed []string
	}{
		{"name on the list", byName, []string{"localhost"}},
		{"name and port on the list", byName, []string{"localhost:" + port}},
		{"star", byIP, []string{"*"}},
		{"star, by name", byName, []string{"*"}},
		{"IP entry for another port", byName, []string{"localhost", "127.0.0.1:1"}},
		{"CIDR without the address", byName, []string{"localhost", "10.0.0.0/8"}},
	}
	for _, tt := range refused {
		t.Run("refused/"+tt.name, func(t *testing.T) {
			res, err := New(Options{}).Execute(context.Background(), request(tt.url, tt.allowed...))
			if err == nil || !resilience.Permanent(err) {
				t.Fatalf("error = %v, want permanent", err)
			}
			host := strings.SplitN(tt.url, "/", 4)[2]
			msg := err.Error()
			for _, w := range []string{`plugin "webhook" may not connect to ` + host, "127.0.0.1 is not a public address (loopback)",
				`list "127.0.0.1" (or a CIDR containing it) in the plugin's allow_hosts, or set allow_private = true`, "(permanent, not retried)"} {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
			if strings.Contains(msg, "abcdef123456") {
				t.Errorf("error leaks the query: %s", msg)
			}
			var pe *PrivateAddressError
			if !errors.As(err, &pe) || pe.Addr != netip.MustParseAddr("127.0.0.1") || pe.Port != port || pe.Rule != "loopback" {
				t.Errorf("PrivateAddressError = %+v", pe)
			}
			if res.Status != 0 {
				t.Errorf("status %d", res.Status)
			}
		})
	}
	if n := rc.newConns.Load(); n != 0 {
		t.Fatalf("refused requests opened %d connections to the receiver", n)
	}

	allowed := []struct {
		name    string
		url     string
		allowed []string
		private bool
	}{
		{"IP literal entry", byIP, []string{"127.0.0.1"}, false},
		{"IP literal entry with port", byIP, []string{"127.0.0.1:" + port}, false},
		{"name plus the address", byName, []string{"localhost", "127.0.0.1"}, false},
		{"name plus a CIDR", byName, []string{"localhost", "127.0.0.0/8"}, false},
		{"name plus the address and port", byName, []string{"localhost", "127.0.0.1:" + port}, false},
		{"allow_private", byName, []string{"localhost"}, true},
		{"allow_private with star", byIP, []string{"*"}, true},
	}
	for _, tt := range allowed {
		t.Run("allowed/"+tt.name, func(t *testing.T) {
			req := request(tt.url, tt.allowed...)
			req.Policy.AllowPrivate = tt.private
			if _, err := New(Options{}).Execute(context.Background(), req); err != nil {
				t.Errorf("error = %v", err)
			}
		})
	}
	if n, want := rc.count(), len(allowed); n != want {
		t.Errorf("receiver got %d requests, want %d", n, want)
	}
}

// TestPrivateAllowanceNotSharedThroughThePool: a connection opened for a
// plugin allowed to reach a private address is not reused for one that is
// not, even to the same host and port.
func TestPrivateAllowanceNotSharedThroughThePool(t *testing.T) {
	rc := newReceiver(t, nil)
	_, port, _ := net.SplitHostPort(rc.hostport())
	url := "http://localhost:" + port + "/hook"
	x := New(Options{})
	allowed := request(url, "localhost")
	allowed.Policy.AllowPrivate = true
	if _, err := x.Execute(context.Background(), allowed); err != nil {
		t.Fatal(err)
	}
	// An idle keep-alive connection to localhost:port now exists.
	for range 3 {
		if _, err := x.Execute(context.Background(), request(url, "localhost")); err == nil || !resilience.Permanent(err) {
			t.Fatalf("plugin without the allowance: error = %v, want the private address refused", err)
		}
	}
	if _, err := x.Execute(context.Background(), allowed); err != nil {
		t.Fatal(err)
	}
	if n := rc.count(); n != 2 {
		t.Errorf("receiver got %d requests, want 2 (the allowed ones)", n)
	}
	if n := rc.newConns.Load(); n != 1 {
		t.Errorf("allowed requests opened %d connections, want 1 (reused)", n)
	}
}

func TestPrivateKey(t *testing.T) {
	tests := []struct {
		p    effect.Policy
		want string
	}{
		{effect.Policy{AllowedHosts: []string{"a.example", "*"}}, ""},
		{effect.Policy{AllowedHosts: []string{"a.example"}, AllowPrivate: true}, "*"},
		{effect.Policy{AllowedHosts: []string{"a.example", "127.0.0.1:8787"}}, "127.0.0.1:8787"},
		{effect.Policy{AllowedHosts: []string{"[::1]:80", "b", "10.0.0.0/8"}}, "[::1]:80,10.0.0.0/8,"},
		{effect.Policy{AllowedHosts: []string{"10.0.0.0/33", "x/y"}}, ""},
	}
	for _, tt := range tests {
		if got := privateKey(tt.p); got != tt.want {
			t.Errorf("privateKey(%+v) = %q, want %q", tt.p, got, tt.want)
		}
	}
}
