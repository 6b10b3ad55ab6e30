package resilience

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// State is a circuit breaker's state.
type State uint8

const (
	// Closed: requests flow; results are counted in the rolling window.
	Closed State = iota
	// Open: requests are refused without being sent until OpenTimeout has
	// passed since the breaker opened.
	Open
	// HalfOpen: up to HalfOpenProbes requests go through; if they all
	// succeed the breaker closes, the first failure opens it again.
	HalfOpen
)

func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case Open:
		return "open"
	case HalfOpen:
		return "half-open"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// MarshalText renders the state as "closed", "open" or "half-open".
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads what MarshalText writes, so that a status document
// (`observer status` reading /status) decodes.
func (s *State) UnmarshalText(b []byte) error {
	for _, st := range []State{Closed, Open, HalfOpen} {
		if string(b) == st.String() {
			*s = st
			return nil
		}
	}
	return fmt.Errorf("circuit breaker state %q: want closed, open or half-open", b)
}

// Outcome is what a request that went through a breaker says about the
// endpoint's health.
type Outcome uint8

const (
	// Success: the endpoint answered (2xx, 3xx, and 4xx other than 408 and
	// 429: a permanent client error says the request was bad, not that the
	// endpoint is down).
	Success Outcome = iota
	// Failure: a network error, a timeout, 408, 429 or 5xx.
	Failure
	// Ignore: the attempt says nothing about the endpoint (it was
	// abandoned by its caller, or refused locally before any byte was
	// sent). A half-open probe slot it held is released.
	Ignore
)

// BreakerConfig configures the breaker of one observer's effect endpoint.
//
// The zero value is disabled; start from DefaultBreakerConfig.
type BreakerConfig struct {
	// Enabled false turns the breaker off: every request is sent.
	Enabled bool `json:"enabled"`
	// FailureRatio (0 < r ≤ 1) opens the breaker when failures/requests
	// in the window reach it.
	FailureRatio float64 `json:"failure_ratio"`
	// Window is the rolling window results are counted over.
	Window time.Duration `json:"window"`
	// MinRequests is how many results the window must hold before the
	// breaker may open, so that one early failure does not trip it.
	MinRequests int `json:"min_requests"`
	// OpenTimeout is how long the breaker stays open before it lets probe
	// requests through.
	OpenTimeout time.Duration `json:"open_timeout"`
	// HalfOpenProbes is how many probe requests go through when half-open;
	// all must succeed to close the breaker.
	HalfOpenProbes int `json:"half_open_probes"`
}

// DefaultBreakerConfig is enabled: 50% failures over 30s with at least 10
// requests open it for 30s, then one probe decides.
func DefaultBreakerConfig() BreakerConfig {
	return BreakerConfig{
		Enabled:        true,
		FailureRatio:   0.5,
		Window:         30 * time.Second,
		MinRequests:    10,
		OpenTimeout:    30 * time.Second,
		HalfOpenProbes: 1,
	}
}

// Limits of BreakerConfig values, checked by Validate.
const (
	MinBreakerWindow      = 100 * time.Millisecond
	MaxBreakerMinRequests = 1000000
	MaxHalfOpenProbes     = 1000
)

// Validate reports every problem with c, joined. A disabled config is
// always valid.
func (c BreakerConfig) Validate() error {
	if !c.Enabled {
		return nil
	}
	var errs []error
	if !(c.FailureRatio > 0 && c.FailureRatio <= 1) {
		errs = append(errs, fmt.Errorf("failure_ratio %v is out of range, want more than 0 and at most 1", c.FailureRatio))
	}
	if c.Window < MinBreakerWindow {
		errs = append(errs, fmt.Errorf("window %s is too short, want at least %s", c.Window, MinBreakerWindow))
	}
	if c.MinRequests < 1 || c.MinRequests > MaxBreakerMinRequests {
		errs = append(errs, fmt.Errorf("min_requests %d is out of range, want 1 to %d", c.MinRequests, MaxBreakerMinRequests))
	}
	if c.OpenTimeout <= 0 {
		errs = append(errs, fmt.Errorf("open_timeout %s must be positive", c.OpenTimeout))
	}
	if c.HalfOpenProbes < 1 || c.HalfOpenProbes > MaxHalfOpenProbes {
		errs = append(errs, fmt.Errorf("half_open_probes %d is out of range, want 1 to %d", c.HalfOpenProbes, MaxHalfOpenProbes))
	}
	return errors.Join(errs...)
}

// halfOpenWait is the wait hint given to a request refused while the
// half-open probes are in flight (capped at OpenTimeout): the probes
// usually answer within one request's time, and a refused request costs
// nothing, so a short wait lets traffic resume soon after they succeed.
const halfOpenWait = time.Second

