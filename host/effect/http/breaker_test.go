package http

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	nethttp "net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fraiseql/observer/host/effect"
	"github.com/fraiseql/observer/host/resilience"
)

// breakerCfg opens after 3 of 4 failures (ratio 0.5, min 4) for openFor.
func breakerCfg(openFor time.Duration) resilience.BreakerConfig {
	return resilience.BreakerConfig{Enabled: true, FailureRatio: 0.5, Window: time.Minute, MinRequests: 4,
		OpenTimeout: openFor, HalfOpenProbes: 1}
}

type transitions struct {
	mu  sync.Mutex
	got []string
}

func (tr *transitions) add(c resilience.StateChange) {
	tr.mu.Lock()
	tr.got = append(tr.got, c.Endpoint+" "+c.From.String()+"→"+c.To.String())
	tr.mu.Unlock()
}

func (tr *transitions) list() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]string(nil), tr.got...)
}

// TestBreakerOpensStopsAndRecovers: a loopback receiver answers 500; after
// min_requests with the failure ratio reached the breaker opens and
// requests stop reaching it; after open_timeout one probe goes through;
// the receiver has recovered, so the probe closes the breaker and traffic
// flows again.
func TestBreakerOpensStopsAndRecovers(t *testing.T) {
	var failing atomic.Bool
	failing.Store(true)
	rc := newReceiver(t, func(w nethttp.ResponseWriter, r *nethttp.Request) {
		if failing.Load() {
			w.WriteHeader(500)
		}
	})
	var tr transitions
	brs := resilience.NewBreakers(resilience.BreakersOptions{OnStateChange: tr.add})
	x := New(Options{Breakers: brs})
	const openFor = 300 * time.Millisecond
	req := request(rc.URL+"/hook", rc.hostport())
	req.Policy.Breaker = breakerCfg(openFor)
	endpoint := "http://" + rc.hostport()

	for i := range 4 {
		_, err := x.Execute(context.Background(), req)
		if err == nil || errors.Is(err, resilience.ErrBreakerOpen) {
			t.Fatalf("request %d: error = %v, want a 500", i, err)
		}
	}
	if rc.count() != 4 {
		t.Fatalf("receiver got %d requests, want 4", rc.count())
	}
	// Open: nothing reaches the receiver, and the error says to wait
	// without using an attempt.
	for range 5 {
		res, err := x.Execute(context.Background(), req)
		if !errors.Is(err, resilience.ErrBreakerOpen) {
			t.Fatalf("error = %v, want the breaker open", err)
		}
		if resilience.Permanent(err) {
			t.Fatalf("a breaker refusal is permanent: %v", err)
		}
		wait, counts, ok := resilience.WaitHint(err)
		if !ok || counts || wait <= 0 || wait > openFor {
			t.Fatalf("WaitHint = %s, %v, %v; want (0, %s], false, true", wait, counts, ok, openFor)
		}
		var ee *effect.Error
		if !errors.As(err, &ee) || ee.Plugin != "webhook" || !strings.Contains(err.Error(), "circuit breaker for "+endpoint+" (observer big-payments) is open") {
			t.Fatalf("error = %v", err)
		}
		if res.Status != 0 || !strings.Contains(res.Detail, "not sent") {
			t.Errorf("result = %+v", res)
		}
	}
	if rc.count() != 4 {
		t.Fatalf("receiver got %d requests while the breaker was open, want still 4", rc.count())
	}
	snap := brs.Snapshot()
	if len(snap) != 1 || snap[0].Endpoint != endpoint || snap[0].Observer != "big-payments" || snap[0].State != resilience.Open ||
		snap[0].Rejected != 5 || snap[0].Failures != 4 || snap[0].OpenedAt == nil {
		t.Fatalf("snapshot = %+v", snap)
	}

	// The receiver recovers; after open_timeout the probe closes it.
	failing.Store(false)
	_, err := x.Execute(context.Background(), req)
	wait, _, _ := resilience.WaitHint(err)
	time.Sleep(wait + 20*time.Millisecond)
	if _, err := x.Execute(context.Background(), req); err != nil {
		t.Fatalf("probe after open_timeout: %v", err)
	}
	if rc.count() != 5 {
		t.Fatalf("receiver got %d requests, want 5 (the probe)", rc.count())
	}
	for range 10 {
		if _, err := x.Execute(context.Background(), req); err != nil {
			t.Fatalf("after recovery: %v", err)
		}
	}
	if rc.count() != 15 {
		t.Errorf("receiver got %d requests, want 15", rc.count())
	}
	want := []string{endpoint + " closed→open", endpoint + " open→half-open", endpoint + " half-open→closed"}
	if got := tr.list(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("transitions = %q, want %q", got, want)
	}
}

