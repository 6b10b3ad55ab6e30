package pluginhost

import "encoding/binary"

// kernel is one instance's Extism kernel memory: the separate address
// space that the Extism imports (alloc, load_u64, output_set ...) work on.
// Extism's own runtime keeps it in a second WebAssembly module; here it is
// a Go byte slab addressed by u64 offsets, so each import is a few Go
// instructions instead of a trampoline into another module.
//
// Layout: offsets below kernelBase are never handed out, so 0 means "no
// block" as in Extism. Blocks are allocated by bumping an 8-aligned
// pointer; freed blocks are reused first-fit, and freeing the last block
// moves the pointer back. reset empties everything between calls without
// releasing the slab, so a warm instance allocates nothing.
//
// Not safe for concurrent use: an instance serves one call at a time.
type kernel struct {
	mem    []byte  // len = bump pointer; cap is kept across calls
	blocks []block // sorted by off (the bump allocator appends in order)
	limit  uint64  // bytes the slab may grow to

	inOff, inLen   uint64
	outOff, outLen uint64
	errOff         uint64
}

type block struct {
	off, size, used uint64
	free            bool
}

const (
	kernelBase = 8
	// kernelKeep is the slab capacity kept after a call; a call that
	// needed more gives the excess back to the garbage collector.
	kernelKeep = 4 << 20
)

func newKernel(limit uint64) *kernel {
	return &kernel{mem: make([]byte, kernelBase, 64<<10), limit: limit}
}

// reset forgets every block, the input, the output and the error.
func (k *kernel) reset() {
	if cap(k.mem) > kernelKeep {
		k.mem = make([]byte, kernelBase, 64<<10)
	}
	k.mem = k.mem[:kernelBase]
	k.blocks = k.blocks[:0]
	k.inOff, k.inLen, k.outOff, k.outLen, k.errOff = 0, 0, 0, 0, 0
}

// alloc returns the offset of a new zeroed block of n bytes, or 0 if n is 0
// or the limit would be exceeded.
func (k *kernel) alloc(n uint64) uint64 {
	if n == 0 {
		return 0
	}
	for i := range k.blocks {
		b := &k.blocks[i]
		if b.free && b.size >= n {
			b.free, b.used = false, n
			clear(k.mem[b.off : b.off+n])
			return b.off
		}
	}
	off := (uint64(len(k.mem)) + 7) &^ 7
	end := off + n
	if end < off || end > k.limit {
		return 0
	}
	if end > uint64(cap(k.mem)) {
		c := max(2*uint64(cap(k.mem)), end)
		if c > k.limit {
			c = k.limit
		}
		grown := make([]byte, len(k.mem), c)
		copy(grown, k.mem)
		k.mem = grown
	}
	k.mem = k.mem[:end]
	clear(k.mem[off:end])
	k.blocks = append(k.blocks, block{off: off, size: n, used: n})
	return off
}

// find returns the index of the live block starting at off, or -1.
func (k *kernel) find(off uint64) int {
	i, j := 0, len(k.blocks)
	for i < j {
		h := int(uint(i+j) >> 1)
		if k.blocks[h].off < off {
			i = h + 1
		} else {
			j = h
		}
	}
	if i < len(k.blocks) && k.blocks[i].off == off && !k.blocks[i].free {
		return i
	}
	return -1
}

func (k *kernel) length(off uint64) uint64 {
	if i := k.find(off); i >= 0 {
		return k.blocks[i].used
	}
	return 0
}

func (k *kernel) free(off uint64) {
	i := k.find(off)
	if i < 0 {
		return
	}
	if off == k.inOff {
		k.inLen = 0
	}
	if i == len(k.blocks)-1 {
		k.mem = k.mem[:k.blocks[i].off]
		k.blocks = k.blocks[:i]
		return
	}
	k.blocks[i].free = true
}

// bytes returns the live block at off, or nil.
func (k *kernel) bytes(off uint64) []byte {
	if i := k.find(off); i >= 0 {
		b := k.blocks[i]
		return k.mem[b.off : b.off+b.used]
	}
	return nil
}

// in reports whether [off, off+n) lies inside the slab.
func (k *kernel) in(off, n uint64) bool {
	end := off + n
	return end >= off && off >= kernelBase && end <= uint64(len(k.mem))
}

func (k *kernel) loadU8(off uint64) (uint8, bool) {
	if !k.in(off, 1) {
		return 0, false
	}
	return k.mem[off], true
}

func (k *kernel) loadU64(off uint64) (uint64, bool) {
	if !k.in(off, 8) {
		return 0, false
	}
	return binary.LittleEndian.Uint64(k.mem[off:]), true
}

func (k *kernel) storeU8(off uint64, v uint8) bool {
	if !k.in(off, 1) {
		return false
	}
	k.mem[off] = v
	return true
}

func (k *kernel) storeU64(off, v uint64) bool {
	if !k.in(off, 8) {
		return false
	}
	binary.LittleEndian.PutUint64(k.mem[off:], v)
	return true
}

// setInput copies the call's input into a new block.
func (k *kernel) setInput(input []byte) bool {
	if len(input) == 0 {
		k.inOff, k.inLen = 0, 0
		return true
	}
	off := k.alloc(uint64(len(input)))
	if off == 0 {
		return false
	}
	copy(k.mem[off:], input)
	k.inOff, k.inLen = off, uint64(len(input))
	return true
}

func (k *kernel) inputLoadU8(i uint64) uint8 {
	if i >= k.inLen {
		return 0
	}
	return k.mem[k.inOff+i]
}

func (k *kernel) inputLoadU64(i uint64) uint64 {
	if i+8 > k.inLen || i+8 < i {
		return 0
	}
	return binary.LittleEndian.Uint64(k.mem[k.inOff+i:])
}

// output returns the bytes named by output_set (aliasing the slab).
func (k *kernel) output() []byte {
	if k.outLen == 0 {
		return nil
	}
	return k.mem[k.outOff : k.outOff+k.outLen]
}

// errorMessage returns the block named by error_set, if any.
func (k *kernel) errorMessage() ([]byte, bool) {
	if k.errOff == 0 {
		return nil, false
	}
	if k.in(k.errOff, 0) {
		if b := k.bytes(k.errOff); b != nil {
			return b, true
		}
	}
	return []byte("error_set was called with an invalid kernel offset"), true
}
