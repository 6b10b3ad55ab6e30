package instrument

import (
	"errors"
	"fmt"
)

// rewriteCode rewrites the code section's content: every function body
// keeps its locals and instructions, with checks inserted (see rewriteBody),
// and gets a new size. base is the content's offset in the module.
func rewriteCode(content []byte, base int, g globals, st *Stats) ([]byte, error) {
	r := reader{b: content}
	n, err := r.u32()
	if err != nil {
		return nil, &Error{At: "code section", Err: err}
	}
	out := make([]byte, 0, len(content)+len(content)/4)
	out = appendU32(out, n)
	var w bodyWriter
	w.g = g
	for i := uint32(0); i < n; i++ {
		at := base + r.off
		size, err := r.u32()
		if err != nil {
			return nil, &Error{At: fmt.Sprintf("function body %d at offset %d", i, at), Err: err}
		}
		code, err := r.bytes(int(size))
		if err != nil {
			return nil, &Error{At: fmt.Sprintf("function body %d at offset %d", i, at), Err: err}
		}
		body, err := w.rewrite(code)
		if err != nil {
			var be *bodyError
			if errors.As(err, &be) {
				return nil, &Error{At: fmt.Sprintf("function body %d, instruction at offset %d", i, base+r.off-len(code)+be.off), Err: be.err}
			}
			return nil, &Error{At: fmt.Sprintf("function body %d at offset %d", i, at), Err: err}
		}
		out = appendU32(out, uint32(len(body)))
		out = append(out, body...)
		st.Functions++
		st.Loops += w.loops
		st.Bulk += w.bulk
	}
	if r.off != len(content) {
		return nil, &Error{At: "code section", Err: fmt.Errorf("%d bytes after the last function body", len(content)-r.off)}
	}
	return out, nil
}

// bodyError locates a decoding error at an offset within a function body.
type bodyError struct {
	off int
	err error
}

func (e *bodyError) Error() string { return fmt.Sprintf("at body offset %d: %v", e.off, e.err) }

// globals are the indices of the globals the checks use.
type globals struct {
	budget, flag, scratch uint32
}

// A site is where rewriteBody inserts code: after a loop header (charged
// with the loop body's instruction count), or around a bulk memory or
// table instruction (charged by its length operand).
type site struct {
	at, end int   // the instruction is code[at:end]
	loop    int   // for a loop: its index in bodyWriter.counts; -1 for bulk
	shift   uint8 // for bulk: length >> shift is the charge
}

// bodyWriter rewrites function bodies, reusing its buffers.
type bodyWriter struct {
	g      globals
	out    []byte
	sites  []site
	counts []int // instructions per region: [0] outside loops, then one per loop
	open   []int // for each open block, the region its instructions count in
	loops  int
	bulk   int
}

// rewrite returns the function body code (locals and expression) with
// checks inserted: at entry, charged with the instructions outside any
// loop; after every loop header, charged with the loop's own instructions
// (nested loops charge for theirs); and around bulk memory and table
// instructions, charged by length. The result is valid until the next call.
//
// Between two checks a function runs at most the straight-line code it
// was charged for (branches inside a loop region go forward, calls charge
// at the callee's entry), so the budget bounds the work between safe
// points, recursion and loop-free call trees included.
func (w *bodyWriter) rewrite(code []byte) ([]byte, error) {
	w.sites, w.counts, w.open = w.sites[:0], append(w.counts[:0], 0), append(w.open[:0], 0)
	w.loops, w.bulk = 0, 0
	r := reader{b: code}
	groups, err := r.u32()
	if err != nil {
		return nil, &bodyError{0, fmt.Errorf("locals: %w", err)}
	}
	for g := uint32(0); g < groups; g++ {
		if _, err := r.u32(); err != nil {
			return nil, &bodyError{r.off, fmt.Errorf("locals: %w", err)}
		}
		t, err := r.byte()
		if err != nil {
			return nil, &bodyError{r.off, fmt.Errorf("locals: %w", err)}
		}
		if !valType(t) {
			return nil, &bodyError{r.off - 1, fmt.Errorf("local of type 0x%02x: %w", t, ErrUnsupported)}
		}
	}
	start := r.off

	// Pass 1: decode, count, and find the sites.
	for {
		at := r.off
		if at == len(code) {
			return nil, &bodyError{at, errors.New("the body ends without its final end")}
		}
		op, _ := r.byte()
		var sub uint32
		if op == 0xFC {
			sub, _ = (&reader{b: code, off: r.off}).u32()
		}
		if err := skipImmediates(&r, op); err != nil {
			return nil, &bodyError{at, fmt.Errorf("opcode 0x%02x: %w", op, err)}
		}
		w.counts[w.open[len(w.open)-1]]++
		switch op {
		case 0x02, 0x04: // block, if: count in the enclosing region
			w.open = append(w.open, w.open[len(w.open)-1])
		case 0x03: // loop: a region of its own
			w.open = append(w.open, len(w.counts))
			w.sites = append(w.sites, site{at: at, end: r.off, loop: len(w.counts)})
			w.counts = append(w.counts, 0)
			w.loops++
		case 0x0B: // end
			w.open = w.open[:len(w.open)-1]
			if len(w.open) == 0 {
				if r.off != len(code) {
					return nil, &bodyError{at, fmt.Errorf("the function's final end is followed by %d bytes", len(code)-r.off)}
				}
				return w.emit(code, start), nil
			}
		case 0xFC:
			switch sub {
			case 8, 10, 11: // memory.init, memory.copy, memory.fill: length in bytes
				w.sites = append(w.sites, site{at: at, end: r.off, loop: -1, shift: bulkBytesShift})
				w.bulk++
			case 12, 14, 17: // table.init, table.copy, table.fill: length in entries
				w.sites = append(w.sites, site{at: at, end: r.off, loop: -1, shift: bulkEntriesShift})
				w.bulk++
			}
		}
	}
}

