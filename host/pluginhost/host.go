package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fraiseql/observer/host/pluginhost/internal/instrument"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// Config configures a Host.
type Config struct {
	// CacheDir holds compiled modules across runs; "" keeps them in memory only.
	CacheDir string
	// Logger receives plugin log lines and load warnings; nil discards them.
	Logger *slog.Logger
	// Interrupt says how a running call is stopped; "" means
	// InterruptInstrument.
	Interrupt InterruptMode
}

// InterruptMode is how the host stops a call that runs past its timeout or
// whose context ends (see the package comment, "Stopping a call").
type InterruptMode string

const (
	// InterruptInstrument rewrites each module at load with cheap checks at
	// its loop headers and stops a call by setting a flag the checks read.
	// A module the rewriter cannot handle falls back to InterruptContext.
	InterruptInstrument InterruptMode = "instrument"
	// InterruptContext compiles modules unmodified with wazero's
	// close-on-context-done, which exits to Go at every loop header: about
	// six times slower for Go guests.
	InterruptContext InterruptMode = "context"
)

// Limits bound one plugin. A zero field takes its DefaultLimits value.
type Limits struct {
	// MemoryBytes caps the guest's linear memory (rounded down to 64 KiB
	// pages) and, separately, its kernel memory (input, output, blocks).
	MemoryBytes uint64
	// Timeout bounds one call; a call past it is stopped and its instance discarded.
	Timeout time.Duration
	// MaxOutputBytes caps the output a call may set.
	MaxOutputBytes int
	// MaxInstances caps concurrent calls (one instance serves one call).
	MaxInstances int
}

// DefaultLimits are the limits of a plugin configured with none: 64 MiB,
// 2 s, 1 MiB of output, one instance per CPU.
func DefaultLimits() Limits {
	return Limits{MemoryBytes: 64 << 20, Timeout: 2 * time.Second, MaxOutputBytes: 1 << 20, MaxInstances: runtime.GOMAXPROCS(0)}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MemoryBytes == 0 {
		l.MemoryBytes = d.MemoryBytes
	}
	if l.Timeout == 0 {
		l.Timeout = d.Timeout
	}
	if l.MaxOutputBytes == 0 {
		l.MaxOutputBytes = d.MaxOutputBytes
	}
	if l.MaxInstances == 0 {
		l.MaxInstances = d.MaxInstances
	}
	return l
}

func (l Limits) validate() error {
	switch {
	case l.MemoryBytes < wasmPage:
		return fmt.Errorf("Limits.MemoryBytes %d is below one 64 KiB page", l.MemoryBytes)
	case l.MemoryBytes > 4<<30:
		return fmt.Errorf("Limits.MemoryBytes %d is above the 4 GiB a 32-bit module can address", l.MemoryBytes)
	case l.Timeout < 0:
		return fmt.Errorf("Limits.Timeout %s is negative", l.Timeout)
	case l.MaxOutputBytes < 0:
		return fmt.Errorf("Limits.MaxOutputBytes %d is negative", l.MaxOutputBytes)
	case l.MaxInstances < 0:
		return fmt.Errorf("Limits.MaxInstances %d is negative", l.MaxInstances)
	}
	return nil
}

const wasmPage = 64 << 10

// memoryLimit is MemoryBytes rounded down to whole pages.
func (l Limits) memoryLimit() uint64 { return l.MemoryBytes / wasmPage * wasmPage }

// Spec says which module to load and how to bound it.
type Spec struct {
	// Name identifies the plugin in errors and logs (the name in
	// observer.toml); "" uses the manifest's name.
	Name string
	// Path is the .wasm file.
	Path string
	// Wasm, if set, is the module's bytes, used instead of reading Path
	// (Path still names it in errors).
	Wasm   []byte
	Limits Limits
	// Config is what the guest reads with config_get.
	Config map[string]string
}

// Host loads plugins. Compiled code is shared between every plugin of a
// Host through one wazero compilation cache (in memory, keyed by the
// module's content hash, and on disk under Config.CacheDir).
//
// A Host is safe for concurrent use. Close closes every plugin it loaded.
type Host struct {
	log       *slog.Logger
	cache     wazero.CompilationCache
	interrupt InterruptMode

	mu      sync.Mutex
	plugins map[*Plugin]struct{}
	closed  bool
}

