package instrument

import (
	"bytes"
	"context"
	"errors"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/fraiseql/observer/internal/testenv"
)

// A small assembler for hand-made modules.

func u32(v uint32) []byte { return appendU32(nil, v) }

func str(s string) []byte { return appendName(nil, s) }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// vec is a vector: its count, then the items.
func vec(items ...[]byte) []byte { return cat(u32(uint32(len(items))), cat(items...)) }

func sec(id byte, content ...[]byte) []byte {
	c := cat(content...)
	return cat([]byte{id}, u32(uint32(len(c))), c)
}

func wasmModule(secs ...[]byte) []byte { return cat([]byte("\x00asm\x01\x00\x00\x00"), cat(secs...)) }

// fn is a function body: locals (already encoded as a vector) and code,
// size-prefixed.
func fn(locals []byte, code ...byte) []byte {
	b := cat(locals, code)
	return cat(u32(uint32(len(b))), b)
}

var (
	noLocals = vec()
	i32      = byte(0x7F)
	// funcType (params) -> (results)
	funcType = func(params, results []byte) []byte {
		return cat([]byte{0x60}, u32(uint32(len(params))), params, u32(uint32(len(results))), results)
	}
	memory1 = sec(secMemory, vec([]byte{0x00, 0x01})) // one memory, min 1 page
)

func exportFunc(name string, idx uint32) []byte { return cat(str(name), []byte{0x00}, u32(idx)) }

func newRuntime(t *testing.T) wazero.Runtime {
	t.Helper()
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().
		WithCoreFeatures(api.CoreFeaturesV2|experimental.CoreFeaturesThreads))
	t.Cleanup(func() { _ = rt.Close(ctx) })
	return rt
}

// instantiate compiles and instantiates bin.
func instantiate(t *testing.T, rt wazero.Runtime, bin []byte) api.Module {
	t.Helper()
	ctx := context.Background()
	m, err := rt.InstantiateWithConfig(ctx, bin, wazero.NewModuleConfig().WithName(""))
	if err != nil {
		t.Fatalf("instantiate: %v", err)
	}
	return m
}

func rewrite(t *testing.T, bin []byte) ([]byte, Stats) {
	t.Helper()
	orig := bytes.Clone(bin)
	out, st, err := Rewrite(bin)
	if err != nil {
		t.Fatalf("Rewrite: %v", err)
	}
	if !bytes.Equal(bin, orig) {
		t.Fatal("Rewrite modified its input")
	}
	return out, st
}

// call runs an export and returns its single i32 result.
func call(t *testing.T, m api.Module, name string, args ...uint64) uint32 {
	t.Helper()
	res, err := m.ExportedFunction(name).Call(context.Background(), args...)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return uint32(res[0])
}

