package pluginhost_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/fraiseql/observer/abi"
	"github.com/fraiseql/observer/host/pluginhost"
	"github.com/fraiseql/observer/internal/testenv"
)

// langModules are the example filters that implement min-amount
// (examples/plugins/vectors/README.md), one per guest language, as
// `make examples` builds them. extism-style is the same filter written the
// way an Extism C PDK plugin is (wasi-libc, the PDK's imports).
var langModules = []struct{ name, path string }{
	{"go", "bin/examples/go/min-amount.wasm"},
	{"c", "bin/examples/c/min-amount.wasm"},
	{"c-extism-style", "bin/examples/c/extism-style.wasm"},
	{"assemblyscript", "bin/examples/assemblyscript/min-amount.wasm"},
	{"rust", "bin/examples/rust/min-amount.wasm"},
	{"wat", "bin/examples/wat/min-amount.wasm"},
}

// minAmountConfig is min-amount's config with BenchmarkFilter's
// threshold.
const minAmountConfig = `{"min":9.99}`

// BenchmarkLanguages measures one call of the same filter, min-amount,
// written in every guest language, on BenchmarkFilter's event (the
// Pagila payment UPDATE, amount 11.99, so the answer is keep), loaded as
// the daemon loads a plugin (default host config, instrumented
// interrupts, an info-level logger) with one instance.
//
// Sub-benchmarks per language:
//
//   - LANG/call: Plugin.Call with the raw input JSON (BenchmarkFilter's
//     wasm/instrument); each output must equal the first, which was
//     checked to be a keep.
//   - LANG/filter: Plugin.Filter, as the engine calls a filter (input
//     encoded, result decoded and validated); each result must be a keep.
//
// Besides ns/op, B/op and allocs/op (host side), LANG/call reports
// module-B (the .wasm file's size), linear-B and kernel-B (the
// instance's linear memory and its Extism kernel memory, from
// Plugin.Stats after the timed calls: the memory one pooled instance
// holds). "native" is the same logic in native Go; "go-field-filter" is
// the first-party field-filter plugin (exact decimals) on its own config,
// for reference.
//
// The modules are not built here: a missing one fails the benchmark
// (`make examples` builds them; `make bench` does so first).
func BenchmarkLanguages(b *testing.B) {
	ctx := context.Background()
	root := testenv.RepoRoot(b)
	keep := input(paymentEvent("11.99"), minAmountConfig)
	drop := input(paymentEvent("4.99"), minAmountConfig)
	raw, err := json.Marshal(keep)
	if err != nil {
		b.Fatal(err)
	}
	rawDrop, err := json.Marshal(drop)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("input: %d bytes", len(raw))

	// As the daemon builds its host: default interrupts, its logger at the
	// default level (observer.log_level = "info"), so a guest's debug
	// lines (extism-style logs its reason at debug) are dropped, not
	// formatted.
	h, err := pluginhost.New(ctx, pluginhost.Config{
		Logger:   slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo})),
		CacheDir: filepath.Join(root, ".cache", "observer", "wasm-test"),
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = h.Close(context.Background()) })
	for _, m := range langModules {
		path := filepath.Join(root, m.path)
		st, err := os.Stat(path)
		if errors.Is(err, fs.ErrNotExist) {
			b.Fatalf("%s: %s is missing: run `make examples` (it builds every example plugin from source)", m.name, m.path)
		} else if err != nil {
			b.Fatal(err)
		}
		p := load(b, h, pluginhost.Spec{Path: path, Limits: pluginhost.Limits{MaxInstances: 1}})
		if p.Interrupt() != pluginhost.InterruptInstrument {
			b.Fatalf("%s runs in mode %q, want %q", m.name, p.Interrupt(), pluginhost.InterruptInstrument)
		}
		// The filter must answer: keep 11.99, drop 4.99.
		for _, tc := range []struct {
			in   []byte
			want bool
		}{{raw, true}, {rawDrop, false}} {
			res, err := p.FilterRaw(ctx, tc.in)
			if err != nil || res.Pass != tc.want {
				b.Fatalf("%s: filter = %+v, %v; want pass=%v", m.name, res, err, tc.want)
			}
		}
		want, err := p.Call(ctx, abi.RoleFilter, raw)
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("%s: %d bytes, output %s, linear memory %d bytes after describe and 3 calls",
			m.name, st.Size(), want, p.Stats().LinearMemoryBytes)

		b.Run(m.name+"/call", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				out, err := p.Call(ctx, abi.RoleFilter, raw)
				if err != nil || !bytes.Equal(out, want) {
					b.Fatalf("output %s, %v; want %s", out, err, want)
				}
			}
			s := p.Stats()
			if s.Live != 1 {
				b.Fatalf("%d live instances, want 1", s.Live)
			}
			b.ReportMetric(float64(st.Size()), "module-B")
			b.ReportMetric(float64(s.LinearMemoryBytes), "linear-B")
			b.ReportMetric(float64(s.KernelMemoryBytes), "kernel-B")
		})

		b.Run(m.name+"/filter", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				res, err := p.Filter(ctx, keep)
				if err != nil || !res.Pass {
					b.Fatal(res, err)
				}
			}
		})
	}

	b.Run("native", func(b *testing.B) {
		if out := nativeMinAmount(rawDrop); !bytes.Contains(out, []byte(`"pass":false`)) {
			b.Fatalf("native drop: %s", out)
		}
		want := nativeMinAmount(raw)
		if !bytes.Contains(want, []byte(`"pass":true`)) {
			b.Fatalf("native keep: %s", want)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			if out := nativeMinAmount(raw); !bytes.Equal(out, want) {
				b.Fatalf("output %s, want %s", out, want)
			}
		}
	})

	// The first-party Go plugin, exact decimals, with BenchmarkFilter's
	// input (its own config).
	ffPath := testenv.GoPlugin(b, "plugins/field-filter")
	ffRaw := benchInput(b)
	ff := load(b, h, pluginhost.Spec{Path: ffPath, Limits: pluginhost.Limits{MaxInstances: 1}})
	ffWant, err := ff.Call(ctx, abi.RoleFilter, ffRaw)
	if err != nil || !bytes.Contains(ffWant, []byte(`"pass":true`)) {
		b.Fatalf("field-filter: %s, %v", ffWant, err)
	}
	ffStat, err := os.Stat(ffPath)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("go-field-filter/call", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			out, err := ff.Call(ctx, abi.RoleFilter, ffRaw)
			if err != nil || !bytes.Equal(out, ffWant) {
				b.Fatalf("output %s, %v; want %s", out, err, ffWant)
			}
		}
		s := ff.Stats()
		b.ReportMetric(float64(ffStat.Size()), "module-B")
		b.ReportMetric(float64(s.LinearMemoryBytes), "linear-B")
		b.ReportMetric(float64(s.KernelMemoryBytes), "kernel-B")
	})
}

