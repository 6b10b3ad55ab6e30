// Command mirror is a test guest for the conformance runner: each role
// answers with whatever the input's config tells it to, so that vectors
// can put every kind of result and effect (valid or not) through the host
// and the runner. It uses the raw Extism kernel imports and encoding/json,
// no SDK.
//
// Config (Input.Config):
//
//	{"result": {...}}    output this JSON value (compacted)
//	{"output": "text"}   output the text verbatim (malformed results)
//
// Bad input (not JSON, not an object, another ABI major, no event object)
// and a config with neither key are error results, so mirror passes the
// generic vectors.
package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"strings"
)

//go:wasmimport extism:host/env input_length
func inputLength() uint64

//go:wasmimport extism:host/env input_load_u64
func inputLoadU64(uint64) uint64

//go:wasmimport extism:host/env input_load_u8
func inputLoadU8(uint64) uint32

//go:wasmimport extism:host/env alloc
func alloc(uint64) uint64

//go:wasmimport extism:host/env store_u8
func storeU8(uint64, uint32)

//go:wasmimport extism:host/env output_set
func outputSet(uint64, uint64)

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

func output(b []byte) int32 {
	p := alloc(uint64(len(b)))
	for i, c := range b {
		storeU8(p+uint64(i), uint32(c))
	}
	outputSet(p, uint64(len(b)))
	return 0
}

func fail(code, msg string) int32 {
	b, _ := json.Marshal(map[string]any{"abi": "1.0", "error": map[string]string{"code": code, "message": msg}})
	return output(b)
}

func answer() int32 {
	raw := input()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var in struct {
		ABI    string          `json:"abi"`
		Event  json.RawMessage `json:"event"`
		Config *struct {
			Result json.RawMessage `json:"result"`
			Output *string         `json:"output"`
		} `json:"config"`
	}
	if err := dec.Decode(&in); err != nil {
		return fail("bad_input", "input: "+err.Error())
	}
	if len(bytes.TrimSpace(raw[dec.InputOffset():])) > 0 {
		return fail("bad_input", "input has trailing data")
	}
	if !strings.HasPrefix(in.ABI, "1.") {
		return fail("bad_input", "input is ABI "+in.ABI+", this plugin speaks 1.x")
	}
	if !bytes.HasPrefix(bytes.TrimSpace(in.Event), []byte("{")) {
		return fail("bad_input", "input has no event object")
	}
	switch {
	case in.Config != nil && in.Config.Output != nil:
		return output([]byte(*in.Config.Output))
	case in.Config != nil && len(in.Config.Result) > 0:
		var b bytes.Buffer
		if err := json.Compact(&b, in.Config.Result); err != nil {
			return fail("bad_config", err.Error())
		}
		return output(b.Bytes())
	}
	return fail("bad_config", `config: want {"result": ...} or {"output": "..."}`)
}

//go:wasmexport describe
func describe() int32 {
	return output([]byte(`{"abi":"1.0","name":"mirror","version":"1.0.0","roles":["filter","act"],"capabilities":{"effects":["http","log"]},"description":"answers what its config says"}`))
}

//go:wasmexport filter
func filter() int32 { return answer() }

//go:wasmexport act
func act() int32 { return answer() }

func main() {}
