package http

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	nethttp "net/http"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fraiseql/observer/abi"
	"github.com/fraiseql/observer/host/effect"
	"github.com/fraiseql/observer/host/resilience"
)

// Header names the Executor sets.
const (
	HeaderIdempotencyKey = "Idempotency-Key"
	HeaderEventID        = "X-Observer-Event-Id"
	HeaderSignature      = "X-Observer-Signature"
	HeaderTraceparent    = "Traceparent"
	HeaderTracestate     = "Tracestate"
)

// Defaults for Options.
const (
	DefaultTimeout   = 10 * time.Second
	DefaultUserAgent = "fraiseql-observer/1"
	// maxDrain is how much of a response body is read to let the
	// connection be reused; a longer body closes the connection instead.
	maxDrain = 1 << 20
)

// Options configure an Executor. The zero value is usable.
type Options struct {
	// Transport is a template for the transports requests go through: it
	// is cloned, once per distinct private-address allowance, with its
	// dialer replaced by one that checks every resolved address (see
	// NonPublic) and its proxy cleared. Nil: a transport tuned for many
	// concurrent requests to few hosts. Redirects are never followed.
	Transport *nethttp.Transport
	// DefaultTimeout bounds an attempt when the Request's policy sets none.
	DefaultTimeout time.Duration
	// UserAgent is sent unless the plugin sets one.
	UserAgent string
	// Logger receives one debug line per attempt. Nil: no logging.
	Logger *slog.Logger
	// Breakers holds the circuit breakers of the endpoints. Nil: no
	// breakers, every request is sent. A request's breaker config is its
	// Policy.Breaker (disabled when zero).
	Breakers *resilience.Breakers
	// MaxRetryAfter caps the wait a 429 or 503 response can ask for with
	// Retry-After; 0 means DefaultMaxRetryAfter.
	MaxRetryAfter time.Duration
}

// Executor executes http effects. It is safe for concurrent use.
type Executor struct {
	base          *nethttp.Transport
	timeout       time.Duration
	ua            string
	log           *slog.Logger
	now           func() time.Time
	breakers      *resilience.Breakers
	maxRetryAfter time.Duration

	mu sync.RWMutex
	// clients by privateKey: one transport, and so one connection pool,
	// per private-address allowance.
	clients map[string]*nethttp.Client
}

var _ effect.Executor = (*Executor)(nil)

// New returns an Executor. It opens nothing; idle connections belong to its
// transports (CloseIdleConnections releases them).
func New(opts Options) *Executor {
	x := &Executor{base: opts.Transport, timeout: opts.DefaultTimeout, ua: opts.UserAgent, log: opts.Logger, now: time.Now,
		breakers: opts.Breakers, maxRetryAfter: opts.MaxRetryAfter, clients: map[string]*nethttp.Client{}}
	if x.base == nil {
		x.base = newTransport()
	}
	if x.timeout <= 0 {
		x.timeout = DefaultTimeout
	}
	if x.ua == "" {
		x.ua = DefaultUserAgent
	}
	if x.maxRetryAfter <= 0 {
		x.maxRetryAfter = DefaultMaxRetryAfter
	}
	return x
}

func newTransport() *nethttp.Transport {
	t := nethttp.DefaultTransport.(*nethttp.Transport).Clone()
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 256
	t.IdleConnTimeout = 90 * time.Second
	return t
}

// CloseIdleConnections closes the transport's idle connections.
func (x *Executor) CloseIdleConnections() {
	x.mu.RLock()
	defer x.mu.RUnlock()
	for _, c := range x.clients {
		c.CloseIdleConnections()
	}
}

