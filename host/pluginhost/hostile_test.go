package pluginhost_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/fraiseql/observer/abi"
	"github.com/fraiseql/observer/host/pluginhost"
	"github.com/fraiseql/observer/internal/testenv"
)

// The hostile guests, compiled from source in the test run.
const (
	hostileGo  = "host/pluginhost/testdata/guests/hostile"
	hostileWat = "host/pluginhost/testdata/guests/wat/hostile.wat"
	watDir     = "host/pluginhost/testdata/guests/wat/"
)

// hostileCase is one misbehaviour and what the host must make of it.
type hostileCase struct {
	guest string // "go" or "wat"
	mode  string // the guest's mode (see each guest's package comment)
	role  string // abi.RoleFilter (default) or abi.RoleAct
	kind  pluginhost.ErrorKind
	// mention is what the error must say besides the plugin's name: the
	// limit, or the cause.
	mention string
	// timeout, if set, replaces hostileLimits.Timeout: short for the
	// misbehaviours that run into it, so that the suite stays fast.
	timeout time.Duration
}

// permanent is what CallError.Permanent must say: bad output, denied
// host functions and non-retryable guest errors cannot succeed on retry.
func (c hostileCase) permanent() bool {
	switch c.kind {
	case pluginhost.KindBadOutput, pluginhost.KindDenied:
		return true
	case pluginhost.KindGuest:
		return c.mode != "retryable"
	}
	return false
}

// discards says whether the failed call's instance must be thrown away:
// after a trap, a timeout, a limit or a denied import the guest's state is
// unknown; after an output the host rejected, or an error the guest
// reported, the instance is fine.
func (c hostileCase) discards() bool {
	return c.kind != pluginhost.KindBadOutput && c.kind != pluginhost.KindGuest
}

func (c hostileCase) name() string { return c.guest + "-" + c.mode }

// hostileLimits bound the hostile plugins. The timeout is generous, so
// that a slow machine never turns another failure into a timeout; the
// cases about the timeout set a short one.
var hostileLimits = pluginhost.Limits{MemoryBytes: 24 << 20, Timeout: 10 * time.Second, MaxOutputBytes: 1 << 20, MaxInstances: 2}

const shortTimeout = 250 * time.Millisecond

