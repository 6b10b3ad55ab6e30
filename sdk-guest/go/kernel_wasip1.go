//go:build wasip1

package observer

import (
	"encoding/binary"
	"unsafe"

	"github.com/fraiseql/observer/abi"
)

// The Extism kernel imports (abi/SPEC.md, "Imports"). Pointers are offsets
// into the host's kernel memory, not into this module's memory; bytes move
// with load/store calls, eight at a time.

//go:wasmimport extism:host/env input_length
func extismInputLength() uint64

//go:wasmimport extism:host/env input_load_u8
func extismInputLoadU8(offset uint64) uint32

//go:wasmimport extism:host/env input_load_u64
func extismInputLoadU64(offset uint64) uint64

//go:wasmimport extism:host/env alloc
func extismAlloc(n uint64) uint64

//go:wasmimport extism:host/env free
func extismFree(p uint64)

//go:wasmimport extism:host/env length
func extismLength(p uint64) uint64

//go:wasmimport extism:host/env load_u8
func extismLoadU8(p uint64) uint32

//go:wasmimport extism:host/env load_u64
func extismLoadU64(p uint64) uint64

//go:wasmimport extism:host/env store_u8
func extismStoreU8(p uint64, v uint32)

//go:wasmimport extism:host/env store_u64
func extismStoreU64(p uint64, v uint64)

//go:wasmimport extism:host/env output_set
func extismOutputSet(p uint64, n uint64)

//go:wasmimport extism:host/env error_set
func extismErrorSet(p uint64)

//go:wasmimport extism:host/env config_get
func extismConfigGet(p uint64) uint64

//go:wasmimport extism:host/env log_debug
func extismLogDebug(p uint64)

//go:wasmimport extism:host/env log_info
func extismLogInfo(p uint64)

//go:wasmimport extism:host/env log_warn
func extismLogWarn(p uint64)

//go:wasmimport extism:host/env log_error
func extismLogError(p uint64)

//go:wasmexport describe
func exportDescribe() int32 { return setOutput(Describe()) }

//go:wasmexport filter
func exportFilter() int32 { return call(abi.RoleFilter) }

//go:wasmexport act
func exportAct() int32 { return call(abi.RoleAct) }

// outBuf is the result buffer, kept from call to call: setOutput copies
// the result into kernel memory, and an instance serves one call at a
// time, so the next call may overwrite it.
var outBuf []byte

// maxKeptOutput bounds the result buffer kept between calls.
const maxKeptOutput = 64 << 10

func call(role string) int32 {
	p := registered
	if p == nil {
		p = &Plugin{}
	}
	out := p.invoke(outBuf[:0], role, readInput())
	rc := setOutput(out)
	if cap(out) <= maxKeptOutput {
		outBuf = out
	}
	return rc
}

// readInput copies this call's input into a new buffer and returns it as
// a string without a second copy: the buffer is never written again, and
// the decoded strings share it.
func readInput() string {
	n := extismInputLength()
	if n == 0 {
		return ""
	}
	b := make([]byte, n)
	i := uint64(0)
	for ; i+8 <= n; i += 8 {
		*(*uint64)(unsafe.Pointer(&b[i])) = extismInputLoadU64(i)
	}
	for ; i < n; i++ {
		b[i] = byte(extismInputLoadU8(i))
	}
	return unsafe.String(&b[0], len(b))
}

// store copies b into a new kernel block and returns its offset (0 if
// empty or if the host refused the allocation).
func store(b []byte) uint64 {
	n := uint64(len(b))
	if n == 0 {
		return 0
	}
	p := extismAlloc(n)
	if p == 0 {
		return 0
	}
	i := uint64(0)
	for ; i+8 <= n; i += 8 {
		extismStoreU64(p+i, binary.LittleEndian.Uint64(b[i:]))
	}
	for ; i < n; i++ {
		extismStoreU8(p+i, uint32(b[i]))
	}
	return p
}

func load(p uint64) []byte {
	n := extismLength(p)
	b := make([]byte, n)
	i := uint64(0)
	for ; i+8 <= n; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], extismLoadU64(p+i))
	}
	for ; i < n; i++ {
		b[i] = byte(extismLoadU8(p + i))
	}
	return b
}

func setOutput(b []byte) int32 {
	p := store(b)
	if p == 0 && len(b) > 0 {
		if e := store([]byte("observer sdk: the host refused to allocate the output")); e != 0 {
			extismErrorSet(e)
		}
		return 1
	}
	extismOutputSet(p, uint64(len(b)))
	return 0
}

// Config returns the value of a host-side configuration key (the plugin's
// config map in observer.toml), through the config_get import.
func Config(key string) (string, bool) {
	k := store([]byte(key))
	if k == 0 {
		return "", false
	}
	v := extismConfigGet(k)
	extismFree(k)
	if v == 0 {
		return "", false
	}
	b := load(v)
	extismFree(v)
	return string(b), true
}

// Log writes a line through the host's logger, at "debug", "info",
// "warn" or "error" (anything else is info). The host attributes it to the
// plugin and may drop it by level.
func Log(level, msg string) {
	p := store([]byte(msg))
	if p == 0 {
		return
	}
	switch level {
	case "debug":
		extismLogDebug(p)
	case "warn":
		extismLogWarn(p)
	case "error":
		extismLogError(p)
	default:
		extismLogInfo(p)
	}
}