// Bulk instructions are charged length>>shift: about one unit (one
// simple instruction's time) per 16 bytes moved, or per 2 table entries.
const (
	bulkBytesShift   = 4
	bulkEntriesShift = 1
)

// emit writes the rewritten body: the locals, the entry check, then the
// code with the sites' checks.
func (w *bodyWriter) emit(code []byte, start int) []byte {
	out := append(w.out[:0], code[:start]...)
	out = w.charge(out, w.counts[0])
	mark := start
	for _, s := range w.sites {
		if s.loop >= 0 {
			out = append(out, code[mark:s.end]...)
			out = w.charge(out, w.counts[s.loop])
		} else {
			// The length is the last operand: keep a copy in the scratch
			// global, run the instruction, then charge for it.
			out = append(out, code[mark:s.at]...)
			out = append(out, 0x24)
			out = appendU32(out, w.g.scratch)
			out = append(out, 0x23)
			out = appendU32(out, w.g.scratch)
			out = append(out, code[s.at:s.end]...)
			out = append(out, 0x23)
			out = appendU32(out, w.g.budget)
			out = append(out, 0x23)
			out = appendU32(out, w.g.scratch)
			out = append(out, 0x41, s.shift, 0x76, 0x6B) // i32.const shift, i32.shr_u, i32.sub
			out = w.test(out)
		}
		mark = s.end
	}
	out = append(out, code[mark:]...)
	w.out = out
	return out
}

// charge appends: budget -= 1+n (at most Budget), then the test.
func (w *bodyWriter) charge(out []byte, n int) []byte {
	c := min(1+n, Budget)
	out = append(out, 0x23)
	out = appendU32(out, w.g.budget)
	out = append(out, 0x41)
	out = appendS32(out, int32(c))
	out = append(out, 0x6B) // i32.sub
	return w.test(out)
}

// test appends, with the new budget on the stack: store it, and if it is
// negative, reach a safe point, trap if the flag is set, and refill.
func (w *bodyWriter) test(out []byte) []byte {
	out = append(out, 0x24)
	out = appendU32(out, w.g.budget)
	out = append(out, 0x23)
	out = appendU32(out, w.g.budget)
	out = append(out, 0x41, 0x00, 0x48, 0x04, 0x40) // i32.const 0, i32.lt_s, if (no result)
	out = append(out, 0x41, 0x00, 0x40, 0x00, 0x1A) // i32.const 0, memory.grow 0, drop: a safe point
	out = append(out, 0x23)
	out = appendU32(out, w.g.flag)
	out = append(out, 0x04, 0x40, 0x00, 0x0B) // if, unreachable, end
	out = append(out, 0x41)
	out = appendS32(out, Budget)
	out = append(out, 0x24)
	out = appendU32(out, w.g.budget)
	return append(out, 0x0B) // end
}

