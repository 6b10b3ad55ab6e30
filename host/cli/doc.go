// Package cli holds the observer command's subcommands. Each command loads
// observer.toml through host/config, wires the concrete pieces (source,
// store, plugin host, effect executors, engine) explicitly — there is no
// registry — and returns an exit code:
//
//	0  success
//	1  the command ran and failed (an engine error, a failing conformance run)
//	2  bad usage or bad configuration: nothing was started
//
// Errors are printed once, to stderr, naming what was wrong and where.
package cli
