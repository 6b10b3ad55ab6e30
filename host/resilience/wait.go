package resilience

import (
	"fmt"
	"time"
)

// WaitHint reports whether err asks for a specific wait before the next
// attempt, as a breaker refusal (*OpenError) or a receiver's Retry-After
// (*RetryAfterError) does: some error in err's chain (errors.Unwrap and
// every branch of an errors.Join, depth first) has a method
// WaitHint() (time.Duration, bool). The first one found answers.
//
// countsAsAttempt false means the work was not tried at all (the breaker
// was open): the caller should re-schedule it after wait without using up
// an attempt and never dead-letter it for this error. countsAsAttempt true
// (Retry-After) is an ordinary failed attempt whose next delay should be at
// least wait.
//
// The engine's retry decision, in order:
//
//	if wait, counts, ok := resilience.WaitHint(err); ok && !counts {
//		reschedule after wait; attempt unchanged; done
//	}
//	if resilience.Permanent(err) || attempt >= max { dead-letter }
//	delay := policy.Delay(attempt, rnd)
//	if wait, _, ok := resilience.WaitHint(err); ok && wait > delay { delay = wait }
func WaitHint(err error) (wait time.Duration, countsAsAttempt bool, ok bool) {
	for err != nil {
		if h, is := err.(interface {
			WaitHint() (time.Duration, bool)
		}); is {
			wait, counts := h.WaitHint()
			return max(wait, 0), counts, true
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				if w, c, found := WaitHint(e); found {
					return w, c, true
				}
			}
			return 0, false, false
		default:
			return 0, false, false
		}
	}
	return 0, false, false
}

// ProbeFailedError wraps the failure of a half-open probe (Permit.Probe):
// the breaker is open again for Wait. The attempt does not count: the
// event waits with the others behind the breaker, and is not dead-lettered
// for an outage it happened to probe.
type ProbeFailedError struct {
	Wait time.Duration
	Err  error
}

func (e *ProbeFailedError) Error() string {
	const what = "a circuit breaker probe: the breaker is open again for %s; the attempt is not counted"
	if e.Err == nil {
		return fmt.Sprintf(what, e.Wait)
	}
	return fmt.Sprintf("%v ("+what+")", e.Err, e.Wait)
}

func (e *ProbeFailedError) Unwrap() error { return e.Err }

// WaitHint: the breaker's open timeout; the attempt does not count.
func (e *ProbeFailedError) WaitHint() (time.Duration, bool) { return e.Wait, false }

// RetryAfterError says the receiver asked for a wait before the next
// attempt (an HTTP 429 or 503 with Retry-After). The attempt counts.
type RetryAfterError struct {
	// After is the requested wait, already capped by whoever built the
	// error.
	After time.Duration
	// Capped is true when the receiver asked for longer than After.
	Capped bool
}

func (e *RetryAfterError) Error() string {
	if e.Capped {
		return fmt.Sprintf("the receiver asked to retry later (Retry-After, capped at %s)", e.After)
	}
	return fmt.Sprintf("the receiver asked to retry after %s (Retry-After)", e.After)
}

// WaitHint: at least e.After; the attempt counts.
func (e *RetryAfterError) WaitHint() (time.Duration, bool) { return e.After, true }
