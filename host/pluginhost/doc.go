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
//	Host.Load(Spec)     read → check header and imports → compile (cached by
//	                    content hash) → instantiate one instance → _initialize
//	                    → describe → check the manifest (ABI major, roles,
//	                    exports) → *Plugin, or a *LoadError naming the file
//	Plugin.Filter/Act/Call   take an instance from the pool (create up to
//	                    Limits.MaxInstances, else wait), run one call, give it
//	                    back — or discard it if the call trapped, timed out or
//	                    hit a limit: its state is unknown
//	Plugin.Close / Host.Close   stop calls in flight, release everything
//
// Each plugin gets its own wazero runtime (the memory cap is a runtime
// setting) sharing the Host's compilation cache, so loading the same
// module twice compiles it once.
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
// Every runtime is built WithCloseOnContextDone, so compiled code checks at
// each loop header whether its module was closed: a per-instance timer
// closes the module at Limits.Timeout, and context.AfterFunc closes it when
// the caller's context ends. Without this an infinite loop would hang its
// goroutine and then the whole process at the next garbage collection.
//
// # Measured cost (2-core AMD EPYC, Go 1.26, wazero 1.12; BenchmarkFilter)
//
// The field-filter plugin (Go guest) on a ~700-byte Pagila payment input:
//
//	this host, Call (raw bytes)           ~0.87-1.0 ms/call,  5-7 allocs, 0.4-11 KB
//	this host, Filter (typed, JSON)       ~0.91 ms/call,     42 allocs,  2.1 KB
//	Extism go-sdk Call, no timeout        ~0.27 ms/call,     50 allocs,  225 KB
//	Extism go-sdk Call, with a timeout    ~1.08 ms/call,    106 allocs,  240 KB
//	native Go, same logic                 ~0.02 ms/call,    140 allocs,  8.9 KB
//	host overhead alone (BenchmarkCallOverhead: a 16-byte echo) ~4.7 µs, 5 allocs
//
// The guest's own work dominates, and it is slowed by the termination
// checks: wazero implements them as an exit to Go at every loop header, and
// the Go compiler's WebAssembly output routes all control flow through a
// loop, so a Go guest runs about 6× slower with them than without (the same
// JSON decode measured 250 µs vs 43 µs). Guests from C, Rust or
// AssemblyScript, whose loops are real loops, pay far less. The go-sdk is
// faster only when run without a timeout, that is without protection
// against a looping guest; with the same protection it is slower and
// allocates 240 KB per call. Lowering the Go-guest cost further means
// inserting cheaper interrupt checks into the module (a rewriter), or
// guests with fewer loop iterations; both are left for later.
package pluginhost
