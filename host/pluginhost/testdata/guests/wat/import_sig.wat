;; import_sig.wat: an observer plugin that imports extism:host/env.config_get with the wrong signature: refused at load.
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/env" "config_get" (func $config_get (param i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "{\"abi\":\"1.0\",\"name\":\"import_sig\",\"roles\":[\"filter\"]}")
  (data (i32.const 256) "{\"abi\":\"1.0\",\"pass\":true}")
  ;; $out sets the n bytes at 0 as the output.
  (func $out (param $n i32) (local $k i64) (local $i i32)
    (local.set $k (call $alloc (i64.extend_i32_u (local.get $n))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (call $store_u8 (i64.add (local.get $k) (i64.extend_i32_u (local.get $i))) (i32.load8_u (local.get $i)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (call $output_set (local.get $k) (i64.extend_i32_u (local.get $n))))
  (func (export "describe") (result i32) (call $out (i32.const 52)) (i32.const 0))
  (func (export "filter") (result i32)
    (memory.copy (i32.const 0) (i32.const 256) (i32.const 25))
    (call $out (i32.const 25)) (i32.const 0))
)