// TestLoops runs hand-made loops before and after the rewrite, with more
// iterations than Budget so that the safe-point path runs too, and checks
// they compute the same thing and that every loop was instrumented.
func TestLoops(t *testing.T) {
	// count(n): i := 0; loop { i++; br_if i < n }; return i * 1000
	// (instructions after the loop's end must survive).
	count := []byte{
		0x03, 0x40, // loop
		0x20, 0x01, 0x41, 0x01, 0x6A, 0x21, 0x01, // i++
		0x20, 0x01, 0x20, 0x00, 0x49, 0x0D, 0x00, // br_if 0 (i < n)
		0x0B,                               // end
		0x20, 0x01, 0x41, 0xE8, 0x07, 0x6C, // i * 1000
		0x0B,
	}
	// nested(n): for i < n { for j < n { acc++ } }; return acc
	nested := []byte{
		0x03, 0x40, // loop outer
		0x41, 0x00, 0x21, 0x02, // j = 0
		0x03, 0x40, // loop inner
		0x20, 0x03, 0x41, 0x01, 0x6A, 0x21, 0x03, // acc++
		0x20, 0x02, 0x41, 0x01, 0x6A, 0x22, 0x02, 0x20, 0x00, 0x49, 0x0D, 0x00, // br_if inner (++j < n)
		0x0B,
		0x20, 0x01, 0x41, 0x01, 0x6A, 0x22, 0x01, 0x20, 0x00, 0x49, 0x0D, 0x00, // br_if outer (++i < n)
		0x0B,
		0x20, 0x03,
		0x0B,
	}
	// typed(n): a loop of block type index 64 ([i32] -> [i32], a
	// two-byte s33) carrying n on the stack down to 0, counting in local 1.
	typed := []byte{
		0x20, 0x00, // n
		0x03, 0xC0, 0x00, // loop (type 64)
		0x20, 0x01, 0x41, 0x01, 0x6A, 0x21, 0x01, // count++
		0x41, 0x01, 0x6B, 0x22, 0x00, 0x20, 0x00, 0x0D, 0x00, // n-1, br_if 0 with n-1 as the loop's argument
		0x0B,
		0x1A, 0x20, 0x01, // drop the loop's result, return count
		0x0B,
	}
	var types [][]byte
	for i := 0; i < 65; i++ {
		types = append(types, funcType([]byte{i32}, []byte{i32}))
	}
	bin := wasmModule(
		sec(secCustom, str("first"), []byte("custom sections are kept")),
		sec(secType, vec(types...)),
		sec(secFunction, vec(u32(0), u32(0), u32(0))),
		memory1,
		sec(secExport, vec(exportFunc("count", 0), exportFunc("nested", 1), exportFunc("typed", 2))),
		sec(secCode, vec(
			fn(vec(cat(u32(1), []byte{i32})), count...),
			fn(vec(cat(u32(3), []byte{i32})), nested...),
			fn(vec(cat(u32(1), []byte{i32})), typed...),
		)),
		sec(secCustom, str("last"), []byte("x")),
	)
	out, st := rewrite(t, bin)
	if st.Functions != 3 || st.Loops != 4 || st.FlagGlobal != 1 {
		t.Fatalf("stats = %+v, want 3 functions, 4 loops, flag global 1", st)
	}
	if !bytes.Contains(out, []byte("custom sections are kept")) {
		t.Fatal("a custom section was lost")
	}
	before := instantiate(t, newRuntime(t), bin)
	after := instantiate(t, newRuntime(t), out)
	for _, tc := range []struct {
		export string
		n      uint64
		want   uint32
	}{
		{"count", 3 * Budget, 3 * Budget * 1000},
		{"count", 1, 1000},
		{"nested", 300, 90000},
		{"typed", 2*Budget + 7, 2*Budget + 7},
	} {
		if got := call(t, before, tc.export, tc.n); got != tc.want {
			t.Fatalf("original %s(%d) = %d, want %d", tc.export, tc.n, got, tc.want)
		}
		if got := call(t, after, tc.export, tc.n); got != tc.want {
			t.Errorf("rewritten %s(%d) = %d, want %d", tc.export, tc.n, got, tc.want)
		}
	}
	if g, ok := after.ExportedGlobal(ExportName).(api.MutableGlobal); !ok || g.Get() != 0 {
		t.Fatalf("rewritten module exports %q as %v, want a mutable global at 0", ExportName, after.ExportedGlobal(ExportName))
	}
}