// New returns a Host. Close it to release compiled code.
func New(ctx context.Context, cfg Config) (*Host, error) {
	h := &Host{log: cfg.Logger, interrupt: cfg.Interrupt, plugins: map[*Plugin]struct{}{}}
	switch h.interrupt {
	case "":
		h.interrupt = InterruptInstrument
	case InterruptInstrument, InterruptContext:
	default:
		return nil, fmt.Errorf("plugin host: Config.Interrupt %q is not %q or %q", cfg.Interrupt, InterruptInstrument, InterruptContext)
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if cfg.CacheDir != "" {
		if err := os.MkdirAll(cfg.CacheDir, 0o755); err != nil {
			return nil, fmt.Errorf("plugin host: compilation cache directory: %w", err)
		}
		c, err := wazero.NewCompilationCacheWithDir(cfg.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("plugin host: compilation cache in %s: %w", cfg.CacheDir, err)
		}
		h.cache = c
	} else {
		h.cache = wazero.NewCompilationCache()
	}
	return h, nil
}

// Load compiles (or finds in the cache) the module, instantiates one
// instance, calls describe and checks the manifest. A module that is not
// valid WebAssembly, lacks describe, speaks another ABI major or declares
// a role it does not export is refused with a *LoadError naming the file.
func (h *Host) Load(ctx context.Context, spec Spec) (*Plugin, error) {
	h.mu.Lock()
	closed := h.closed
	h.mu.Unlock()
	if closed {
		return nil, &LoadError{Path: spec.Path, Err: ErrClosed}
	}
	p, err := h.load(ctx, spec)
	if err != nil {
		return nil, &LoadError{Path: spec.Path, Err: err}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		_ = p.Close(ctx)
		return nil, &LoadError{Path: spec.Path, Err: ErrClosed}
	}
	h.plugins[p] = struct{}{}
	return p, nil
}

// Close closes every plugin and the compilation cache. Calls in flight are
// stopped.
func (h *Host) Close(ctx context.Context) error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	ps := make([]*Plugin, 0, len(h.plugins))
	for p := range h.plugins {
		ps = append(ps, p)
	}
	h.mu.Unlock()
	var errs []error
	for _, p := range ps {
		errs = append(errs, p.Close(ctx))
	}
	errs = append(errs, h.cache.Close(ctx))
	return errors.Join(errs...)
}

func (h *Host) forget(p *Plugin) {
	h.mu.Lock()
	delete(h.plugins, p)
	h.mu.Unlock()
}

func (h *Host) load(ctx context.Context, spec Spec) (*Plugin, error) {
	if spec.Path == "" && spec.Wasm == nil {
		return nil, errors.New("Spec.Path is empty")
	}
	bin := spec.Wasm
	if bin == nil {
		b, err := os.ReadFile(spec.Path)
		if err != nil {
			return nil, err
		}
		bin = b
	}
	if len(bin) < 8 || string(bin[:4]) != "\x00asm" {
		return nil, errors.New("not a WebAssembly module (no \\0asm header)")
	}
	lim := spec.Limits.withDefaults()
	if err := lim.validate(); err != nil {
		return nil, err
	}
	// The memory cap is enforced by the instance's allocator (see
	// linearMemory), not by wazero's page limit, so the declared minimum
	// is checked here.
	if pages, ok, err := instrument.MemoryMin(bin); err == nil && ok && uint64(pages)*wasmPage > lim.memoryLimit() {
		return nil, fmt.Errorf("the module's memory declares a minimum of %d bytes, above the limit of %d bytes (Limits.MemoryBytes)", uint64(pages)*wasmPage, lim.MemoryBytes)
	}
	name := spec.Name
	if name == "" {
		name = filepath.Base(spec.Path)
	}
	p := &Plugin{
		h:            h,
		name:         name,
		nameFromFile: spec.Name == "",
		path:         spec.Path,
		limits:       lim,
		config:       spec.Config,
		log:          h.log,
		idle:         make(chan *instance, lim.MaxInstances),
		slots:        make(chan struct{}, lim.MaxInstances),
		done:         make(chan struct{}),
		live:         map[*instance]struct{}{},
	}
	ok := false
	defer func() {
		if !ok && p.rt != nil {
			_ = p.rt.Close(context.Background())
		}
	}()
	compiled, err := h.compile(ctx, p, bin)
	if err != nil {
		return nil, err
	}
	p.compiled = compiled
	p.exports = compiled.ExportedFunctions()
	_, p.hasInit = p.exports["_initialize"]
	if _, has := p.exports["describe"]; !has {
		return nil, errors.New(`the module has no "describe" export, so it is not an observer plugin (abi/SPEC.md)`)
	}
	if err := p.checkImports(compiled); err != nil {
		return nil, err
	}
	_, p.hasStart = p.exports[instrument.StartExportName]
	p.hasStart = p.hasStart && p.interrupt == InterruptInstrument
	if err := p.describe(ctx); err != nil {
		return nil, err
	}
	ok = true
	return p, nil
}

