package instrument

import (
	"errors"
	"fmt"
	"slices"
)

// ExportName is the export under which a rewritten module offers its
// interrupt flag (a mutable i32 global). A module that already exports
// this name is refused.
const ExportName = "__observer_interrupt"

// StartExportName is the export under which a rewritten module offers its
// start function, if it had one: the start section is removed, and the
// host calls this export once per instance, right after instantiating it
// and before any other export, under the call's time limit. A start
// function runs while a module is instantiated, before the host can reach
// the interrupt flag, so one that never returned would hang instantiation
// for good. A module that already exports this name is refused.
const StartExportName = "__observer_start"

// Budget is how much work, in units of about one simple instruction, a
// rewritten module does between two safe points (exits to Go). Larger
// means fewer exits and a longer worst-case wait for an interrupt or a
// garbage collection: 1<<17 units is tens of microseconds of typical
// code (about a millisecond if every instruction were a slow one, such as
// a division), while an exit (~0.1-0.2 µs) then costs about 0.001 ns per
// unit.
const Budget = 1 << 17

// Section ids of the WebAssembly binary format.
const (
	secCustom    = 0
	secType      = 1
	secImport    = 2
	secFunction  = 3
	secTable     = 4
	secMemory    = 5
	secGlobal    = 6
	secExport    = 7
	secStart     = 8
	secElement   = 9
	secCode      = 10
	secData      = 11
	secDataCount = 12
	secTag       = 13
)

// order gives each known non-custom section its position in a module.
var order = [...]int{
	secType: 1, secImport: 2, secFunction: 3, secTable: 4, secMemory: 5, secTag: 6,
	secGlobal: 7, secExport: 8, secStart: 9, secElement: 10, secDataCount: 11, secCode: 12, secData: 13,
}

// Stats describes a rewrite.
type Stats struct {
	Functions int // function bodies decoded (each gets an entry check)
	Loops     int // loop headers instrumented
	Bulk      int // bulk memory and table instructions instrumented
	// FlagGlobal is the index of the interrupt flag in the global index space.
	FlagGlobal uint32
	// Start reports that the module had a start function, now exported as
	// StartExportName instead.
	Start bool
}

// Error is a module the rewriter refuses: malformed, or using something it
// does not know. At names where: a section, or a function body and the
// byte offset of the instruction within the module.
type Error struct {
	At  string
	Err error
}

func (e *Error) Error() string { return fmt.Sprintf("instrument: %s: %v", e.At, e.Err) }

func (e *Error) Unwrap() error { return e.Err }

// ErrUnsupported marks what the rewriter does not handle (as opposed to a
// malformed module); the module may still be valid.
var ErrUnsupported = errors.New("unsupported")

type section struct {
	id   byte
	body []byte // the section's content, without id and size
}

