package http

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	nethttp "net/http"
	"strings"
	"testing"
	"time"

	"github.com/fraiseql/observer/abi"
	"github.com/fraiseql/observer/host/effect"
	"github.com/fraiseql/observer/host/resilience"
)

// The secrets of TestSecretsNeverLeak: each must not appear in any error
// text, result or log line, whatever the failure.
const (
	signingSecret = "hmac-SIGNING-secret-0001"
	urlUser       = "svc-USER-token-0002"
	urlPassword   = "pa55-PASSWORD-0003"
	queryToken    = "tok-QUERY-secret-0004"
	queryKey      = "key-QUERY-secret-0005"
	pathToken     = "XoXb0006abcdefghijklmnopQRST"
	bearerToken   = "bearer-HEADER-secret-0007"
	redirectToken = "redirect-LOCATION-secret-0008"
)

var allSecrets = []string{signingSecret, urlUser, urlPassword, queryToken, queryKey, pathToken, bearerToken, redirectToken}

// echo answers with status and a body quoting everything it was sent:
// the request line, every header (Authorization, the Basic credentials of
// the URL's userinfo, the signature) and the body, as careless receivers
// do in their error pages.
func echo(status int) func(nethttp.ResponseWriter, *nethttp.Request) {
	return func(w nethttp.ResponseWriter, r *nethttp.Request) {
		if status >= 300 && status < 400 {
			w.Header().Set("Location", "https://elsewhere.example/next?sig="+redirectToken)
		}
		w.WriteHeader(status)
		var b bytes.Buffer
		if u, p, ok := r.BasicAuth(); ok {
			fmt.Fprintf(&b, "basic=%s:%s ", u, p)
		}
		fmt.Fprintf(&b, "%s %s ", r.Method, r.URL.RequestURI())
		for _, k := range []string{"Authorization", "X-Api-Key", HeaderSignature} {
			fmt.Fprintf(&b, "%s=%s ", k, r.Header.Get(k))
		}
		io.WriteString(w, b.String())
	}
}

// TestSecretsNeverLeak runs effects that fail in every way with a signing
// secret, credentials in the URL's userinfo, query and path, and a bearer
// header, against a receiver that echoes them, and checks that none of
// them reaches the returned error, the result or the debug log.
func TestSecretsNeverLeak(t *testing.T) {
	hang := make(chan struct{})
	t.Cleanup(func() { close(hang) })
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()

	tests := []struct {
		name    string
		handler func(nethttp.ResponseWriter, *nethttp.Request) // nil: no receiver
		addr    string                                         // for no receiver
		basic   bool                                           // credentials in userinfo rather than a header
		want    string                                         // in the error
	}{
		{"400 echoing", echo(400), "", false, "status 400"},
		{"401 echoing basic auth", echo(401), "", true, "status 401"},
		{"500 echoing", echo(500), "", false, "status 500"},
		{"503 echoing basic auth", echo(503), "", true, "status 503"},
		{"redirect", echo(302), "", false, "redirect to https://elsewhere.example/next?sig=REDACTED not followed"},
		{"secret across the snippet's end", func(w nethttp.ResponseWriter, r *nethttp.Request) {
			w.WriteHeader(500)
			io.WriteString(w, strings.Repeat("a", effect.MaxBodySnippet-6)+r.URL.Query().Get("token")+" and more")
		}, "", false, `response body "aaaa`},
		{"timeout", func(w nethttp.ResponseWriter, r *nethttp.Request) {
			select {
			case <-r.Context().Done():
			case <-hang:
			}
		}, "", false, "timed out after 100ms"},
		{"unreachable", nil, closedAddr, true, "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := tt.addr
			if tt.handler != nil {
				addr = newReceiver(t, tt.handler).hostport()
			}
			var logs bytes.Buffer
			logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			x := New(Options{Logger: logger})

			userinfo := ""
			headers := map[string]string{"X-Api-Key": queryKey}
			if tt.basic {
				userinfo = urlUser + ":" + urlPassword + "@"
			} else {
				headers["Authorization"] = "Bearer " + bearerToken
			}
			url := "http://" + userinfo + addr + "/services/T0/" + pathToken + "?token=" + queryToken + "&api_key=" + queryKey + "&page=2"
			req := request(url, addr)
			req.Effect.HTTP.Headers = headers
			req.Policy.Secret = signingSecret
			req.Policy.Timeout = 100 * time.Millisecond
			res, err := x.Execute(context.Background(), req)
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.want) {
				t.Errorf("error %q lacks %q", msg, tt.want)
			}
			wantURL := "POST http://" + map[bool]string{true: "REDACTED@"}[tt.basic] + addr + "/services/T0/REDACTED?api_key=REDACTED&page=REDACTED&token=REDACTED"
			if !strings.Contains(msg, wantURL) {
				t.Errorf("error %q lacks the redacted URL %q", msg, wantURL)
			}
			if logs.Len() == 0 || !strings.Contains(logs.String(), `"msg":"http effect attempt"`) {
				t.Fatalf("no debug log line captured: %q", logs.String())
			}
			for where, text := range map[string]string{
				"error": msg, "error %+v": fmt.Sprintf("%+v", err), "result": fmt.Sprintf("%+v", res), "log": logs.String(),
			} {
				for _, s := range allSecrets {
					if strings.Contains(text, s) {
						t.Errorf("%s leaks %q:\n%s", where, s, text)
					}
				}
			}
			t.Logf("error: %s", msg)
		})
	}
}

