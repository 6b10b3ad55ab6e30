package pluginhost_test

import (
	"bytes"
	"context"
	"encoding/json"
	"math/big"
	"os"
	"strings"
	"testing"

	extism "github.com/extism/go-sdk"

	"github.com/fraiseql/observer/abi"
	"github.com/fraiseql/observer/host/pluginhost"
	"github.com/fraiseql/observer/host/pluginhost/internal/instrument"
	"github.com/fraiseql/observer/internal/testenv"
)

// benchInput is the field-filter input for a Pagila payment UPDATE: about
// 700 bytes of JSON, as the engine would send it.
func benchInput(b *testing.B) []byte {
	in := input(paymentEvent("11.99"), `{"field":"after.amount","op":">=","value":9.99}`)
	raw, err := json.Marshal(in)
	if err != nil {
		b.Fatal(err)
	}
	return raw
}

// BenchmarkFilter compares one filter call in one run: this host in each
// interrupt mode (raw bytes in and out, with a cancelable context, and
// typed Filter with JSON encode/decode), the same logic as native Go, and
// the Extism go-sdk calling the same module.
func BenchmarkFilter(b *testing.B) {
	ctx := context.Background()
	path := testenv.GoPlugin(b, "plugins/field-filter")
	raw := benchInput(b)
	b.Logf("input: %d bytes", len(raw))

	check := func(out []byte) {
		if !bytes.Contains(out, []byte(`"pass":true`)) {
			b.Fatalf("unexpected output %s", out)
		}
	}

	// Each interrupt mode side by side: instrumented loop checks (the
	// default) and wazero's close-on-context-done.
	for _, mode := range modes {
		h, _ := newHostMode(b, mode)
		p := load(b, h, pluginhost.Spec{Path: path, Limits: pluginhost.Limits{MaxInstances: 1}})
		if p.Interrupt() != mode {
			b.Fatalf("plugin runs in mode %q, want %q", p.Interrupt(), mode)
		}

		b.Run("wasm/"+string(mode), func(b *testing.B) {
			out, err := p.Call(ctx, abi.RoleFilter, raw)
			if err != nil {
				b.Fatal(err)
			}
			check(out)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := p.Call(ctx, abi.RoleFilter, raw); err != nil {
					b.Fatal(err)
				}
			}
		})

		b.Run("wasm-cancelable-ctx/"+string(mode), func(b *testing.B) {
			cctx, cancel := context.WithCancel(ctx)
			defer cancel()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.Call(cctx, abi.RoleFilter, raw); err != nil {
					b.Fatal(err)
				}
			}
		})

		b.Run("wasm-typed/"+string(mode), func(b *testing.B) {
			in := input(paymentEvent("11.99"), `{"field":"after.amount","op":">=","value":9.99}`)
			b.ReportAllocs()
			for b.Loop() {
				res, err := p.Filter(ctx, in)
				if err != nil || !res.Pass {
					b.Fatal(res, err)
				}
			}
		})
	}

	b.Run("native", func(b *testing.B) {
		check(nativeFilter(raw))
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			_ = nativeFilter(raw)
		}
	})

	wasm, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	extismRun := func(timeout uint64) func(b *testing.B) {
		return func(b *testing.B) {
			ep, err := extism.NewPlugin(ctx, extism.Manifest{Wasm: []extism.Wasm{extism.WasmData{Data: wasm}}, Timeout: timeout},
				extism.PluginConfig{EnableWasi: true}, nil)
			if err != nil {
				b.Fatalf("extism go-sdk cannot load the module: %v", err)
			}
			defer ep.Close(ctx)
			_, out, err := ep.Call(abi.RoleFilter, raw)
			if err != nil {
				b.Fatal(err)
			}
			check(out)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, _, err := ep.Call(abi.RoleFilter, raw); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	// Without a timeout the go-sdk compiles no termination checks (an
	// infinite loop would hang the call); with one it does, as this host
	// always does.
	b.Run("extism-sdk", extismRun(0))
	b.Run("extism-sdk-timeout", extismRun(2000))
}

// nativeFilter is the field-filter plugin's work in native Go: decode the
// input with exact numbers, validate the config, find the field, compare
// exactly, encode the result.
func nativeFilter(raw []byte) []byte {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var in abi.Input
	if err := dec.Decode(&in); err != nil {
		return nil
	}
	var cfg struct {
		Field string          `json:"field"`
		Op    string          `json:"op"`
		Value json.RawMessage `json:"value"`
	}
	cd := json.NewDecoder(bytes.NewReader(in.Config))
	cd.UseNumber()
	cd.DisallowUnknownFields()
	if err := cd.Decode(&cfg); err != nil {
		return nil
	}
	var want any
	vd := json.NewDecoder(bytes.NewReader(cfg.Value))
	vd.UseNumber()
	_ = vd.Decode(&want)
	var v any = in.Event.After
	for _, seg := range strings.Split(strings.TrimPrefix(cfg.Field, "after."), ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[seg]
	}
	x, _ := new(big.Rat).SetString(string(v.(json.Number)))
	y, _ := new(big.Rat).SetString(string(want.(json.Number)))
	res := abi.FilterResult{ABI: abi.VersionString, Pass: x.Cmp(y) >= 0, Reason: cfg.Field + " = " + x.FloatString(2) + " >= " + y.FloatString(2)}
	out, _ := json.Marshal(res)
	return out
}

// BenchmarkCallOverhead measures the host's own cost per call: a guest
// with no SDK (rawextism) upper-casing 16 bytes, so nearly all the time is
// the pool, the kernel imports, the limits and wazero's call path.
func BenchmarkCallOverhead(b *testing.B) {
	ctx := context.Background()
	path := testenv.GoPlugin(b, "host/pluginhost/testdata/guests/rawextism")
	in := []byte("0123456789abcdef")
	for _, mode := range modes {
		h, _ := newHostMode(b, mode)
		p := load(b, h, pluginhost.Spec{Path: path, Limits: pluginhost.Limits{MaxInstances: 1}})
		b.Run(string(mode), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.Call(ctx, "echo", in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkInstrument measures what instrumentation adds to a load: the
// rewrite of the field-filter module (a Go guest of ~3.7 MB).
func BenchmarkInstrument(b *testing.B) {
	bin, err := os.ReadFile(testenv.GoPlugin(b, "plugins/field-filter"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(bin)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := instrument.Rewrite(bin); err != nil {
			b.Fatal(err)
		}
	}
}