// Rewrite returns a copy of the module bin with interrupt checks at every
// loop header (see the package comment). bin is not modified. The result
// is not validated beyond what decoding needs: compile it to know it is
// valid.
func Rewrite(bin []byte) ([]byte, Stats, error) {
	var st Stats
	if len(bin) < 8 || string(bin[:4]) != "\x00asm" {
		return nil, st, &Error{At: "header", Err: errors.New("not a WebAssembly module (no \\0asm magic)")}
	}
	if v := bin[4:8]; v[0] != 1 || v[1] != 0 || v[2] != 0 || v[3] != 0 {
		return nil, st, &Error{At: "header", Err: fmt.Errorf("binary version %x: %w", v, ErrUnsupported)}
	}
	var secs []section
	r := reader{b: bin, off: 8}
	last := 0
	for r.off < len(bin) {
		at := r.off
		id, err := r.byte()
		if err != nil {
			return nil, st, &Error{At: fmt.Sprintf("section at offset %d", at), Err: err}
		}
		size, err := r.u32()
		if err != nil {
			return nil, st, &Error{At: fmt.Sprintf("section %d at offset %d: size", id, at), Err: err}
		}
		body, err := r.bytes(int(size))
		if err != nil {
			return nil, st, &Error{At: fmt.Sprintf("section %d at offset %d", id, at), Err: err}
		}
		if id != secCustom {
			if int(id) >= len(order) || order[id] == 0 {
				return nil, st, &Error{At: fmt.Sprintf("section %d at offset %d", id, at), Err: fmt.Errorf("unknown section id: %w", ErrUnsupported)}
			}
			if order[id] <= last {
				return nil, st, &Error{At: fmt.Sprintf("section %d at offset %d", id, at), Err: errors.New("out of order or repeated")}
			}
			last = order[id]
		}
		secs = append(secs, section{id: id, body: body})
	}

	m, err := survey(secs)
	if err != nil {
		return nil, st, err
	}
	if !m.hasMemory {
		return nil, st, &Error{At: "module", Err: fmt.Errorf("no memory to grow at safe points: %w", ErrUnsupported)}
	}
	g := globals{budget: m.importedGlobals + m.definedGlobals}
	g.flag, g.scratch = g.budget+1, g.budget+2
	st.FlagGlobal = g.flag

	// Globals: append $budget, $flag and $scratch, creating the section
	// if needed.
	add := appendGlobal(appendGlobal(appendGlobal(nil, Budget), 0), 0)
	secs = upsert(secs, secGlobal, func(old []byte) []byte {
		return extendVec(old, m.definedGlobals+3, add)
	})
	// Exports: append the flag, and the start function if there is one.
	export := appendName(nil, ExportName)
	export = append(export, 0x03) // global
	export = appendU32(export, g.flag)
	exports := m.exports + 1
	if m.hasStart {
		export = appendName(export, StartExportName)
		export = append(export, 0x00) // function
		export = appendU32(export, m.start)
		exports++
		st.Start = true
		secs = slices.DeleteFunc(secs, func(s section) bool { return s.id == secStart })
	}
	secs = upsert(secs, secExport, func(old []byte) []byte {
		return extendVec(old, exports, export)
	})
	// Code: rewrite every body.
	for i := range secs {
		if secs[i].id != secCode {
			continue
		}
		body, err := rewriteCode(secs[i].body, m.codeOffset, g, &st)
		if err != nil {
			return nil, st, err
		}
		secs[i].body = body
	}

	out := make([]byte, 0, len(bin)+len(bin)/8+64)
	out = append(out, bin[:8]...)
	for _, s := range secs {
		out = append(out, s.id)
		out = appendU32(out, uint32(len(s.body)))
		out = append(out, s.body...)
	}
	return out, st, nil
}

// module is what the rewrite needs to know about the sections it does not
// change.
type module struct {
	importedGlobals uint32
	definedGlobals  uint32
	exports         uint32
	hasMemory       bool
	// start is the start function's index, if hasStart.
	start    uint32
	hasStart bool
	// codeOffset is the offset of the code section's content in the
	// original module, for error messages.
	codeOffset int
}

func survey(secs []section) (module, error) {
	var m module
	off := 8
	for _, s := range secs {
		hdr := 1 + len(appendU32(nil, uint32(len(s.body))))
		r := reader{b: s.body}
		var err error
		switch s.id {
		case secImport:
			err = m.imports(&r)
		case secMemory:
			var n uint32
			if n, err = r.u32(); err == nil && n > 0 {
				var flags byte
				if flags, err = r.byte(); err == nil && flags&^0x03 != 0 {
					err = fmt.Errorf("memory limits flags 0x%02x (memory64 or custom page sizes): %w", flags, ErrUnsupported)
				}
				m.hasMemory = true
			}
		case secGlobal:
			m.definedGlobals, err = r.u32()
		case secExport:
			err = m.scanExports(&r)
		case secStart:
			m.start, err = r.u32()
			m.hasStart = true
		case secCode:
			m.codeOffset = off + hdr
		}
		if err != nil {
			return m, &Error{At: fmt.Sprintf("section %d at offset %d", s.id, off), Err: err}
		}
		off += hdr + len(s.body)
	}
	return m, nil
}

