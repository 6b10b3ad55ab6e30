package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fraiseql/observer/host/admin"
	"github.com/fraiseql/observer/host/journal"
	"github.com/fraiseql/observer/host/metrics"
)

// backend is a scripted admin.Backend: the HTTP layer is under test here;
// host/cli tests the real one against a running engine.
type backend struct {
	mu        sync.Mutex
	ready     bool
	state     string
	reason    string
	reloadErr error
	reloadGo  chan struct{} // when set, Reload waits for it
	reloads   int
}

func (b *backend) Ready() (bool, string, string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ready, b.state, b.reason
}

func (b *backend) Status(ctx context.Context) (metrics.Status, error) {
	return metrics.Status{Version: "test", State: "running", Ready: true}, nil
}

func (b *backend) Event(ctx context.Context, id string) (journal.Report, error) {
	if id == "db:1" {
		return journal.Report{EventID: id, From: journal.FromJournal, State: journal.StateFinished}, nil
	}
	return journal.Report{}, admin.ErrNotFound
}

func (b *backend) Reload(ctx context.Context) (admin.ReloadResult, error) {
	b.mu.Lock()
	b.reloads++
	wait, err := b.reloadGo, b.reloadErr
	b.mu.Unlock()
	if wait != nil {
		<-wait
	}
	if err != nil {
		return admin.ReloadResult{}, err
	}
	return admin.ReloadResult{Config: "observer.toml", Message: "reloaded"}, nil
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func start(t *testing.T, cfg admin.Config, b admin.Backend) (*admin.Server, string) {
	t.Helper()
	if cfg.Gatherer == nil {
		cfg.Gatherer = metrics.New(metrics.Options{Version: "9.9.9", NoRuntimeCollectors: true}).Registry()
	}
	if cfg.Address == "" {
		cfg.Address = "127.0.0.1:0"
	}
	s, err := admin.New(cfg, b)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		// A second Shutdown (a deferred stop after an explicit one) must
		// return at once, not wait for a server that is gone.
		if err := s.Shutdown(ctx); err != nil || ctx.Err() != nil {
			t.Errorf("second Shutdown: %v (ctx %v)", err, ctx.Err())
		}
	})
	return s, "http://" + s.Addr()
}

