// Package resilience holds the retry policy of an observer, the circuit
// breakers of its effect endpoints, and the error classification the
// engine decides from.
//
// Lifecycle of a failing piece of work (a plugin call or an effect):
//
//	attempt 1 fails with err
//	→ WaitHint(err) with countsAsAttempt false (a circuit breaker refused
//	  it; nothing was sent)?  re-schedule after the hint, same attempt,
//	  never dead-lettered for this
//	→ Permanent(err)?  yes: dead-letter at once, no retry
//	→ attempt < MaxAttempts?  no: dead-letter after the last attempt
//	→ wait max(Policy.Delay(attempt, rnd), WaitHint(err)), then attempt+1
//
// The package does not sleep or schedule anything itself: the engine owns
// the timers, so that a retrying key never blocks other keys. Delay is a
// pure function of the policy, the attempt number and a random source, so
// tests can pin the randomness.
//
// Classification is by type, never by error text: an error is permanent when
// any error in its chain (errors.Unwrap, including errors.Join trees) has a
// method Permanent() bool that returns true. MarkPermanent wraps an arbitrary
// error that way; effect errors (host/effect.Error) implement the method
// themselves. Likewise an error asks for a wait with a method
// WaitHint() (time.Duration, bool): *OpenError (a breaker refused the
// request; not an attempt) and *RetryAfterError (the receiver sent
// Retry-After; an attempt).
//
// # Circuit breakers
//
// Breakers holds one Breaker per (observer, endpoint), the endpoint being
// "scheme://host:port". A breaker counts results over a rolling window
// (ten buckets): when at least MinRequests results are in the window and
// the share of failures reaches FailureRatio, it opens. While open, Allow
// refuses at once with an *OpenError saying how long until OpenTimeout has
// passed; then up to HalfOpenProbes requests go through (half-open). All of
// them succeeding closes the breaker with an empty window; one failing
// opens it again for another OpenTimeout.
//
//	closed ──ratio reached──▶ open ──open_timeout──▶ half-open ──probes ok──▶ closed
//	                           ▲                        │
//	                           └──────probe failed──────┘
//
// Failures are network errors, timeouts, 408, 429 and 5xx; a 2xx, 3xx or
// other 4xx is a success (the endpoint answered: a bad request is the
// request's fault), and an attempt abandoned by its caller or refused
// before sending is ignored. Results of requests allowed before the last
// state change are not counted. The closed path (Get, Allow, Done) takes
// one atomic load and one short mutex and allocates nothing; state changes
// are reported to BreakersOptions.OnStateChange, and Snapshot lists every
// breaker for `observer status` and metrics.
package resilience