// hostileCases are the call-time misbehaviours, in both guest languages
// where they make sense.
var hostileCases = []hostileCase{
	{guest: "go", mode: "loop", kind: pluginhost.KindTimeout, mention: "250ms (Limits.Timeout)", timeout: shortTimeout},
	{guest: "wat", mode: "loop", kind: pluginhost.KindTimeout, mention: "250ms (Limits.Timeout)", timeout: shortTimeout},
	{guest: "go", mode: "sleep", kind: pluginhost.KindTimeout, mention: "250ms (Limits.Timeout)", timeout: shortTimeout},
	{guest: "go", mode: "busywait", kind: pluginhost.KindTimeout, mention: "250ms (Limits.Timeout)", timeout: shortTimeout},
	{guest: "wat", mode: "poll", kind: pluginhost.KindTimeout, mention: "250ms (Limits.Timeout)", timeout: shortTimeout},
	{guest: "wat", mode: "busywait", kind: pluginhost.KindTimeout, mention: "250ms (Limits.Timeout)", timeout: shortTimeout},
	{guest: "go", mode: "memhog", kind: pluginhost.KindMemory, mention: "above the limit of 25165824 bytes (Limits.MemoryBytes)"},
	{guest: "wat", mode: "grow", kind: pluginhost.KindMemory, mention: "above the limit of 25165824 bytes (Limits.MemoryBytes)"},
	{guest: "wat", mode: "kfill", kind: pluginhost.KindMemory, mention: "alloc of 1048576 bytes was refused at the limit of 25165824 bytes (Limits.MemoryBytes)"},
	{guest: "wat", mode: "varflood", kind: pluginhost.KindMemory, mention: "vars exceed 1048576 bytes"},
	{guest: "go", mode: "panic", kind: pluginhost.KindTrap, mention: "hostile guest panics on purpose"},
	{guest: "go", mode: "exit", kind: pluginhost.KindTrap, mention: "exited with code 3"},
	{guest: "wat", mode: "trap", kind: pluginhost.KindTrap, mention: "unreachable"},
	{guest: "wat", mode: "recurse", kind: pluginhost.KindTrap, mention: "call stack overflow"},
	// Go keeps its goroutine stacks in linear memory: deep recursion runs
	// into the memory limit before the WebAssembly stack overflows.
	{guest: "go", mode: "recurse", kind: pluginhost.KindMemory, mention: "(Limits.MemoryBytes)"},
	{guest: "go", mode: "hugeout", kind: pluginhost.KindOutputTooLarge, mention: "limit of 1048576 bytes (Limits.MaxOutputBytes)"},
	{guest: "wat", mode: "hugeout", kind: pluginhost.KindOutputTooLarge, mention: "limit of 1048576 bytes (Limits.MaxOutputBytes)"},
	{guest: "wat", mode: "badjson", kind: pluginhost.KindBadOutput, mention: "not a JSON result object"},
	{guest: "wat", mode: "abi2out", kind: pluginhost.KindBadOutput, mention: "result is ABI 2.0"},
	{guest: "wat", mode: "nooutput", kind: pluginhost.KindBadOutput, mention: "set no output"},
	{guest: "go", mode: "badeffect", role: abi.RoleAct, kind: pluginhost.KindBadOutput, mention: `unknown effect type "kafka"`},
	{guest: "go", mode: "undeclared", role: abi.RoleAct, kind: pluginhost.KindBadOutput, mention: "does not ask for it in capabilities.effects"},
	{guest: "go", mode: "nourl", role: abi.RoleAct, kind: pluginhost.KindBadOutput, mention: "http effect has no url"},
	{guest: "wat", mode: "rc", kind: pluginhost.KindGuest, mention: "export returned 7"},
	{guest: "go", mode: "retryable", kind: pluginhost.KindGuest, mention: "lookup not ready yet"},
	{guest: "go", mode: "permanent", kind: pluginhost.KindGuest, mention: "amount is not a number"},
	{guest: "go", mode: "http", kind: pluginhost.KindDenied, mention: "return an http effect instead"},
	{guest: "wat", mode: "http", kind: pluginhost.KindDenied, mention: "return an http effect instead"},
}

// hostileCall makes one call of c's role on p in mode: the Go guest reads
// its mode from the input's config, the WAT guest from a raw input.
func hostileCall(ctx context.Context, p *pluginhost.Plugin, guest, role, mode string) error {
	if guest == "wat" {
		_, err := p.FilterRaw(ctx, []byte(mode))
		return err
	}
	in := input(paymentEvent("1"), `{"mode": "`+mode+`"}`)
	if role == abi.RoleAct {
		_, err := p.Act(ctx, in)
		return err
	}
	_, err := p.Filter(ctx, in)
	return err
}

func guestPath(t testing.TB, guest string) string {
	if guest == "wat" {
		return testenv.WatPlugin(t, hostileWat)
	}
	return testenv.GoPlugin(t, hostileGo)
}