func call(t *testing.T, method, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestTokenRequiredWhenSet(t *testing.T) {
	const token = "s3cret-admin-t0ken"
	var logs syncBuf
	b := &backend{ready: true, state: "running"}
	_, base := start(t, admin.Config{Token: token, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}, b)
	cases := []struct {
		method, path, token string
		want                int
	}{
		{"GET", "/healthz", "", 200},
		{"GET", "/readyz", "", 200},
		{"GET", "/metrics", "", 401},
		{"GET", "/status", "", 401},
		{"GET", "/events/db:1", "", 401},
		{"POST", "/reload", "", 401},
		{"GET", "/status", "wrong", 401},
		{"GET", "/status", token + "x", 401},
		{"GET", "/metrics", token, 200},
		{"GET", "/status", token, 200},
		{"GET", "/events/db:1", token, 200},
		{"POST", "/reload", token, 200},
	}
	for _, c := range cases {
		code, body := call(t, c.method, base+c.path, c.token)
		if code != c.want {
			t.Errorf("%s %s with token %q: %d, want %d: %s", c.method, c.path, c.token, code, c.want, body)
		}
		if strings.Contains(body, token) {
			t.Errorf("%s %s: the token is in the answer", c.method, c.path)
		}
	}
	if b.reloads != 1 {
		t.Errorf("%d reloads ran, want 1 (the unauthenticated one must not)", b.reloads)
	}
	if out := logs.String(); strings.Contains(out, token) || !strings.Contains(out, "without a valid token") {
		t.Errorf("logs: token present or refusal not logged:\n%s", out)
	}
}

func TestNonLoopbackNeedsToken(t *testing.T) {
	g := metrics.New(metrics.Options{NoRuntimeCollectors: true}).Registry()
	cases := []struct {
		addr, token string
		wantErr     string
	}{
		{"127.0.0.1:0", "", ""},
		{"[::1]:0", "", ""},
		{"localhost:0", "", ""},
		{"0.0.0.0:0", "", "not loopback"},
		{":9464", "", "not loopback"},
		{"192.0.2.10:9464", "", "not loopback"},
		{"observer.example.com:9464", "", "not loopback"},
		{"0.0.0.0:0", "t0ken", ""},
		{"127.0.0.1", "", "want host:port"},
		{"127.0.0.1:http", "", "not a number"},
	}
	for _, c := range cases {
		_, err := admin.New(admin.Config{Address: c.addr, Token: c.token, Gatherer: g}, &backend{})
		switch {
		case c.wantErr == "" && err != nil:
			t.Errorf("%s (token %v): %v", c.addr, c.token != "", err)
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("%s: error %v, want one containing %q", c.addr, err, c.wantErr)
		}
		if err != nil && c.token != "" && strings.Contains(err.Error(), c.token) {
			t.Errorf("the token is in the error: %v", err)
		}
	}
	// A token-protected server on every interface starts and serves.
	_, base := start(t, admin.Config{Address: "0.0.0.0:0", Token: "t0ken"}, &backend{ready: true, state: "running"})
	if code, _ := call(t, "GET", strings.Replace(base, "0.0.0.0", "127.0.0.1", 1)+"/status", "t0ken"); code != 200 {
		t.Errorf("status on 0.0.0.0 with token: %d", code)
	}
}

func TestReadyzStates(t *testing.T) {
	b := &backend{}
	_, base := start(t, admin.Config{}, b)
	for _, c := range []struct {
		ready         bool
		state, reason string
		want          int
	}{
		{false, "starting", "loading plugins", 503},
		{true, "running", "", 200},
		{false, "standby", "another instance leads", 503},
		{false, "reloading", "building the new configuration", 503},
		{false, "stopping", "draining", 503},
	} {
		b.mu.Lock()
		b.ready, b.state, b.reason = c.ready, c.state, c.reason
		b.mu.Unlock()
		code, body := call(t, "GET", base+"/readyz", "")
		var r admin.Readiness
		if err := json.Unmarshal([]byte(body), &r); err != nil {
			t.Fatalf("readyz body %q: %v", body, err)
		}
		if code != c.want || r.Ready != c.ready || r.State != c.state || r.Reason != c.reason {
			t.Errorf("%s: %d %+v, want %d", c.state, code, r, c.want)
		}
		if code, _ := call(t, "GET", base+"/healthz", ""); code != 200 {
			t.Errorf("%s: healthz %d, want 200 whatever the state", c.state, code)
		}
	}
}

func TestEventsAndReloadAnswers(t *testing.T) {
	release := make(chan struct{})
	b := &backend{ready: true, state: "running"}
	_, base := start(t, admin.Config{}, b)

	for _, c := range []struct {
		path     string
		want     int
		contains string
	}{
		{"/events/db:1", 200, `"event_id": "db:1"`},
		{"/events/db:2", 404, "not in the journal"},
		{"/events/db", 400, "SOURCE:POSITION"},
		{"/events/db:x", 400, "SOURCE:POSITION"},
		{"/events/db:0", 400, "SOURCE:POSITION"},
		{"/nope", 404, "not found"},
		{"/metrics", 200, `observer_build_info{version="9.9.9"} 1`},
	} {
		code, body := call(t, "GET", base+c.path, "")
		if code != c.want || !strings.Contains(body, c.contains) {
			t.Errorf("GET %s: %d %s; want %d containing %q", c.path, code, body, c.want, c.contains)
		}
	}
	if code, _ := call(t, "GET", base+"/reload", ""); code != http.StatusMethodNotAllowed {
		t.Errorf("GET /reload: %d, want 405", code)
	}

	b.reloadErr = admin.Refused(errors.New(`observer.toml: observers[0].entity: missing`))
	code, body := call(t, "POST", base+"/reload", "")
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, "observers[0].entity: missing") || !strings.Contains(body, "running one is kept") {
		t.Errorf("refused reload: %d %s", code, body)
	}
	b.reloadErr = fmt.Errorf("the previous engine failed while stopping: disk full")
	if code, body := call(t, "POST", base+"/reload", ""); code != 500 || !strings.Contains(body, "disk full") {
		t.Errorf("failed reload: %d %s", code, body)
	}

	// Reloads are the backend's to serialise; the server passes ErrReloadBusy on.
	b.reloadErr = nil
	b.reloadGo = release
	done := make(chan int)
	go func() { c, _ := call(t, "POST", base+"/reload", ""); done <- c }()
	time.Sleep(50 * time.Millisecond)
	close(release)
	if c := <-done; c != 200 {
		t.Errorf("reload: %d", c)
	}
}

func TestAddressInUse(t *testing.T) {
	s, _ := start(t, admin.Config{}, &backend{})
	g := metrics.New(metrics.Options{NoRuntimeCollectors: true}).Registry()
	other, err := admin.New(admin.Config{Address: s.Addr(), Gatherer: g}, &backend{})
	if err != nil {
		t.Fatal(err)
	}
	err = other.Start()
	if err == nil || !strings.Contains(err.Error(), "in use") || !strings.Contains(err.Error(), s.Addr()) {
		t.Errorf("second server on %s: %v, want an address-in-use error naming it", s.Addr(), err)
	}
}
