// Package admin is the observer's admin HTTP server: Prometheus metrics,
// health and readiness probes, the status and debug-event reports that
// `observer status` and `observer debug-event` print, and the reload that
// `observer reload` asks for.
//
//	GET  /metrics      Prometheus text format (the metrics registry)
//	GET  /healthz      200 while the process serves HTTP
//	GET  /readyz       200 when the engine runs and this instance leads;
//	                   503 with {"ready": false, "state": …, "reason": …}
//	                   while starting, standby, reloading or stopping
//	GET  /status       metrics.Status as JSON
//	GET  /events/{id}  journal.Report as JSON; id is SOURCE:POSITION
//	POST /reload       reload observer.toml; 200, or 422 with the reason
//	                   the new configuration was refused (the old one keeps
//	                   running), 409 while another reload runs
//
// # Security
//
// The server binds to 127.0.0.1:9464 by default. An address that is not
// loopback (0.0.0.0, a LAN address, a host name other than localhost, or
// an empty host) needs a token: New refuses to start without one. With a
// token, every endpoint but /healthz and /readyz (which orchestrators
// probe without credentials) requires "Authorization: Bearer TOKEN",
// compared in constant time. The token never appears in a log line, an
// error or a response.
//
// # Lifecycle
//
// New validates (no side effects) → Start binds the address and serves in
// the background (an address in use fails Start) → Shutdown stops
// accepting and waits for running requests up to its context. The server
// outlives engines: it reads everything through the Backend, which the
// run supervisor points at the engine running now.
package admin