// buckets divide the rolling window. Ten keeps the error in the window's
// length at 10% while summing stays trivially cheap.
const buckets = 10

type bucket struct {
	epoch     int64 // (time since the breaker's base) / bucket width
	successes uint32
	failures  uint32
}

// Breaker is the circuit breaker of one (observer, endpoint). Get one from
// Breakers.Get. It is safe for concurrent use.
//
// Use:
//
//	permit, err := br.Allow() // err is an *OpenError: do not send
//	… send …
//	permit.Done(resilience.Failure)
//
// A nil *Breaker allows everything, so a disabled breaker needs no
// special case at the call site.
type Breaker struct {
	observer, endpoint string
	cfg                BreakerConfig
	now                func() time.Time
	notify             func(StateChange)
	base               time.Time
	width              time.Duration

	// word packs generation<<2 | state so that the closed fast path reads
	// both with one atomic load. The generation changes on every state
	// change; a permit from an older generation is not counted.
	word atomic.Uint64

	rejected atomic.Uint64

	mu       sync.Mutex
	win      [buckets]bucket
	openedAt time.Time
	// tripRequests, tripFailures: the window's counts when it last opened.
	tripRequests, tripFailures int
	admitted, succeeded        int // half-open probes
	opens                      uint64
	changedAt                  time.Time
}

func (b *Breaker) load() (gen uint64, s State) {
	w := b.word.Load()
	return w >> 2, State(w & 3)
}

// Permit is the right to send one request, returned by Allow. The zero
// Permit (from a nil Breaker) records nothing.
type Permit struct {
	b     *Breaker
	gen   uint64
	probe bool
}

// Allow reports whether a request may be sent now. When it may not, the
// error is an *OpenError carrying how long to wait; nothing must be sent
// and Done need not be called. Every permit returned must be finished with
// Done exactly once. Allow does not allocate while the breaker is closed.
func (b *Breaker) Allow() (Permit, error) {
	if b == nil {
		return Permit{}, nil
	}
	gen, s := b.load()
	if s == Closed {
		return Permit{b: b, gen: gen}, nil
	}
	b.mu.Lock()
	gen, s = b.load()
	now := b.now()
	var change *StateChange
	switch s {
	case Closed:
		b.mu.Unlock()
		return Permit{b: b, gen: gen}, nil
	case Open:
		if wait := b.openedAt.Add(b.cfg.OpenTimeout).Sub(now); wait > 0 {
			b.mu.Unlock()
			b.rejected.Add(1)
			return Permit{}, b.openError(Open, wait)
		}
		change = b.setLocked(HalfOpen, now)
		gen, s = b.load()
	}
	// Half-open.
	if b.admitted >= b.cfg.HalfOpenProbes {
		wait := min(halfOpenWait, b.cfg.OpenTimeout)
		b.mu.Unlock()
		b.rejected.Add(1)
		b.emit(change)
		return Permit{}, b.openError(HalfOpen, wait)
	}
	b.admitted++
	b.mu.Unlock()
	b.emit(change)
	return Permit{b: b, gen: gen, probe: true}, nil
}

func (b *Breaker) openError(s State, wait time.Duration) *OpenError {
	b.mu.Lock()
	e := &OpenError{Observer: b.observer, Endpoint: b.endpoint, State: s, Wait: wait, OpenedAt: b.openedAt,
		Requests: b.tripRequests, Failures: b.tripFailures, Window: b.cfg.Window, Probes: b.cfg.HalfOpenProbes}
	b.mu.Unlock()
	return e
}

// Probe reports whether p is a half-open probe: the request that decides
// whether the breaker closes again. A probe that fails opens it again; the
// caller should then treat the attempt like one the breaker refused (see
// ProbeFailedError), so that a long outage does not use up an event's
// attempts one probe at a time.
func (p Permit) Probe() bool { return p.probe }

// Done records the outcome of the request p allowed. Results of requests
// allowed before the breaker's last state change are not counted (they
// describe the endpoint as it was). Done on the zero Permit does nothing.
func (p Permit) Done(o Outcome) {
	b := p.b
	if b == nil {
		return
	}
	b.mu.Lock()
	gen, s := b.load()
	if gen != p.gen {
		b.mu.Unlock()
		return
	}
	now := b.now()
	var change *StateChange
	switch s {
	case Closed:
		if o == Ignore {
			break
		}
		e := b.epoch(now)
		bk := &b.win[e%buckets]
		if bk.epoch != e {
			*bk = bucket{epoch: e}
		}
		if o == Success {
			bk.successes++
		} else {
			bk.failures++
		}
		// Evaluated after a success too: it may be the result that
		// reaches MinRequests.
		req, fail := b.countsLocked(now)
		if req >= b.cfg.MinRequests && float64(fail) >= b.cfg.FailureRatio*float64(req) {
			b.tripRequests, b.tripFailures = req, fail
			change = b.setLocked(Open, now)
		}
	case HalfOpen:
		if !p.probe {
			break
		}
		switch o {
		case Ignore:
			b.admitted--
		case Failure:
			b.tripRequests, b.tripFailures = b.succeeded+1, 1
			change = b.setLocked(Open, now)
		case Success:
			b.succeeded++
			if b.succeeded >= b.cfg.HalfOpenProbes {
				change = b.setLocked(Closed, now)
			}
		}
	}
	b.mu.Unlock()
	b.emit(change)
}

