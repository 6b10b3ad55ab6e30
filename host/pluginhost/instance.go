package pluginhost

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"time"

	"github.com/fraiseql/observer/abi"
	"github.com/fraiseql/observer/host/pluginhost/internal/instrument"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/sys"
)

// instance is one instantiated module with its kernel memory. It serves
// one call at a time; the pool hands it to one caller at a time.
//
// Interruption: a per-instance timer, re-armed for each call, fires at
// Limits.Timeout, and context.AfterFunc fires when the caller's context
// ends (registered only for a context that can end). Either moves state
// from stateRunning to its reason and then stops the guest: in
// InterruptInstrument mode by setting the module's interrupt flag, which
// the guest reads at its next safe point and traps; in InterruptContext
// mode by closing the module, which wazero's checks at each loop header
// notice. The call returns an error, classified by state, and the
// instance is discarded. Only the transition out of stateRunning stops a
// guest, so a timer that fires as a call returns cannot hit the next
// call; and since an interrupted instance is never reused, the flag is
// 0 whenever a call starts.
type instance struct {
	p     *Plugin
	mod   api.Module
	ctx   context.Context // carries the instance to host functions
	k     *kernel
	stack []uint64
	funcs map[string]api.Function

	timer    *time.Timer
	onCancel func()
	// flag is the interrupt flag of an instrumented module; nil in
	// InterruptContext mode.
	flag  api.MutableGlobal
	state atomic.Uint32 // stateIdle, stateRunning, or why the call was stopped

	stderr tailBuffer
	nanos  int64

	vars     map[string][]byte
	varBytes int

	// mem is the linear memory, allocated by the host so that a refused
	// memory.grow is seen; nil until instantiated (or for a module
	// without memory).
	mem *linearMemory
	// growRefused is the size a memory.grow asked for and was refused
	// during this call, 0 if none.
	growRefused uint64
	// kernelCap is the kernel slab capacity last added to the plugin's
	// total.
	kernelCap int64

	// Log lines and bytes written in this call, and lines dropped past
	// the per-call limits.
	logLines, logBytes, logDropped int

	// Set by a host function that aborts the call.
	broken     bool // the last call trapped
	faultKind  ErrorKind
	faultErr   error
	kernelFull bool
	// kernelRefused is the size of the last alloc refused in this call.
	kernelRefused uint64

	enc    *json.Encoder
	encBuf bytes.Buffer
}

// Instance states. The last three are why a call was stopped.
const (
	stateIdle uint32 = iota
	stateRunning
	stateTimeout
	stateCanceled
	stateClosed
)

// randSeed seeds every instance's WASI random source: guests get a fixed
// stream, so a replay draws the same "random" bytes.
var randSeed = [32]byte{'o', 'b', 's', 'e', 'r', 'v', 'e', 'r', ' ', 'a', 'b', 'i', ' ', 'v', '1'}

func (p *Plugin) newInstance(ctx context.Context) (*instance, error) {
	in := &instance{
		p:     p,
		k:     newKernel(p.limits.MemoryBytes),
		stack: make([]uint64, 1),
		funcs: make(map[string]api.Function, 4),
		vars:  map[string][]byte{},
	}
	in.ctx = context.WithValue(context.Background(), instanceKey{}, in)
	in.enc = json.NewEncoder(&in.encBuf)
	in.enc.SetEscapeHTML(false)
	cfg := wazero.NewModuleConfig().
		WithName("").
		WithStartFunctions(). // reactors: _initialize is called below, under the limits
		WithStderr(&in.stderr).
		WithWalltime(func() (int64, int32) { return 0, 0 }, sys.ClockResolution(1)).
		WithNanotime(func() int64 { in.nanos += 1000; return in.nanos }, sys.ClockResolution(1)).
		WithRandSource(rand.NewChaCha8(randSeed))
	mod, err := in.instantiate(ctx, cfg)
	if err != nil {
		return nil, err
	}
	in.mod = mod
	if p.interrupt == InterruptInstrument {
		flag, ok := mod.ExportedGlobal(instrument.ExportName).(api.MutableGlobal)
		if !ok {
			_ = mod.Close(context.Background())
			return nil, fmt.Errorf("instantiate: the instrumented module has no mutable global %q", instrument.ExportName)
		}
		in.flag = flag
	}
	in.timer = time.AfterFunc(time.Hour, func() { in.interrupt(stateTimeout) })
	in.timer.Stop()
	in.onCancel = func() { in.interrupt(stateCanceled) }
	p.liveMu.Lock()
	p.live[in] = struct{}{}
	p.liveMu.Unlock()
	// The start function (moved to an export by the rewrite), then
	// _initialize, each under the limits of a call.
	for _, init := range []struct {
		export string
		has    bool
	}{{instrument.StartExportName, p.hasStart}, {"_initialize", p.hasInit}} {
		if !init.has {
			continue
		}
		if _, cerr := in.invoke(ctx, init.export, nil); cerr != nil {
			in.close()
			return nil, cerr
		}
	}
	p.created.Add(1)
	return in, nil
}

