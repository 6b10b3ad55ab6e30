// Package instrument rewrites a WebAssembly module so that the host can
// stop it cheaply: it adds interrupt checks at every loop header, where a
// runaway guest must pass, instead of relying on wazero's
// close-on-context-done, which exits to Go at every loop header (tens of
// nanoseconds per iteration, and Go guests iterate a lot).
//
// Rewrite appends two mutable i32 globals and exports one of them:
//
//	$budget  loop headers left before the next safe point (starts at Budget)
//	$flag    the interrupt flag, exported as ExportName; the host sets it
//	         to 1 (api.MutableGlobal.Set) to stop the running call
//
// and inserts after every `loop <blocktype>`:
//
//	global.get $budget  i32.const 1  i32.sub  global.set $budget
//	global.get $budget  i32.eqz
//	if
//	  i32.const 0  memory.grow 0  drop     ;; a safe point: exits to Go
//	  global.get $flag
//	  if  unreachable  end                 ;; interrupted: trap
//	  i32.const Budget  global.set $budget
//	end
//
// Why a budget and a safe point, not only a flag test: compiled guest code
// cannot be preempted by the Go runtime, and a stop-the-world garbage
// collection waits until every goroutine reaches a safe point. A guest
// spinning on a flag test alone would make the collector wait for it, and
// the timer goroutine that is to set the flag cannot run while the world is
// stopping: the whole process would freeze. memory.grow with a delta of 0
// changes nothing, but wazero implements it as an exit to Go (the same
// path as a host call), where the goroutine can be preempted. So a loop
// reaches Go once per Budget iterations instead of every iteration, and
// the flag is tested there, after the exit, so the compiler cannot have
// kept an old value of it in a register. An interrupt therefore takes
// effect within Budget loop iterations.
//
// The rewriter decodes every instruction of every function body with its
// immediates (MVP, sign extension, saturating truncation, bulk memory,
// reference types, SIMD, threads). Anything else — an opcode it does not
// know (tail calls, exception handling, GC, ...), a module without a
// 32-bit memory to grow, a name already exported — is an error, and the
// caller is expected to run the module unmodified under wazero's own
// termination checks. No function, type, table or memory is added, so
// every existing index and the name section stay valid; only the global
// and export sections grow (or are created) and the code section is
// re-encoded.
package instrument