// checkImports refuses, naming it, an import the host does not provide or
// provides with another signature, before anything is instantiated
// (wazero would only say so when instantiating).
func (p *Plugin) checkImports(compiled wazero.CompiledModule) error {
	provided := map[string]map[string]api.FunctionDefinition{}
	for _, name := range []string{envModule, wasi_snapshot_preview1.ModuleName} {
		provided[name] = p.rt.Module(name).ExportedFunctionDefinitions()
	}
	for _, def := range compiled.ImportedFunctions() {
		mod, fn, _ := def.Import()
		fns, ok := provided[mod]
		if !ok {
			return fmt.Errorf("the module imports %s.%s; observer provides only the modules %q and %q (abi/SPEC.md §1)", mod, fn, envModule, wasi_snapshot_preview1.ModuleName)
		}
		have, ok := fns[fn]
		if !ok {
			return fmt.Errorf("the module imports %s.%s, which observer does not provide (abi/SPEC.md §1 lists the imports)", mod, fn)
		}
		if !slices.Equal(def.ParamTypes(), have.ParamTypes()) || !slices.Equal(def.ResultTypes(), have.ResultTypes()) {
			return fmt.Errorf("the module imports %s.%s with the signature %s; observer provides %s", mod, fn, signature(def), signature(have))
		}
	}
	for _, mem := range compiled.ImportedMemories() {
		mod, name, _ := mem.Import()
		return fmt.Errorf("the module imports the memory %s.%s; observer provides no memory: a plugin defines its own", mod, name)
	}
	return nil
}

// signature renders a function type as "(i64, i32) -> i64".
func signature(def api.FunctionDefinition) string {
	names := func(ts []api.ValueType) string {
		s := make([]string, len(ts))
		for i, t := range ts {
			s[i] = api.ValueTypeName(t)
		}
		return "(" + strings.Join(s, ", ") + ")"
	}
	return names(def.ParamTypes()) + " -> " + names(def.ResultTypes())
}

// compile sets p.rt to a new runtime and compiles the module in it: the
// instrumented module in a runtime without close-on-context-done, or,
// in InterruptContext mode or if instrumenting fails, the module as is in
// a runtime with it.
func (h *Host) compile(ctx context.Context, p *Plugin, bin []byte) (wazero.CompiledModule, error) {
	if h.interrupt == InterruptInstrument {
		ins, st, err := instrument.Rewrite(bin)
		if err != nil {
			h.log.Debug("plugin not instrumented; wazero's close-on-context-done stops its calls instead",
				slog.String("plugin", p.name), slog.String("path", p.path), slog.String("reason", err.Error()))
		} else {
			compiled, err := h.runtime(ctx, p, InterruptInstrument, ins)
			if err == nil {
				h.log.Debug("plugin instrumented with interrupt checks",
					slog.String("plugin", p.name), slog.String("path", p.path), slog.Int("loops", st.Loops))
				return compiled, nil
			}
			_ = p.rt.Close(ctx)
			p.rt = nil
			// Either the module is invalid (compiling it as is says why)
			// or the rewrite is wrong, which must not cost the plugin.
			compiled, err2 := h.runtime(ctx, p, InterruptContext, bin)
			if err2 != nil {
				return nil, err2
			}
			h.log.Warn("instrumented module does not compile although the module does; wazero's close-on-context-done stops its calls instead",
				slog.String("plugin", p.name), slog.String("path", p.path), slog.String("error", err.Error()))
			return compiled, nil
		}
	}
	return h.runtime(ctx, p, InterruptContext, bin)
}

// runtime sets p.rt to a new runtime for mode, with WASI and the Extism
// imports, and compiles bin in it.
func (h *Host) runtime(ctx context.Context, p *Plugin, mode InterruptMode, bin []byte) (wazero.CompiledModule, error) {
	rcfg := wazero.NewRuntimeConfig().
		WithCompilationCache(h.cache).
		WithCloseOnContextDone(mode == InterruptContext).
		// wazero's own limit stays at the 4 GiB maximum: a grow it refused
		// would not be seen, while linearMemory sees and refuses every grow
		// past Limits.MemoryBytes (and load checks the declared minimum).
		WithMemoryLimitPages(65536)
	p.rt = wazero.NewRuntimeWithConfig(ctx, rcfg)
	p.interrupt = mode
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, p.rt); err != nil {
		return nil, fmt.Errorf("WASI: %w", err)
	}
	if err := instantiateEnv(ctx, p.rt); err != nil {
		return nil, fmt.Errorf("%s imports: %w", envModule, err)
	}
	compiled, err := p.rt.CompileModule(ctx, bin)
	if err != nil {
		return nil, fmt.Errorf("not a valid WebAssembly module for this host: %w", err)
	}
	return compiled, nil
}