// TestInterrupt: each way a guest can run without end stops once the flag
// is set from another goroutine (it traps), and meanwhile does not stop
// the garbage collector: an infinite loop; a loop-free call tree too big
// to finish, whose recursion never overflows the stack (charged at
// function entry); and a loop around a 64 MiB memory.fill, charged by
// length, which without that would reach a safe point only every
// Budget/6 iterations of milliseconds each. The module imports a global
// and defines one, so the flag's index must count both.
func TestInterrupt(t *testing.T) {
	rt := newRuntime(t)
	ctx := context.Background()
	env := wasmModule(
		sec(secGlobal, vec([]byte{i32, 0x00, 0x41, 0x07, 0x0B})),
		sec(secExport, vec(cat(str("g"), []byte{0x03, 0x00}))),
	)
	if _, err := rt.InstantiateWithConfig(ctx, env, wazero.NewModuleConfig().WithName("env")); err != nil {
		t.Fatal(err)
	}
	fill := cat([]byte{0x03, 0x40, 0x41, 0x00, 0x41, 0x00, 0x41}, appendS32(nil, 64<<20), []byte{0xFC, 0x0B, 0x00, 0x0C, 0x00, 0x0B, 0x0B})
	bin := wasmModule(
		sec(secType, vec(funcType(nil, nil), funcType(nil, []byte{i32}), funcType([]byte{i32}, nil))),
		sec(secImport, vec(cat(str("env"), str("g"), []byte{0x03, i32, 0x00}))),
		sec(secFunction, vec(u32(0), u32(1), u32(2), u32(0))),
		sec(secMemory, vec(cat([]byte{0x00}, u32(1024)))),        // 64 MiB
		sec(secGlobal, vec([]byte{i32, 0x01, 0x41, 0x2A, 0x0B})), // mutable i32 = 42
		sec(secExport, vec(exportFunc("spin", 0), exportFunc("get", 1), exportFunc("tree", 2), exportFunc("fill", 3))),
		sec(secCode, vec(
			fn(noLocals, 0x03, 0x40, 0x0C, 0x00, 0x0B, 0x0B), // loop br 0 end
			fn(noLocals, 0x23, 0x00, 0x23, 0x01, 0x6A, 0x0B), // global 0 + global 1
			fn(noLocals, 0x20, 0x00, 0x45, 0x04, 0x40, 0x0F, 0x0B, // if n == 0 return
				0x20, 0x00, 0x41, 0x01, 0x6B, 0x10, 0x02, // tree(n-1)
				0x20, 0x00, 0x41, 0x01, 0x6B, 0x10, 0x02, // tree(n-1)
				0x0B),
			fn(noLocals, fill...),
		)),
	)
	out, st := rewrite(t, bin)
	if st.FlagGlobal != 3 || st.Functions != 4 || st.Loops != 2 || st.Bulk != 1 {
		t.Fatalf("stats %+v, want flag global 3 (1 imported + 1 defined + the budget), 4 functions, 2 loops, 1 bulk", st)
	}
	for _, tc := range []struct {
		export string
		args   []uint64
	}{{"spin", nil}, {"tree", []uint64{62}}, {"fill", nil}} {
		t.Run(tc.export, func(t *testing.T) {
			m, err := rt.InstantiateWithConfig(ctx, out, wazero.NewModuleConfig().WithName(""))
			if err != nil {
				t.Fatal(err)
			}
			if got := call(t, m, "get"); got != 49 {
				t.Fatalf("get = %d, want 7 + 42: the module's own globals moved", got)
			}
			flag := m.ExportedGlobal(ExportName).(api.MutableGlobal)
			done := make(chan error, 1)
			go func() {
				_, err := m.ExportedFunction(tc.export).Call(ctx, tc.args...)
				done <- err
			}()
			time.Sleep(100 * time.Millisecond)
			start := time.Now()
			runtime.GC()
			if took := time.Since(start); took > time.Second {
				t.Fatalf("runtime.GC took %s while the guest ran", took)
			}
			select {
			case err := <-done:
				t.Fatalf("%s returned before the flag was set: %v", tc.export, err)
			default:
			}
			flag.Set(1)
			start = time.Now()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), "unreachable") {
					t.Fatalf("%s returned %v, want the unreachable trap", tc.export, err)
				}
				t.Logf("%s stopped %s after the flag was set", tc.export, time.Since(start))
			case <-time.After(5 * time.Second):
				t.Fatalf("%s still runs 5s after the flag was set", tc.export)
			}
		})
	}
}