// instantiate instantiates the module with in's linear memory allocator.
// A module left unmodified keeps its start section, which wazero runs
// inside InstantiateModule: that run is bounded by Limits.Timeout and the
// caller's context through close-on-context-done (an instrumented module
// has no start section: see instrument.StartExportName).
func (in *instance) instantiate(ctx context.Context, cfg wazero.ModuleConfig) (api.Module, error) {
	p := in.p
	ictx := experimental.WithMemoryAllocator(in.ctx, experimental.MemoryAllocatorFunc(func(_, _ uint64) experimental.LinearMemory {
		in.mem = &linearMemory{in: in, limit: p.limits.memoryLimit()}
		return in.mem
	}))
	ictx, cancel := context.WithTimeout(ictx, p.limits.Timeout)
	defer cancel()
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	mod, err := p.rt.InstantiateModule(ictx, p.compiled, cfg)
	if err == nil {
		return mod, nil
	}
	if in.mem != nil {
		in.mem.Free() // wazero does not free the memory of a failed instantiation
	}
	switch {
	case ctx.Err() != nil:
		return nil, p.callError("instantiate", KindCanceled, fmt.Errorf("instantiation (the module's start function) stopped: %w", context.Cause(ctx)))
	case ictx.Err() != nil:
		return nil, p.callError("instantiate", KindTimeout, fmt.Errorf("instantiation (the module's start function) exceeded the time limit of %s (Limits.Timeout) and was stopped", p.limits.Timeout))
	}
	return nil, fmt.Errorf("instantiate: %w", err)
}

func (in *instance) close() {
	in.timer.Stop()
	_ = in.mod.Close(context.Background()) // frees in.mem
	in.p.kernelBytes.Add(-in.kernelCap)
	in.kernelCap = 0
	in.p.liveMu.Lock()
	delete(in.p.live, in)
	in.p.liveMu.Unlock()
}

// accountKernel brings the plugin's kernel memory total up to date with
// this instance's slab.
func (in *instance) accountKernel() {
	if c := int64(cap(in.k.mem)); c != in.kernelCap {
		in.p.kernelBytes.Add(c - in.kernelCap)
		in.kernelCap = c
	}
}

// linearMemory backs an instance's linear memory (wazero's experimental
// allocator hook). It enforces Limits.MemoryBytes itself: wazero refuses
// a grow past its own limit without telling anyone, while here the
// refusal is recorded, so that the call's failure is classified as
// KindMemory for certain rather than guessed from what the guest printed.
type linearMemory struct {
	in    *instance
	buf   []byte
	limit uint64
	freed bool
}

func (m *linearMemory) Reallocate(size uint64) []byte {
	if size > m.limit {
		m.in.growRefused = max(m.in.growRefused, size)
		return nil
	}
	if size <= uint64(cap(m.buf)) {
		m.buf = m.buf[:size]
		return m.buf
	}
	// Amortised like append, but never beyond the limit.
	c := min(max(size, 2*uint64(cap(m.buf))), m.limit)
	grown := make([]byte, size, c)
	copy(grown, m.buf)
	m.in.p.linearBytes.Add(int64(c) - int64(cap(m.buf)))
	m.buf = grown
	return m.buf
}

func (m *linearMemory) Free() {
	if m.freed {
		return
	}
	m.freed = true
	m.in.p.linearBytes.Add(-int64(cap(m.buf)))
	m.buf = nil
}

// interrupt stops the running call, if one is running and was not stopped
// already, recording why. It runs on the timer's goroutine, the context's
// AfterFunc goroutine, or Plugin.Close's.
func (in *instance) interrupt(why uint32) {
	if !in.state.CompareAndSwap(stateRunning, why) {
		return
	}
	if in.flag != nil {
		// The guest reads the flag at its next safe point, at most
		// instrument.Budget loop headers away, and traps.
		in.flag.Set(1)
		return
	}
	code := sys.ExitCodeDeadlineExceeded
	if why != stateTimeout {
		code = sys.ExitCodeContextCanceled
	}
	_ = in.mod.CloseWithExitCode(context.Background(), code)
}

