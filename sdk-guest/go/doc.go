// Package observer is the Go guest SDK for observer plugins: WebAssembly
// modules that the observer host loads to filter events and act on them.
//
// A plugin is a main package built as a WASI reactor:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -ldflags='-s -w' -o plugin.wasm .
//
// A c-shared reactor never runs main.main, so a plugin registers its
// handlers from init() and keeps an empty main:
//
//	func init() {
//		observer.Register(observer.Plugin{
//			Name: "big-payments", Version: "1.0.0",
//			Filter: func(in *observer.Input) (observer.FilterResult, error) {
//				v, ok := observer.Lookup(in, "after.amount")
//				...
//			},
//		})
//	}
//
//	func main() {}
//
// This package owns the module's exports: describe, filter and act (see
// abi/SPEC.md). Each export reads the JSON input through the Extism kernel
// imports (module "extism:host/env"), decodes it, calls the registered
// handler and writes the JSON result as the Extism output.
//
// Decoding and encoding avoid encoding/json on the usual path, because a Go
// guest pays dearly for every loop iteration and allocation in the
// sandbox: a hand-written decoder makes one pass and shares the input's
// memory for strings, and hands anything unusual to encoding/json, so the
// values and error messages are encoding/json's either way. With
// Plugin.LazyImages the row images are not decoded at all unless the
// handler asks (DecodeImages); Lookup reads them from the input's text. Malformed input,
// an input for another ABI major and a call to a role with no handler all
// become error results, never traps, as the ABI requires. A handler that
// panics traps the call: the host treats that as a plugin bug, retries the
// event and finally dead-letters it.
//
// Everything except the import/export glue builds for any GOOS, so a
// plugin's logic can be unit tested natively with [Invoke].
//
// Time and randomness: the WASI clock in the host is fixed and the random
// source is a fixed-seed stream, so that a replay computes the same results.
// Read the time of the call from Input.Context.Now.
package observer
