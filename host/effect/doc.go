// Package effect is the contract between the engine and the code that
// carries out what a plugin asked for: a plugin returns abi.Effect values,
// and the engine hands each to the Executor registered for its type
// (host/effect/http for "http", host/effect/log for "log").
//
// Lifecycle of one effect:
//
//	plugin's act returns effects[i]
//	→ engine builds a Request (event id, observer, plugin, index i, the
//	  stable idempotency key, trace context, the observer's Policy)
//	→ Executor.Execute(ctx, req) once per attempt
//	→ nil error: done | *Error with Permanent() true: dead-letter at once |
//	  any other error: retried by the engine under the observer's retry policy
//
// An Executor does not retry by itself: retries, backoff and dead-lettering
// are the engine's, so that one key waiting for a retry never blocks
// another. Executors must be safe for concurrent use; the engine runs many
// effects at once. Cancelling ctx abandons the attempt, which then counts
// as failed and retryable.
//
// Errors classify themselves (resilience.Permanent reads Permanent(),
// resilience.WaitHint a breaker refusal or a Retry-After) and never carry
// secrets: URLs in error text pass through Redact (userinfo, query values
// and token-like path segments hidden), and Error.Scrub removes the
// observer's secret and the URL's credentials from the whole text, response
// body included (SetBody scrubs before cutting, so a value cut in half does
// not leak its start).
//
// Policy.AllowedHosts is checked on the URL's host; IP and CIDR entries,
// or Policy.AllowPrivate, additionally allow connecting to non-public
// addresses (PrivateAllowed), which host/effect/http checks on the address
// actually dialled.
package effect
