;; strict.wat: a filter that breaks forward compatibility on purpose. It
;; accepts only inputs that begin with the exact bytes {"abi":"1.0", which
;; is what a 1.0 host happens to send, and answers anything else with a
;; bad_input error result, as a plugin with a strict or text-matching
;; parser would. The conformance suite's ABI 1.1 check must catch it.
(module
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (import "extism:host/env" "input_load_u8" (func $input_load_u8 (param i64) (result i32)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (memory (export "memory") 1)
  (data (i32.const 0) "{\"abi\":\"1.0\",")                                          ;; 13 bytes
  (data (i32.const 64) "{\"abi\":\"1.0\",\"name\":\"strict\",\"version\":\"1.0.0\",\"roles\":[\"filter\"]}") ;; 66
  (data (i32.const 192) "{\"abi\":\"1.0\",\"pass\":true,\"reason\":\"a 1.0 input\"}")    ;; 48
  (data (i32.const 256) "{\"abi\":\"1.0\",\"error\":{\"code\":\"bad_input\",\"message\":\"not an ABI 1.0 input\"}}") ;; 75

  ;; out copies n bytes at ptr to a kernel block and makes it the output.
  (func $out (param $ptr i32) (param $n i32) (result i32)
    (local $k i64) (local $i i32)
    (local.set $k (call $alloc (i64.extend_i32_u (local.get $n))))
    (block $done
      (loop $copy
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (call $store_u8
          (i64.add (local.get $k) (i64.extend_i32_u (local.get $i)))
          (i32.load8_u (i32.add (local.get $ptr) (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $copy)))
    (call $output_set (local.get $k) (i64.extend_i32_u (local.get $n)))
    (i32.const 0))

  (func (export "describe") (result i32) (call $out (i32.const 64) (i32.const 66)))

  (func (export "filter") (result i32)
    (local $i i32)
    (if (i64.lt_u (call $input_length) (i64.const 13))
      (then (return (call $out (i32.const 256) (i32.const 75)))))
    (block $done
      (loop $cmp
        (br_if $done (i32.ge_u (local.get $i) (i32.const 13)))
        (if (i32.ne (call $input_load_u8 (i64.extend_i32_u (local.get $i)))
                    (i32.load8_u (local.get $i)))
          (then (return (call $out (i32.const 256) (i32.const 75)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $cmp)))
    (call $out (i32.const 192) (i32.const 48))))
