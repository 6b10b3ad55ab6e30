package resilience

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Strategy names how the delay between attempts grows.
type Strategy string

const (
	// Exponential doubles the delay after every failed attempt:
	// InitialDelay, 2×, 4×, … capped at MaxDelay.
	Exponential Strategy = "exponential"
	// Linear adds InitialDelay per failed attempt: InitialDelay, 2×, 3×, …
	// capped at MaxDelay.
	Linear Strategy = "linear"
	// Fixed waits InitialDelay every time (capped at MaxDelay).
	Fixed Strategy = "fixed"
)

// Valid reports whether s is one of the known strategies.
func (s Strategy) Valid() bool {
	return s == Exponential || s == Linear || s == Fixed
}

// Policy is an observer's retry policy.
//
// The zero Policy is not valid; start from DefaultPolicy.
type Policy struct {
	Strategy Strategy `json:"strategy"`
	// MaxAttempts counts the first attempt: 1 means no retry.
	MaxAttempts int `json:"max_attempts"`
	// InitialDelay is the first delay (and the step for Linear, the
	// constant for Fixed).
	InitialDelay time.Duration `json:"initial_delay"`
	// MaxDelay caps every delay, before jitter.
	MaxDelay time.Duration `json:"max_delay"`
	// Jitter applies "equal jitter": the delay d becomes a uniformly
	// random value in [d/2, d]. See Delay for why.
	Jitter bool `json:"jitter"`
}

// DefaultPolicy is exponential backoff with jitter, 5 attempts, starting at
// 200ms and capped at 30s.
func DefaultPolicy() Policy {
	return Policy{
		Strategy:     Exponential,
		MaxAttempts:  5,
		InitialDelay: 200 * time.Millisecond,
		MaxDelay:     30 * time.Second,
		Jitter:       true,
	}
}

// MaxAttemptsLimit bounds MaxAttempts, so that a typo such as 1000000 is
// caught at load rather than keeping an event in flight for days.
const MaxAttemptsLimit = 1000

// Validate reports every problem with p, joined.
func (p Policy) Validate() error {
	var errs []error
	if !p.Strategy.Valid() {
		errs = append(errs, fmt.Errorf("strategy %q is not one of %q, %q, %q", p.Strategy, Exponential, Linear, Fixed))
	}
	if p.MaxAttempts < 1 || p.MaxAttempts > MaxAttemptsLimit {
		errs = append(errs, fmt.Errorf("max_attempts %d is out of range, want 1 to %d", p.MaxAttempts, MaxAttemptsLimit))
	}
	if p.InitialDelay <= 0 {
		errs = append(errs, fmt.Errorf("initial_delay %s must be positive", p.InitialDelay))
	}
	if p.MaxDelay <= 0 {
		errs = append(errs, fmt.Errorf("max_delay %s must be positive", p.MaxDelay))
	} else if p.InitialDelay > p.MaxDelay {
		errs = append(errs, fmt.Errorf("initial_delay %s is greater than max_delay %s", p.InitialDelay, p.MaxDelay))
	}
	return errors.Join(errs...)
}

// Delay returns how long to wait before attempt+1, after attempt (counting
// from 1) failed. Attempts below 1 are treated as 1.
//
// Before jitter the delay is InitialDelay×2^(attempt-1) for Exponential,
// InitialDelay×attempt for Linear and InitialDelay for Fixed, capped at
// MaxDelay (overflow saturates at the cap).
//
// With Jitter the result is "equal jitter": a uniform value in [d/2, d].
// Full jitter ([0, d]) spreads load slightly better but can retry almost at
// once, which defeats the purpose for a receiver that is briefly down;
// equal jitter keeps a guaranteed minimum wait while still de-correlating
// many keys that failed together.
//
// rnd returns a value in [0, 1); nil uses math/rand/v2. Delay is safe for
// concurrent use if rnd is.
func (p Policy) Delay(attempt int, rnd func() float64) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	d := p.base(attempt)
	if d <= 0 {
		return 0
	}
	if !p.Jitter {
		return d
	}
	if rnd == nil {
		rnd = rand.Float64
	}
	r := rnd()
	if r < 0 || r >= 1 || r != r {
		r = 0
	}
	half := d / 2
	return half + time.Duration(r*float64(d-half))
}

// base is the un-jittered, capped delay.
func (p Policy) base(attempt int) time.Duration {
	initial, maxd := p.InitialDelay, p.MaxDelay
	if initial <= 0 {
		return 0
	}
	if maxd <= 0 {
		maxd = initial
	}
	var d time.Duration
	switch p.Strategy {
	case Linear:
		n := time.Duration(attempt)
		if n > maxd/initial { // initial*n would exceed the cap (or overflow)
			return maxd
		}
		d = initial * n
	case Fixed:
		d = initial
	default: // Exponential, and anything unvalidated
		shift := attempt - 1
		if shift >= 62 || initial > maxd>>uint(shift) {
			return maxd
		}
		d = initial << uint(shift)
	}
	if d > maxd {
		return maxd
	}
	return d
}

// Permanent reports whether retrying cannot help: some error in err's chain
// (including every branch of an errors.Join) has a method Permanent() bool
// that returns true.
func Permanent(err error) bool {
	for err != nil {
		if p, ok := err.(interface{ Permanent() bool }); ok && p.Permanent() {
			return true
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				if Permanent(e) {
					return true
				}
			}
			return false
		default:
			return false
		}
	}
	return false
}

// PermanentError marks its wrapped error as not worth retrying.
type PermanentError struct {
	Err error
}

func (e *PermanentError) Error() string {
	if e.Err == nil {
		return "permanent error"
	}
	return e.Err.Error()
}

// Unwrap returns the wrapped error.
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent is always true.
func (e *PermanentError) Permanent() bool { return true }

// MarkPermanent wraps err so that Permanent reports true for it. The text is
// unchanged. A nil err stays nil.
func MarkPermanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}