// TestHostilePlugins: each misbehaviour fails only its own call, with a
// CallError of the right kind naming the plugin, the export and the limit
// or cause; the instance is discarded exactly when its state is unknown;
// the next call on the same plugin gets a working instance; and a call
// that ran into the timeout is stopped within a fraction of it. Under
// both ways of stopping a call.
func TestHostilePlugins(t *testing.T) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			h, _ := newHostMode(t, mode)
			ctx := context.Background()
			for _, c := range hostileCases {
				t.Run(c.name()+"-"+roleOf(c), func(t *testing.T) {
					name := "hostile-" + c.name()
					lim := hostileLimits
					if c.timeout != 0 {
						lim.Timeout = c.timeout
					}
					p := load(t, h, pluginhost.Spec{Name: name, Path: guestPath(t, c.guest), Limits: lim})
					defer p.Close(ctx)
					if p.Interrupt() != mode {
						t.Fatalf("plugin runs in interrupt mode %q, want %q", p.Interrupt(), mode)
					}
					before := p.Stats()
					start := time.Now()
					err := hostileCall(ctx, p, c.guest, roleOf(c), c.mode)
					took := time.Since(start)
					ce := callError(t, err)
					if ce.Kind != c.kind || ce.Permanent() != c.permanent() || ce.Plugin != name || ce.Export != roleOf(c) {
						t.Fatalf("got kind %v permanent %v plugin %q export %q: %v\nwant kind %v permanent %v", ce.Kind, ce.Permanent(), ce.Plugin, ce.Export, err, c.kind, c.permanent())
					}
					if !strings.Contains(err.Error(), fmt.Sprintf("plugin %q", name)) || !strings.Contains(err.Error(), c.mention) {
						t.Fatalf("error %q does not name the plugin and %q", err, c.mention)
					}
					if c.kind == pluginhost.KindTimeout {
						if late := took - lim.Timeout; late < 0 || late > time.Second {
							t.Fatalf("stopped after %s; the timeout is %s", took, lim.Timeout)
						}
						t.Logf("stopped %s after the %s timeout", (took - lim.Timeout).Round(time.Microsecond), lim.Timeout)
					}
					after := p.Stats()
					discarded := after.Discarded - before.Discarded
					if want := map[bool]uint64{true: 1, false: 0}[c.discards()]; discarded != want {
						t.Fatalf("%d instances discarded by the call, want %d (stats before %+v, after %+v)", discarded, want, before, after)
					}
					if err := hostileCall(ctx, p, c.guest, roleOf(c), "ok"); err != nil {
						t.Fatalf("the next call on the same plugin: %v", err)
					}
					if st := p.Stats(); st.Live < 1 || st.Live > hostileLimits.MaxInstances || st.Created != before.Created+discarded {
						t.Fatalf("stats %+v after the good call (before the bad one %+v): want one fresh instance per discarded one", st, before)
					}
				})
			}
		})
	}
}

func roleOf(c hostileCase) string {
	if c.role == "" {
		return abi.RoleFilter
	}
	return c.role
}

// TestHostileLeaks: guests that keep memory from call to call. Kernel
// memory is reset between calls, so a guest that allocates 1 MiB of it
// per call and never frees it runs for ever at a constant size. Linear
// memory is the guest's own: a guest that keeps 1 MiB more of it per call
// passes until a grow is refused, that call fails with KindMemory, the
// instance is replaced, and the calls after it pass again.
func TestHostileLeaks(t *testing.T) {
	h, _ := newHost(t)
	ctx := context.Background()
	lim := pluginhost.Limits{MemoryBytes: 8 << 20, Timeout: time.Second, MaxInstances: 1}

	p := load(t, h, pluginhost.Spec{Name: "kleak", Path: testenv.WatPlugin(t, hostileWat), Limits: lim})
	for i := 0; i < 50; i++ {
		if _, err := p.FilterRaw(ctx, []byte("kleak")); err != nil {
			t.Fatalf("kleak call %d: %v", i, err)
		}
	}
	if st := p.Stats(); st.Created != 1 || st.Discarded != 0 || st.KernelMemoryBytes > 4<<20 {
		t.Fatalf("kleak: stats %+v, want one instance throughout and at most 4 MiB of kernel memory kept", st)
	}

	for _, tc := range []struct {
		guest string
		// calls is how many calls pass before the memory limit: the WAT
		// guest starts at one page and grows 1 MiB per call; the Go
		// runtime needs some of the 8 MiB for itself.
		minCalls, maxCalls int
	}{{"wat", 7, 7}, {"go", 2, 7}} {
		t.Run(tc.guest, func(t *testing.T) {
			name := tc.guest + "-leak"
			p := load(t, h, pluginhost.Spec{Name: name, Path: guestPath(t, tc.guest), Limits: lim})
			mode := map[string]string{"wat": "mleak", "go": "leak"}[tc.guest]
			passed, failedAt := 0, 0
			for i := 1; i <= 30; i++ {
				err := hostileCall(ctx, p, tc.guest, abi.RoleFilter, mode)
				if err == nil {
					if failedAt == 0 {
						passed++
					}
					continue
				}
				ce := callError(t, err)
				if ce.Kind != pluginhost.KindMemory || !strings.Contains(err.Error(), "8388608 bytes (Limits.MemoryBytes)") {
					t.Fatalf("call %d: %v, want the memory limit", i, err)
				}
				if failedAt == 0 {
					failedAt = i
				}
			}
			st := p.Stats()
			if passed < tc.minCalls || passed > tc.maxCalls || st.Discarded < 1 || st.Created != st.Discarded+uint64(st.Live) || st.LinearMemoryBytes > int64(lim.MemoryBytes) {
				t.Fatalf("%d calls passed before the first failure (want %d-%d); stats %+v", passed, tc.minCalls, tc.maxCalls, st)
			}
			t.Logf("%s: %d calls passed before the memory limit; over 30 calls: %d instances discarded and replaced", tc.guest, passed, st.Discarded)
		})
	}
}