// TestSectionsCreated: a module without global and export sections gets
// them, in the order the binary format requires (wazero refuses
// otherwise), before the code and data sections.
func TestSectionsCreated(t *testing.T) {
	bin := wasmModule(
		sec(secType, vec(funcType(nil, nil))),
		sec(secFunction, vec(u32(0))),
		memory1,
		sec(secStart, u32(0)),
		sec(secDataCount, u32(1)),
		sec(secCode, vec(fn(noLocals, 0x03, 0x40, 0x0B, 0x0B))),
		sec(secData, vec(cat([]byte{0x00, 0x41, 0x00, 0x0B}, str("hi")))),
		sec(secCustom, str("name"), []byte{}),
	)
	out, st := rewrite(t, bin)
	if st.Loops != 1 || st.FlagGlobal != 1 {
		t.Fatalf("stats %+v", st)
	}
	m := instantiate(t, newRuntime(t), out)
	if m.ExportedGlobal(ExportName) == nil {
		t.Fatal("no flag export")
	}
	if !st.Start || m.ExportedFunction(StartExportName) == nil {
		t.Fatalf("the start function is not exported as %s (stats %+v)", StartExportName, st)
	}
}

// TestStartSection: the rewrite removes the start section and exports its
// function, so that instantiating never runs guest code the flag cannot
// stop: a start function that spins returns control at once, and the
// export runs it (once called) until the flag is set.
func TestStartSection(t *testing.T) {
	ctx := context.Background()
	bin := wasmModule(
		sec(secType, vec(funcType(nil, nil), funcType(nil, []byte{i32}))),
		sec(secFunction, vec(u32(0), u32(1), u32(0))),
		memory1,
		sec(secGlobal, vec([]byte{i32, 0x01, 0x41, 0x00, 0x0B})), // mutable i32 = 0
		sec(secExport, vec(exportFunc("get", 1))),
		sec(secStart, u32(0)),
		sec(secCode, vec(
			fn(noLocals, 0x41, 0x01, 0x24, 0x00, 0x10, 0x02, 0x0B), // global = 1; call spin
			fn(noLocals, 0x23, 0x00, 0x0B),                         // get global
			fn(noLocals, 0x03, 0x40, 0x0C, 0x00, 0x0B, 0x0B),       // spin: loop br 0 end
		)),
	)
	out, st := rewrite(t, bin)
	if !st.Start {
		t.Fatalf("stats %+v: the start section was not seen", st)
	}
	done := make(chan api.Module, 1)
	go func() { done <- instantiate(t, newRuntime(t), out) }()
	var m api.Module
	select {
	case m = <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("instantiating the rewritten module ran its spinning start function")
	}
	if got := call(t, m, "get"); got != 0 {
		t.Fatalf("get = %d before the start export ran, want 0", got)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := m.ExportedFunction(StartExportName).Call(ctx)
		errc <- err
	}()
	time.Sleep(50 * time.Millisecond)
	m.ExportedGlobal(ExportName).(api.MutableGlobal).Set(1)
	select {
	case err := <-errc:
		if err == nil || !strings.Contains(err.Error(), "unreachable") {
			t.Fatalf("start export returned %v, want the unreachable trap of the interrupt", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the start export still runs 5s after the flag was set")
	}
	m.ExportedGlobal(ExportName).(api.MutableGlobal).Set(0) // or get traps too
	if got := call(t, m, "get"); got != 1 {
		t.Fatalf("get = %d after the start export ran, want 1", got)
	}

	// A module that already exports the reserved start name is refused.
	_, _, err := Rewrite(wasmModule(sec(secType, vec(funcType(nil, nil))), sec(secFunction, vec(u32(0))), memory1,
		sec(secExport, vec(exportFunc(StartExportName, 0))), sec(secCode, vec(fn(noLocals, 0x0B)))))
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), StartExportName) {
		t.Fatalf("reserved start export: %v", err)
	}
}

