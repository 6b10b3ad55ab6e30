// Package http executes "http" effects: the outgoing requests plugins ask
// for (webhooks), with the host's guarantees added.
//
// For every attempt the Executor
//
//   - validates the method and the URL (http or https only) and refuses, as
//     a permanent error, a host not in the observer's allow-list, before
//     any connection is made;
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
// with userinfo and query values redacted, the status and the start of the
// response body. The Executor never retries by itself; the engine does.
//
// The default client's transport keeps up to 256 idle connections per host:
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
