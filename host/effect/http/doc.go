// Package http executes "http" effects: the outgoing requests plugins ask
// for (webhooks), with the host's guarantees added.
//
// For every attempt the Executor
//
//   - validates the method and the URL (http or https only) and refuses, as
//     a permanent error, a host not in the observer's allow-list, before
//     any connection is made;
//   - asks the endpoint's circuit breaker (see below) and, when it is
//     open, returns at once without sending;
//   - connects only to public addresses unless allowed (see below);
//   - sends the plugin's headers, then sets the host's own, which the plugin
//     cannot override: Idempotency-Key (stable per event, observer and
//     effect index, so receivers can drop re-deliveries), X-Observer-Event-Id,
//     the W3C traceparent/tracestate when the event carries a trace, and,
//     when the observer has a secret, X-Observer-Signature (see Sign);
//   - bounds the attempt by the observer's timeout (or DefaultTimeout);
//   - drains and closes the response body so connections are reused;
//   - classifies the outcome: 2xx is success; 408, 429, 5xx, timeouts and
//     transport errors (connection refused, reset, DNS) are retryable; other
//     4xx, 3xx (redirects are not followed: a redirect could lead outside
//     the allow-list, so point the URL at the final endpoint) and invalid
//     effects are permanent.
//
// Errors are *effect.Error values naming the plugin, the method, the URL
// with userinfo, query values and token-like path segments redacted
// (effect.Redact), the status and the start of the response body. The
// observer's secret, the URL's credentials (also as the Basic
// authorization the client derives from them) and the values of
// credential-like headers the plugin set (Authorization, *-Key, *Token* …)
// are scrubbed from the whole error text, response body included, before
// anything logs it: a receiver that echoes its request in an error page
// cannot leak them. The Executor never retries by itself; the engine does.
//
// # Private addresses
//
// The allow-list is checked on the URL's host name; the address it
// resolves to is checked again at connect time, in the dialer's Control
// hook, for every address the dialer tries, so a name that resolves (or is
// re-bound by DNS) to an internal address cannot bypass it. Non-public
// addresses (NonPublic: loopback, RFC 1918, link-local including cloud
// metadata 169.254.169.254, unspecified, multicast, carrier-grade NAT,
// IPv6 unique-local and site-local, reserved, and IPv4 addresses embedded
// in IPv4-mapped, NAT64, 6to4 and IPv4-compatible IPv6 addresses) are
// refused, as a permanent *PrivateAddressError naming the plugin, the host,
// the address and the rule, unless the policy allows them: an allow-list
// entry that is that IP address (with no port or the same port) or a CIDR
// range containing it, or Policy.AllowPrivate. "*" and host-name entries
// never allow a private address.
//
// Each distinct allowance gets its own transport, so a pooled connection
// opened under one plugin's allowance is never reused by a plugin without
// it. Environment proxies (HTTP_PROXY …) are not used: through a proxy the
// address checked would be the proxy's.
//
// # Circuit breaker
//
// With Options.Breakers set and the request's Policy.Breaker enabled, each
// (observer, endpoint "scheme://host:port") has a breaker
// (host/resilience). Network errors, timeouts, 408, 429 and 5xx count as
// failures; other answers as successes; a request refused before sending
// or abandoned by its caller is not counted. While the breaker is open the
// attempt returns, unsent, a retryable error wrapping
// *resilience.OpenError: resilience.WaitHint reports how long to wait and
// that it is not an attempt, so the engine re-schedules the effect instead
// of spending an attempt or dead-lettering it. Other endpoints are
// unaffected.
//
// # Retry-After
//
// A 429 or 503 with a Retry-After header (seconds or an HTTP date) wraps a
// *resilience.RetryAfterError: resilience.WaitHint reports the wait, capped
// at Options.MaxRetryAfter (DefaultMaxRetryAfter, 5 minutes), as counting
// as an attempt.
//
// The default transport keeps up to 256 idle connections per host:
// with Go's default of 2, many concurrent effects to one receiver would open
// and close a connection per request and exhaust loopback ports.
//
// # Signature
//
// X-Observer-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
//
// the Stripe-style scheme FraiseQL uses. A receiver recomputes the HMAC over
// the raw body and rejects stale timestamps; Verify does exactly that.
package http