// TestInstructionZoo decodes one body using every immediate shape
// (bulk memory and tables, reference types, typed select, SIMD memargs,
// lanes, constants and shuffles, a two-byte SIMD opcode, atomics and
// atomic.fence, br_table, call_indirect, constants of every width) and
// then a loop: if any immediate were misread, the loop would not be found
// or the rewritten module would not compile and run.
func TestInstructionZoo(t *testing.T) {
	v128 := bytes.Repeat([]byte{0x01}, 16)
	lanes := []byte{0, 17, 2, 19, 4, 21, 6, 23, 8, 25, 10, 27, 12, 29, 14, 31}
	code := cat(
		[]byte{0x41, 0x00, 0x41, 0x00, 0x41, 0x01, 0xFC, 0x08, 0x00, 0x00}, // memory.init 0 0
		[]byte{0xFC, 0x09, 0x00}, // data.drop 0
		[]byte{0x41, 0x00, 0x41, 0x00, 0x41, 0x00, 0xFC, 0x0A, 0x00, 0x00}, // memory.copy 0 0
		[]byte{0x41, 0x00, 0x41, 0x00, 0x41, 0x00, 0xFC, 0x0B, 0x00},       // memory.fill 0
		[]byte{0x41, 0x00, 0x41, 0x00, 0x41, 0x01, 0xFC, 0x0C, 0x00, 0x00}, // table.init 0 0
		[]byte{0xFC, 0x0D, 0x00}, // elem.drop 0
		[]byte{0x41, 0x00, 0x41, 0x00, 0x41, 0x00, 0xFC, 0x0E, 0x00, 0x00}, // table.copy 0 0
		[]byte{0xD0, 0x70, 0x41, 0x01, 0xFC, 0x0F, 0x00, 0x1A},             // ref.null func, table.grow 0
		[]byte{0xFC, 0x10, 0x00, 0x1A},                                     // table.size 0
		[]byte{0x41, 0x01, 0xD0, 0x70, 0x41, 0x00, 0xFC, 0x11, 0x00},       // table.fill 0
		[]byte{0x43, 0, 0, 0, 0, 0xFC, 0x00, 0x1A},                         // f32.const, i32.trunc_sat_f32_s
		[]byte{0x41, 0x00, 0x25, 0x00, 0x21, 0x02},                         // table.get 0
		[]byte{0x41, 0x00, 0x20, 0x02, 0x26, 0x00},                         // table.set 0
		[]byte{0xD2, 0x00, 0xD1, 0x1A},                                     // ref.func 0, ref.is_null
		[]byte{0x41, 0x01, 0x41, 0x02, 0x41, 0x01, 0x1C, 0x01, 0x7F, 0x1A}, // select (result i32)
		[]byte{0xFD, 0x0C}, v128, []byte{0x21, 0x00}, // v128.const
		[]byte{0x20, 0x00, 0x20, 0x00, 0xFD, 0x0D}, lanes, []byte{0x21, 0x00}, // i8x16.shuffle
		[]byte{0x20, 0x00, 0xFD, 0x15, 0x03, 0x1A},                                                       // i8x16.extract_lane_s 3
		[]byte{0x20, 0x00, 0x41, 0x05, 0xFD, 0x1C, 0x01, 0x21, 0x00},                                     // i32x4.replace_lane 1
		[]byte{0x41, 0x00, 0xFD, 0x00, 0x04, 0x00, 0x21, 0x00},                                           // v128.load
		[]byte{0x41, 0x00, 0x20, 0x00, 0xFD, 0x54, 0x00, 0x00, 0x07, 0x21, 0x00},                         // v128.load8_lane 7
		[]byte{0x41, 0x00, 0x20, 0x00, 0xFD, 0x5B, 0x03, 0x00, 0x01},                                     // v128.store64_lane 1
		[]byte{0x41, 0x00, 0xFD, 0x5C, 0x02, 0x00, 0x21, 0x00},                                           // v128.load32_zero
		[]byte{0x20, 0x00, 0xFD, 0xA0, 0x01, 0x21, 0x00},                                                 // i32x4.abs (opcode 160: two LEB bytes)
		[]byte{0xFE, 0x03, 0x00},                                                                         // atomic.fence
		[]byte{0x41, 0x00, 0xFE, 0x10, 0x02, 0x00, 0x1A},                                                 // i32.atomic.load
		[]byte{0x41, 0x00, 0x41, 0x01, 0xFE, 0x1E, 0x02, 0x00, 0x1A},                                     // i32.atomic.rmw.add
		[]byte{0x41, 0x00, 0x41, 0x00, 0xFE, 0x00, 0x02, 0x00, 0x1A},                                     // memory.atomic.notify
		[]byte{0x42, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x7F, 0xC4, 0x1A},             // i64.const -1<<63 (10 bytes), i64.extend32_s
		[]byte{0x44, 0, 0, 0, 0, 0, 0, 0xF0, 0x3F, 0x1A},                                                 // f64.const 1
		[]byte{0x3F, 0x00, 0x1A},                                                                         // memory.size
		[]byte{0x02, 0x40, 0x02, 0x40, 0x41, 0x01, 0x0E, 0x01, 0x00, 0x01, 0x0B, 0x0B},                   // block block br_table [0] 1 end end
		[]byte{0x02, 0x40, 0x41, 0x01, 0x0D, 0x00, 0x41, 0x00, 0x11, 0x00, 0x00, 0x0B},                   // block (br_if out) call_indirect 0 0 end
		[]byte{0x41, 0x00, 0x04, 0x40, 0x01, 0x05, 0x01, 0x0B},                                           // if nop else nop end
		[]byte{0x03, 0x40, 0x20, 0x01, 0x41, 0x01, 0x6A, 0x22, 0x01, 0x41, 0x0A, 0x49, 0x0D, 0x00, 0x0B}, // loop: ++i < 10
		[]byte{0x20, 0x01, 0x0B},
	)
	locals := vec(cat(u32(1), []byte{0x7B}), cat(u32(1), []byte{i32}), cat(u32(1), []byte{0x70}))
	bin := wasmModule(
		sec(secType, vec(funcType(nil, nil), funcType(nil, []byte{i32}))),
		sec(secFunction, vec(u32(1))),
		sec(secTable, vec([]byte{0x70, 0x00, 0x02})), // funcref, min 2
		sec(secMemory, vec([]byte{0x01, 0x01, 0x01})),
		sec(secExport, vec(exportFunc("zoo", 0))),
		sec(secElement, vec(cat([]byte{0x01, 0x00}, vec(u32(0))))), // passive, funcref, [0]
		sec(secDataCount, u32(1)),
		sec(secCode, vec(fn(locals, code...))),
		sec(secData, vec(cat([]byte{0x01}, str("zoo")))), // passive
	)
	if m := instantiate(t, newRuntime(t), bin); call(t, m, "zoo") != 10 {
		t.Fatal("the original zoo does not return 10")
	}
	out, st := rewrite(t, bin)
	if st.Loops != 1 || st.Bulk != 6 {
		t.Fatalf("found %d loops and %d bulk instructions, want 1 and 6", st.Loops, st.Bulk)
	}
	if got := call(t, instantiate(t, newRuntime(t), out), "zoo"); got != 10 {
		t.Fatalf("rewritten zoo = %d, want 10", got)
	}
}