// TestBreakerAndPrivateErrorsCarryNoSecrets: the errors that are not
// about a response (a refused private address, an open breaker) are
// redacted too.
func TestBreakerAndPrivateErrorsCarryNoSecrets(t *testing.T) {
	rc := newReceiver(t, echo(500))
	_, port, _ := net.SplitHostPort(rc.hostport())
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	x := New(Options{Logger: logger, Breakers: resilience.NewBreakers(resilience.BreakersOptions{})})
	query := "?token=" + queryToken

	private := request("http://"+urlUser+":"+urlPassword+"@localhost:"+port+"/"+pathToken+query, "localhost")
	private.Policy.Secret = signingSecret
	_, perr := x.Execute(context.Background(), private)

	req := request("http://"+urlUser+":"+urlPassword+"@"+rc.hostport()+"/"+pathToken+query, rc.hostport())
	req.Policy.Secret = signingSecret
	req.Policy.Breaker = resilience.BreakerConfig{Enabled: true, FailureRatio: 0.5, Window: time.Minute, MinRequests: 1,
		OpenTimeout: time.Minute, HalfOpenProbes: 1}
	_, ferr := x.Execute(context.Background(), req)
	_, oerr := x.Execute(context.Background(), req)
	if perr == nil || ferr == nil || oerr == nil || !strings.Contains(oerr.Error(), "circuit breaker") || !strings.Contains(perr.Error(), "not a public address") {
		t.Fatalf("errors: %v | %v | %v", perr, ferr, oerr)
	}
	for _, text := range []string{perr.Error(), ferr.Error(), oerr.Error(), logs.String()} {
		for _, s := range allSecrets {
			if strings.Contains(text, s) {
				t.Errorf("leaks %q: %s", s, text)
			}
		}
	}
}

func TestURLSecretsAndScrub(t *testing.T) {
	raw := "https://us%65r:p%40ss-word@h.example/a/" + pathToken + "?t=" + queryToken + "&e=a%2Bb-long-value"
	got := effect.URLSecrets(raw)
	for _, w := range []string{"user", "us%65r", "p@ss-word", "p%40ss-word", pathToken, queryToken, "a+b-long-value", "a%2Bb-long-value"} {
		found := false
		for _, g := range got {
			found = found || g == w
		}
		if !found {
			t.Errorf("URLSecrets(%s) = %q lacks %q", raw, got, w)
		}
	}
	e := effect.NewError(abi.EffectHTTP, 0, fmt.Errorf("receiver said: bad p%%40ss-word for %s and tok", queryToken), false)
	e.Scrub(got...)
	e.Scrub("tok") // too short to scrub without mangling text
	if msg := e.Error(); strings.Contains(msg, queryToken) || strings.Contains(msg, "p%40ss-word") || !strings.Contains(msg, "and tok") {
		t.Errorf("scrubbed error = %s", msg)
	}
}
