// Package resilience holds the retry policy of an observer and the error
// classification the engine decides from.
//
// Lifecycle of a failing piece of work (a plugin call or an effect):
//
//	attempt 1 fails with err
//	→ Permanent(err)?  yes: dead-letter at once, no retry
//	→ attempt < MaxAttempts?  no: dead-letter after the last attempt
//	→ wait Policy.Delay(attempt, rnd), then attempt+1
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
// themselves.
package resilience
