;; minimal.wat: the smallest observer plugin. A filter that passes every
;; event, written by hand to show the whole ABI (abi/SPEC.md) in one page.
;;
;;   wat2wasm minimal.wat -o minimal.wasm
;;
;; It reads no input, so it also "passes" malformed input: the conformance
;; suite's malformed-input vectors fail for it on purpose. A real plugin
;; validates its input; the examples in examples/plugins/wat/ show how.

(module
  ;; ---- Imports: the Extism kernel, module "extism:host/env" (SPEC 1.1). ----
  ;; Kernel pointers are u64 offsets into the HOST's memory, not into ours:
  ;; bytes move one (store_u8) or eight (store_u64) at a time.

  ;; alloc(n) -> kernel offset of a new n-byte block (0 if n is 0 or no memory).
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  ;; store_u64(p, v): write 8 bytes little endian at kernel offset p.
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  ;; store_u8(p, v): write one byte at kernel offset p.
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  ;; output_set(p, n): the call's output is the n bytes at kernel offset p.
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))

  ;; ---- Our own linear memory: one 64 KiB page is plenty here. ----
  ;; Exported as "memory" by convention (tools and hosts look for it).
  (memory (export "memory") 1)

  ;; ---- The two outputs, as bytes in our memory. ----
  ;; describe's manifest (SPEC 3): the ABI version we speak, a name and
  ;; version for logs, and the roles we export. At offset 16.
  (data (i32.const 16)
    "{\"abi\":\"1.0\",\"name\":\"minimal\",\"version\":\"1.0.0\",\"roles\":[\"filter\"]}")
  ;; filter's result (SPEC 4.2): keep the event. At offset 256.
  (data (i32.const 256) "{\"abi\":\"1.0\",\"pass\":true,\"reason\":\"minimal passes everything\"}")

  ;; $output copies len bytes from our memory at ptr into a new kernel block
  ;; and makes it the call's output. Returns what the export returns: 0 on
  ;; success, 1 if the host refused the allocation (the call then fails).
  (func $output (param $ptr i32) (param $len i32) (result i32)
    (local $block i64)   ;; the kernel block
    (local $i i32)       ;; bytes copied so far
    ;; Ask the host for a block of len bytes.
    (local.set $block (call $alloc (i64.extend_i32_u (local.get $len))))
    (if (i64.eqz (local.get $block)) (then (return (i32.const 1))))
    ;; Copy eight bytes per host call while at least eight remain...
    (block $done8
      (loop $copy8
        (br_if $done8 (i32.gt_u (i32.add (local.get $i) (i32.const 8)) (local.get $len)))
        (call $store_u64
          (i64.add (local.get $block) (i64.extend_i32_u (local.get $i)))
          (i64.load (i32.add (local.get $ptr) (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 8)))
        (br $copy8)))
    ;; ...then the last 0-7 bytes one at a time.
    (block $done1
      (loop $copy1
        (br_if $done1 (i32.ge_u (local.get $i) (local.get $len)))
        (call $store_u8
          (i64.add (local.get $block) (i64.extend_i32_u (local.get $i)))
          (i32.load8_u (i32.add (local.get $ptr) (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $copy1)))
    ;; The block becomes this call's output.
    (call $output_set (local.get $block) (i64.extend_i32_u (local.get $len)))
    (i32.const 0))

  ;; ---- Exports (SPEC 2): () -> i32, 0 = success. ----
  ;; describe: no input; outputs the manifest (67 bytes: count them with `printf %s ... | wc -c`).
  (func (export "describe") (result i32)
    (call $output (i32.const 16) (i32.const 67)))

  ;; filter: would read the event through input_length/input_load_u64; this
  ;; one decides without looking and outputs {"pass": true} (62 bytes).
  (func (export "filter") (result i32)
    (call $output (i32.const 256) (i32.const 62)))
)