func (m *module) imports(r *reader) error {
	n, err := r.u32()
	if err != nil {
		return err
	}
	for i := uint32(0); i < n; i++ {
		if _, err := r.name(); err != nil {
			return fmt.Errorf("import %d: module name: %w", i, err)
		}
		if _, err := r.name(); err != nil {
			return fmt.Errorf("import %d: name: %w", i, err)
		}
		kind, err := r.byte()
		if err != nil {
			return fmt.Errorf("import %d: %w", i, err)
		}
		switch kind {
		case 0x00: // function: type index
			_, err = r.u32()
		case 0x01: // table: reftype, limits
			if _, err = r.byte(); err == nil {
				err = r.limits()
			}
		case 0x02: // memory: limits
			var flags byte
			if flags, err = r.peek(); err == nil && flags&^0x03 != 0 {
				return fmt.Errorf("import %d: memory limits flags 0x%02x (memory64 or custom page sizes): %w", i, flags, ErrUnsupported)
			}
			err = r.limits()
			m.hasMemory = true
		case 0x03: // global: valtype, mutability
			_, err = r.bytes(2)
			m.importedGlobals++
		default:
			return fmt.Errorf("import %d: kind 0x%02x: %w", i, kind, ErrUnsupported)
		}
		if err != nil {
			return fmt.Errorf("import %d: %w", i, err)
		}
	}
	return nil
}

func (m *module) scanExports(r *reader) error {
	n, err := r.u32()
	if err != nil {
		return err
	}
	m.exports = n
	for i := uint32(0); i < n; i++ {
		name, err := r.name()
		if err != nil {
			return fmt.Errorf("export %d: %w", i, err)
		}
		if name == ExportName || name == StartExportName {
			return fmt.Errorf("the module already exports %q, a name reserved for the rewrite: %w", name, ErrUnsupported)
		}
		if _, err := r.byte(); err != nil {
			return fmt.Errorf("export %d: %w", i, err)
		}
		if _, err := r.u32(); err != nil {
			return fmt.Errorf("export %d: %w", i, err)
		}
	}
	return nil
}

// upsert replaces the content of the section id with edit(content), or
// inserts a section edit(nil) before the first section the binary format
// orders after it.
func upsert(secs []section, id byte, edit func([]byte) []byte) []section {
	for i := range secs {
		if secs[i].id == id {
			secs[i].body = edit(secs[i].body)
			return secs
		}
	}
	at := len(secs)
	for i, s := range secs {
		if s.id != secCustom && order[s.id] > order[id] {
			at = i
			break
		}
	}
	return append(secs[:at], append([]section{{id: id, body: edit(nil)}}, secs[at:]...)...)
}

// extendVec returns a vector's content (count first, as survey read it)
// with the count set to n and entries appended.
func extendVec(content []byte, n uint32, entries []byte) []byte {
	if content != nil {
		r := reader{b: content}
		_, _ = r.u32() // survey has read it already
		content = content[r.off:]
	}
	out := appendU32(nil, n)
	out = append(out, content...)
	return append(out, entries...)
}

// appendGlobal appends a mutable i32 global initialised to v.
func appendGlobal(b []byte, v int32) []byte {
	b = append(b, 0x7F, 0x01, 0x41) // i32, mutable, i32.const
	b = appendS32(b, v)
	return append(b, 0x0B)
}

// MemoryMin returns the minimum size, in 64 KiB pages, that the module's
// own (defined, not imported) memory declares, and whether it has one.
// The host checks it against its memory limit before instantiating.
func MemoryMin(bin []byte) (pages uint32, ok bool, err error) {
	if len(bin) < 8 || string(bin[:4]) != "\x00asm" {
		return 0, false, &Error{At: "header", Err: errors.New("not a WebAssembly module (no \\0asm magic)")}
	}
	r := reader{b: bin, off: 8}
	for r.off < len(bin) {
		at := r.off
		id, err := r.byte()
		if err != nil {
			return 0, false, &Error{At: fmt.Sprintf("section at offset %d", at), Err: err}
		}
		size, err := r.u32()
		if err != nil {
			return 0, false, &Error{At: fmt.Sprintf("section %d at offset %d: size", id, at), Err: err}
		}
		body, err := r.bytes(int(size))
		if err != nil {
			return 0, false, &Error{At: fmt.Sprintf("section %d at offset %d", id, at), Err: err}
		}
		if id != secMemory {
			continue
		}
		m := reader{b: body}
		n, err := m.u32()
		if err != nil || n == 0 {
			return 0, false, err
		}
		if _, err := m.byte(); err != nil { // limits flags
			return 0, false, &Error{At: fmt.Sprintf("memory section at offset %d", at), Err: err}
		}
		min, err := m.u32()
		if err != nil {
			return 0, false, &Error{At: fmt.Sprintf("memory section at offset %d", at), Err: err}
		}
		return min, true, nil
	}
	return 0, false, nil
}