// epoch is the index of the window bucket now falls in.
func (b *Breaker) epoch(now time.Time) int64 {
	d := now.Sub(b.base)
	if d < 0 {
		d = 0
	}
	return int64(d / b.width)
}

// countsLocked sums the buckets still inside the window.
func (b *Breaker) countsLocked(now time.Time) (requests, failures int) {
	e := b.epoch(now)
	for i := range b.win {
		bk := &b.win[i]
		if bk.epoch > e-buckets && bk.epoch <= e {
			requests += int(bk.successes) + int(bk.failures)
			failures += int(bk.failures)
		}
	}
	return requests, failures
}

// setLocked moves to state to (b.mu held) and returns the change to emit
// once the lock is released.
func (b *Breaker) setLocked(to State, now time.Time) *StateChange {
	gen, from := b.load()
	b.word.Store((gen+1)<<2 | uint64(to))
	b.admitted, b.succeeded = 0, 0
	b.changedAt = now
	switch to {
	case Open:
		b.openedAt = now
		b.opens++
	case Closed:
		b.win = [buckets]bucket{}
		b.openedAt = time.Time{}
	}
	return &StateChange{Observer: b.observer, Endpoint: b.endpoint, From: from, To: to, At: now,
		Requests: b.tripRequests, Failures: b.tripFailures}
}

func (b *Breaker) emit(c *StateChange) {
	if c != nil && b.notify != nil {
		b.notify(*c)
	}
}

// State returns the current state. An open breaker whose OpenTimeout has
// passed still reports Open until a request asks (Allow moves it to
// HalfOpen).
func (b *Breaker) State() State {
	if b == nil {
		return Closed
	}
	_, s := b.load()
	return s
}

// Config returns the breaker's configuration.
func (b *Breaker) Config() BreakerConfig { return b.cfg }

// snapshot reads b under its lock.
func (b *Breaker) snapshot() BreakerSnapshot {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	_, s := b.load()
	sn := BreakerSnapshot{Observer: b.observer, Endpoint: b.endpoint, State: s, Opens: b.opens,
		Rejected: b.rejected.Load(), Probes: b.admitted}
	if !b.changedAt.IsZero() {
		t := b.changedAt
		sn.ChangedAt = &t
	}
	switch s {
	case Closed:
		sn.Requests, sn.Failures = b.countsLocked(now)
	default:
		t := b.openedAt
		sn.OpenedAt = &t
		sn.Requests, sn.Failures = b.tripRequests, b.tripFailures
		if s == Open {
			sn.RetryIn = max(0, b.openedAt.Add(b.cfg.OpenTimeout).Sub(now))
		}
	}
	return sn
}

// StateChange describes one transition, passed to the OnStateChange
// callback.
type StateChange struct {
	Observer, Endpoint string
	From, To           State
	At                 time.Time
	// Requests and Failures are the counts that opened the breaker (for a
	// change to Open) or the ones it last opened with.
	Requests, Failures int
}

// BreakerSnapshot is one breaker's state for `observer status` and
// metrics.
type BreakerSnapshot struct {
	Observer string `json:"observer"`
	Endpoint string `json:"endpoint"`
	State    State  `json:"state"`
	// Requests and Failures: while closed, the results in the current
	// window; while open or half-open, the counts it opened with.
	Requests int `json:"requests"`
	Failures int `json:"failures"`
	// OpenedAt is when the breaker last opened; nil while closed.
	OpenedAt *time.Time `json:"opened_at,omitempty"`
	// RetryIn is how long an open breaker still refuses requests.
	RetryIn time.Duration `json:"retry_in_ns,omitempty"`
	// ChangedAt is the time of the last state change; nil if none.
	ChangedAt *time.Time `json:"changed_at,omitempty"`
	// Opens counts how often the breaker has opened.
	Opens uint64 `json:"opens"`
	// Rejected counts the requests refused while open or half-open.
	Rejected uint64 `json:"rejected"`
	// Probes is the number of half-open probes in flight or succeeded.
	Probes int `json:"probes,omitempty"`
}

