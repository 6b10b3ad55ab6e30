;; min-amount.wat: the min-amount filter, written by hand in WebAssembly text.
;;
;; Passes an event when event.after.amount is a JSON number >= config.min;
;; otherwise drops it with a reason that names the amount. A missing or
;; non-numeric config.min is an error result with code bad_config.
;; Numbers are compared exactly, as decimals, on their JSON text: no
;; conversion to floating point, so 30-digit amounts and 1e400 compare right.
;;
;; Build: wat2wasm min-amount.wat -o min-amount.wasm
;;
;; The JSON scanner below is small and specialised but complete for what it
;; does: it validates the whole input (RFC 8259: strings with their escapes,
;; the number grammar, literals, nesting up to 4096 levels without recursion)
;; before looking anything up, so malformed input always gets an error
;; result and never a trap. Keys are compared as raw bytes: a key written
;; with \u escapes in the input does not match.
;;
;; Memory map (one page is 64 KiB):
;;   0x0040  two number records for the comparison (32 bytes each)
;;   0x0100  constant strings, NUL-terminated, in 128-byte slots
;;   0x1000  the nesting stack of the validator: one byte per open { or [
;;   0x2000  the output being built (bounded: numbers in reasons are cut)
;;   0x10000 the input, followed by a NUL and 15 zero bytes of slack

(module
  ;; The Extism kernel (abi/SPEC.md 1.1). Kernel pointers are u64 offsets in
  ;; the host's memory; bytes move 8 (u64) or 1 (u8) at a time.
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (import "extism:host/env" "input_load_u64" (func $input_load_u64 (param i64) (result i64)))
  (import "extism:host/env" "input_load_u8" (func $input_load_u8 (param i64) (result i32)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))

  (memory (export "memory") 2)

  (global $in_len (mut i32) (i32.const 0))   ;; input length in bytes
  (global $out (mut i32) (i32.const 0))      ;; where the next output byte goes
  (global $err_at (mut i32) (i32.const 0))   ;; where validation failed
  (global $root (mut i32) (i32.const 0))     ;; the input object
  (global $event (mut i32) (i32.const 0))    ;; input.event

  ;; ---- Constant strings (already JSON-escaped where they go into JSON). ----
  (data (i32.const 0x100) "{\"abi\":\"1.0\",\"name\":\"min-amount\",\"version\":\"1.0.0\",\"roles\":[\"filter\"],\"description\":\"keeps events whose after.amount is at least config.min (WAT, exact decimals)\"}\00")
  (data (i32.const 0x200) "{\"abi\":\"1.0\",\"error\":{\"code\":\"\00")
  (data (i32.const 0x280) "\",\"message\":\"\00")
  (data (i32.const 0x300) "\"}}\00")
  (data (i32.const 0x380) "{\"abi\":\"1.0\",\"pass\":true,\"reason\":\"\00")
  (data (i32.const 0x400) "{\"abi\":\"1.0\",\"pass\":false,\"reason\":\"\00")
  (data (i32.const 0x480) "\"}\00")
  (data (i32.const 0x500) "bad_input\00")
  (data (i32.const 0x540) "bad_config\00")
  (data (i32.const 0x580) "no_memory\00")
  (data (i32.const 0x600) "input is empty: want an ABI 1.0 input object\00")
  (data (i32.const 0x680) "input is not valid JSON: error at byte \00")
  (data (i32.const 0x700) "input is not a JSON object: want an ABI 1.0 input object\00")
  (data (i32.const 0x780) "input has no abi version string\00")
  (data (i32.const 0x800) "input is not ABI 1.x: this plugin speaks ABI 1.0\00")
  (data (i32.const 0x880) "input has no event object\00")
  (data (i32.const 0x900) "the input does not fit in memory\00")
  (data (i32.const 0x980) "config.min: want a number\00")
  (data (i32.const 0xa00) "no after image, so no amount\00")
  (data (i32.const 0xa80) "after has no amount\00")
  (data (i32.const 0xb00) "after.amount is not a number\00")
  (data (i32.const 0xb80) "after.amount = \00")
  (data (i32.const 0xc00) " >= \00")
  (data (i32.const 0xc80) " < \00")
  (data (i32.const 0xd00) "...\00")
  ;; Keys, compared with explicit lengths.
  (data (i32.const 0xe00) "abi")
  (data (i32.const 0xe10) "event")
  (data (i32.const 0xe20) "config")
  (data (i32.const 0xe30) "min")
  (data (i32.const 0xe40) "after")
  (data (i32.const 0xe50) "amount")

  ;; ================================================================ output

  ;; Appends the NUL-terminated string at $s to the output.
  (func $put_z (param $s i32)
    (local $c i32)
    (loop $next
      (local.set $c (i32.load8_u (local.get $s)))
      (if (local.get $c)
        (then
          (i32.store8 (global.get $out) (local.get $c))
          (global.set $out (i32.add (global.get $out) (i32.const 1)))
          (local.set $s (i32.add (local.get $s) (i32.const 1)))
          (br $next)))))

  ;; Appends $len bytes at $p, cut to 64 bytes plus "..." if longer (numbers
  ;; in reasons: a million-digit amount must not blow up the output).
  (func $put_cut (param $p i32) (param $len i32)
    (if (i32.gt_u (local.get $len) (i32.const 64))
      (then
        (memory.copy (global.get $out) (local.get $p) (i32.const 64))
        (global.set $out (i32.add (global.get $out) (i32.const 64)))
        (call $put_z (i32.const 0xd00)))
      (else
        (memory.copy (global.get $out) (local.get $p) (local.get $len))
        (global.set $out (i32.add (global.get $out) (local.get $len))))))

  ;; Appends $v in decimal.
  (func $put_u32 (param $v i32)
    (local $div i32)
    (local.set $div (i32.const 1))
    ;; the largest power of ten <= v
    (block $found
      (loop $up
        (br_if $found (i32.lt_u (i32.div_u (local.get $v) (local.get $div)) (i32.const 10)))
        (local.set $div (i32.mul (local.get $div) (i32.const 10)))
        (br $up)))
    (loop $digit
      (i32.store8 (global.get $out)
        (i32.add (i32.const 48) (i32.rem_u (i32.div_u (local.get $v) (local.get $div)) (i32.const 10))))
      (global.set $out (i32.add (global.get $out) (i32.const 1)))
      (local.set $div (i32.div_u (local.get $div) (i32.const 10)))
      (br_if $digit (local.get $div))))

  ;; Starts an error result with $code; the caller appends the message
  ;; (already JSON-safe) and calls $end_error.
  (func $begin_error (param $code i32) (param $msg i32)
    (global.set $out (i32.const 0x2000))
    (call $put_z (i32.const 0x200))
    (call $put_z (local.get $code))
    (call $put_z (i32.const 0x280))
    (call $put_z (local.get $msg)))
  (func $end_error (call $put_z (i32.const 0x300)))
  (func $error (param $code i32) (param $msg i32)
    (call $begin_error (local.get $code) (local.get $msg))
    (call $end_error))

  ;; A filter result: pass (1) or drop (0), with a reason to be appended
  ;; before $end_result.
  (func $begin_result (param $pass i32) (param $reason i32)
    (global.set $out (i32.const 0x2000))
    (call $put_z (select (i32.const 0x380) (i32.const 0x400) (local.get $pass)))
    (call $put_z (local.get $reason)))
  (func $end_result (call $put_z (i32.const 0x480)))

  ;; Copies the output (0x2000 up to $out) into a kernel block and sets it
  ;; as the call's output. Returns the export's result: 0, or 1 if the host
  ;; refused the allocation.
  (func $emit (result i32)
    (local $len i32) (local $block i64) (local $i i32)
    (local.set $len (i32.sub (global.get $out) (i32.const 0x2000)))
    (local.set $block (call $alloc (i64.extend_i32_u (local.get $len))))
    (if (i64.eqz (local.get $block)) (then (return (i32.const 1))))
    (block $done8
      (loop $copy8
        (br_if $done8 (i32.gt_u (i32.add (local.get $i) (i32.const 8)) (local.get $len)))
        (call $store_u64 (i64.add (local.get $block) (i64.extend_i32_u (local.get $i)))
                         (i64.load (i32.add (i32.const 0x2000) (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 8)))
        (br $copy8)))
    (block $done1
      (loop $copy1
        (br_if $done1 (i32.ge_u (local.get $i) (local.get $len)))
        (call $store_u8 (i64.add (local.get $block) (i64.extend_i32_u (local.get $i)))
                        (i32.load8_u (i32.add (i32.const 0x2000) (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $copy1)))
    (call $output_set (local.get $block) (i64.extend_i32_u (local.get $len)))
    (i32.const 0))

  ;; ================================================================= input

  ;; Copies the input to 0x10000, growing memory as needed, and ends it with
  ;; a NUL (every scan stops there: NUL is never valid JSON outside a string
  ;; and never allowed raw inside one). Returns 0 after writing a no_memory
  ;; error result if the input does not fit.
  (func $read_input (result i32)
    (local $n i64) (local $pages i64) (local $i i32)
    (local.set $n (call $input_length))
    ;; pages for 64 KiB of our own data + the input + 16 bytes of slack
    (local.set $pages (i64.shr_u (i64.add (local.get $n) (i64.const 0x1ffff)) (i64.const 16)))
    (if (i64.gt_u (local.get $pages) (i64.extend_i32_u (memory.size)))
      (then
        (if (i64.gt_u (local.get $pages) (i64.const 65536))
          (then (call $error (i32.const 0x580) (i32.const 0x900)) (return (i32.const 0))))
        (if (i32.eq (memory.grow (i32.sub (i32.wrap_i64 (local.get $pages)) (memory.size))) (i32.const -1))
          (then (call $error (i32.const 0x580) (i32.const 0x900)) (return (i32.const 0))))))
    (global.set $in_len (i32.wrap_i64 (local.get $n)))
    (block $done8
      (loop $copy8
        (br_if $done8 (i32.gt_u (i32.add (local.get $i) (i32.const 8)) (global.get $in_len)))
        (i64.store (i32.add (i32.const 0x10000) (local.get $i))
                   (call $input_load_u64 (i64.extend_i32_u (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 8)))
        (br $copy8)))
    (block $done1
      (loop $copy1
        (br_if $done1 (i32.ge_u (local.get $i) (global.get $in_len)))
        (i32.store8 (i32.add (i32.const 0x10000) (local.get $i))
                    (call $input_load_u8 (i64.extend_i32_u (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $copy1)))
    ;; the NUL sentinel and slack (a longer earlier input may have left bytes)
    (memory.fill (i32.add (i32.const 0x10000) (global.get $in_len)) (i32.const 0) (i32.const 16))
    (i32.const 1))

  ;; ========================================================= JSON scanning
  ;; Positions are addresses in memory; -1 means "invalid" (or "not found").

  (func $is_digit (param $c i32) (result i32)
    (i32.lt_u (i32.sub (local.get $c) (i32.const 48)) (i32.const 10)))

  (func $is_hex (param $c i32) (result i32)
    (i32.or (call $is_digit (local.get $c))
            (i32.lt_u (i32.sub (i32.or (local.get $c) (i32.const 0x20)) (i32.const 97)) (i32.const 6))))

  ;; The character after a backslash: one of " \ / b f n r t (u is handled apart).
  (func $is_escape (param $c i32) (result i32)
    (i32.or
      (i32.or (i32.or (i32.eq (local.get $c) (i32.const 34)) (i32.eq (local.get $c) (i32.const 92)))
              (i32.or (i32.eq (local.get $c) (i32.const 47)) (i32.eq (local.get $c) (i32.const 98))))
      (i32.or (i32.or (i32.eq (local.get $c) (i32.const 102)) (i32.eq (local.get $c) (i32.const 110)))
              (i32.or (i32.eq (local.get $c) (i32.const 114)) (i32.eq (local.get $c) (i32.const 116))))))

  ;; Records where validation failed; returns -1.
  (func $fail (param $p i32) (result i32)
    (global.set $err_at (local.get $p))
    (i32.const -1))

  ;; Skips spaces, tabs, newlines and carriage returns.
  (func $ws (param $p i32) (result i32)
    (local $c i32)
    (loop $more
      (local.set $c (i32.load8_u (local.get $p)))
      (if (i32.or (i32.or (i32.eq (local.get $c) (i32.const 32)) (i32.eq (local.get $c) (i32.const 9)))
                  (i32.or (i32.eq (local.get $c) (i32.const 10)) (i32.eq (local.get $c) (i32.const 13))))
        (then (local.set $p (i32.add (local.get $p) (i32.const 1))) (br $more))))
    (local.get $p))

  ;; Skips decimal digits.
  (func $digits (param $p i32) (result i32)
    (loop $more
      (if (call $is_digit (i32.load8_u (local.get $p)))
        (then (local.set $p (i32.add (local.get $p) (i32.const 1))) (br $more))))
    (local.get $p))

  ;; $p is at a '"': returns the position after the closing quote, or -1.
  (func $skip_string (param $p i32) (result i32)
    (local $c i32)
    (local.set $p (i32.add (local.get $p) (i32.const 1)))
    (loop $next
      (local.set $c (i32.load8_u (local.get $p)))
      (if (i32.eq (local.get $c) (i32.const 34))          ;; closing quote
        (then (return (i32.add (local.get $p) (i32.const 1)))))
      (if (i32.lt_u (local.get $c) (i32.const 32))        ;; control character, or the end
        (then (return (call $fail (local.get $p)))))
      (if (i32.eq (local.get $c) (i32.const 92))          ;; backslash
        (then
          (local.set $c (i32.load8_u offset=1 (local.get $p)))
          (if (i32.eq (local.get $c) (i32.const 117))     ;; \uXXXX: four hex digits
            (then
              (if (i32.eqz (i32.and
                     (i32.and (call $is_hex (i32.load8_u offset=2 (local.get $p)))
                              (call $is_hex (i32.load8_u offset=3 (local.get $p))))
                     (i32.and (call $is_hex (i32.load8_u offset=4 (local.get $p)))
                              (call $is_hex (i32.load8_u offset=5 (local.get $p))))))
                (then (return (call $fail (local.get $p)))))
              (local.set $p (i32.add (local.get $p) (i32.const 6)))
              (br $next)))
          (if (i32.eqz (call $is_escape (local.get $c)))
            (then (return (call $fail (local.get $p)))))
          (local.set $p (i32.add (local.get $p) (i32.const 2)))
          (br $next)))
      (local.set $p (i32.add (local.get $p) (i32.const 1)))
      (br $next))
    (unreachable))

  ;; -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)? : the end, or -1.
  (func $skip_number (param $p i32) (result i32)
    (local $start i32)
    (local.set $start (local.get $p))
    (if (i32.eq (i32.load8_u (local.get $p)) (i32.const 45))
      (then (local.set $p (i32.add (local.get $p) (i32.const 1)))))
    (if (i32.eq (i32.load8_u (local.get $p)) (i32.const 48))
      (then (local.set $p (i32.add (local.get $p) (i32.const 1))))
      (else
        (if (i32.eqz (call $is_digit (i32.load8_u (local.get $p))))
          (then (return (call $fail (local.get $start)))))
        (local.set $p (call $digits (local.get $p)))))
    (if (i32.eq (i32.load8_u (local.get $p)) (i32.const 46))      ;; fraction
      (then
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (if (i32.eqz (call $is_digit (i32.load8_u (local.get $p))))
          (then (return (call $fail (local.get $start)))))
        (local.set $p (call $digits (local.get $p)))))
    (if (i32.eq (i32.or (i32.load8_u (local.get $p)) (i32.const 0x20)) (i32.const 101)) ;; e or E
      (then
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (if (i32.or (i32.eq (i32.load8_u (local.get $p)) (i32.const 43))
                    (i32.eq (i32.load8_u (local.get $p)) (i32.const 45)))
          (then (local.set $p (i32.add (local.get $p) (i32.const 1)))))
        (if (i32.eqz (call $is_digit (i32.load8_u (local.get $p))))
          (then (return (call $fail (local.get $start)))))
        (local.set $p (call $digits (local.get $p)))))
    (local.get $p))

  ;; Validates and skips one JSON value at $p (after optional whitespace):
  ;; the position after it, or -1. No recursion: the kind of each open
  ;; container ('{' or '[') is one byte of the stack at 0x1000, so deep
  ;; nesting costs no call stack; beyond 4096 levels it is an error.
  (func $skip_value (param $p i32) (result i32)
    (local $c i32) (local $depth i32) (local $key i32) (local $top i32)
    (loop $value
      ;; an object member starts with its key and a colon
      (if (local.get $key)
        (then
          (local.set $key (i32.const 0))
          (local.set $p (call $ws (local.get $p)))
          (if (i32.ne (i32.load8_u (local.get $p)) (i32.const 34))
            (then (return (call $fail (local.get $p)))))
          (local.set $p (call $skip_string (local.get $p)))
          (if (i32.lt_s (local.get $p) (i32.const 0)) (then (return (i32.const -1))))
          (local.set $p (call $ws (local.get $p)))
          (if (i32.ne (i32.load8_u (local.get $p)) (i32.const 58))
            (then (return (call $fail (local.get $p)))))
          (local.set $p (i32.add (local.get $p) (i32.const 1)))))
      (local.set $p (call $ws (local.get $p)))
      (local.set $c (i32.load8_u (local.get $p)))
      (block $after
        ;; { or [: open a container
        (if (i32.or (i32.eq (local.get $c) (i32.const 123)) (i32.eq (local.get $c) (i32.const 91)))
          (then
            (if (i32.ge_u (local.get $depth) (i32.const 4096))
              (then (return (call $fail (local.get $p)))))
            (i32.store8 (i32.add (i32.const 0x1000) (local.get $depth)) (local.get $c))
            (local.set $depth (i32.add (local.get $depth) (i32.const 1)))
            (local.set $p (call $ws (i32.add (local.get $p) (i32.const 1))))
            ;; empty: the closer is the opener + 2 ('{' 123 -> '}' 125, '[' 91 -> ']' 93)
            (if (i32.eq (i32.load8_u (local.get $p)) (i32.add (local.get $c) (i32.const 2)))
              (then
                (local.set $p (i32.add (local.get $p) (i32.const 1)))
                (local.set $depth (i32.sub (local.get $depth) (i32.const 1)))
                (br $after)))
            (local.set $key (i32.eq (local.get $c) (i32.const 123)))
            (br $value)))
        (if (i32.eq (local.get $c) (i32.const 34))
          (then
            (local.set $p (call $skip_string (local.get $p)))
            (if (i32.lt_s (local.get $p) (i32.const 0)) (then (return (i32.const -1))))
            (br $after)))
        ;; the literals, compared four bytes at a time (little endian):
        ;; "true" = 0x65757274, "null" = 0x6c6c756e, "fals" = 0x736c6166 + 'e'
        (if (i32.eq (i32.load (local.get $p)) (i32.const 0x65757274))
          (then (local.set $p (i32.add (local.get $p) (i32.const 4))) (br $after)))
        (if (i32.eq (i32.load (local.get $p)) (i32.const 0x6c6c756e))
          (then (local.set $p (i32.add (local.get $p) (i32.const 4))) (br $after)))
        (if (i32.and (i32.eq (i32.load (local.get $p)) (i32.const 0x736c6166))
                     (i32.eq (i32.load8_u offset=4 (local.get $p)) (i32.const 101)))
          (then (local.set $p (i32.add (local.get $p) (i32.const 5))) (br $after)))
        (if (i32.or (i32.eq (local.get $c) (i32.const 45)) (call $is_digit (local.get $c)))
          (then
            (local.set $p (call $skip_number (local.get $p)))
            (if (i32.lt_s (local.get $p) (i32.const 0)) (then (return (i32.const -1))))
            (br $after)))
        (return (call $fail (local.get $p))))
      ;; after a value: close containers, or go on after a comma
      (loop $close
        (if (i32.eqz (local.get $depth)) (then (return (local.get $p))))
        (local.set $p (call $ws (local.get $p)))
        (local.set $c (i32.load8_u (local.get $p)))
        (local.set $top (i32.load8_u (i32.add (i32.const 0x0fff) (local.get $depth))))
        (if (i32.eq (local.get $c) (i32.const 44))
          (then
            (local.set $p (i32.add (local.get $p) (i32.const 1)))
            (local.set $key (i32.eq (local.get $top) (i32.const 123)))
            (br $value)))
        (if (i32.eq (local.get $c) (i32.add (local.get $top) (i32.const 2)))
          (then
            (local.set $p (i32.add (local.get $p) (i32.const 1)))
            (local.set $depth (i32.sub (local.get $depth) (i32.const 1)))
            (br $close)))
        (return (call $fail (local.get $p)))))
    (unreachable))

  ;; Whether the $n bytes at $a and $b are equal.
  (func $memeq (param $a i32) (param $b i32) (param $n i32) (result i32)
    (block $differ
      (loop $next
        (if (i32.eqz (local.get $n)) (then (return (i32.const 1))))
        (br_if $differ (i32.ne (i32.load8_u (local.get $a)) (i32.load8_u (local.get $b))))
        (local.set $a (i32.add (local.get $a) (i32.const 1)))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $next)))
    (i32.const 0))

  ;; The value of member $key ($klen bytes) of the (validated) object at
  ;; $obj, or -1. Of duplicate keys the last counts, as in Go's encoding/json.
  (func $find (param $obj i32) (param $key i32) (param $klen i32) (result i32)
    (local $p i32) (local $k i32) (local $v i32) (local $found i32)
    (local.set $found (i32.const -1))
    (if (i32.ne (call $kind (local.get $obj)) (i32.const 123)) (then (return (i32.const -1))))
    (local.set $p (call $ws (i32.add (local.get $obj) (i32.const 1))))
    (if (i32.eq (i32.load8_u (local.get $p)) (i32.const 125)) (then (return (i32.const -1))))
    (loop $member
      ;; "key" : value
      (local.set $k (call $skip_string (local.get $p)))
      (local.set $v (call $ws (i32.add (call $ws (local.get $k)) (i32.const 1))))
      (if (i32.and (i32.eq (i32.sub (i32.sub (local.get $k) (local.get $p)) (i32.const 2)) (local.get $klen))
                   (call $memeq (i32.add (local.get $p) (i32.const 1)) (local.get $key) (local.get $klen)))
        (then (local.set $found (local.get $v))))
      (local.set $p (call $ws (call $skip_value (local.get $v))))
      (if (i32.eq (i32.load8_u (local.get $p)) (i32.const 44))
        (then
          (local.set $p (call $ws (i32.add (local.get $p) (i32.const 1))))
          (br $member))))
    (local.get $found))

  ;; Checks the input (SPEC 4.1) and sets $root and $event. Returns 0 after
  ;; writing a bad_input error result if it is not a valid ABI 1.x input.
  (func $check_input (result i32)
    (local $p i32) (local $end i32) (local $v i32)
    (local.set $end (i32.add (i32.const 0x10000) (global.get $in_len)))
    (local.set $p (call $ws (i32.const 0x10000)))
    (if (i32.eq (local.get $p) (local.get $end))
      (then (call $error (i32.const 0x500) (i32.const 0x600)) (return (i32.const 0))))
    (local.set $v (call $skip_value (local.get $p)))
    (if (i32.ge_s (local.get $v) (i32.const 0))
      (then
        (local.set $v (call $ws (local.get $v)))
        ;; anything after the value (a NUL included) is an error there
        (if (i32.ne (local.get $v) (local.get $end)) (then (global.set $err_at (local.get $v))))))
    (if (i32.ne (local.get $v) (local.get $end))
      (then
        (call $begin_error (i32.const 0x500) (i32.const 0x680))
        (call $put_u32 (i32.sub (global.get $err_at) (i32.const 0x10000)))
        (call $end_error)
        (return (i32.const 0))))
    (if (i32.ne (i32.load8_u (local.get $p)) (i32.const 123))
      (then (call $error (i32.const 0x500) (i32.const 0x700)) (return (i32.const 0))))
    (global.set $root (local.get $p))
    ;; "abi": "1.<minor>"
    (local.set $v (call $find (local.get $p) (i32.const 0xe00) (i32.const 3)))
    (if (i32.ne (call $kind (local.get $v)) (i32.const 34))
      (then (call $error (i32.const 0x500) (i32.const 0x780)) (return (i32.const 0))))
    (if (i32.eqz (i32.and (i32.and (i32.eq (i32.load8_u offset=1 (local.get $v)) (i32.const 49))
                                   (i32.eq (i32.load8_u offset=2 (local.get $v)) (i32.const 46)))
                          (call $is_digit (i32.load8_u offset=3 (local.get $v)))))
      (then (call $error (i32.const 0x500) (i32.const 0x800)) (return (i32.const 0))))
    ;; "event": { ... }
    (global.set $event (call $find (local.get $p) (i32.const 0xe10) (i32.const 5)))
    (if (i32.ne (call $kind (global.get $event)) (i32.const 123))
      (then (call $error (i32.const 0x500) (i32.const 0x880)) (return (i32.const 0))))
    (i32.const 1))

  ;; The first byte of a found value, or 0 for "not found" (-1). WebAssembly
  ;; evaluates both operands of i32.or, so a load at -1 must never be
  ;; written next to the test for -1: it would trap.
  (func $kind (param $p i32) (result i32)
    (if (i32.lt_s (local.get $p) (i32.const 0)) (then (return (i32.const 0))))
    (i32.load8_u (local.get $p)))

  ;; Whether there is a JSON number at $p (a found, validated value).
  (func $is_number (param $p i32) (result i32)
    (local $c i32)
    (local.set $c (call $kind (local.get $p)))
    (i32.or (i32.eq (local.get $c) (i32.const 45)) (call $is_digit (local.get $c))))

  ;; ============================================ exact decimal comparison
  ;; A number is sign, integer digits, fraction digits and exponent. With D
  ;; its significant digits (integer then fraction digits, leading zeros
  ;; dropped) and value = 0.D x 10^k, two numbers compare by sign, then k,
  ;; then D digit by digit. A record at $r holds:
  ;;   +0 negative  +4 integer digits  +8 their count  +12 fraction digits
  ;;   +16 their count  +20 leading zeros  +24 k (i64)

  (func $num_parse (param $p i32) (param $r i32)
    (local $q i32) (local $e i64) (local $eneg i32) (local $lz i32) (local $total i32)
    (i32.store (local.get $r) (i32.eq (i32.load8_u (local.get $p)) (i32.const 45)))
    (if (i32.load (local.get $r)) (then (local.set $p (i32.add (local.get $p) (i32.const 1)))))
    (local.set $q (call $digits (local.get $p)))
    (i32.store offset=4 (local.get $r) (local.get $p))
    (i32.store offset=8 (local.get $r) (i32.sub (local.get $q) (local.get $p)))
    (local.set $p (local.get $q))
    (i32.store offset=12 (local.get $r) (local.get $p))
    (i32.store offset=16 (local.get $r) (i32.const 0))
    (if (i32.eq (i32.load8_u (local.get $p)) (i32.const 46))
      (then
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (local.set $q (call $digits (local.get $p)))
        (i32.store offset=12 (local.get $r) (local.get $p))
        (i32.store offset=16 (local.get $r) (i32.sub (local.get $q) (local.get $p)))
        (local.set $p (local.get $q))))
    (if (i32.eq (i32.or (i32.load8_u (local.get $p)) (i32.const 0x20)) (i32.const 101))
      (then
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (local.set $eneg (i32.eq (i32.load8_u (local.get $p)) (i32.const 45)))
        (if (i32.or (local.get $eneg) (i32.eq (i32.load8_u (local.get $p)) (i32.const 43)))
          (then (local.set $p (i32.add (local.get $p) (i32.const 1)))))
        (loop $exp
          (if (call $is_digit (i32.load8_u (local.get $p)))
            (then
              ;; exponents saturate near 4e18 (e*10+9 stays within i64;
              ;; no JSON producer writes such exponents)
              (if (i64.lt_s (local.get $e) (i64.const 400000000000000000))
                (then (local.set $e (i64.add (i64.mul (local.get $e) (i64.const 10))
                                             (i64.extend_i32_u (i32.sub (i32.load8_u (local.get $p)) (i32.const 48)))))))
              (local.set $p (i32.add (local.get $p) (i32.const 1)))
              (br $exp))))
        (if (local.get $eneg) (then (local.set $e (i64.sub (i64.const 0) (local.get $e)))))))
    ;; leading zeros of the digits
    (local.set $total (i32.add (i32.load offset=8 (local.get $r)) (i32.load offset=16 (local.get $r))))
    (i32.store offset=20 (local.get $r) (i32.const 0))
    (block $done
      (loop $zero
        (br_if $done (i32.ge_u (local.get $lz) (local.get $total)))
        (br_if $done (i32.ne (call $num_digit (local.get $r) (local.get $lz)) (i32.const 48)))
        (local.set $lz (i32.add (local.get $lz) (i32.const 1)))
        (br $zero)))
    (i32.store offset=20 (local.get $r) (local.get $lz))
    (i64.store offset=24 (local.get $r)
      (i64.add (i64.extend_i32_s (i32.sub (i32.load offset=8 (local.get $r)) (local.get $lz))) (local.get $e))))

  ;; Digit $j (0-based, after the leading zeros counted so far at +20) of the
  ;; record, as a character; '0' past the end.
  (func $num_digit (param $r i32) (param $j i32) (result i32)
    (local.set $j (i32.add (local.get $j) (i32.load offset=20 (local.get $r))))
    (if (i32.lt_u (local.get $j) (i32.load offset=8 (local.get $r)))
      (then (return (i32.load8_u (i32.add (i32.load offset=4 (local.get $r)) (local.get $j))))))
    (local.set $j (i32.sub (local.get $j) (i32.load offset=8 (local.get $r))))
    (if (i32.lt_u (local.get $j) (i32.load offset=16 (local.get $r)))
      (then (return (i32.load8_u (i32.add (i32.load offset=12 (local.get $r)) (local.get $j))))))
    (i32.const 48))

  ;; -1, 0 or 1: the sign of the record's value.
  (func $num_sign (param $r i32) (result i32)
    (if (i32.eq (i32.load offset=20 (local.get $r))
                (i32.add (i32.load offset=8 (local.get $r)) (i32.load offset=16 (local.get $r))))
      (then (return (i32.const 0))))
    (select (i32.const -1) (i32.const 1) (i32.load (local.get $r))))

  ;; Compares the numbers at $a and $b: -1, 0 or 1.
  (func $num_cmp (param $a i32) (param $b i32) (result i32)
    (local $sa i32) (local $sb i32) (local $mag i32) (local $j i32) (local $n i32) (local $da i32) (local $db i32)
    (call $num_parse (local.get $a) (i32.const 0x40))
    (call $num_parse (local.get $b) (i32.const 0x60))
    (local.set $sa (call $num_sign (i32.const 0x40)))
    (local.set $sb (call $num_sign (i32.const 0x60)))
    (if (i32.ne (local.get $sa) (local.get $sb))
      (then (return (select (i32.const -1) (i32.const 1) (i32.lt_s (local.get $sa) (local.get $sb))))))
    (if (i32.eqz (local.get $sa)) (then (return (i32.const 0))))
    (if (i64.ne (i64.load offset=0x58 (i32.const 0)) (i64.load offset=0x78 (i32.const 0)))
      (then
        (local.set $mag (select (i32.const -1) (i32.const 1)
                                (i64.lt_s (i64.load offset=0x58 (i32.const 0)) (i64.load offset=0x78 (i32.const 0))))))
      (else
        ;; n = the longer digit count
        (local.set $n (i32.sub (i32.add (i32.load offset=0x48 (i32.const 0)) (i32.load offset=0x50 (i32.const 0)))
                               (i32.load offset=0x54 (i32.const 0))))
        (local.set $j (i32.sub (i32.add (i32.load offset=0x68 (i32.const 0)) (i32.load offset=0x70 (i32.const 0)))
                               (i32.load offset=0x74 (i32.const 0))))
        (if (i32.gt_u (local.get $j) (local.get $n)) (then (local.set $n (local.get $j))))
        (local.set $j (i32.const 0))
        (block $done
          (loop $digit
            (br_if $done (i32.ge_u (local.get $j) (local.get $n)))
            (local.set $da (call $num_digit (i32.const 0x40) (local.get $j)))
            (local.set $db (call $num_digit (i32.const 0x60) (local.get $j)))
            (if (i32.ne (local.get $da) (local.get $db))
              (then
                (local.set $mag (select (i32.const -1) (i32.const 1) (i32.lt_u (local.get $da) (local.get $db))))
                (br $done)))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $digit)))))
    (select (i32.sub (i32.const 0) (local.get $mag)) (local.get $mag) (i32.lt_s (local.get $sa) (i32.const 0))))

  ;; ============================================================== exports

  (func (export "describe") (result i32)
    (global.set $out (i32.const 0x2000))
    (call $put_z (i32.const 0x100))
    (call $emit))

  (func (export "filter") (result i32)
    (local $config i32) (local $min i32) (local $after i32) (local $amount i32) (local $pass i32)
    (block $done
      (br_if $done (i32.eqz (call $read_input)))
      (br_if $done (i32.eqz (call $check_input)))
      ;; config.min must be a number (config may be absent or not an object)
      (local.set $config (call $find (global.get $root) (i32.const 0xe20) (i32.const 6)))
      (local.set $min (call $find (local.get $config) (i32.const 0xe30) (i32.const 3)))
      (if (i32.eqz (call $is_number (local.get $min)))
        (then (call $error (i32.const 0x540) (i32.const 0x980)) (br $done)))
      ;; event.after must be an object holding a numeric amount
      (local.set $after (call $find (global.get $event) (i32.const 0xe40) (i32.const 5)))
      (if (i32.ne (call $kind (local.get $after)) (i32.const 123))
        (then (call $begin_result (i32.const 0) (i32.const 0xa00)) (call $end_result) (br $done)))
      (local.set $amount (call $find (local.get $after) (i32.const 0xe50) (i32.const 6)))
      (if (i32.lt_s (local.get $amount) (i32.const 0))
        (then (call $begin_result (i32.const 0) (i32.const 0xa80)) (call $end_result) (br $done)))
      (if (i32.eqz (call $is_number (local.get $amount)))
        (then (call $begin_result (i32.const 0) (i32.const 0xb00)) (call $end_result) (br $done)))
      ;; "after.amount = 11.99 >= 9.99" (numbers are JSON-safe in a string)
      (local.set $pass (i32.ge_s (call $num_cmp (local.get $amount) (local.get $min)) (i32.const 0)))
      (call $begin_result (local.get $pass) (i32.const 0xb80))
      (call $put_cut (local.get $amount) (i32.sub (call $skip_number (local.get $amount)) (local.get $amount)))
      (call $put_z (select (i32.const 0xc00) (i32.const 0xc80) (local.get $pass)))
      (call $put_cut (local.get $min) (i32.sub (call $skip_number (local.get $min)) (local.get $min)))
      (call $end_result))
    (call $emit))
)
