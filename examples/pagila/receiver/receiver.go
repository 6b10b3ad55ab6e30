// Package receiver is a loopback HTTP endpoint that plays "the world" for
// the Pagila example, its end-to-end tests and `observer demo`: it accepts
// webhook deliveries, verifies their signature when it knows the secret,
// and records each one by idempotency key so a caller can check that every
// expected event arrived once, or recognise a re-delivery.
package receiver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	effecthttp "github.com/fraiseql/observer/host/effect/http"
)

// Delivery is one request received.
type Delivery struct {
	Path           string
	IdempotencyKey string
	EventID        string
	Traceparent    string
	Body           []byte
	At             time.Time
}

// Receiver records deliveries. It is safe for concurrent use.
type Receiver struct {
	secret string
	srv    *http.Server
	ln     net.Listener

	mu       sync.Mutex
	byKey    map[string]int // idempotency key → deliveries with it
	list     []Delivery
	rejected int
	// FailFirst, when > 0, answers 503 to the first FailFirst attempts of
	// each idempotency key (to exercise retries).
	failFirst int
	attempts  map[string]int
}

// Options configure a Receiver.
type Options struct {
	// Addr to listen on; "" means 127.0.0.1:0 (a free port).
	Addr string
	// Secret, if set, makes the receiver verify X-Observer-Signature and
	// answer 401 to a request whose signature is missing or wrong.
	Secret string
	// FailFirst answers 503 to the first N attempts of every idempotency key.
	FailFirst int
}

// Start listens and serves until Close.
func Start(opts Options) (*Receiver, error) {
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("receiver: listen on %s: %w", addr, err)
	}
	r := &Receiver{secret: opts.Secret, ln: ln, byKey: map[string]int{}, failFirst: opts.FailFirst, attempts: map[string]int{}}
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

// Addr is the host:port the receiver listens on.
func (r *Receiver) Addr() string { return r.ln.Addr().String() }

// URL returns the base URL, such as http://127.0.0.1:43121.
func (r *Receiver) URL() string { return "http://" + r.Addr() }

// Close stops the server.
func (r *Receiver) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return r.srv.Shutdown(ctx)
}

func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 8<<20))
	if err != nil {
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	key := req.Header.Get(effecthttp.HeaderIdempotencyKey)
	if r.secret != "" {
		if err := effecthttp.Verify(r.secret, req.Header.Get(effecthttp.HeaderSignature), body, 5*time.Minute, time.Now()); err != nil {
			r.mu.Lock()
			r.rejected++
			r.mu.Unlock()
			http.Error(w, "bad signature: "+err.Error(), http.StatusUnauthorized)
			return
		}
	}
	r.mu.Lock()
	if r.failFirst > 0 && r.attempts[key] < r.failFirst {
		r.attempts[key]++
		r.mu.Unlock()
		http.Error(w, "try again", http.StatusServiceUnavailable)
		return
	}
	r.byKey[key]++
	r.list = append(r.list, Delivery{
		Path:           req.URL.Path,
		IdempotencyKey: key,
		EventID:        req.Header.Get(effecthttp.HeaderEventID),
		Traceparent:    req.Header.Get("traceparent"),
		Body:           body,
		At:             time.Now(),
	})
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// Stats summarises what arrived.
type Stats struct {
	Deliveries int // requests accepted
	Distinct   int // distinct idempotency keys
	Duplicates int // Deliveries - Distinct
	Rejected   int // bad signatures
}

// Stats returns the counts so far.
func (r *Receiver) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return Stats{Deliveries: len(r.list), Distinct: len(r.byKey), Duplicates: len(r.list) - len(r.byKey), Rejected: r.rejected}
}

// Deliveries returns a copy of every accepted delivery, in arrival order.
func (r *Receiver) Deliveries() []Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Delivery(nil), r.list...)
}

// WaitFor blocks until at least n distinct keys arrived, or ctx ends.
func (r *Receiver) WaitFor(ctx context.Context, n int) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if s := r.Stats(); s.Distinct >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			s := r.Stats()
			return errors.Join(ctx.Err(), fmt.Errorf("receiver got %d distinct deliveries, want %d", s.Distinct, n))
		case <-t.C:
		}
	}
}