// TestHostileLogFlood: a guest logging 100,000 lines in one call gets the
// first ones written and the rest dropped, with one warning naming the
// plugin and the count; the call itself succeeds.
func TestHostileLogFlood(t *testing.T) {
	h, logs := newHost(t)
	ctx := context.Background()
	p := load(t, h, pluginhost.Spec{Name: "chatty", Path: testenv.WatPlugin(t, hostileWat), Limits: hostileLimits})
	if _, err := p.FilterRaw(ctx, []byte("logflood")); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	if n := strings.Count(out, "spam from hostile-wat"); n != 256 {
		t.Fatalf("%d lines of the flood were logged, want the per-call limit of 256", n)
	}
	if !strings.Contains(out, "plugin log lines dropped") || !strings.Contains(out, "plugin=chatty") || !strings.Contains(out, "dropped=99744") {
		t.Fatalf("no warning naming the plugin and the 99,744 dropped lines:\n%.2000s", out[strings.LastIndex(out, "spam"):])
	}
}

// TestHostileLoad: modules that must be refused at load, each with a
// LoadError naming the file and what is wrong, and within the timeout when
// the module's own code never returns (its start function, _initialize,
// or describe).
func TestHostileLoad(t *testing.T) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			h, _ := newHostMode(t, mode)
			for _, tc := range []struct {
				name, file, mode, mention string
				loops                     bool
			}{
				{"wrong ABI major", "hostile.wat", "abi2", "speaks ABI 2.0; this host speaks ABI 1.0", false},
				{"no role export", "hostile.wat", "norole", `declares role "act" but: the module has no export "act"`, false},
				{"no describe export", "nodescribe.wat", "", `no "describe" export`, false},
				{"unknown import module", "import_module.wat", "", "imports env.abort; observer provides only the modules", false},
				{"unknown import function", "import_func.wat", "", "imports extism:host/env.read_secret, which observer does not provide", false},
				{"unknown WASI function", "import_wasi.wat", "", "imports wasi_snapshot_preview1.sock_open, which observer does not provide", false},
				{"import signature", "import_sig.wat", "", "config_get with the signature (i32) -> (i32); observer provides (i64) -> (i64)", false},
				{"describe loops", "hostile.wat", "describeloop", "describe: timeout", true},
				{"_initialize loops", "initloop.wat", "", "_initialize: timeout", true},
				{"start function loops", "startloop.wat", "", "timeout", true},
			} {
				t.Run(tc.name, func(t *testing.T) {
					path := testenv.WatPlugin(t, watDir+tc.file)
					lim := hostileLimits
					lim.Timeout = shortTimeout
					spec := pluginhost.Spec{Path: path, Limits: lim}
					if tc.mode != "" {
						spec.Config = map[string]string{"mode": tc.mode}
					}
					start := time.Now()
					done := make(chan error, 1)
					go func() {
						_, err := h.Load(context.Background(), spec)
						done <- err
					}()
					var err error
					select {
					case err = <-done:
					case <-time.After(10 * time.Second):
						t.Fatal("Load still runs after 10s")
					}
					took := time.Since(start)
					var le *pluginhost.LoadError
					if !errors.As(err, &le) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.mention) {
						t.Fatalf("got %v, want a LoadError naming %s and %q", err, path, tc.mention)
					}
					if tc.loops && (took < shortTimeout || took > shortTimeout+time.Second) {
						t.Fatalf("refused after %s, want about the %s timeout", took, shortTimeout)
					}
					if tc.loops && !strings.Contains(err.Error(), "(Limits.Timeout)") {
						t.Fatalf("error %q does not name the limit", err)
					}
				})
			}
		})
	}
}

