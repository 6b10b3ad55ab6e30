// The Extism kernel imports (abi/SPEC.md §1.1) and the byte moving built on
// them. Kernel pointers are u64 offsets into the host's kernel memory, a
// separate address space from this module's linear memory: bytes cross
// with load/store calls, eight at a time.

// @ts-ignore: decorator
@external("extism:host/env", "input_length")
declare function extism_input_length(): u64;
// @ts-ignore: decorator
@external("extism:host/env", "input_load_u8")
declare function extism_input_load_u8(offset: u64): u32;
// @ts-ignore: decorator
@external("extism:host/env", "input_load_u64")
declare function extism_input_load_u64(offset: u64): u64;
// @ts-ignore: decorator
@external("extism:host/env", "alloc")
declare function extism_alloc(n: u64): u64;
// @ts-ignore: decorator
@external("extism:host/env", "free")
declare function extism_free(p: u64): void;
// @ts-ignore: decorator
@external("extism:host/env", "length")
declare function extism_length(p: u64): u64;
// @ts-ignore: decorator
@external("extism:host/env", "load_u8")
declare function extism_load_u8(p: u64): u32;
// @ts-ignore: decorator
@external("extism:host/env", "load_u64")
declare function extism_load_u64(p: u64): u64;
// @ts-ignore: decorator
@external("extism:host/env", "store_u8")
declare function extism_store_u8(p: u64, v: u32): void;
// @ts-ignore: decorator
@external("extism:host/env", "store_u64")
declare function extism_store_u64(p: u64, v: u64): void;
// @ts-ignore: decorator
@external("extism:host/env", "output_set")
declare function extism_output_set(p: u64, n: u64): void;
// @ts-ignore: decorator
@external("extism:host/env", "error_set")
declare function extism_error_set(p: u64): void;
// @ts-ignore: decorator
@external("extism:host/env", "config_get")
declare function extism_config_get(key: u64): u64;
// @ts-ignore: decorator
@external("extism:host/env", "get_log_level")
declare function extism_get_log_level(): i32;
// @ts-ignore: decorator
@external("extism:host/env", "log_trace")
declare function extism_log_trace(p: u64): void;
// @ts-ignore: decorator
@external("extism:host/env", "log_debug")
declare function extism_log_debug(p: u64): void;
// @ts-ignore: decorator
@external("extism:host/env", "log_info")
declare function extism_log_info(p: u64): void;
// @ts-ignore: decorator
@external("extism:host/env", "log_warn")
declare function extism_log_warn(p: u64): void;
// @ts-ignore: decorator
@external("extism:host/env", "log_error")
declare function extism_log_error(p: u64): void;

/** Copies this call's input into a new buffer. */
export function readInput(): ArrayBuffer {
  const n = extism_input_length();
  // An input larger than this module can address cannot be real; a
  // zero-length buffer makes the caller report "input is empty" instead of
  // trapping on the allocation.
  if (n > <u64>0x3fffffff) return new ArrayBuffer(0);
  const buf = new ArrayBuffer(<i32>n);
  const base = changetype<usize>(buf);
  let i: u64 = 0;
  for (; i + 8 <= n; i += 8) store<u64>(base + <usize>i, extism_input_load_u64(i));
  for (; i < n; i++) store<u8>(base + <usize>i, <u8>extism_input_load_u8(i));
  return buf;
}

/**
 * Copies len bytes at ptr (linear memory) into a new kernel block and
 * returns its offset: 0 when len is 0 or the host refused the allocation.
 */
export function storeBytes(ptr: usize, len: usize): u64 {
  const n = <u64>len;
  if (n == 0) return 0;
  const p = extism_alloc(n);
  if (p == 0) return 0;
  let i: u64 = 0;
  for (; i + 8 <= n; i += 8) extism_store_u64(p + i, load<u64>(ptr + <usize>i));
  for (; i < n; i++) extism_store_u8(p + i, <u32>load<u8>(ptr + <usize>i));
  return p;
}

/** Copies a string, UTF-8 encoded, into a new kernel block (0 if empty or refused). */
export function storeString(s: string): u64 {
  const b = String.UTF8.encode(s);
  return storeBytes(changetype<usize>(b), <usize>b.byteLength);
}

/** Reads the kernel block at p as a UTF-8 string. */
export function loadString(p: u64): string {
  const n = extism_length(p);
  if (n == 0 || n > <u64>0x3fffffff) return "";
  const buf = new ArrayBuffer(<i32>n);
  const base = changetype<usize>(buf);
  let i: u64 = 0;
  for (; i + 8 <= n; i += 8) store<u64>(base + <usize>i, extism_load_u64(p + i));
  for (; i < n; i++) store<u8>(base + <usize>i, <u8>extism_load_u8(p + i));
  return String.UTF8.decode(buf);
}

/**
 * Makes len bytes at ptr this call's output and returns the export's
 * return code: 0, or 1 (with the call's error set) if the host refused the
 * allocation.
 */
export function setOutput(ptr: usize, len: usize): i32 {
  const p = storeBytes(ptr, len);
  if (p == 0 && len > 0) {
    const e = storeString("observer sdk: the host refused to allocate the output");
    if (e != 0) extism_error_set(e);
    return 1;
  }
  extism_output_set(p, <u64>len);
  return 0;
}

/**
 * The operator's value for key in the plugin's host-side config
 * (`config_get`), or null if it has none.
 */
export function configGet(key: string): string | null {
  const k = storeString(key);
  if (k == 0) return null;
  const v = extism_config_get(k);
  extism_free(k);
  if (v == 0) return null;
  const s = loadString(v);
  extism_free(v);
  return s;
}

/** Log levels, as the host numbers them (`get_log_level`). */
export enum LogLevel {
  Trace = 0,
  Debug = 1,
  Info = 2,
  Warn = 3,
  Error = 4,
}

/**
 * Whether the host would keep a line at level: check it before building an
 * expensive message.
 */
export function logEnabled(level: LogLevel): bool {
  return <i32>level >= extism_get_log_level();
}

/**
 * Writes one line through the host's logger, attributed to the plugin. Lines
 * below the host's level are dropped without crossing into the host. This
 * is a log line now; a log *effect* (Effect.log) is one the host writes after
 * the call, with the other effects.
 */
export function log(level: LogLevel, message: string): void {
  if (!logEnabled(level)) return;
  const p = storeString(message);
  if (p == 0) return;
  switch (level) {
    case LogLevel.Trace:
      extism_log_trace(p);
      break;
    case LogLevel.Debug:
      extism_log_debug(p);
      break;
    case LogLevel.Warn:
      extism_log_warn(p);
      break;
    case LogLevel.Error:
      extism_log_error(p);
      break;
    default:
      extism_log_info(p);
  }
}
