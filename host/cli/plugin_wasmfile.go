package cli

import (
	"errors"
	"fmt"
	"strings"
)

// wasmModule is what `plugin inspect` shows of a module's binary: its
// imports, exports, memory and custom sections. It reads the sections
// itself rather than through the plugin host, so that a module the host
// refuses (another ABI major, a foreign import) can still be inspected.
type wasmModule struct {
	Imports  []wasmImport  `json:"imports"`
	Exports  []wasmExport  `json:"exports"`
	Memory   *wasmMemory   `json:"memory,omitempty"`
	Custom   []wasmCustom  `json:"custom_sections,omitempty"`
	Sections []wasmSection `json:"sections"`
}

type wasmImport struct {
	Module string `json:"module"`
	Name   string `json:"name"`
	Kind   string `json:"kind"`
	// Type is a function's signature in WAT notation, "(param i64) (result i64)".
	Type string `json:"type,omitempty"`
}

type wasmExport struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
	Type string `json:"type,omitempty"`
}

type wasmMemory struct {
	MinPages uint64  `json:"min_pages"`
	MaxPages *uint64 `json:"max_pages,omitempty"`
	Imported bool    `json:"imported,omitempty"`
}

type wasmCustom struct {
	Name string `json:"name"`
	Size int    `json:"size"`
}

type wasmSection struct {
	Name string `json:"name"`
	Size int    `json:"size"`
}

var wasmSectionNames = []string{"custom", "type", "import", "function", "table", "memory", "global", "export", "start", "element", "code", "data", "datacount"}

var wasmKinds = []string{"func", "table", "memory", "global", "tag"}

// wasmReader reads the binary format's primitives; the first error sticks.
type wasmReader struct {
	b   []byte
	off int // offset of b[0] in the file, for errors
	err error
}

func (r *wasmReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("at byte %d: "+format, append([]any{r.off}, args...)...)
	}
}

func (r *wasmReader) byte() byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.fail("unexpected end of data")
		return 0
	}
	c := r.b[0]
	r.b, r.off = r.b[1:], r.off+1
	return c
}

func (r *wasmReader) u64() uint64 {
	var v uint64
	for shift := 0; shift < 64; shift += 7 {
		c := r.byte()
		if r.err != nil {
			return 0
		}
		v |= uint64(c&0x7f) << shift
		if c&0x80 == 0 {
			return v
		}
	}
	r.fail("LEB128 number too long")
	return 0
}

// count reads a vector length, bounded by what is left (each element takes
// at least one byte), so that a hostile length allocates nothing.
func (r *wasmReader) count() int {
	n := r.u64()
	if n > uint64(len(r.b)) {
		r.fail("vector of %d elements in %d bytes", n, len(r.b))
		return 0
	}
	return int(n)
}

func (r *wasmReader) bytes(n uint64) []byte {
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.fail("%d bytes wanted, %d left", n, len(r.b))
		return nil
	}
	b := r.b[:n]
	r.b, r.off = r.b[n:], r.off+int(n)
	return b
}

func (r *wasmReader) name() string { return string(r.bytes(r.u64())) }

func (r *wasmReader) valtype() string {
	switch c := r.byte(); c {
	case 0x7f:
		return "i32"
	case 0x7e:
		return "i64"
	case 0x7d:
		return "f32"
	case 0x7c:
		return "f64"
	case 0x7b:
		return "v128"
	case 0x70:
		return "funcref"
	case 0x6f:
		return "externref"
	default:
		if r.err == nil {
			r.fail("unknown value type 0x%02x", c)
		}
		return "?"
	}
}

func (r *wasmReader) limits() (uint64, *uint64) {
	flags := r.byte()
	min := r.u64()
	if flags&1 != 0 {
		max := r.u64()
		return min, &max
	}
	return min, nil
}