// TestBreakerFailedProbeReopens: while the receiver still fails, the probe
// reaches it, fails, and the breaker opens for another open_timeout.
func TestBreakerFailedProbeReopens(t *testing.T) {
	rc := newReceiver(t, func(w nethttp.ResponseWriter, r *nethttp.Request) { w.WriteHeader(503) })
	x := New(Options{Breakers: resilience.NewBreakers(resilience.BreakersOptions{})})
	req := request(rc.URL, rc.hostport())
	req.Policy.Breaker = breakerCfg(150 * time.Millisecond)
	for range 4 {
		x.Execute(context.Background(), req)
	}
	if _, err := x.Execute(context.Background(), req); !errors.Is(err, resilience.ErrBreakerOpen) {
		t.Fatalf("not open: %v", err)
	}
	time.Sleep(170 * time.Millisecond)
	_, err := x.Execute(context.Background(), req)
	if err == nil || errors.Is(err, resilience.ErrBreakerOpen) {
		t.Fatalf("probe: %v, want it sent and failing", err)
	}
	// The failed probe is not an attempt: the event waits behind the
	// breaker with the others instead of using up its retries.
	var pf *resilience.ProbeFailedError
	if wait, counts, ok := resilience.WaitHint(err); !errors.As(err, &pf) || !ok || counts || wait != 150*time.Millisecond {
		t.Fatalf("failed probe: %v: wait hint %s counts %v ok %v, want 150ms, not counted", err, wait, counts, ok)
	}
	if rc.count() != 5 {
		t.Fatalf("receiver got %d, want 5", rc.count())
	}
	_, err = x.Execute(context.Background(), req)
	if wait, _, _ := resilience.WaitHint(err); !errors.Is(err, resilience.ErrBreakerOpen) || wait < 100*time.Millisecond {
		t.Fatalf("after a failed probe: %v (wait %s), want open again for about 150ms", err, wait)
	}
	if rc.count() != 5 {
		t.Errorf("receiver got %d, want 5", rc.count())
	}
}

// TestBreakerPerEndpoint: one endpoint failing opens its breaker only; a
// healthy endpoint of the same observer keeps receiving every request.
func TestBreakerPerEndpoint(t *testing.T) {
	bad := newReceiver(t, func(w nethttp.ResponseWriter, r *nethttp.Request) { w.WriteHeader(502) })
	good := newReceiver(t, nil)
	brs := resilience.NewBreakers(resilience.BreakersOptions{})
	x := New(Options{Breakers: brs})
	policy := effect.Policy{AllowedHosts: []string{"127.0.0.1"}, Breaker: breakerCfg(time.Minute)}
	var refused int
	for range 20 {
		rb := request(bad.URL, "127.0.0.1")
		rb.Policy = policy
		if _, err := x.Execute(context.Background(), rb); errors.Is(err, resilience.ErrBreakerOpen) {
			refused++
		}
		rg := request(good.URL, "127.0.0.1")
		rg.Policy = policy
		if _, err := x.Execute(context.Background(), rg); err != nil {
			t.Fatalf("healthy endpoint: %v", err)
		}
	}
	if bad.count() != 4 || refused != 16 {
		t.Errorf("failing endpoint got %d requests, %d refused; want 4 and 16", bad.count(), refused)
	}
	if good.count() != 20 {
		t.Errorf("healthy endpoint got %d of 20 requests", good.count())
	}
	states := map[string]resilience.State{}
	for _, s := range brs.Snapshot() {
		states[s.Endpoint] = s.State
	}
	if states["http://"+bad.hostport()] != resilience.Open || states["http://"+good.hostport()] != resilience.Closed {
		t.Errorf("states = %v", states)
	}
}

// TestBreakerCountsWhatSaysTheEndpointIsDown: network errors, timeouts,
// 408, 429 and 5xx open it; permanent 4xx and redirects do not (the
// endpoint answered), nor do requests refused before sending.
func TestBreakerCountsWhatSaysTheEndpointIsDown(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusedAddr := closed.Addr().String()
	closed.Close()
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	tests := []struct {
		name   string
		status int // 0: hang (timeout), -1: nothing listening
		opens  bool
	}{
		{"500", 500, true}, {"503", 503, true}, {"429", 429, true}, {"408", 408, true},
		{"timeout", 0, true}, {"connection refused", -1, true},
		{"400", 400, false}, {"404", 404, false}, {"422", 422, false}, {"301", 301, false}, {"200", 200, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := refusedAddr
			if tt.status >= 0 {
				addr = newReceiver(t, func(w nethttp.ResponseWriter, r *nethttp.Request) {
					if tt.status == 0 {
						select {
						case <-r.Context().Done():
						case <-release:
						}
						return
					}
					w.WriteHeader(tt.status)
				}).hostport()
			}
			x := New(Options{Breakers: resilience.NewBreakers(resilience.BreakersOptions{})})
			req := request("http://"+addr+"/x", addr)
			req.Policy.Breaker = breakerCfg(time.Minute)
			req.Policy.Timeout = 50 * time.Millisecond
			for range 4 {
				x.Execute(context.Background(), req)
			}
			_, err := x.Execute(context.Background(), req)
			if got := errors.Is(err, resilience.ErrBreakerOpen); got != tt.opens {
				t.Errorf("after 4 × %s the breaker is open: %v, want %v (%v)", tt.name, got, tt.opens, err)
			}
		})
	}
	// Refused before sending (a private address) or abandoned by the
	// caller: not counted.
	rc := newReceiver(t, nil)
	_, port, _ := net.SplitHostPort(rc.hostport())
	x := New(Options{Breakers: resilience.NewBreakers(resilience.BreakersOptions{})})
	private := request("http://localhost:"+port+"/x", "localhost")
	private.Policy.Breaker = breakerCfg(time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for range 6 {
		if _, err := x.Execute(context.Background(), private); errors.Is(err, resilience.ErrBreakerOpen) {
			t.Fatal("private-address refusals opened the breaker")
		}
		if _, err := x.Execute(ctx, private); errors.Is(err, resilience.ErrBreakerOpen) {
			t.Fatal("abandoned attempts opened the breaker")
		}
	}
}