// TestRefused: what the rewriter does not know or cannot use is an error
// (ErrUnsupported for a possibly valid module), naming where.
func TestRefused(t *testing.T) {
	mod := func(body ...byte) []byte {
		return wasmModule(
			sec(secType, vec(funcType(nil, nil))),
			sec(secFunction, vec(u32(0))),
			memory1,
			sec(secCode, vec(fn(noLocals, body...))),
		)
	}
	for _, tc := range []struct {
		name        string
		bin         []byte
		unsupported bool
		mention     string
	}{
		{"return_call", mod(0x12, 0x00, 0x0B), true, "opcode 0x12"},
		{"try", mod(0x06, 0x40, 0x0B, 0x0B), true, "opcode 0x06"},
		{"unknown 0xFC", mod(0xFC, 0x12, 0x0B), true, "0xFC 18"},
		{"unknown 0xFE", mod(0xFE, 0x05, 0x0B), true, "0xFE 5"},
		{"GC prefix", mod(0xFB, 0x00, 0x0B), true, "opcode 0xfb"},
		{"typed ref.null", mod(0xD0, 0x63, 0x1A, 0x0B), true, "heap type 0x63"},
		{"unknown opcode after a loop", mod(0x03, 0x40, 0x0B, 0x27, 0x0B), true, "opcode 0x27"},
		{"no memory", wasmModule(sec(secType, vec(funcType(nil, nil))), sec(secFunction, vec(u32(0))), sec(secCode, vec(fn(noLocals, 0x0B)))), true, "no memory"},
		{"reserved export", wasmModule(memory1, sec(secExport, vec(cat(str(ExportName), []byte{0x02, 0x00})))), true, ExportName},
		{"memory64", wasmModule(sec(secMemory, vec([]byte{0x04, 0x01}))), true, "memory64"},
		{"no final end", mod(0x01), false, "without its final end"},
		{"bytes after end", mod(0x0B, 0x01), false, "followed by 1 bytes"},
		{"truncated immediate", mod(0x41), false, "unexpected end"},
		{"sections out of order", wasmModule(memory1, sec(secType, vec())), false, "out of order"},
		{"truncated section", []byte("\x00asm\x01\x00\x00\x00\x01\x05\x01"), false, "wanted"},
		{"not wasm", []byte("hello, world"), false, "magic"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Rewrite(tc.bin)
			var ie *Error
			if !errors.As(err, &ie) || errors.Is(err, ErrUnsupported) != tc.unsupported || !strings.Contains(err.Error(), tc.mention) {
				t.Fatalf("got %v, want an *Error mentioning %q (unsupported: %v)", err, tc.mention, tc.unsupported)
			}
		})
	}
	// The error names the function and where its instruction is.
	_, _, err := Rewrite(mod(0x01, 0x12, 0x00, 0x0B))
	if !strings.Contains(err.Error(), "function body 0, instruction at offset") {
		t.Fatalf("error %q does not locate the instruction", err)
	}
}

