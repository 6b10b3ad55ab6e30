package http

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	nethttp "net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fraiseql/observer/abi"
	"github.com/fraiseql/observer/host/effect"
	"github.com/fraiseql/observer/host/resilience"
)

// receiver is a loopback HTTP server that records what it got.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	reqs     []*nethttp.Request
	bodies   [][]byte
	newConns atomic.Int64
	handle   func(w nethttp.ResponseWriter, r *nethttp.Request)
}

func newReceiver(t *testing.T, handle func(w nethttp.ResponseWriter, r *nethttp.Request)) *receiver {
	t.Helper()
	rc := &receiver{handle: handle}
	rc.Server = httptest.NewUnstartedServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		b, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.reqs = append(rc.reqs, r)
		rc.bodies = append(rc.bodies, b)
		rc.mu.Unlock()
		if rc.handle != nil {
			rc.handle(w, r)
		}
	}))
	rc.Config.ConnState = func(_ net.Conn, s nethttp.ConnState) {
		if s == nethttp.StateNew {
			rc.newConns.Add(1)
		}
	}
	rc.Start()
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.reqs)
}

func (rc *receiver) hostport() string { return strings.TrimPrefix(rc.URL, "http://") }

func request(url string, allowed ...string) effect.Request {
	return effect.Request{
		Effect:         abi.Effect{Type: abi.EffectHTTP, HTTP: &abi.HTTPEffect{Method: "POST", URL: url, BodyJSON: json.RawMessage(`{"amount":9.99}`)}},
		EventID:        "main:42",
		Observer:       "big-payments",
		Plugin:         "webhook",
		Index:          0,
		IdempotencyKey: "0123456789abcdef0123456789abcdef",
		Policy:         effect.Policy{AllowedHosts: allowed},
	}
}