// skipImmediates reads the immediates of op (already read), or fails for
// an opcode it does not know.
func skipImmediates(r *reader, op byte) error {
	switch {
	case op == 0x00, op == 0x01, op == 0x05, op == 0x0B, op == 0x0F, // unreachable, nop, else, end, return
		op == 0x1A, op == 0x1B, // drop, select
		op >= 0x45 && op <= 0xC4, // numeric, sign extension
		op == 0xD1:               // ref.is_null
		return nil
	case op >= 0x02 && op <= 0x04: // block, loop, if
		return r.blockType()
	case op == 0x0C, op == 0x0D, // br, br_if
		op == 0x10,               // call
		op >= 0x20 && op <= 0x26, // local.*, global.*, table.get/set
		op == 0xD2,               // ref.func
		op == 0x3F, op == 0x40:   // memory.size, memory.grow: memory index
		_, err := r.u32()
		return err
	case op == 0x0E: // br_table: vec(label), default label
		n, err := r.u32()
		if err != nil {
			return err
		}
		for i := uint32(0); i <= n; i++ {
			if _, err := r.u32(); err != nil {
				return err
			}
		}
		return nil
	case op == 0x11: // call_indirect: type index, table index
		return r.u32s(2)
	case op == 0x1C: // select with types: vec(valtype)
		n, err := r.u32()
		if err != nil {
			return err
		}
		for i := uint32(0); i < n; i++ {
			t, err := r.byte()
			if err != nil {
				return err
			}
			if !valType(t) {
				return fmt.Errorf("select type 0x%02x: %w", t, ErrUnsupported)
			}
		}
		return nil
	case op >= 0x28 && op <= 0x3E: // loads and stores
		return r.memArg()
	case op == 0x41: // i32.const
		return r.skipLEB(5)
	case op == 0x42: // i64.const
		return r.skipLEB(10)
	case op == 0x43: // f32.const
		_, err := r.bytes(4)
		return err
	case op == 0x44: // f64.const
		_, err := r.bytes(8)
		return err
	case op == 0xD0: // ref.null: reftype
		t, err := r.byte()
		if err != nil {
			return err
		}
		if t != 0x70 && t != 0x6F {
			return fmt.Errorf("ref.null of heap type 0x%02x: %w", t, ErrUnsupported)
		}
		return nil
	case op == 0xFC:
		return skipFC(r)
	case op == 0xFD:
		return skipSIMD(r)
	case op == 0xFE:
		return skipAtomic(r)
	}
	// 0x06-0x0A, 0x18, 0x19, 0x1F exception handling; 0x12-0x15 tail and
	// typed calls; 0xD3-0xD6 typed references; 0xFB GC; and unassigned
	// opcodes.
	return ErrUnsupported
}

// skipFC reads a 0xFC-prefixed instruction: saturating truncation, bulk
// memory and table instructions.
func skipFC(r *reader) error {
	sub, err := r.u32()
	if err != nil {
		return err
	}
	switch {
	case sub <= 7: // trunc_sat
		return nil
	case sub == 8: // memory.init: data index, memory index
		return r.u32s(2)
	case sub == 9: // data.drop: data index
		return r.u32s(1)
	case sub == 10: // memory.copy: memory, memory
		return r.u32s(2)
	case sub == 11: // memory.fill: memory
		return r.u32s(1)
	case sub == 12: // table.init: element index, table index
		return r.u32s(2)
	case sub == 13: // elem.drop: element index
		return r.u32s(1)
	case sub == 14: // table.copy: table, table
		return r.u32s(2)
	case sub >= 15 && sub <= 17: // table.grow, table.size, table.fill: table
		return r.u32s(1)
	}
	return fmt.Errorf("0xFC %d: %w", sub, ErrUnsupported)
}

// skipSIMD reads a 0xFD-prefixed (SIMD) instruction.
func skipSIMD(r *reader) error {
	sub, err := r.u32()
	if err != nil {
		return err
	}
	switch {
	case sub <= 11, sub == 92, sub == 93: // v128 loads and store, load32/64_zero
		return r.memArg()
	case sub == 12, sub == 13: // v128.const, i8x16.shuffle: 16 bytes
		_, err := r.bytes(16)
		return err
	case sub >= 21 && sub <= 34: // extract_lane, replace_lane: lane index
		_, err := r.byte()
		return err
	case sub >= 84 && sub <= 91: // load/store lane: memarg, lane index
		if err := r.memArg(); err != nil {
			return err
		}
		_, err := r.byte()
		return err
	case sub <= 255: // every other SIMD instruction has no immediate
		return nil
	}
	return fmt.Errorf("0xFD %d: %w", sub, ErrUnsupported)
}

// skipAtomic reads a 0xFE-prefixed (threads) instruction.
func skipAtomic(r *reader) error {
	sub, err := r.u32()
	if err != nil {
		return err
	}
	switch {
	case sub <= 2, sub >= 0x10 && sub <= 0x4E: // notify, wait32/64, loads, stores, rmw, cmpxchg
		return r.memArg()
	case sub == 3: // atomic.fence: a reserved 0x00 byte
		b, err := r.byte()
		if err == nil && b != 0 {
			err = fmt.Errorf("atomic.fence with byte 0x%02x, want 0x00", b)
		}
		return err
	}
	return fmt.Errorf("0xFE %d: %w", sub, ErrUnsupported)
}