// parseWasm reads the sections of a WebAssembly 2.0 module.
func parseWasm(b []byte) (*wasmModule, error) {
	if len(b) < 8 || string(b[:4]) != "\x00asm" {
		return nil, errors.New("not a WebAssembly module (no \\0asm magic number)")
	}
	if v := b[4:8]; v[0] != 1 || v[1] != 0 || v[2] != 0 || v[3] != 0 {
		return nil, fmt.Errorf("WebAssembly binary version %v, want 1 (a component or a future format?)", v)
	}
	m := &wasmModule{}
	r := &wasmReader{b: b[8:], off: 8}
	var types []string
	var funcTypes []uint32 // type index of every function, imported first
	for len(r.b) > 0 && r.err == nil {
		id := r.byte()
		size := r.u64()
		start := r.off
		body := r.bytes(size)
		if r.err != nil {
			break
		}
		name := fmt.Sprintf("unknown(%d)", id)
		if int(id) < len(wasmSectionNames) {
			name = wasmSectionNames[id]
		}
		m.Sections = append(m.Sections, wasmSection{name, len(body)})
		s := &wasmReader{b: body, off: start}
		switch id {
		case 0:
			m.Custom = append(m.Custom, wasmCustom{Name: s.name(), Size: len(body)})
		case 1:
			for n := s.count(); n > 0 && s.err == nil; n-- {
				if form := s.byte(); form != 0x60 {
					s.fail("type form 0x%02x, want func (0x60)", form)
					break
				}
				var params, results []string
				for k := s.count(); k > 0 && s.err == nil; k-- {
					params = append(params, s.valtype())
				}
				for k := s.count(); k > 0 && s.err == nil; k-- {
					results = append(results, s.valtype())
				}
				// WAT's notation: (param i64 i32) (result i64).
				var sig []string
				if len(params) > 0 {
					sig = append(sig, "(param "+strings.Join(params, " ")+")")
				}
				if len(results) > 0 {
					sig = append(sig, "(result "+strings.Join(results, " ")+")")
				}
				types = append(types, strings.Join(sig, " "))
			}
		case 2:
			for n := s.count(); n > 0 && s.err == nil; n-- {
				im := wasmImport{Module: s.name(), Name: s.name()}
				kind := s.byte()
				if int(kind) < len(wasmKinds) {
					im.Kind = wasmKinds[kind]
				}
				switch kind {
				case 0:
					ti := uint32(s.u64())
					funcTypes = append(funcTypes, ti)
					im.Type = typeAt(types, ti)
				case 1:
					s.valtype()
					s.limits()
				case 2:
					min, max := s.limits()
					m.Memory = &wasmMemory{MinPages: min, MaxPages: max, Imported: true}
				case 3:
					im.Type = s.valtype()
					s.byte()
				case 4:
					s.byte()
					s.u64()
				default:
					s.fail("unknown import kind 0x%02x", kind)
				}
				m.Imports = append(m.Imports, im)
			}
		case 3:
			for n := s.count(); n > 0 && s.err == nil; n-- {
				funcTypes = append(funcTypes, uint32(s.u64()))
			}
		case 5:
			for n := s.count(); n > 0 && s.err == nil; n-- {
				min, max := s.limits()
				if m.Memory == nil {
					m.Memory = &wasmMemory{MinPages: min, MaxPages: max}
				}
			}
		case 7:
			for n := s.count(); n > 0 && s.err == nil; n-- {
				ex := wasmExport{Name: s.name()}
				kind := s.byte()
				idx := s.u64()
				if int(kind) < len(wasmKinds) {
					ex.Kind = wasmKinds[kind]
				}
				if kind == 0 && idx < uint64(len(funcTypes)) {
					ex.Type = typeAt(types, funcTypes[idx])
				}
				m.Exports = append(m.Exports, ex)
			}
		}
		if s.err != nil {
			return nil, fmt.Errorf("%s section: %w", name, s.err)
		}
	}
	if r.err != nil {
		return nil, fmt.Errorf("truncated module: %w", r.err)
	}
	return m, nil
}

func typeAt(types []string, i uint32) string {
	if int(i) < len(types) {
		return types[i]
	}
	return fmt.Sprintf("type %d (undefined)", i)
}
