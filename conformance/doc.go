// Package conformance checks a WebAssembly plugin against observer ABI v1
// (abi/SPEC.md). It is what `observer plugin test FILE.wasm` runs.
//
// A vector is one JSON file holding one case: a role, a config, an event
// (or a raw input, for malformed-input cases) and the expected result or
// error. The generic vectors in vectors/ are embedded in this package and
// apply to every plugin: malformed JSON, empty input, unicode, very large
// numbers, null images, deletes, deeply nested data. For those the
// expectation is a valid result or an error result, never a trap; for
// malformed or empty input it is an error result. Plugin-specific vectors
// live beside the plugin (plugins/<name>/testdata/vectors/) and are passed
// in Options.VectorDirs.
//
// Run loads the plugin into the given Host (which checks the module,
// describe and the ABI version), runs each vector of each declared role
// under the limits, and returns a Report: one Result per vector with a
// diff of expected against got, and a summary line "N passed, N failed".
// A plugin conforms when Report.OK().
//
// Vector format (every field but name, role and expect optional):
//
//	{
//	  "name": "payment above threshold passes",
//	  "role": "filter",                 // filter | act | any (every declared role)
//	  "config": {"field": "after.amount", "op": ">=", "value": 9.99},
//	  "event": { ...abi.Event... },
//	  "raw_input": "...",               // sent verbatim instead of an Input built from event+config
//	  "context": { ...abi.CallContext... },
//	  "expect": {
//	    "pass": true,                   // filter: the decision
//	    "reason_contains": "amount",    // filter: a substring of the reason
//	    "effects": [ ... ],             // act: the effects, compared as canonical JSON
//	    "error": {"code": "bad_config", "message_contains": "config.op", "retryable": false},
//	                                    // an error result ({} = any error result)
//	    "no_trap": true                 // any valid result or error result passes
//	  }
//	}
package conformance