// valType reports whether t is a value type this rewriter knows.
func valType(t byte) bool {
	switch t {
	case 0x7F, 0x7E, 0x7D, 0x7C, 0x7B, 0x70, 0x6F: // i32 i64 f32 f64 v128 funcref externref
		return true
	}
	return false
}

// reader decodes the WebAssembly binary format.
type reader struct {
	b   []byte
	off int
}

var errEOF = errors.New("unexpected end of data")

func (r *reader) byte() (byte, error) {
	if r.off >= len(r.b) {
		return 0, errEOF
	}
	c := r.b[r.off]
	r.off++
	return c, nil
}

func (r *reader) peek() (byte, error) {
	if r.off >= len(r.b) {
		return 0, errEOF
	}
	return r.b[r.off], nil
}

func (r *reader) bytes(n int) ([]byte, error) {
	if n < 0 || n > len(r.b)-r.off {
		return nil, fmt.Errorf("%d bytes wanted, %d left: %w", n, len(r.b)-r.off, errEOF)
	}
	b := r.b[r.off : r.off+n]
	r.off += n
	return b, nil
}

// u32 reads an unsigned LEB128 of at most 32 bits.
func (r *reader) u32() (uint32, error) {
	var v uint32
	for shift := 0; shift < 35; shift += 7 {
		c, err := r.byte()
		if err != nil {
			return 0, err
		}
		if shift == 28 && c&0x70 != 0 {
			return 0, errors.New("LEB128 u32 overflows 32 bits")
		}
		v |= uint32(c&0x7F) << shift
		if c&0x80 == 0 {
			return v, nil
		}
	}
	return 0, errors.New("LEB128 u32 longer than 5 bytes")
}

func (r *reader) u32s(n int) error {
	for i := 0; i < n; i++ {
		if _, err := r.u32(); err != nil {
			return err
		}
	}
	return nil
}

// skipLEB skips a LEB128 of at most max bytes.
func (r *reader) skipLEB(max int) error {
	for i := 0; i < max; i++ {
		c, err := r.byte()
		if err != nil {
			return err
		}
		if c&0x80 == 0 {
			return nil
		}
	}
	return fmt.Errorf("LEB128 longer than %d bytes", max)
}

// memArg reads alignment and offset; bit 6 of the alignment says a memory
// index follows (multi-memory). The offset may be 64-bit (memory64).
func (r *reader) memArg() error {
	align, err := r.u32()
	if err != nil {
		return err
	}
	if align&0x40 != 0 {
		if _, err := r.u32(); err != nil {
			return err
		}
	}
	return r.skipLEB(10)
}

// blockType reads a block type: 0x40 (empty), a value type, or a type
// index as a non-negative signed LEB128 (s33).
func (r *reader) blockType() error {
	c, err := r.peek()
	if err != nil {
		return err
	}
	if c == 0x40 || valType(c) {
		r.off++
		return nil
	}
	var v int64
	var shift uint
	for i := 0; ; i++ {
		if i == 5 {
			return errors.New("block type index longer than 5 bytes")
		}
		c, err := r.byte()
		if err != nil {
			return err
		}
		v |= int64(c&0x7F) << shift
		shift += 7
		if c&0x80 == 0 {
			if c&0x40 != 0 {
				v |= -1 << shift // sign-extend
			}
			break
		}
	}
	if v < 0 {
		return fmt.Errorf("block type 0x%02x: %w", c, ErrUnsupported)
	}
	return nil
}

// limits reads table or memory limits: flags, minimum, and a maximum if
// flag bit 0 is set.
func (r *reader) limits() error {
	flags, err := r.byte()
	if err != nil {
		return err
	}
	if err := r.skipLEB(10); err != nil {
		return err
	}
	if flags&1 != 0 {
		return r.skipLEB(10)
	}
	return nil
}

// name reads a length-prefixed UTF-8 name.
func (r *reader) name() (string, error) {
	n, err := r.u32()
	if err != nil {
		return "", err
	}
	b, err := r.bytes(int(n))
	return string(b), err
}

func appendU32(b []byte, v uint32) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func appendS32(b []byte, v int32) []byte {
	for {
		c := byte(v & 0x7F)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func appendName(b []byte, s string) []byte {
	b = appendU32(b, uint32(len(s)))
	return append(b, s...)
}
