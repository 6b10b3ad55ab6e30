;; hostile.wat: a deliberately misbehaving observer plugin, written in
;; WebAssembly text so that each misbehaviour is exactly the instructions
;; shown (no language runtime in between). The plugin's config key "mode"
;; (pluginhost.Spec.Config, read with config_get) picks what it does; with
;; no mode it is a well-behaved filter that passes every event. A filter
;; input that is not JSON (does not start with "{") is a mode itself and
;; wins over the config, so that a test can make one call misbehave and
;; the next one pass on the same plugin.
;;
;; describe:
;;   abi2          declares ABI 2.0                     → refused at load
;;   norole        declares the role act, not exported  → refused at load
;;   describeloop  describe never returns               → refused at load (timeout)
;; filter:
;;   ok            {"pass": true}
;;   loop          spins: br to its own loop header     → timeout
;;   trap          unreachable                          → trap
;;   grow          memory.grow 1 MiB at a time until refused, then
;;                 unreachable (what an allocator does) → memory limit
;;   recurse       unbounded recursion                  → trap (stack overflow)
;;   hugeout       output_set of 2 MiB                  → output too large
;;   badjson       output {"pass": tru                  → bad output
;;   abi2out       a result of ABI 2.0                  → bad output
;;   nooutput      returns 0 without output             → bad output
;;   rc            returns 7 without an error message   → guest error
;;   poll          poll_oneoff (sleep 1 s) in a loop; WASI sleeps return
;;                 at once, so this spins               → timeout
;;   busywait      reads the monotonic clock until an hour has passed → timeout
;;   kleak         allocates 1 MiB of kernel memory per call, never frees it,
;;                 and passes (kernel memory is reset between calls)
;;   kfill         allocates kernel memory until alloc returns 0, then
;;                 unreachable                          → memory limit
;;   mleak         grows its linear memory by 1 MiB per call and never
;;                 shrinks it, passing until a grow is refused, then
;;                 unreachable                          → memory limit (then a fresh instance)
;;   http          calls http_request                   → denied
;;   logflood      logs 100,000 lines, then passes
;;   varflood      var_set 512 KiB values under new names until the call fails → memory limit
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "length" (func $length (param i64) (result i64)))
  (import "extism:host/env" "load_u8" (func $load_u8 (param i64) (result i32)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/env" "config_get" (func $config_get (param i64) (result i64)))
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (import "extism:host/env" "input_offset" (func $input_offset (result i64)))
  (import "extism:host/env" "input_load_u8" (func $input_load_u8 (param i64) (result i32)))
  (import "extism:host/env" "var_set" (func $var_set (param i64 i64)))
  (import "extism:host/env" "log_info" (func $log_info (param i64)))
  (import "extism:host/env" "http_request" (func $http_request (param i64 i64) (result i64)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock_time_get (param i32 i64 i32) (result i32)))

  (memory (export "memory") 1)

  ;; NUL-terminated strings.
  (data (i32.const 0) "mode\00")
  (data (i32.const 16) "{\"abi\":\"1.0\",\"name\":\"hostile-wat\",\"version\":\"0.0.1\",\"roles\":[\"filter\"],\"capabilities\":{\"log\":true}}\00")
  (data (i32.const 128) "{\"abi\":\"2.0\",\"name\":\"hostile-wat\",\"version\":\"0.0.1\",\"roles\":[\"filter\"]}\00")
  (data (i32.const 208) "{\"abi\":\"1.0\",\"name\":\"hostile-wat\",\"version\":\"0.0.1\",\"roles\":[\"filter\",\"act\"]}\00")
  (data (i32.const 288) "{\"abi\":\"1.0\",\"pass\":true,\"reason\":\"wat ok\"}\00")
  (data (i32.const 336) "{\"pass\": tru\00")
  (data (i32.const 352) "{\"abi\":\"2.0\",\"pass\":true}\00")
  (data (i32.const 384) "spam from hostile-wat\00")
  ;; Mode names, 16 bytes apart from 512.
  (data (i32.const 512) "abi2\00")
  (data (i32.const 528) "norole\00")
  (data (i32.const 544) "describeloop\00")
  (data (i32.const 560) "loop\00")
  (data (i32.const 576) "trap\00")
  (data (i32.const 592) "grow\00")
  (data (i32.const 608) "recurse\00")
  (data (i32.const 624) "hugeout\00")
  (data (i32.const 640) "badjson\00")
  (data (i32.const 656) "abi2out\00")
  (data (i32.const 672) "nooutput\00")
  (data (i32.const 688) "rc\00")
  (data (i32.const 704) "poll\00")
  (data (i32.const 720) "busywait\00")
  (data (i32.const 736) "kleak\00")
  (data (i32.const 752) "kfill\00")
  (data (i32.const 768) "mleak\00")
  (data (i32.const 784) "http\00")
  (data (i32.const 800) "logflood\00")
  (data (i32.const 816) "varflood\00")
  ;; Scratch from 1024: a poll_oneoff subscription (48 bytes), its event
  ;; (32), the event count (4), a clock reading (8).

  ;; The kernel block holding config "mode", reloaded by every export
  ;; (kernel memory is reset between calls); 0 if unset.
  (global $mode (mut i64) (i64.const 0))

  (func $strlen (param $p i32) (result i32) (local $n i32)
    (block $done
      (loop $next
        (br_if $done (i32.eqz (i32.load8_u (i32.add (local.get $p) (local.get $n)))))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br $next)))
    (local.get $n))

  ;; $put copies the string at $p into a new kernel block.
  (func $put (param $p i32) (result i64) (local $n i32) (local $k i64) (local $i i32)
    (local.set $n (call $strlen (local.get $p)))
    (local.set $k (call $alloc (i64.extend_i32_u (local.get $n))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (call $store_u8 (i64.add (local.get $k) (i64.extend_i32_u (local.get $i)))
                        (i32.load8_u (i32.add (local.get $p) (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $k))

  (func $out (param $p i32)
    (call $output_set (call $put (local.get $p)) (i64.extend_i32_u (call $strlen (local.get $p)))))

  (func $load_mode
    (global.set $mode (call $config_get (call $put (i32.const 0)))))

  ;; $load_filter_mode: the input if it is not JSON, else the config.
  (func $load_filter_mode
    (if (i32.and (i64.gt_u (call $input_length) (i64.const 0))
                 (i32.ne (call $input_load_u8 (i64.const 0)) (i32.const 123)))
      (then (global.set $mode (call $input_offset)))
      (else (call $load_mode))))

  ;; $is reports whether the mode is the string at $p.
  (func $is (param $p i32) (result i32) (local $n i32) (local $i i32)
    (if (i64.eqz (global.get $mode)) (then (return (i32.const 0))))
    (local.set $n (call $strlen (local.get $p)))
    (if (i64.ne (call $length (global.get $mode)) (i64.extend_i32_u (local.get $n)))
      (then (return (i32.const 0))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (if (i32.ne (call $load_u8 (i64.add (global.get $mode) (i64.extend_i32_u (local.get $i))))
                    (i32.load8_u (i32.add (local.get $p) (local.get $i))))
          (then (return (i32.const 0))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.const 1))

  (func $recurse (param $n i64) (result i64)
    (i64.add (call $recurse (i64.add (local.get $n) (i64.const 1))) (i64.const 1)))

  (func (export "describe") (result i32)
    (call $load_mode)
    (if (call $is (i32.const 512)) (then (call $out (i32.const 128)) (return (i32.const 0))))
    (if (call $is (i32.const 528)) (then (call $out (i32.const 208)) (return (i32.const 0))))
    (if (call $is (i32.const 544)) (then (loop $spin (br $spin))))
    (call $out (i32.const 16))
    (i32.const 0))

  (func (export "filter") (result i32) (local $i i32) (local $t0 i64) (local $name i64) (local $val i64)
    (call $load_filter_mode)
    (if (call $is (i32.const 560)) (then (loop $spin (br $spin))))
    (if (call $is (i32.const 576)) (then unreachable))
    (if (call $is (i32.const 592)) (then
      (loop $more (br_if $more (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
      unreachable))
    (if (call $is (i32.const 608)) (then (drop (call $recurse (i64.const 0)))))
    (if (call $is (i32.const 624)) (then
      (call $output_set (call $alloc (i64.const 2097152)) (i64.const 2097152))
      (return (i32.const 0))))
    (if (call $is (i32.const 640)) (then (call $out (i32.const 336)) (return (i32.const 0))))
    (if (call $is (i32.const 656)) (then (call $out (i32.const 352)) (return (i32.const 0))))
    (if (call $is (i32.const 672)) (then (return (i32.const 0))))
    (if (call $is (i32.const 688)) (then (return (i32.const 7))))
    (if (call $is (i32.const 704)) (then
      ;; A relative clock subscription on the monotonic clock, 1 s.
      (i32.store8 (i32.const 1032) (i32.const 0))
      (i32.store (i32.const 1040) (i32.const 1))
      (i64.store (i32.const 1048) (i64.const 1000000000))
      (loop $sleep
        (drop (call $poll_oneoff (i32.const 1024) (i32.const 1072) (i32.const 1) (i32.const 1104)))
        (br $sleep))))
    (if (call $is (i32.const 720)) (then
      (drop (call $clock_time_get (i32.const 1) (i64.const 1) (i32.const 1112)))
      (local.set $t0 (i64.load (i32.const 1112)))
      (loop $wait
        (drop (call $clock_time_get (i32.const 1) (i64.const 1) (i32.const 1112)))
        (br_if $wait (i64.lt_u (i64.sub (i64.load (i32.const 1112)) (local.get $t0)) (i64.const 3600000000000))))))
    (if (call $is (i32.const 736)) (then (drop (call $alloc (i64.const 1048576)))))
    (if (call $is (i32.const 752)) (then
      (loop $more (br_if $more (i64.ne (call $alloc (i64.const 1048576)) (i64.const 0))))
      unreachable))
    (if (call $is (i32.const 768)) (then
      (if (i32.eq (memory.grow (i32.const 16)) (i32.const -1)) (then unreachable))))
    (if (call $is (i32.const 784)) (then (drop (call $http_request (i64.const 0) (i64.const 0)))))
    (if (call $is (i32.const 800)) (then
      (loop $more
        (call $log_info (call $put (i32.const 384)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $more (i32.lt_u (local.get $i) (i32.const 100000))))))
    (if (call $is (i32.const 816)) (then
      (loop $more
        ;; A one-byte name, a different byte each time.
        (local.set $name (call $alloc (i64.const 1)))
        (call $store_u8 (local.get $name) (i32.add (i32.const 65) (local.get $i)))
        (local.set $val (call $alloc (i64.const 524288)))
        (call $var_set (local.get $name) (local.get $val))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $more (i32.lt_u (local.get $i) (i32.const 16))))))
    (call $out (i32.const 288))
    (i32.const 0))
)