// TestNoBreakerWithoutRegistryOrConfig: a nil registry or a disabled
// config sends every request.
func TestNoBreakerWithoutRegistryOrConfig(t *testing.T) {
	rc := newReceiver(t, func(w nethttp.ResponseWriter, r *nethttp.Request) { w.WriteHeader(500) })
	for name, x := range map[string]*Executor{
		"no registry":     New(Options{}),
		"disabled config": New(Options{Breakers: resilience.NewBreakers(resilience.BreakersOptions{})}),
	} {
		before := rc.count()
		req := request(rc.URL, rc.hostport())
		if name == "no registry" {
			req.Policy.Breaker = breakerCfg(time.Minute)
		}
		for range 10 {
			if _, err := x.Execute(context.Background(), req); errors.Is(err, resilience.ErrBreakerOpen) {
				t.Fatalf("%s: breaker opened", name)
			}
		}
		if n := rc.count() - before; n != 10 {
			t.Errorf("%s: %d of 10 requests sent", name, n)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in     string
		wait   time.Duration
		capped bool
		ok     bool
	}{
		{"", 0, false, false},
		{"0", 0, false, true},
		{"120", 2 * time.Minute, false, true},
		{" 7 ", 7 * time.Second, false, true},
		{"301", 5 * time.Minute, true, true},
		{"99999999999999999999999", 5 * time.Minute, true, true},
		{"-5", 0, false, false},
		{"1.5", 0, false, false},
		{"soon", 0, false, false},
		{"Wed, 01 May 2024 12:00:30 GMT", 30 * time.Second, false, true},
		{"Wednesday, 01-May-24 12:01:00 GMT", time.Minute, false, true},
		{"Wed May  1 12:00:10 2024", 10 * time.Second, false, true},
		{"Wed, 01 May 2024 11:00:00 GMT", 0, false, true},
		{"Thu, 02 May 2024 12:00:00 GMT", 5 * time.Minute, true, true},
	}
	for _, tt := range tests {
		wait, capped, ok := parseRetryAfter(tt.in, now, 5*time.Minute)
		if wait != tt.wait || capped != tt.capped || ok != tt.ok {
			t.Errorf("parseRetryAfter(%q) = %s, %v, %v; want %s, %v, %v", tt.in, wait, capped, ok, tt.wait, tt.capped, tt.ok)
		}
	}
}

// TestRetryAfterHint: a 429 or 503 with Retry-After gives a wait hint
// that counts as an attempt, capped by MaxRetryAfter; other statuses and
// a missing header give none.
func TestRetryAfterHint(t *testing.T) {
	tests := []struct {
		status int
		header string
		wait   time.Duration
		hint   bool
		text   string
	}{
		{429, "2", 2 * time.Second, true, "the receiver asked to retry after 2s (Retry-After)"},
		{503, "3600", 90 * time.Second, true, "the receiver asked to retry later (Retry-After, capped at 1m30s)"},
		{503, "", 0, false, ""},
		{429, "later", 0, false, ""},
		{500, "2", 0, false, ""},
		{400, "2", 0, false, ""},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d %q", tt.status, tt.header), func(t *testing.T) {
			rc := newReceiver(t, func(w nethttp.ResponseWriter, r *nethttp.Request) {
				if tt.header != "" {
					w.Header().Set("Retry-After", tt.header)
				}
				w.WriteHeader(tt.status)
				io.WriteString(w, "slow down")
			})
			_, err := New(Options{MaxRetryAfter: 90 * time.Second}).Execute(context.Background(), request(rc.URL, rc.hostport()))
			wait, counts, ok := resilience.WaitHint(err)
			if ok != tt.hint || wait != tt.wait || (ok && !counts) {
				t.Fatalf("WaitHint = %s, %v, %v; want %s, true, %v (%v)", wait, counts, ok, tt.wait, tt.hint, err)
			}
			if tt.text != "" && !strings.Contains(err.Error(), tt.text) {
				t.Errorf("error %q lacks %q", err, tt.text)
			}
			if tt.hint && resilience.Permanent(err) {
				t.Errorf("a Retry-After error is permanent")
			}
		})
	}
}
