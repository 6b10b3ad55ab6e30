;; sandbox.wat: probes the WASI sandbox with raw calls (no language runtime
;; to hide or emulate anything). Each probe_* export outputs what it saw as
;; decimal numbers separated by spaces: WASI errnos (0 success, 8 EBADF,
;; 54 ENOTDIR, 57 ENOTSOCK, 76 ENOTCAPABLE) and values read.
;;
;;   probe_env     environ_sizes_get: errno count bytes; args_sizes_get: errno count bytes
;;   probe_fs      fd_prestat_get(3); path_open(3, "etc/passwd"); path_open(3, ".");
;;                 fd_readdir(3); path_open(0, "etc/passwd"); fd_read(0): errno bytes
;;   probe_sock    sock_accept(3); sock_accept(0); sock_recv(3); sock_send(3); sock_shutdown(3)
;;   probe_clock   realtime: errno value; monotonic twice: value value; clock_res_get(realtime): errno value
;;   probe_random  random_get of 16 bytes: errno u64 u64
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func $fd_prestat_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_readdir" (func $fd_readdir (param i32 i32 i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_accept" (func $sock_accept (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_recv" (func $sock_recv (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_send" (func $sock_send (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_shutdown" (func $sock_shutdown (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock_time_get (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_res_get" (func $clock_res_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))

  (memory (export "memory") 1)
  (data (i32.const 0) "{\"abi\":\"1.0\",\"name\":\"sandbox-probe\",\"roles\":[\"filter\"]}")
  (data (i32.const 64) "{\"abi\":\"1.0\",\"pass\":true}")
  (data (i32.const 96) "etc/passwd")
  (data (i32.const 112) ".")
  ;; 256..: results written by WASI calls. 512: an iovec {1024, 64}.
  ;; 1024..: read buffer. 4096..: the output being built.

  (global $len (mut i32) (i32.const 0))

  ;; $emit appends a space (unless first) and v in decimal to the output buffer.
  (func $emit (param $v i64) (local $start i32) (local $end i32) (local $t i32)
    (if (i32.gt_u (global.get $len) (i32.const 0)) (then
      (i32.store8 (i32.add (i32.const 4096) (global.get $len)) (i32.const 32))
      (global.set $len (i32.add (global.get $len) (i32.const 1)))))
    (local.set $start (i32.add (i32.const 4096) (global.get $len)))
    (local.set $end (local.get $start))
    (loop $digit
      (i32.store8 (local.get $end) (i32.add (i32.const 48) (i32.wrap_i64 (i64.rem_u (local.get $v) (i64.const 10)))))
      (local.set $end (i32.add (local.get $end) (i32.const 1)))
      (local.set $v (i64.div_u (local.get $v) (i64.const 10)))
      (br_if $digit (i64.ne (local.get $v) (i64.const 0))))
    (global.set $len (i32.sub (local.get $end) (i32.const 4096)))
    ;; The digits are least significant first: reverse them.
    (local.set $end (i32.sub (local.get $end) (i32.const 1)))
    (block $done
      (loop $swap
        (br_if $done (i32.ge_u (local.get $start) (local.get $end)))
        (local.set $t (i32.load8_u (local.get $start)))
        (i32.store8 (local.get $start) (i32.load8_u (local.get $end)))
        (i32.store8 (local.get $end) (local.get $t))
        (local.set $start (i32.add (local.get $start) (i32.const 1)))
        (local.set $end (i32.sub (local.get $end) (i32.const 1)))
        (br $swap))))

  (func $emit32 (param $v i32) (call $emit (i64.extend_i32_u (local.get $v))))

  ;; $out sets the n bytes at p as the output.
  (func $out (param $p i32) (param $n i32) (local $k i64) (local $i i32)
    (local.set $k (call $alloc (i64.extend_i32_u (local.get $n))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (call $store_u8 (i64.add (local.get $k) (i64.extend_i32_u (local.get $i)))
                        (i32.load8_u (i32.add (local.get $p) (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (call $output_set (local.get $k) (i64.extend_i32_u (local.get $n))))

  (func $flush (result i32)
    (call $out (i32.const 4096) (global.get $len))
    (global.set $len (i32.const 0))
    (i32.const 0))

  (func (export "describe") (result i32) (call $out (i32.const 0) (i32.const 55)) (i32.const 0))
  (func (export "filter") (result i32) (call $out (i32.const 64) (i32.const 25)) (i32.const 0))

  (func (export "probe_env") (result i32)
    (call $emit32 (call $environ_sizes_get (i32.const 256) (i32.const 260)))
    (call $emit32 (i32.load (i32.const 256)))
    (call $emit32 (i32.load (i32.const 260)))
    (call $emit32 (call $args_sizes_get (i32.const 256) (i32.const 260)))
    (call $emit32 (i32.load (i32.const 256)))
    (call $emit32 (i32.load (i32.const 260)))
    (call $flush))

  (func (export "probe_fs") (result i32)
    (call $emit32 (call $fd_prestat_get (i32.const 3) (i32.const 256)))
    (call $emit32 (call $path_open (i32.const 3) (i32.const 0) (i32.const 96) (i32.const 10) (i32.const 0)
                                   (i64.const -1) (i64.const -1) (i32.const 0) (i32.const 256)))
    (call $emit32 (call $path_open (i32.const 3) (i32.const 0) (i32.const 112) (i32.const 1) (i32.const 0)
                                   (i64.const -1) (i64.const -1) (i32.const 0) (i32.const 256)))
    (call $emit32 (call $fd_readdir (i32.const 3) (i32.const 1024) (i32.const 64) (i64.const 0) (i32.const 256)))
    (call $emit32 (call $path_open (i32.const 0) (i32.const 0) (i32.const 96) (i32.const 10) (i32.const 0)
                                   (i64.const -1) (i64.const -1) (i32.const 0) (i32.const 256)))
    (i32.store (i32.const 512) (i32.const 1024))
    (i32.store (i32.const 516) (i32.const 64))
    (i32.store (i32.const 260) (i32.const 99))
    (call $emit32 (call $fd_read (i32.const 0) (i32.const 512) (i32.const 1) (i32.const 260)))
    (call $emit32 (i32.load (i32.const 260)))
    (call $flush))

  (func (export "probe_sock") (result i32)
    (call $emit32 (call $sock_accept (i32.const 3) (i32.const 0) (i32.const 256)))
    (call $emit32 (call $sock_accept (i32.const 0) (i32.const 0) (i32.const 256)))
    (i32.store (i32.const 512) (i32.const 1024))
    (i32.store (i32.const 516) (i32.const 64))
    (call $emit32 (call $sock_recv (i32.const 3) (i32.const 512) (i32.const 1) (i32.const 0) (i32.const 256) (i32.const 260)))
    (call $emit32 (call $sock_send (i32.const 3) (i32.const 512) (i32.const 1) (i32.const 0) (i32.const 256)))
    (call $emit32 (call $sock_shutdown (i32.const 3) (i32.const 3)))
    (call $flush))

  (func (export "probe_clock") (result i32)
    (call $emit32 (call $clock_time_get (i32.const 0) (i64.const 1) (i32.const 256)))
    (call $emit (i64.load (i32.const 256)))
    (drop (call $clock_time_get (i32.const 1) (i64.const 1) (i32.const 256)))
    (call $emit (i64.load (i32.const 256)))
    (drop (call $clock_time_get (i32.const 1) (i64.const 1) (i32.const 256)))
    (call $emit (i64.load (i32.const 256)))
    (call $emit32 (call $clock_res_get (i32.const 0) (i32.const 256)))
    (call $emit (i64.load (i32.const 256)))
    (call $flush))

  (func (export "probe_random") (result i32)
    (call $emit32 (call $random_get (i32.const 256) (i32.const 16)))
    (call $emit (i64.load (i32.const 256)))
    (call $emit (i64.load (i32.const 264)))
    (call $flush))
)