// healthy reports whether the instance may serve another call: not after
// a trap (the guest's state is unknown, and a trap does not close the
// module by itself), a timeout or a limit.
func (in *instance) healthy() bool { return !in.broken && !in.mod.IsClosed() }

// fn returns the cached handle of an export (looking an export up in
// wazero builds a new call engine, so it is done once per instance).
func (in *instance) fn(name string) (api.Function, error) {
	if f, ok := in.funcs[name]; ok {
		return f, nil
	}
	def, ok := in.p.exports[name]
	if !ok {
		return nil, fmt.Errorf("the module has no export %q", name)
	}
	if len(def.ParamTypes()) != 0 || len(def.ResultTypes()) > 1 || (len(def.ResultTypes()) == 1 && def.ResultTypes()[0] != api.ValueTypeI32) {
		return nil, fmt.Errorf("export %q has signature %v -> %v, want () -> i32", name, def.ParamTypes(), def.ResultTypes())
	}
	f := in.mod.ExportedFunction(name)
	in.funcs[name] = f
	return f, nil
}

// fail aborts the running call from a host function with a classified error.
func (in *instance) fail(kind ErrorKind, format string, args ...any) {
	in.faultKind = kind
	in.faultErr = fmt.Errorf(format, args...)
	panic(in.faultErr)
}

// trap aborts the running call for a kernel import given a bad offset.
func (in *instance) trap(fn string, off uint64) {
	in.fail(KindTrap, "%s: offset %d is outside the kernel memory or not an allocated block", fn, off)
}

// invoke runs one export on input and returns its output, which aliases
// the kernel memory until the next call on this instance.
func (in *instance) invoke(ctx context.Context, export string, input []byte) ([]byte, *CallError) {
	if err := ctx.Err(); err != nil {
		return nil, in.p.callError(export, KindCanceled, err)
	}
	f, err := in.fn(export)
	if err != nil {
		return nil, in.p.callError(export, KindMissingExport, err)
	}
	in.k.reset()
	in.stderr.reset()
	in.faultKind, in.faultErr, in.kernelFull, in.kernelRefused = 0, nil, false, 0
	in.growRefused = 0
	in.logLines, in.logBytes, in.logDropped = 0, 0, 0
	if len(in.vars) > 0 {
		clear(in.vars)
		in.varBytes = 0
	}
	if !in.k.setInput(input) {
		return nil, in.p.callError(export, KindMemory, fmt.Errorf("input of %d bytes does not fit the kernel memory limit of %d bytes (Limits.MemoryBytes)", len(input), in.p.limits.MemoryBytes))
	}

	in.state.Store(stateRunning)
	in.timer.Reset(in.p.limits.Timeout)
	var stop func() bool
	if ctx.Done() != nil { // a background context cannot end: no AfterFunc, no allocation
		stop = context.AfterFunc(ctx, in.onCancel)
	}
	in.stack[0] = 0
	err = f.CallWithStack(in.ctx, in.stack)
	timedOut := !in.timer.Stop()
	canceled := stop != nil && !stop()
	why := stateRunning
	if !in.state.CompareAndSwap(stateRunning, stateIdle) {
		why = in.state.Load()
	}
	if timedOut || canceled || why != stateRunning {
		// Stopped, or about to be: the instance's state is unknown or its
		// flag set, and a late timer must not stop its next call.
		in.broken = true
	}
	if in.logDropped > 0 {
		in.p.log.Warn("plugin log lines dropped: over the per-call limit",
			slog.String("plugin", in.p.name), slog.String("export", export), slog.Int("dropped", in.logDropped),
			slog.Int("limit_lines", maxLogLinesPerCall), slog.Int("limit_bytes", maxLogBytesPerCall))
	}

	if err != nil {
		in.broken = true
		return nil, in.classify(export, err, why, ctx)
	}
	if msg, ok := in.k.errorMessage(); ok {
		return nil, in.p.callError(export, KindGuest, &abi.Error{Message: string(msg)})
	}
	if rc := uint32(in.stack[0]); len(f.Definition().ResultTypes()) == 1 && rc != 0 {
		return nil, in.p.callError(export, KindGuest, &abi.Error{Message: fmt.Sprintf("export returned %d without an error message", rc)})
	}
	return in.k.output(), nil
}

