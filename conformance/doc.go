// Package conformance checks a WebAssembly plugin against observer ABI v1
// (abi/SPEC.md). It is what `observer plugin test FILE.wasm` runs, and what
// every first-party plugin, SDK and example is held to.
//
// # What a run checks
//
// Run loads the plugin into a pluginhost.Host (which refuses a module with
// foreign imports, without describe, of another ABI major, or whose roles
// lack their exports), then:
//
//  1. the manifest: abi, name, version, roles, and for act the effect
//     types, all of ABI 1.0;
//  2. every generic vector (vectors/, embedded; role "any", run once per
//     declared role): input that is not one JSON object of this major
//     (malformed, empty, trailing data, an array, null, a string, another
//     major) must give an error result; inserts, updates with every field,
//     deletes, null, missing and non-object events, null and empty images,
//     unicode and escapes,
//     huge and exotic numbers, deep nesting, a 2000-column row, a 256 KiB
//     row and one input repeated 200 times on one instance must give a
//     result or an error result — never a trap or a limit;
//  3. the plugin's own vectors (Options.VectorDirs), each with an exact
//     expectation;
//  4. every result against SPEC §4: effects of a known type with a valid
//     HTTP method, an absolute http(s) URL, header names that are tokens
//     and values without CR/LF, log levels of the ABI;
//  5. forward compatibility (SPEC §7), once per role: each vector whose
//     input the runner builds is sent again as an ABI 1.1 input carrying
//     fields 1.0 does not define (top level, context, event, with
//     look-alikes of real fields inside), and must give the same kind of
//     answer: the same decision, error code, effect types and targets.
//
// Each check is a Result with a diff of expected against got; a Report
// holds them with the summary "N passed, N failed" and marshals to the
// JSON of `plugin test --json`. A plugin conforms when Report.OK().
//
// # Vector format
//
// A vector is one JSON file holding one case; unknown fields are errors.
// Every field but name, role, expect and one of event/raw_input is
// optional:
//
//	{
//	  "name": "payment above threshold passes",
//	  "description": "...",
//	  "role": "filter",                 // filter | act | any (every declared role)
//	  "config": {"min": 9.99},          // the input's config
//	  "event": { ...abi.Event... },     // the input's event
//	  "context": { ...abi.CallContext... },   // default: observer "conformance", attempt 1, now 2026-01-01T00:00:00Z
//	  "raw_input": "...",               // sent verbatim instead (not with event/config/context)
//	  "repeat": 200,                    // call this many times on one instance; every answer must be the same
//	  "limits": {"timeout": "150ms", "memory_bytes": 25165824, "max_output_bytes": 65536},
//	  "expect": {                       // exactly one of:
//	    "pass": true, "reason_contains": "amount",   // a filter result (either or both)
//	    "effects": [ ... ],             // an act result; compared as canonical JSON (key order, body_json included)
//	    "error": {"code": "bad_config", "message_contains": "min", "retryable": false},
//	                                    // an error result; omitted fields match anything, {} = any error result
//	    "no_trap": true,                // any result or error result
//	    "limit": "timeout"              // the call must be stopped by this limit: timeout | memory limit | output too large
//	  }
//	}
//
// testdata/ holds the runner's own test material: effects/ (every result
// and effect form, through the mirror guest), nonconforming/ (one broken
// result or mismatched expectation per file, each of which must fail),
// limits/ and hostile/ (the hostile guest under and over its limits).
package conformance