// TestGoGuests rewrites real Go guests (the largest and most varied code
// the host runs), checks the result compiles and keeps every export,
// runs one, and checks a second rewrite is refused.
func TestGoGuests(t *testing.T) {
	ctx := context.Background()
	for _, dir := range []string{"plugins/field-filter", "host/pluginhost/testdata/guests/rawextism"} {
		t.Run(dir, func(t *testing.T) {
			bin, err := os.ReadFile(testenv.GoPlugin(t, dir))
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			out, st := rewrite(t, bin)
			t.Logf("%d functions, %d loops, %d -> %d bytes in %s", st.Functions, st.Loops, len(bin), len(out), time.Since(start))
			if st.Functions < 100 || st.Loops < 100 {
				t.Fatalf("stats %+v: too few for a Go guest", st)
			}
			rt := newRuntime(t)
			orig, err := rt.CompileModule(ctx, bin)
			if err != nil {
				t.Fatal(err)
			}
			cm, err := rt.CompileModule(ctx, out)
			if err != nil {
				t.Fatalf("the rewritten module does not compile: %v", err)
			}
			for name := range orig.ExportedFunctions() {
				if _, ok := cm.ExportedFunctions()[name]; !ok {
					t.Errorf("export %q lost", name)
				}
			}
			if _, _, err := Rewrite(out); !errors.Is(err, ErrUnsupported) {
				t.Fatalf("rewriting twice: %v, want ErrUnsupported (reserved name)", err)
			}
		})
	}
	// Run the rewritten rawextism guest's _initialize (the Go runtime's
	// start-up: scheduler, allocator, many loops) with WASI and stub
	// Extism imports.
	bin, err := os.ReadFile(testenv.GoPlugin(t, "host/pluginhost/testdata/guests/rawextism"))
	if err != nil {
		t.Fatal(err)
	}
	out, _ := rewrite(t, bin)
	rt := newRuntime(t)
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	cm, err := rt.CompileModule(ctx, out)
	if err != nil {
		t.Fatal(err)
	}
	env := rt.NewHostModuleBuilder("extism:host/env")
	for _, imp := range cm.ImportedFunctions() {
		mod, name, _ := imp.Import()
		if mod != "extism:host/env" {
			continue
		}
		env.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(context.Context, api.Module, []uint64) {}),
			imp.ParamTypes(), imp.ResultTypes()).Export(name)
	}
	if _, err := env.Instantiate(ctx); err != nil {
		t.Fatal(err)
	}
	m, err := rt.InstantiateModule(ctx, cm, wazero.NewModuleConfig().WithName("").WithStartFunctions("_initialize"))
	if err != nil {
		t.Fatalf("_initialize of the rewritten Go guest: %v", err)
	}
	if m.ExportedGlobal(ExportName) == nil {
		t.Fatal("no flag export")
	}
}