// BreakersOptions configure a Breakers registry. The zero value is usable.
type BreakersOptions struct {
	// Now is the clock; nil is time.Now. Tests inject their own.
	Now func() time.Time
	// OnStateChange, if set, is called after every state change, outside
	// the breaker's lock, possibly from many goroutines at once; it should
	// be quick (update a metric, write a log line). It may call Snapshot.
	OnStateChange func(StateChange)
}

type breakerKey struct{ observer, endpoint string }

// Breakers holds one Breaker per (observer, effect endpoint). Endpoints
// are "scheme://host:port". Each observer has its own breakers, with its
// own config, so observers sharing an endpoint each learn its health from
// their own requests. It is safe for concurrent use; the zero value is not
// usable, use NewBreakers.
type Breakers struct {
	now    func() time.Time
	notify func(StateChange)
	mu     sync.RWMutex
	m      map[breakerKey]*Breaker
}

// NewBreakers returns an empty registry.
func NewBreakers(opts BreakersOptions) *Breakers {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &Breakers{now: now, notify: opts.OnStateChange, m: map[breakerKey]*Breaker{}}
}

// Get returns the breaker of observer's requests to endpoint, creating it
// with cfg on first use. It returns nil (which allows everything) when r
// is nil or cfg is disabled. When cfg differs from the config the breaker
// was created with (a reloaded observer.toml), a fresh closed breaker with
// the new config replaces it. cfg must be valid (Validate). Get does not
// allocate once the breaker exists.
func (r *Breakers) Get(observer, endpoint string, cfg BreakerConfig) *Breaker {
	if r == nil || !cfg.Enabled {
		return nil
	}
	k := breakerKey{observer, endpoint}
	r.mu.RLock()
	b := r.m[k]
	r.mu.RUnlock()
	if b != nil && b.cfg == cfg {
		return b
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if b = r.m[k]; b != nil && b.cfg == cfg {
		return b
	}
	width := cfg.Window / buckets
	if width <= 0 {
		width = 1
	}
	b = &Breaker{observer: observer, endpoint: endpoint, cfg: cfg, now: r.now, notify: r.notify,
		base: r.now(), width: width}
	r.m[k] = b
	return b
}

// Snapshot lists every breaker, sorted by endpoint then observer.
func (r *Breakers) Snapshot() []BreakerSnapshot {
	if r == nil {
		return nil
	}
	r.mu.RLock()
	bs := make([]*Breaker, 0, len(r.m))
	for _, b := range r.m {
		bs = append(bs, b)
	}
	r.mu.RUnlock()
	out := make([]BreakerSnapshot, len(bs))
	for i, b := range bs {
		out[i] = b.snapshot()
	}
	slices.SortFunc(out, func(a, b BreakerSnapshot) int {
		return cmp.Or(cmp.Compare(a.Endpoint, b.Endpoint), cmp.Compare(a.Observer, b.Observer))
	})
	return out
}

// OpenError is returned by Allow when a breaker refuses a request. The
// request was not sent; WaitHint reports Wait and that the refusal does not
// count as an attempt.
type OpenError struct {
	Observer, Endpoint string
	// State is Open, or HalfOpen when the probes are already in flight.
	State State
	// Wait is how long until a request may be allowed again.
	Wait     time.Duration
	OpenedAt time.Time
	// Requests and Failures are the counts the breaker opened with, over
	// Window.
	Requests, Failures int
	Window             time.Duration
	Probes             int
}

func (e *OpenError) Error() string {
	if e.State == HalfOpen {
		return fmt.Sprintf("circuit breaker for %s (observer %s) is half-open, waiting for %d probe request(s): not sent, retry in %s",
			e.Endpoint, e.Observer, e.Probes, e.Wait.Round(time.Millisecond))
	}
	return fmt.Sprintf("circuit breaker for %s (observer %s) is open since %s (%d of %d requests failed within %s): not sent, retry in %s",
		e.Endpoint, e.Observer, e.OpenedAt.UTC().Format(time.RFC3339), e.Failures, e.Requests, e.Window, e.Wait.Round(time.Millisecond))
}

// WaitHint: wait e.Wait; the refusal is not an attempt.
func (e *OpenError) WaitHint() (time.Duration, bool) { return e.Wait, false }

// ErrBreakerOpen matches every *OpenError with errors.Is.
var ErrBreakerOpen = errors.New("circuit breaker open")

// Is makes errors.Is(err, ErrBreakerOpen) true.
func (e *OpenError) Is(target error) bool { return target == ErrBreakerOpen }
