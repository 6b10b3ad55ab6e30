;; configured.wat: a plugin whose every answer is a value of the operator's
;; plugin config, read with config_get: describe outputs "manifest", filter
;; and enrich output "filter_output", act outputs "act_output" (a missing
;; key makes the export return 1). The ABI versioning tests load it with
;; manifests and results of any version.
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "free" (func $free (param i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "length" (func $length (param i64) (result i64)))
  (import "extism:host/env" "config_get" (func $config_get (param i64) (result i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (memory (export "memory") 1)
  (data (i32.const 0) "manifest")
  (data (i32.const 16) "filter_output")
  (data (i32.const 32) "act_output")

  ;; answer outputs the config value whose key is the n bytes at key.
  (func $answer (param $key i32) (param $n i32) (result i32)
    (local $k i64) (local $i i32) (local $v i64)
    (local.set $k (call $alloc (i64.extend_i32_u (local.get $n))))
    (block $done
      (loop $copy
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (call $store_u8
          (i64.add (local.get $k) (i64.extend_i32_u (local.get $i)))
          (i32.load8_u (i32.add (local.get $key) (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $copy)))
    (local.set $v (call $config_get (local.get $k)))
    (call $free (local.get $k))
    (if (i64.eqz (local.get $v)) (then (return (i32.const 1))))
    ;; the value is already a kernel block: make it the output as is
    (call $output_set (local.get $v) (call $length (local.get $v)))
    (i32.const 0))

  (func (export "describe") (result i32) (call $answer (i32.const 0) (i32.const 8)))
  (func (export "filter") (result i32) (call $answer (i32.const 16) (i32.const 13)))
  (func (export "enrich") (result i32) (call $answer (i32.const 16) (i32.const 13)))
  (func (export "act") (result i32) (call $answer (i32.const 32) (i32.const 10))))