// nativeMinAmount is min-amount's work in native Go, as the Go example
// does it in the guest: decode the input (numbers as their JSON text),
// read config.min and event.after.amount, compare as float64, encode the
// result with its reason. Bad input gives nil (no error result needed
// here).
func nativeMinAmount(raw []byte) []byte {
	var in struct {
		Config struct {
			Min json.Number `json:"min"`
		} `json:"config"`
		Event struct {
			After map[string]json.RawMessage `json:"after"`
		} `json:"event"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&in); err != nil {
		return nil
	}
	threshold, err := strconv.ParseFloat(string(in.Config.Min), 64)
	if err != nil {
		return nil
	}
	limit := strconv.FormatFloat(threshold, 'g', -1, 64)
	v, ok := in.Event.After["amount"]
	if !ok {
		return nil
	}
	var num json.Number
	vd := json.NewDecoder(bytes.NewReader(v))
	vd.UseNumber()
	if err := vd.Decode(&num); err != nil {
		return nil
	}
	amount, err := strconv.ParseFloat(string(num), 64)
	if err != nil {
		return nil
	}
	res := abi.FilterResult{ABI: abi.VersionString, Pass: amount >= threshold}
	if res.Pass {
		res.Reason = "amount " + string(num) + " >= min " + limit
	} else {
		res.Reason = "amount " + string(num) + " < min " + limit
	}
	out, _ := json.Marshal(res)
	return out
}