// BenchmarkLoop measures the cost of one loop iteration of a tight
// counting loop (count(n) of TestLoops, n = 1e6) three ways: unmodified
// without termination checks (unsafe: for reference), rewritten, and
// unmodified under wazero's close-on-context-done.
func BenchmarkLoop(b *testing.B) {
	ctx := context.Background()
	body := []byte{
		0x03, 0x40,
		0x20, 0x01, 0x41, 0x01, 0x6A, 0x21, 0x01,
		0x20, 0x01, 0x20, 0x00, 0x49, 0x0D, 0x00,
		0x0B,
		0x20, 0x01,
		0x0B,
	}
	bin := wasmModule(
		sec(secType, vec(funcType([]byte{i32}, []byte{i32}))),
		sec(secFunction, vec(u32(0))),
		memory1,
		sec(secExport, vec(exportFunc("count", 0))),
		sec(secCode, vec(fn(vec(cat(u32(1), []byte{i32})), body...))),
	)
	rewritten, _, err := Rewrite(bin)
	if err != nil {
		b.Fatal(err)
	}
	const n = 1_000_000
	for _, tc := range []struct {
		name          string
		bin           []byte
		closeOnCtxEnd bool
	}{{"unchecked", bin, false}, {"instrumented", rewritten, false}, {"close-on-context-done", bin, true}} {
		b.Run(tc.name, func(b *testing.B) {
			rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCloseOnContextDone(tc.closeOnCtxEnd))
			defer rt.Close(ctx)
			m, err := rt.Instantiate(ctx, tc.bin)
			if err != nil {
				b.Fatal(err)
			}
			f := m.ExportedFunction("count")
			stack := make([]uint64, 1)
			for b.Loop() {
				stack[0] = n
				if err := f.CallWithStack(ctx, stack); err != nil || stack[0] != n {
					b.Fatal(err, stack[0])
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/iteration")
		})
	}
}

func TestMemoryMin(t *testing.T) {
	for _, tc := range []struct {
		name  string
		bin   []byte
		pages uint32
		ok    bool
	}{
		{"one page", wasmModule(sec(secType, vec(funcType(nil, nil))), memory1), 1, true},
		{"300 pages with a max", wasmModule(sec(secMemory, vec(cat([]byte{0x01}, u32(300), u32(400))))), 300, true},
		{"no memory", wasmModule(sec(secType, vec(funcType(nil, nil)))), 0, false},
	} {
		pages, ok, err := MemoryMin(tc.bin)
		if err != nil || pages != tc.pages || ok != tc.ok {
			t.Errorf("%s: MemoryMin = %d, %v, %v; want %d, %v", tc.name, pages, ok, err, tc.pages, tc.ok)
		}
	}
	if _, _, err := MemoryMin([]byte("\x00asm\x01\x00\x00\x00\x05\x09\x01")); err == nil {
		t.Error("truncated memory section: no error")
	}
}
