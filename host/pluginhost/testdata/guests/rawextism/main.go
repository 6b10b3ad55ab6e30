// Command rawextism is a guest written against the plain Extism kernel
// imports, with no observer SDK and no encoding/json: what a plugin built
// with an Extism PDK looks like to the host.
//
// Exports:
//
//	describe  the manifest, or the config_get("manifest") value if set
//	filter    {"pass":true,...}, or config_get("filter_output") verbatim,
//	          or error_set(config_get("filter_error")) and return 1
//	echo      the input upper-cased (input → output, the Extism hello world)
//	vowels    {"count": N} vowels in the input, like Extism's count_vowels
package main

import "encoding/binary"

//go:wasmimport extism:host/env input_length
func inputLength() uint64

//go:wasmimport extism:host/env input_load_u8
func inputLoadU8(uint64) uint32

//go:wasmimport extism:host/env input_load_u64
func inputLoadU64(uint64) uint64

//go:wasmimport extism:host/env alloc
func alloc(uint64) uint64

//go:wasmimport extism:host/env free
func free(uint64)

//go:wasmimport extism:host/env length
func length(uint64) uint64

//go:wasmimport extism:host/env load_u8
func loadU8(uint64) uint32

//go:wasmimport extism:host/env store_u8
func storeU8(uint64, uint32)

//go:wasmimport extism:host/env store_u64
func storeU64(uint64, uint64)

//go:wasmimport extism:host/env output_set
func outputSet(uint64, uint64)

//go:wasmimport extism:host/env error_set
func errorSet(uint64)

//go:wasmimport extism:host/env config_get
func configGet(uint64) uint64

//go:wasmimport extism:host/env log_info
func logInfo(uint64)

func input() []byte {
	n := inputLength()
	b := make([]byte, n)
	i := uint64(0)
	for ; i+8 <= n; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], inputLoadU64(i))
	}
	for ; i < n; i++ {
		b[i] = byte(inputLoadU8(i))
	}
	return b
}

func put(b []byte) uint64 {
	p := alloc(uint64(len(b)))
	i := 0
	for ; i+8 <= len(b); i += 8 {
		storeU64(p+uint64(i), binary.LittleEndian.Uint64(b[i:]))
	}
	for ; i < len(b); i++ {
		storeU8(p+uint64(i), uint32(b[i]))
	}
	return p
}

func get(p uint64) []byte {
	n := length(p)
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(loadU8(p + uint64(i)))
	}
	return b
}

func config(key string) (string, bool) {
	k := put([]byte(key))
	v := configGet(k)
	free(k)
	if v == 0 {
		return "", false
	}
	s := string(get(v))
	free(v)
	return s, true
}

func output(b []byte) int32 {
	outputSet(put(b), uint64(len(b)))
	return 0
}

//go:wasmexport describe
func describe() int32 {
	if m, ok := config("manifest"); ok {
		return output([]byte(m))
	}
	return output([]byte(`{"abi":"1.0","name":"rawextism","version":"0.1.0","roles":["filter"]}`))
}

//go:wasmexport filter
func filter() int32 {
	in := input()
	if e, ok := config("filter_error"); ok {
		errorSet(put([]byte(e)))
		return 1
	}
	if o, ok := config("filter_output"); ok {
		return output([]byte(o))
	}
	logInfo(put([]byte("rawextism filter called")))
	return output([]byte(`{"abi":"1.0","pass":true,"reason":"raw guest saw ` + itoa(len(in)) + ` bytes"}`))
}

//go:wasmexport echo
func echo() int32 {
	b := input()
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return output(b)
}

//go:wasmexport vowels
func vowels() int32 {
	n := 0
	for _, c := range input() {
		switch c {
		case 'a', 'e', 'i', 'o', 'u', 'A', 'E', 'I', 'O', 'U':
			n++
		}
	}
	return output([]byte(`{"count": ` + itoa(n) + `}`))
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

func main() {}
