// Package pluginhost runs observer plugins: WebAssembly modules speaking
// the Extism guest ABI with observer ABI v1 on top (abi/SPEC.md). It is the
// only package that imports wazero.
//
// # Design
//
// It drives wazero directly rather than through the Extism go-sdk, and
// implements the Extism kernel imports (module "extism:host/env": alloc,
// load_u64, input_load_u64, output_set, error_set, config_get, log_*, ...)
// natively in Go. Extism's go-sdk keeps input and output in a second
// "kernel" WebAssembly module and trampolines most imports into it,
// looking functions up by name each time; each lookup builds a new call
// engine, so a call costs tens of microseconds and ~220 KB of garbage.
// Here the kernel memory is a per-instance Go byte slab addressed by u64
// offsets (see kernel), each import is a few Go instructions, export
// handles are cached per instance, and a warm call allocates only what
// wazero itself does.
//
// Lifecycle:
//
//	New(Config)         one shared compilation cache (memory, + disk if CacheDir)
//	Host.Load(Spec)     read → instrument (see "Stopping a call") → compile
//	                    (cached by content hash) → instantiate one instance → _initialize
//	                    → describe → check the manifest (ABI major, roles,
//	                    exports) → *Plugin, or a *LoadError naming the file
//	Plugin.Filter/Act/Call   take an instance from the pool (create up to
//	                    Limits.MaxInstances, else wait), run one call, give it
//	                    back — or discard it if the call trapped, timed out or
//	                    hit a limit: its state is unknown
//	Plugin.Close / Host.Close   stop calls in flight, release everything
//
// Each plugin gets its own wazero runtime (the memory cap and
// close-on-context-done are runtime settings) sharing the Host's
// compilation cache, so loading the same module twice compiles it once.
//
// # Sandbox
//
// WASI preview1 is provided because Go and other toolchains import it, with
// nothing preopened, no environment, no arguments, a wall clock fixed at
// 1970-01-01T00:00:00Z, a monotonic clock that advances 1 µs per read, and
// a fixed-seed random stream: a plugin takes time from Input.Context.Now,
// so a replay computes the same result. No sockets; http_request is denied
// (plugins return http effects instead). Limits per plugin: linear memory
// (WithMemoryLimitPages), the same cap on kernel memory, the output size
// (checked in output_set), and a call timeout.
//
// # Stopping a call
//
// A call must stop at Limits.Timeout, when the caller's context ends, and
// when the plugin is closed, whatever the guest does. And a guest must
// never keep the Go runtime from a safe point for long: compiled guest
// code cannot be preempted, a stop-the-world garbage collection waits for
// every goroutine, so a guest spinning without safe points freezes the
// whole process at the next collection — including the timer meant to
// stop it (measured: runtime.GC never returned).
//
// wazero's answer, WithCloseOnContextDone, exits to Go at every loop
// header to see whether the module was closed: ~25-30 ns per loop
// iteration, and the Go compiler's WebAssembly output routes control flow
// through loops, so a Go guest runs several times slower (the same JSON
// decode measured 250 µs with it, 43 µs without), plus a watcher
// goroutine per call.
//
// So by default (Config.Interrupt = InterruptInstrument) Load rewrites
// the module first (internal/instrument): a budget global is charged at
// every function entry and loop header with the instructions that follow
// (and by length at bulk memory and table instructions); when it runs
// out, about every 10^5 instructions, the guest executes memory.grow 0,
// which wazero implements as an exit to Go — a safe point — and then
// tests an exported interrupt flag, trapping with unreachable if it is
// set. The module is then compiled in a runtime without
// close-on-context-done. Per call the instance arms its own timer (re-armed,
// not reallocated) and, only if the caller's context can end,
// context.AfterFunc; either moves the instance's state from running to the
// reason and sets the flag (Plugin.Close does the same for every busy
// instance). The guest traps at its next safe point, the state classifies
// the trap as KindTimeout or KindCanceled, and the instance is discarded.
// The checks cost about half a nanosecond per loop iteration and no
// goroutine; a stop takes effect within one budget (tens of microseconds
// of typical code).
//
// A module the rewriter cannot handle (an instruction it does not know,
// such as tail calls or exception handling; no 32-bit memory to grow; the
// reserved export name already taken) is loaded unmodified under
// close-on-context-done, with a debug log line saying why; so is every
// module when Config.Interrupt is InterruptContext. Plugin.Interrupt says
// which applies. If an instrumented module failed to compile while the
// original compiles, the original is used and a warning logged. The
// rewrite adds ~15 ms to loading a 3.7 MB Go guest.
//
// # Measured cost
//
// On a 2-core AMD EPYC shared with other work, Go 1.26, wazero 1.12:
// BenchmarkFilter and BenchmarkCallOverhead in one run (both modes side by
// side), and internal/instrument's BenchmarkLoop; ranges over 3 runs. The
// field-filter plugin (Go guest) on a ~700-byte Pagila payment input:
//
//	this host, Call (raw bytes), instrumented       26-36 µs/call,   2 allocs,  81 B
//	this host, Call, close-on-context-done        125-160 µs/call,   5 allocs, 257 B
//	  with a cancelable context: +0-5 µs instrumented (4 allocs, AfterFunc)
//	this host, Filter (typed, JSON), instrumented   32-51 µs/call,  39 allocs,  2.0 KB
//	this host, Filter, close-on-context-done      175-205 µs/call,  42 allocs,  2.1 KB
//	Extism go-sdk Call, no timeout                 64-84 µs/call,  49 allocs,  202 KB
//	Extism go-sdk Call, with a timeout            191-241 µs/call, 105 allocs,  209 KB
//	native Go, same logic                          21-24 µs/call, 140 allocs,  8.9 KB
//	host overhead alone (a 16-byte echo)    1.2 µs instrumented, 4-5 µs close-on-context-done
//	one iteration of a tight counting loop  ~0.7 ns unchecked, ~1.3 ns instrumented, ~30 ns close-on-context-done
//
// Instrumented, a Go guest's filter call costs about 1.5× the same
// logic in native Go, and less than the Extism go-sdk even without any
// protection against a looping guest. (The guest SDK's JSON handling was
// being optimised at the time of these figures; earlier builds of the same
// plugin took ~0.9 ms under close-on-context-done.)
package pluginhost