// heapInUse returns the Go heap in use after two collections. wazero
// allocates the guests' linear memories (through the host's allocator),
// the kernel memories and the call stacks on the Go heap, so this counts
// them all.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// TestHostileMemoryReturns: 200 misbehaving calls, most of which fill
// their instance's memory to the limit before failing, leave the Go heap
// (where every instance's memories live) and the pools where they were.
// Had the discarded instances been kept, the heap would have grown by
// gigabytes: each holds up to 16 MiB of linear or kernel memory, or a call
// stack of about 80 MiB.
func TestHostileMemoryReturns(t *testing.T) {
	h, _ := newHost(t)
	ctx := context.Background()
	lim := pluginhost.Limits{MemoryBytes: 16 << 20, Timeout: 10 * time.Second, MaxOutputBytes: 1 << 20, MaxInstances: 2}
	wat := load(t, h, pluginhost.Spec{Name: "wat-mem", Path: testenv.WatPlugin(t, hostileWat), Limits: lim})
	loopLim := lim
	loopLim.Timeout = 50 * time.Millisecond
	loop := load(t, h, pluginhost.Spec{Name: "wat-loop", Path: testenv.WatPlugin(t, hostileWat), Limits: loopLim})
	goLim := lim
	goLim.MemoryBytes = 24 << 20
	gop := load(t, h, pluginhost.Spec{Name: "go-mem", Path: testenv.GoPlugin(t, hostileGo), Limits: goLim})
	calls := []struct {
		p     *pluginhost.Plugin
		guest string
		mode  string
		kind  pluginhost.ErrorKind
	}{
		{wat, "wat", "grow", pluginhost.KindMemory},
		{wat, "wat", "kfill", pluginhost.KindMemory},
		{wat, "wat", "recurse", pluginhost.KindTrap},
		{wat, "wat", "hugeout", pluginhost.KindOutputTooLarge},
		{wat, "wat", "trap", pluginhost.KindTrap},
		{loop, "wat", "poll", pluginhost.KindTimeout},
		{wat, "wat", "http", pluginhost.KindDenied},
		{gop, "go", "memhog", pluginhost.KindMemory},
		{gop, "go", "panic", pluginhost.KindTrap},
		{gop, "go", "hugeout", pluginhost.KindOutputTooLarge},
	}
	for i := 0; i < 3; i++ { // warm: first instances, slabs, pools
		if err := hostileCall(ctx, wat, "wat", abi.RoleFilter, "ok"); err != nil {
			t.Fatal(err)
		}
		if err := hostileCall(ctx, gop, "go", abi.RoleFilter, "ok"); err != nil {
			t.Fatal(err)
		}
	}
	if err := hostileCall(ctx, loop, "wat", abi.RoleFilter, "ok"); err != nil {
		t.Fatal(err)
	}
	base := heapInUse()
	baseWat, baseGo, baseLoop := wat.Stats(), gop.Stats(), loop.Stats()

	const n = 200
	var peak uint64
	start := time.Now()
	for i := 0; i < n; i++ {
		c := calls[i%len(calls)]
		err := hostileCall(ctx, c.p, c.guest, abi.RoleFilter, c.mode)
		if ce := callError(t, err); ce.Kind != c.kind {
			t.Fatalf("call %d (%s %s): %v, want kind %v", i, c.guest, c.mode, err, c.kind)
		}
		if i%20 == 19 {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
		}
	}
	elapsed := time.Since(start)
	for _, p := range []*pluginhost.Plugin{wat, gop, loop} {
		if err := hostileCall(ctx, p, map[*pluginhost.Plugin]string{wat: "wat", gop: "go", loop: "wat"}[p], abi.RoleFilter, "ok"); err != nil {
			t.Fatalf("%s after %d bad calls: %v", p.Name(), n, err)
		}
	}
	after := heapInUse()
	sw, sg, sl := wat.Stats(), gop.Stats(), loop.Stats()
	t.Logf("%d bad calls in %s; Go heap in use: baseline %.1f MiB, peak sampled %.1f MiB, after %.1f MiB", n, elapsed.Round(time.Millisecond), mib(base), mib(peak), mib(after))
	t.Logf("wat-mem: %+v (baseline %+v)", sw, baseWat)
	t.Logf("go-mem:  %+v (baseline %+v)", sg, baseGo)
	t.Logf("wat-loop: %+v (baseline %+v)", sl, baseLoop)

	for _, s := range []struct {
		name      string
		st, base  pluginhost.PoolStats
		discarded uint64
		lim       pluginhost.Limits
	}{
		{"wat-mem", sw, baseWat, uint64(n / len(calls) * 6), lim},
		{"go-mem", sg, baseGo, uint64(n / len(calls) * 3), goLim},
		{"wat-loop", sl, baseLoop, uint64(n / len(calls)), loopLim},
	} {
		if got := s.st.Discarded - s.base.Discarded; got != s.discarded {
			t.Errorf("%s: %d instances discarded, want one per bad call: %d", s.name, got, s.discarded)
		}
		if s.st.Live > s.lim.MaxInstances || s.st.Created-s.st.Discarded != uint64(s.st.Live) {
			t.Errorf("%s: %d live instances (created %d, discarded %d), want at most %d and created - discarded", s.name, s.st.Live, s.st.Created, s.st.Discarded, s.lim.MaxInstances)
		}
		if s.st.LinearMemoryBytes > int64(s.lim.MaxInstances)*int64(s.lim.MemoryBytes) || s.st.KernelMemoryBytes > int64(s.lim.MaxInstances)*(4<<20) {
			t.Errorf("%s: live instances hold %d bytes of linear and %d of kernel memory, above %d instances' worth", s.name, s.st.LinearMemoryBytes, s.st.KernelMemoryBytes, s.lim.MaxInstances)
		}
	}
	// After: at most the baseline plus the live instances at their
	// limits, and some slack for the runtime's own caches.
	bound := base + uint64(lim.MaxInstances)*(lim.MemoryBytes+goLim.MemoryBytes) + 32<<20
	if after > bound {
		t.Fatalf("Go heap in use grew from %.1f MiB to %.1f MiB over %d bad calls, above the %.1f MiB bound: discarded instances are kept", mib(base), mib(after), n, mib(bound))
	}
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// sandboxReport is what the Go guest's "sandbox" mode sees of the world.
type sandboxReport struct {
	OpenRoot    string   `json:"open_root"`
	ReadPasswd  string   `json:"read_passwd"`
	ReadDir     string   `json:"read_dir"`
	WriteTmp    string   `json:"write_tmp"`
	Environ     []string `json:"environ"`
	Args        []string `json:"args"`
	HomeSet     bool     `json:"home_set"`
	Now         string   `json:"now"`
	MonoDeltaNs int64    `json:"mono_delta_ns"`
	Random      string   `json:"random"`
}

// TestSandbox: what abi/SPEC.md §1.2 promises a guest sees, checked with
// raw WASI calls (sandbox.wat) and through Go's standard library: no file
// system (nothing preopened: every path and descriptor is refused), no
// environment or arguments, no sockets, a wall clock at the epoch, a
// monotonic clock advancing 1 µs per read, and the same random stream in
// every instance.
func TestSandbox(t *testing.T) {
	h, _ := newHost(t)
	ctx := context.Background()
	raw := testenv.WatPlugin(t, watDir+"sandbox.wat")
	const ebadf = "8"
	probe := func(p *pluginhost.Plugin, export string) []string {
		t.Helper()
		out, err := p.Call(ctx, export, nil)
		if err != nil {
			t.Fatalf("%s: %v", export, err)
		}
		return strings.Fields(string(out))
	}
	p := load(t, h, pluginhost.Spec{Name: "probe", Path: raw})
	t.Run("environment and arguments", func(t *testing.T) {
		if got := strings.Join(probe(p, "probe_env"), " "); got != "0 0 0 0 0 0" {
			t.Fatalf("environ_sizes_get, args_sizes_get (errno count bytes) = %q, want both empty", got)
		}
	})
	t.Run("file system", func(t *testing.T) {
		got := probe(p, "probe_fs")
		// fd_prestat_get(3), path_open(3, etc/passwd), path_open(3, .),
		// fd_readdir(3): no descriptor 3, nothing preopened.
		for i, what := range []string{"fd_prestat_get(3)", "path_open(3, etc/passwd)", "path_open(3, .)", "fd_readdir(3)"} {
			if got[i] != ebadf {
				t.Errorf("%s = errno %s, want EBADF (%s): %v", what, got[i], ebadf, got)
			}
		}
		if got[4] == "0" {
			t.Errorf("path_open(0, etc/passwd) succeeded through stdin")
		}
		if got[5] != "0" || got[6] != "0" {
			t.Errorf("fd_read(stdin) = errno %s, %s bytes; want an empty stdin", got[5], got[6])
		}
	})
	t.Run("sockets", func(t *testing.T) {
		got := probe(p, "probe_sock")
		for i, what := range []string{"sock_accept(3)", "sock_accept(0)", "sock_recv(3)", "sock_send(3)", "sock_shutdown(3)"} {
			if got[i] == "0" {
				t.Errorf("%s succeeded: %v", what, got)
			}
		}
	})
	t.Run("clocks", func(t *testing.T) {
		got := probe(p, "probe_clock")
		// realtime: errno value; monotonic twice; clock_res_get(realtime): errno value
		if got[0] != "0" || got[1] != "0" {
			t.Errorf("realtime = errno %s value %s, want 0 (1970-01-01T00:00:00Z)", got[0], got[1])
		}
		var a, b int64
		fmt.Sscan(got[2], &a)
		fmt.Sscan(got[3], &b)
		if b-a != 1000 {
			t.Errorf("monotonic clock read %d then %d: want 1 µs apart", a, b)
		}
		if got[4] != "0" || got[5] != "1" {
			t.Errorf("clock_res_get = errno %s value %s, want 1 ns", got[4], got[5])
		}
	})
	t.Run("random", func(t *testing.T) {
		first := probe(p, "probe_random")
		q := load(t, h, pluginhost.Spec{Name: "probe2", Path: raw})
		second := probe(q, "probe_random")
		if first[0] != "0" || strings.Join(first, " ") != strings.Join(second, " ") || first[1] == "0" {
			t.Errorf("random_get in two instances = %v and %v, want the same non-zero fixed stream", first, second)
		}
	})
	t.Run("through Go", func(t *testing.T) {
		gp := load(t, h, pluginhost.Spec{Name: "go-probe", Path: testenv.GoPlugin(t, hostileGo)})
		var reports []sandboxReport
		for i := 0; i < 2; i++ {
			res, err := gp.Filter(ctx, input(paymentEvent("1"), `{"mode": "sandbox"}`))
			if err != nil {
				t.Fatal(err)
			}
			var r sandboxReport
			if err := json.Unmarshal([]byte(res.Reason), &r); err != nil {
				t.Fatalf("report %q: %v", res.Reason, err)
			}
			reports = append(reports, r)
			// The next report comes from another instance.
			_, _ = gp.Filter(ctx, input(paymentEvent("1"), `{"mode": "panic"}`))
		}
		r := reports[0]
		for what, e := range map[string]string{"open /": r.OpenRoot, "read /etc/passwd": r.ReadPasswd, "read dir .": r.ReadDir, "write /tmp": r.WriteTmp} {
			if e == "" {
				t.Errorf("%s succeeded inside the guest", what)
			}
		}
		if len(r.Environ) != 0 || r.HomeSet || len(r.Args) != 0 {
			t.Errorf("environment %v (HOME set: %v), args %v: want none", r.Environ, r.HomeSet, r.Args)
		}
		if r.Now != "1970-01-01T00:00:00Z" || r.MonoDeltaNs <= 0 || r.MonoDeltaNs > 100_000 {
			t.Errorf("time.Now = %s, two reads %d ns apart: want the epoch and a clock advancing µs per read", r.Now, r.MonoDeltaNs)
		}
		if r.Random == "" || r.Random != reports[1].Random {
			t.Errorf("crypto/rand gave %q then %q in a fresh instance, want the same fixed stream", r.Random, reports[1].Random)
		}
	})
}
