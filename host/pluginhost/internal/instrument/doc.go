// Package instrument rewrites a WebAssembly module so that the host can
// stop it cheaply: it adds interrupt checks at every loop header, where a
// runaway guest must pass, instead of relying on wazero's
// close-on-context-done, which exits to Go at every loop header (tens of
// nanoseconds per iteration, and Go guests iterate a lot).
//
// Rewrite appends three mutable i32 globals and exports one of them:
//
//	$budget   work left before the next safe point (starts at Budget)
//	$flag     the interrupt flag, exported as ExportName; the host sets it
//	          to 1 (api.MutableGlobal.Set) to stop the running call
//	$scratch  the length operand of the last bulk instruction
//
// It charges the budget at every function entry and after every
// `loop <blocktype>` with 1 + the instructions of that region (the
// function outside its loops, or the loop outside its nested loops):
//
//	global.get $budget  i32.const charge  i32.sub  global.set $budget
//	global.get $budget  i32.const 0  i32.lt_s
//	if
//	  i32.const 0  memory.grow 0  drop     ;; a safe point: exits to Go
//	  global.get $flag
//	  if  unreachable  end                 ;; interrupted: trap
//	  i32.const Budget  global.set $budget
//	end
//
// and around memory.init/copy/fill and table.init/copy/fill, whose last
// operand is a length, it saves the length in $scratch and then charges
// length/16 (bytes) or length/2 (table entries) the same way.
//
// Why a budget and a safe point, not only a flag test: compiled guest code
// cannot be preempted by the Go runtime, and a stop-the-world garbage
// collection waits until every goroutine reaches a safe point. A guest
// spinning on a flag test alone makes the collector wait for it, and the
// timer goroutine that is to set the flag cannot run while the world is
// stopping: the whole process freezes (tried: runtime.GC never returned).
// memory.grow with a delta of 0 changes nothing, but wazero implements it
// as an exit to Go (the same path as a host call), where the goroutine
// can be preempted. The flag is tested after that exit, so the compiler
// cannot have kept an old value of it in a register.
//
// Why charge at function entry and by length, not only per loop
// iteration: between two charges a function runs only the straight-line
// code it was charged for (branches within a region go forward; a call
// charges at the callee's entry), so the budget bounds the work between
// safe points. Counting loop iterations alone would let a loop-free call
// tree too big to finish (whose recursion never overflows the stack), or
// a loop around a 64 MiB memory.fill, run for minutes between safe points;
// wazero's own close-on-context-done checks only loop headers and has the
// first gap.
//
// The rewriter decodes every instruction of every function body with its
// immediates (MVP, sign extension, saturating truncation, bulk memory,
// reference types, SIMD, threads). Anything else — an opcode it does not
// know (tail calls, exception handling, GC, ...), a module without a
// 32-bit memory to grow, a name already exported — is an error, and the
// caller is expected to run the module unmodified under wazero's own
// termination checks. No function, type, table, memory or local is
// added, so every existing index and the name section stay valid; only
// the global and export sections grow (or are created) and the code
// section is re-encoded.
//
// A start section is removed and its function exported as
// StartExportName for the host to call after instantiation: a start
// function runs inside instantiation, before the host can reach the
// flag, so under the rewrite alone a start function that never returns
// could never be stopped.
package instrument
