// Package abi holds the Go types of observer ABI v1: the JSON payloads that
// pass between the observer host and a WebAssembly plugin.
//
// SPEC.md beside this file is the normative, language-neutral contract; these
// types are its Go rendering. The host, the conformance runner and the Go
// guest SDK (sdk-guest/go) all import this package, so there is one copy of
// the contract. It depends on the standard library only and must stay that
// way: it is compiled into guests (GOOS=wasip1) as well as into the host.
//
// The call sequence, for every plugin instance:
//
//	_initialize (if exported, once)  → describe (once, at load)
//	→ filter | act   (many times; one call at a time per instance)
//
// Every role export takes a JSON input (Extism input buffer) and returns a
// JSON output (Extism output buffer). A plugin reports a problem with the
// input by returning a Result whose Error is set, never by trapping.
package abi