// Execute performs one attempt of req's http effect. See the package
// documentation for the headers set, how errors are classified and when the
// endpoint's circuit breaker refuses the attempt.
func (x *Executor) Execute(ctx context.Context, req effect.Request) (effect.Result, error) {
	start := time.Now()
	h := req.Effect.HTTP
	var scrub []string
	fail := func(e *effect.Error) (effect.Result, error) {
		e.Plugin = req.Plugin
		e.Scrub(scrub...)
		return effect.Result{Status: e.Status, Duration: time.Since(start), Detail: "failed"}, e
	}
	invalid := func(format string, a ...any) (effect.Result, error) {
		return fail(effect.NewError(abi.EffectHTTP, req.Index, fmt.Errorf(format, a...), true))
	}
	if req.Effect.Type != abi.EffectHTTP || h == nil {
		return invalid("effect type %q with http member %v is not an http effect", req.Effect.Type, h != nil)
	}
	scrub = append(effect.URLSecrets(h.URL), req.Policy.Secret)
	for k, v := range h.Headers {
		if sensitiveHeader(k) {
			scrub = append(scrub, v)
			if _, cred, ok := strings.Cut(v, " "); ok {
				scrub = append(scrub, strings.TrimSpace(cred)) // "Bearer <token>"
			}
		}
	}
	method := strings.ToUpper(strings.TrimSpace(h.Method))
	if method == "" {
		method = nethttp.MethodPost
	}
	if !validToken(method) {
		return invalid("method %q is not an HTTP method", h.Method)
	}
	u, err := url.Parse(h.URL)
	if err != nil {
		return invalid("url %s does not parse", effect.Redact(h.URL))
	}
	redacted := effect.Redact(h.URL)
	if u.User != nil {
		// The client sends userinfo as Basic auth; a receiver may echo it.
		pw, _ := u.User.Password()
		scrub = append(scrub, base64.StdEncoding.EncodeToString([]byte(u.User.Username()+":"+pw)))
	}
	// withURL completes an error: target, plugin, and the values to scrub
	// (before anything logs it).
	withURL := func(e *effect.Error) *effect.Error {
		e.Method, e.URL, e.Plugin = method, redacted, req.Plugin
		return e.Scrub(scrub...)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fail(withURL(effect.NewError(abi.EffectHTTP, req.Index, fmt.Errorf("scheme %q is not http or https", u.Scheme), true)))
	}
	if u.Hostname() == "" {
		return fail(withURL(effect.NewError(abi.EffectHTTP, req.Index, errors.New("url has no host"), true)))
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	hostport := net.JoinHostPort(u.Hostname(), port)
	if !req.Policy.HostAllowed(u.Hostname(), port) {
		allowed := "none: set allow_hosts on the plugin"
		if len(req.Policy.AllowedHosts) > 0 {
			allowed = strings.Join(req.Policy.AllowedHosts, ", ")
		}
		return fail(withURL(effect.NewError(abi.EffectHTTP, req.Index,
			fmt.Errorf("plugin %q may not reach host %s (allowed hosts: %s)", req.Plugin, hostport, allowed), true)))
	}

	var body []byte
	contentType := ""
	switch {
	case h.Body != "" && len(h.BodyJSON) > 0:
		return fail(withURL(effect.NewError(abi.EffectHTTP, req.Index, errors.New("both body and body_json are set, want one"), true)))
	case len(h.BodyJSON) > 0:
		if !json.Valid(h.BodyJSON) {
			return fail(withURL(effect.NewError(abi.EffectHTTP, req.Index, errors.New("body_json is not valid JSON"), true)))
		}
		body, contentType = h.BodyJSON, "application/json"
	case h.Body != "":
		body = []byte(h.Body)
	}

	timeout := req.Policy.Timeout
	if timeout <= 0 {
		timeout = x.timeout
	}
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	hr, err := nethttp.NewRequestWithContext(actx, method, u.String(), bytes.NewReader(body))
	if err != nil {
		return fail(withURL(effect.NewError(abi.EffectHTTP, req.Index, errors.New("cannot build the request"), true)))
	}
	for k, v := range h.Headers {
		if !validToken(k) || strings.ContainsAny(v, "\r\n\x00") {
			return fail(withURL(effect.NewError(abi.EffectHTTP, req.Index, fmt.Errorf("header %q is not a valid header name and value", k), true)))
		}
		if strings.EqualFold(k, "Host") {
			hr.Host = v
			continue
		}
		hr.Header.Set(k, v)
	}
	if contentType != "" && hr.Header.Get("Content-Type") == "" {
		hr.Header.Set("Content-Type", contentType)
	}
	if hr.Header.Get("User-Agent") == "" {
		hr.Header.Set("User-Agent", x.ua)
	}
	// The host's headers win over the plugin's.
	if req.IdempotencyKey != "" {
		hr.Header.Set(HeaderIdempotencyKey, req.IdempotencyKey)
	}
	if req.EventID != "" {
		hr.Header.Set(HeaderEventID, req.EventID)
	}
	hr.Header.Del(HeaderTraceparent)
	hr.Header.Del(HeaderTracestate)
	if req.Trace != nil {
		if req.Trace.Traceparent != "" {
			hr.Header.Set(HeaderTraceparent, req.Trace.Traceparent)
		}
		if req.Trace.Tracestate != "" {
			hr.Header.Set(HeaderTracestate, req.Trace.Tracestate)
		}
	}
	hr.Header.Del(HeaderSignature)
	if req.Policy.Secret != "" {
		hr.Header.Set(HeaderSignature, Sign(req.Policy.Secret, x.now(), body))
	}

	// The breaker is asked last, once the request is known to be valid:
	// a permit must end in a result.
	br := x.breakers.Get(req.Observer, u.Scheme+"://"+strings.ToLower(hostport), req.Policy.Breaker)
	permit, err := br.Allow()
	if err != nil {
		e := withURL(effect.NewError(abi.EffectHTTP, req.Index, err, false))
		x.logAttempt(ctx, req, method, u.Host, 0, start, e)
		return effect.Result{Duration: time.Since(start), Detail: "not sent: circuit breaker " + br.State().String()}, e
	}

	resp, err := x.clientFor(req.Policy).Do(hr)
	if err != nil {
		var pe *PrivateAddressError
		if errors.As(err, &pe) {
			permit.Done(resilience.Ignore)
			e := withURL(effect.NewError(abi.EffectHTTP, req.Index, fmt.Errorf(
				"plugin %q may not connect to %s: %w; non-public addresses are refused unless allowed: list %q (or a CIDR containing it) in the plugin's allow_hosts, or set allow_private = true on the plugin",
				req.Plugin, hostport, pe, pe.Addr.String()), true))
			x.logAttempt(ctx, req, method, u.Host, 0, start, e)
			return fail(e)
		}
		probeFailed := false
		if ctx.Err() != nil {
			permit.Done(resilience.Ignore) // abandoned by the caller: says nothing about the endpoint
		} else {
			permit.Done(resilience.Failure)
			probeFailed = permit.Probe()
		}
		e := withURL(effect.NewError(abi.EffectHTTP, req.Index, transportError(ctx, actx, err, timeout), false))
		if probeFailed {
			e.Err = &resilience.ProbeFailedError{Wait: br.Config().OpenTimeout, Err: e.Err}
		}
		x.logAttempt(ctx, req, method, u.Host, 0, start, e)
		return fail(e)
	}
	status := resp.StatusCode
	var head []byte
	more := false
	if status < 200 || status > 299 {
		// Enough to hold any scrubbed value that starts inside the
		// snippet (see effect.Error.SetBody), and one byte to tell
		// whether the body goes on.
		n := effect.MaxBodySnippet + min(scrubLen(scrub), maxScrubRead)
		head, _ = io.ReadAll(io.LimitReader(resp.Body, int64(n)+1))
		if more = len(head) > n; more {
			head = head[:n]
		}
	}
	// Drain so the connection goes back to the pool.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
	resp.Body.Close()
	probeFailed := false
	if breakerFailure(status) {
		permit.Done(resilience.Failure)
		probeFailed = permit.Probe()
	} else {
		permit.Done(resilience.Success)
	}

	res := effect.Result{Status: status, Duration: time.Since(start), Detail: resp.Status}
	if status >= 200 && status <= 299 {
		x.logAttempt(ctx, req, method, u.Host, status, start, nil)
		return res, nil
	}
	e := withURL(effect.NewError(abi.EffectHTTP, req.Index, nil, permanentStatus(status)))
	e.Status = status
	switch {
	case status >= 300 && status <= 399:
		e.Err = fmt.Errorf("redirect to %s not followed: point the url at the final endpoint", effect.Redact(resp.Header.Get("Location")))
		e.Scrub(effect.URLSecrets(resp.Header.Get("Location"))...)
	case status == nethttp.StatusTooManyRequests || status == nethttp.StatusServiceUnavailable:
		if wait, capped, ok := parseRetryAfter(resp.Header.Get("Retry-After"), x.now(), x.maxRetryAfter); ok {
			e.Err = &resilience.RetryAfterError{After: wait, Capped: capped}
		}
	}
	if probeFailed {
		e.Err = &resilience.ProbeFailedError{Wait: br.Config().OpenTimeout, Err: e.Err}
	}
	e.SetBody(head, more)
	x.logAttempt(ctx, req, method, u.Host, status, start, e)
	return res, e
}

// maxScrubRead bounds the extra bytes of an error body read to scrub it.
const maxScrubRead = 8 << 10

func scrubLen(values []string) int {
	n := 0
	for _, v := range values {
		n = max(n, len(v))
	}
	return n
}

// breakerFailure: the statuses that say the endpoint is unwell (408, 429,
// 5xx). Other answers, 4xx included, show it up and answering.
func breakerFailure(s int) bool {
	return s == nethttp.StatusRequestTimeout || s == nethttp.StatusTooManyRequests || s >= 500
}

// sensitiveHeader reports whether a plugin-set header usually carries a
// credential, whose value is then scrubbed from error texts.
func sensitiveHeader(k string) bool {
	k = strings.ToLower(k)
	switch k {
	case "authorization", "proxy-authorization", "cookie":
		return true
	}
	return strings.Contains(k, "token") || strings.Contains(k, "secret") || strings.Contains(k, "key") ||
		strings.Contains(k, "auth") || strings.Contains(k, "signature") || strings.Contains(k, "password")
}

// permanentStatus: 4xx other than 408 and 429, and 3xx (redirects are not
// followed, so the same request will get the same answer).
func permanentStatus(s int) bool {
	switch {
	case s == nethttp.StatusRequestTimeout, s == nethttp.StatusTooManyRequests:
		return false
	case s >= 300 && s <= 499:
		return true
	}
	return false
}

// transportError describes a failed round trip without the URL (url.Error
// text would carry it unredacted).
func transportError(parent, attempt context.Context, err error, timeout time.Duration) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	switch {
	case parent.Err() != nil:
		return fmt.Errorf("attempt abandoned: %w", parent.Err())
	case attempt.Err() != nil || isTimeout(err):
		return fmt.Errorf("timed out after %s: %w", timeout, context.DeadlineExceeded)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("connection refused (is the receiver running?): %w", err)
	}
	return err
}

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}

func (x *Executor) logAttempt(ctx context.Context, req effect.Request, method, host string, status int, start time.Time, err error) {
	if x.log == nil || !x.log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	attrs := []slog.Attr{
		slog.String("event_id", req.EventID), slog.String("observer", req.Observer), slog.String("plugin", req.Plugin),
		slog.Int("effect", req.Index), slog.String("method", method), slog.String("host", host),
		slog.Int("status", status), slog.Duration("duration", time.Since(start)),
	}
	if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	x.log.LogAttrs(ctx, slog.LevelDebug, "http effect attempt", attrs...)
}

// validToken reports whether s is an RFC 9110 token (method, header name).
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}