func TestHeadersAndSignature(t *testing.T) {
	rc := newReceiver(t, nil)
	x := New(Options{})
	req := request(rc.URL+"/hook?x=1", rc.hostport())
	req.Effect.HTTP.Headers = map[string]string{"X-Custom": "yes", "Idempotency-Key": "plugin-tries-to-override", "X-Observer-Signature": "forged"}
	req.Trace = &abi.TraceContext{Traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", Tracestate: "vendor=abc"}
	req.Policy.Secret = "s3cret"
	res, err := x.Execute(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != 200 || res.Duration <= 0 || res.Detail != "200 OK" {
		t.Errorf("result = %+v", res)
	}
	if rc.count() != 1 {
		t.Fatalf("receiver got %d requests", rc.count())
	}
	r, body := rc.reqs[0], rc.bodies[0]
	want := map[string]string{
		"Idempotency-Key":     req.IdempotencyKey,
		"X-Observer-Event-Id": "main:42",
		"Traceparent":         req.Trace.Traceparent,
		"Tracestate":          "vendor=abc",
		"Content-Type":        "application/json",
		"X-Custom":            "yes",
		"User-Agent":          DefaultUserAgent,
	}
	for k, v := range want {
		if got := r.Header.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	if r.Method != "POST" || r.URL.Path != "/hook" || r.URL.RawQuery != "x=1" || string(body) != `{"amount":9.99}` {
		t.Errorf("request = %s %s body %s", r.Method, r.URL, body)
	}
	sig := r.Header.Get(HeaderSignature)
	if err := Verify("s3cret", sig, body, time.Minute, time.Now()); err != nil {
		t.Errorf("signature %q does not verify: %v", sig, err)
	}
	if err := Verify("other", sig, body, time.Minute, time.Now()); !errors.Is(err, ErrSignatureMismatch) {
		t.Errorf("wrong secret verified: %v", err)
	}
}

func TestNoSecretNoTraceNoSignature(t *testing.T) {
	rc := newReceiver(t, nil)
	req := request(rc.URL, "127.0.0.1")
	req.Effect.HTTP = &abi.HTTPEffect{URL: rc.URL, Body: "plain", Headers: map[string]string{"Traceparent": "plugin-made", "Content-Type": "text/plain"}}
	if _, err := New(Options{UserAgent: "ua/2"}).Execute(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	r := rc.reqs[0]
	for _, h := range []string{HeaderSignature, "Traceparent", "Tracestate"} {
		if v := r.Header.Get(h); v != "" {
			t.Errorf("header %s = %q, want none", h, v)
		}
	}
	if r.Method != "POST" || r.Header.Get("Content-Type") != "text/plain" || r.Header.Get("User-Agent") != "ua/2" || string(rc.bodies[0]) != "plain" {
		t.Errorf("got %s, content-type %q, UA %q, body %q", r.Method, r.Header.Get("Content-Type"), r.Header.Get("User-Agent"), rc.bodies[0])
	}
}

func TestStatusClassification(t *testing.T) {
	tests := []struct {
		status    int
		ok        bool
		permanent bool
	}{
		{200, true, false}, {201, true, false}, {204, true, false},
		{400, false, true}, {401, false, true}, {404, false, true}, {410, false, true}, {422, false, true},
		{301, false, true},
		{408, false, false}, {429, false, false}, {500, false, false}, {502, false, false}, {503, false, false},
	}
	for _, tt := range tests {
		t.Run(nethttp.StatusText(tt.status), func(t *testing.T) {
			rc := newReceiver(t, func(w nethttp.ResponseWriter, r *nethttp.Request) {
				if tt.status == 301 {
					w.Header().Set("Location", "http://elsewhere.example/?token=leak")
				}
				w.WriteHeader(tt.status)
				io.WriteString(w, "receiver says\n"+strings.Repeat("no ", 200))
			})
			req := request(rc.URL+"/hook?token=supersecret", rc.hostport())
			req.Effect.HTTP.URL = strings.Replace(rc.URL, "http://", "http://user:pw@", 1) + "/hook?token=supersecret"
			res, err := New(Options{}).Execute(context.Background(), req)
			if res.Status != tt.status {
				t.Errorf("result status %d, want %d", res.Status, tt.status)
			}
			if tt.ok {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			if got := resilience.Permanent(err); got != tt.permanent {
				t.Errorf("Permanent = %v, want %v: %v", got, tt.permanent, err)
			}
			var ee *effect.Error
			if !errors.As(err, &ee) || ee.Status != tt.status {
				t.Fatalf("error %T %v, want *effect.Error with status %d", err, err, tt.status)
			}
			msg := err.Error()
			for _, w := range []string{"http effect 0 of plugin webhook", "POST http://REDACTED@" + rc.hostport() + "/hook?token=REDACTED",
				"status " + strconv.Itoa(tt.status), `response body "receiver says no no`, "…"} {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
			for _, secret := range []string{"supersecret", ":pw@", "leak"} {
				if strings.Contains(msg, secret) {
					t.Errorf("error leaks %q: %s", secret, msg)
				}
			}
			if len(ee.Body) > effect.MaxBodySnippet+len("…") {
				t.Errorf("body snippet is %d bytes", len(ee.Body))
			}
		})
	}
}

func TestTimeoutIsRetryable(t *testing.T) {
	release := make(chan struct{})
	rc := newReceiver(t, func(w nethttp.ResponseWriter, r *nethttp.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	defer close(release)
	req := request(rc.URL, rc.hostport())
	req.Policy.Timeout = 100 * time.Millisecond
	start := time.Now()
	_, err := New(Options{DefaultTimeout: time.Minute}).Execute(context.Background(), req)
	if err == nil || resilience.Permanent(err) {
		t.Fatalf("error = %v, want a retryable timeout", err)
	}
	if !strings.Contains(err.Error(), "timed out after 100ms") || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error = %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s", d)
	}
	// The executor's default applies when the policy sets none.
	req.Policy.Timeout = 0
	_, err = New(Options{DefaultTimeout: 80 * time.Millisecond}).Execute(context.Background(), req)
	if err == nil || !strings.Contains(err.Error(), "timed out after 80ms") {
		t.Errorf("default timeout: %v", err)
	}
}

func TestCancelledContextIsRetryable(t *testing.T) {
	rc := newReceiver(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := New(Options{}).Execute(ctx, request(rc.URL, rc.hostport()))
	if err == nil || resilience.Permanent(err) || !errors.Is(err, context.Canceled) {
		t.Errorf("error = %v, want retryable and context.Canceled", err)
	}
}

func TestHostNotAllowedRefusedBeforeAnyRequest(t *testing.T) {
	rc := newReceiver(t, nil)
	_, port, _ := net.SplitHostPort(rc.hostport())
	tests := []struct {
		name    string
		allowed []string
		want    string
	}{
		{"empty list", nil, "allowed hosts: none: set allow_hosts on the plugin"},
		{"other port", []string{"127.0.0.1:1"}, "allowed hosts: 127.0.0.1:1"},
		{"other host", []string{"example.com", "10.0.0.1:" + port}, "allowed hosts: example.com, 10.0.0.1:" + port},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(Options{}).Execute(context.Background(), request(rc.URL+"/x?k=v", tt.allowed...))
			if err == nil || !resilience.Permanent(err) {
				t.Fatalf("error = %v, want permanent", err)
			}
			for _, w := range []string{`plugin "webhook" may not reach host 127.0.0.1:` + port, tt.want} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	if n := rc.count(); n != 0 || rc.newConns.Load() != 0 {
		t.Errorf("receiver saw %d requests, %d connections; want none", n, rc.newConns.Load())
	}
	// Allowed forms: host:port, bare host (any port), a CIDR, and "*"
	// (which needs allow_private for a loopback address).
	for _, allowed := range []string{rc.hostport(), "127.0.0.1", "127.0.0.0/8", "*"} {
		req := request(rc.URL, allowed)
		req.Policy.AllowPrivate = allowed == "*"
		if _, err := New(Options{}).Execute(context.Background(), req); err != nil {
			t.Errorf("allow %q: %v", allowed, err)
		}
	}
}

func TestUnreachableEndpointIsRetryable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	_, err = New(Options{}).Execute(context.Background(), request("http://"+addr+"/hook?token=abc", addr))
	if err == nil || resilience.Permanent(err) {
		t.Fatalf("error = %v, want retryable", err)
	}
	msg := err.Error()
	for _, w := range []string{"connection refused (is the receiver running?)", "POST http://" + addr + "/hook?token=REDACTED"} {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q lacks %q", msg, w)
		}
	}
	if strings.Contains(msg, "abc") {
		t.Errorf("error leaks the query: %s", msg)
	}
}

func TestInvalidEffectsArePermanent(t *testing.T) {
	rc := newReceiver(t, nil)
	tests := []struct {
		name string
		eff  abi.Effect
		want string
	}{
		{"wrong type", abi.Effect{Type: "log", Log: &abi.LogEffect{Message: "x"}}, `effect type "log"`},
		{"no member", abi.Effect{Type: "http"}, "not an http effect"},
		{"bad method", abi.Effect{Type: "http", HTTP: &abi.HTTPEffect{Method: "GE T", URL: rc.URL}}, `method "GE T"`},
		{"ftp", abi.Effect{Type: "http", HTTP: &abi.HTTPEffect{URL: "ftp://" + rc.hostport()}}, `scheme "ftp" is not http or https`},
		{"relative", abi.Effect{Type: "http", HTTP: &abi.HTTPEffect{URL: "/hook"}}, `scheme "" is not http or https`},
		{"no host", abi.Effect{Type: "http", HTTP: &abi.HTTPEffect{URL: "http:///x"}}, "url has no host"},
		{"unparsable", abi.Effect{Type: "http", HTTP: &abi.HTTPEffect{URL: "http://[::1"}}, "does not parse"},
		{"both bodies", abi.Effect{Type: "http", HTTP: &abi.HTTPEffect{URL: rc.URL, Body: "a", BodyJSON: json.RawMessage(`1`)}}, "both body and body_json"},
		{"bad json", abi.Effect{Type: "http", HTTP: &abi.HTTPEffect{URL: rc.URL, BodyJSON: json.RawMessage(`{`)}}, "body_json is not valid JSON"},
		{"bad header", abi.Effect{Type: "http", HTTP: &abi.HTTPEffect{URL: rc.URL, Headers: map[string]string{"X-A": "a\r\nInjected: 1"}}}, `header "X-A"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := request(rc.URL, "*")
			req.Effect = tt.eff
			_, err := New(Options{}).Execute(context.Background(), req)
			if err == nil || !resilience.Permanent(err) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want permanent containing %q", err, tt.want)
			}
		})
	}
	if rc.count() != 0 {
		t.Errorf("receiver got %d requests for invalid effects", rc.count())
	}
}

func TestConnectionsAreReused(t *testing.T) {
	fail := atomic.Bool{}
	rc := newReceiver(t, func(w nethttp.ResponseWriter, r *nethttp.Request) {
		if fail.Load() {
			w.WriteHeader(500)
			io.WriteString(w, strings.Repeat("x", 64<<10)) // longer than the snippet: must be drained
		}
	})
	x := New(Options{})
	for i := range 40 {
		fail.Store(i%2 == 1)
		_, err := x.Execute(context.Background(), request(rc.URL, rc.hostport()))
		if (err != nil) != (i%2 == 1) {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if n := rc.newConns.Load(); n != 1 {
		t.Errorf("40 sequential requests opened %d connections, want 1", n)
	}
	// Many concurrent requests: all succeed, and connections are pooled
	// rather than opened per request.
	fail.Store(false)
	before := rc.newConns.Load()
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range 8 {
		wg.Go(func() {
			for range 50 {
				if _, err := x.Execute(context.Background(), request(rc.URL, rc.hostport())); err != nil {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if failed.Load() != 0 {
		t.Errorf("%d concurrent requests failed", failed.Load())
	}
	// The transport may dial a spare connection while another is being
	// returned to the pool, so allow some slack; one connection per request
	// (400) or the churn of Go's default of 2 idle connections per host is
	// what this guards against.
	tuned := rc.newConns.Load() - before
	if tuned > 16 {
		t.Errorf("400 requests from 8 goroutines opened %d connections, want ≤ 16", tuned)
	}
	stock := New(Options{Transport: nethttp.DefaultTransport.(*nethttp.Transport).Clone()})
	before = rc.newConns.Load()
	for range 8 {
		wg.Go(func() {
			for range 50 {
				_, _ = stock.Execute(context.Background(), request(rc.URL, rc.hostport()))
			}
		})
	}
	wg.Wait()
	t.Logf("connections opened for 400 concurrent requests: tuned transport %d, Go's default transport %d", tuned, rc.newConns.Load()-before)
}

func TestSignVerify(t *testing.T) {
	body := []byte(`{"a":1}`)
	at := time.Unix(1714557600, 0)
	sig := Sign("k", at, body)
	if !strings.HasPrefix(sig, "t=1714557600,v1=") || len(sig) != len("t=1714557600,v1=")+64 {
		t.Fatalf("Sign = %q", sig)
	}
	// Reference value computed independently (Python's hmac module):
	// HMAC-SHA256(key "k", message "1714557600.{\"a\":1}").
	if want := "t=1714557600,v1=10a6d91ff2330c337a6fd95d25d67c038575f6d8fc879964384232e6cf408e5b"; sig != want {
		t.Errorf("Sign = %s, want %s", sig, want)
	}
	tests := []struct {
		name   string
		header string
		body   []byte
		now    time.Time
		want   error
	}{
		{"ok", sig, body, at.Add(time.Minute), nil},
		{"ok, rotated secret listed second", "t=1714557600,v1=" + strings.Repeat("00", 32) + "," + strings.TrimPrefix(sig, "t=1714557600,"), body, at, nil},
		{"tampered body", sig, []byte(`{"a":2}`), at, ErrSignatureMismatch},
		{"stale", sig, body, at.Add(10 * time.Minute), ErrStaleSignature},
		{"future", sig, body, at.Add(-10 * time.Minute), ErrStaleSignature},
		{"missing", "", body, at, ErrNoSignature},
		{"no t", "v1=abcd", body, at, ErrBadSignatureValue},
		{"no v1", "t=1714557600", body, at, ErrBadSignatureValue},
		{"not hex", "t=1714557600,v1=zz", body, at, ErrBadSignatureValue},
		{"garbage", "hello", body, at, ErrBadSignatureValue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify("k", tt.header, tt.body, 5*time.Minute, tt.now)
			if !errors.Is(err, tt.want) {
				t.Errorf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
	if err := Verify("k", sig, body, 0, at.Add(1000*time.Hour)); err != nil {
		t.Errorf("tolerance 0 should not check time: %v", err)
	}
}