// classify turns an error from the guest into a CallError.
func (in *instance) classify(export string, err error, why uint32, ctx context.Context) *CallError {
	lim := in.p.limits
	select {
	case <-in.p.done:
		return in.p.callError(export, KindCanceled, ErrClosed)
	default:
	}
	if in.faultErr != nil {
		if in.faultKind == KindTrap && in.kernelFull {
			return in.p.callError(export, KindMemory, fmt.Errorf("kernel memory exhausted at the limit of %d bytes (Limits.MemoryBytes): %w", lim.MemoryBytes, in.faultErr))
		}
		return in.p.callError(export, in.faultKind, in.faultErr)
	}
	// Stopped by the timer or the context: whatever the guest did at that
	// moment (trapped on the flag, or on its closed module), the cause is
	// the interruption.
	switch why {
	case stateTimeout:
		return in.p.callError(export, KindTimeout, fmt.Errorf("call exceeded the time limit of %s (Limits.Timeout) and was stopped", lim.Timeout))
	case stateCanceled:
		return in.p.callError(export, KindCanceled, fmt.Errorf("call stopped: %w", context.Cause(ctx)))
	case stateClosed:
		return in.p.callError(export, KindCanceled, ErrClosed)
	}
	var exit *sys.ExitError
	errors.As(err, &exit)
	if in.growRefused > 0 {
		return in.p.callError(export, KindMemory, fmt.Errorf("guest ran out of memory: it asked to grow its linear memory to %d bytes, above the limit of %d bytes (Limits.MemoryBytes)%s", in.growRefused, lim.MemoryBytes, in.stderr.suffix()))
	}
	if in.kernelFull {
		return in.p.callError(export, KindMemory, fmt.Errorf("guest ran out of kernel memory: an alloc of %d bytes was refused at the limit of %d bytes (Limits.MemoryBytes)%s", in.kernelRefused, lim.MemoryBytes, in.stderr.suffix()))
	}
	if in.stderrSaysOutOfMemory() {
		return in.p.callError(export, KindMemory, fmt.Errorf("guest ran out of memory at the limit of %d bytes (Limits.MemoryBytes)%s", lim.MemoryBytes, in.stderr.suffix()))
	}
	if exit != nil {
		return in.p.callError(export, KindTrap, fmt.Errorf("guest exited with code %d%s", exit.ExitCode(), in.stderr.suffix()))
	}
	msg := err.Error()
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i] // drop wazero's wasm stack trace
	}
	if strings.HasSuffix(msg, "stack overflow") {
		// wazero's call stack limit: not configurable, and not counted in
		// Limits.MemoryBytes (see the package comment, "Hostile plugins").
		return in.p.callError(export, KindTrap, fmt.Errorf("call stack overflow: the guest nested calls past the runtime's call stack limit (unbounded recursion?)%s", in.stderr.suffix()))
	}
	return in.p.callError(export, KindTrap, fmt.Errorf("%s%s", msg, in.stderr.suffix()))
}

// stderrSaysOutOfMemory reports whether the guest said it ran out of
// memory without a grow being refused: an allocator with a limit of its
// own (Go: "fatal error: out of memory"; Rust: "memory allocation of N
// bytes failed").
func (in *instance) stderrSaysOutOfMemory() bool {
	s := in.stderr.String()
	return strings.Contains(s, "out of memory") || strings.Contains(s, "memory allocation of")
}

// tailBuffer keeps the first bytes a guest writes to stderr during a call
// (a Go panic message and its first frames), bounded so a chatty guest
// cannot grow it.
type tailBuffer struct {
	b []byte
}

const stderrKeep = 2 << 10

func (t *tailBuffer) Write(p []byte) (int, error) {
	if room := stderrKeep - len(t.b); room > 0 {
		if len(p) > room {
			t.b = append(t.b, p[:room]...)
		} else {
			t.b = append(t.b, p...)
		}
	}
	return len(p), nil
}

func (t *tailBuffer) reset()         { t.b = t.b[:0] }
func (t *tailBuffer) String() string { return string(t.b) }

// suffix renders the captured stderr for an error message.
func (t *tailBuffer) suffix() string {
	s := strings.TrimSpace(string(t.b))
	if s == "" {
		return ""
	}
	if len(s) > 600 {
		s = s[:600] + "..."
	}
	return "; guest stderr: " + s
}
