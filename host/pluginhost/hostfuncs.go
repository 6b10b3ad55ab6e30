package pluginhost

import (
	"context"
	"log/slog"
	"math"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// envModule is the import module of the Extism kernel and host functions.
const envModule = "extism:host/env"

// maxLogBytes caps one log line from a guest.
const maxLogBytes = 4 << 10

// maxLogLinesPerCall and maxLogBytesPerCall cap what one call may log
// (after each line is cut at maxLogBytes): lines past either are dropped
// and counted in one warning after the call, so that a guest logging in a
// loop cannot flood the host's log.
const (
	maxLogLinesPerCall = 256
	maxLogBytesPerCall = 64 << 10
)

// maxVarBytes caps the total size of an instance's Extism vars.
const maxVarBytes = 1 << 20

type instanceKey struct{}

// current returns the instance whose call is running. Every call passes
// the instance's own context, made once when the instance was created, so
// this costs a pointer comparison and no allocation.
func current(ctx context.Context) *instance {
	return ctx.Value(instanceKey{}).(*instance)
}

// instantiateEnv defines the Extism imports in rt. The signatures are
// those of Extism's kernel and go-sdk (abi/SPEC.md lists them), so modules
// built with Extism's PDKs link unchanged.
func instantiateEnv(ctx context.Context, rt wazero.Runtime) error {
	b := rt.NewHostModuleBuilder(envModule)
	i32, i64 := api.ValueTypeI32, api.ValueTypeI64
	def := func(name string, params, results []api.ValueType, f api.GoFunc) {
		b.NewFunctionBuilder().WithGoFunction(f, params, results).WithName(name).Export(name)
	}
	none := []api.ValueType{}
	one64 := []api.ValueType{i64}
	two64 := []api.ValueType{i64, i64}

	// Kernel memory.
	def("alloc", one64, one64, func(ctx context.Context, s []uint64) {
		in := current(ctx)
		n := s[0]
		s[0] = in.k.alloc(n)
		if s[0] == 0 && n != 0 {
			in.kernelFull = true
			in.kernelRefused = n
		}
	})
	def("free", one64, none, func(ctx context.Context, s []uint64) { current(ctx).k.free(s[0]) })
	def("length", one64, one64, func(ctx context.Context, s []uint64) { s[0] = current(ctx).k.length(s[0]) })
	def("length_unsafe", one64, one64, func(ctx context.Context, s []uint64) { s[0] = current(ctx).k.length(s[0]) })
	def("load_u8", one64, []api.ValueType{i32}, func(ctx context.Context, s []uint64) {
		in := current(ctx)
		v, ok := in.k.loadU8(s[0])
		if !ok {
			in.trap("load_u8", s[0])
		}
		s[0] = uint64(v)
	})
	def("load_u64", one64, one64, func(ctx context.Context, s []uint64) {
		in := current(ctx)
		v, ok := in.k.loadU64(s[0])
		if !ok {
			in.trap("load_u64", s[0])
		}
		s[0] = v
	})
	def("store_u8", []api.ValueType{i64, i32}, none, func(ctx context.Context, s []uint64) {
		in := current(ctx)
		if !in.k.storeU8(s[0], uint8(s[1])) {
			in.trap("store_u8", s[0])
		}
	})
	def("store_u64", two64, none, func(ctx context.Context, s []uint64) {
		in := current(ctx)
		if !in.k.storeU64(s[0], s[1]) {
			in.trap("store_u64", s[0])
		}
	})
	def("memory_bytes", none, one64, func(ctx context.Context, s []uint64) { s[0] = uint64(len(current(ctx).k.mem)) })
	def("reset", none, none, func(ctx context.Context, s []uint64) { current(ctx).k.reset() })

	// Input, output, error.
	def("input_length", none, one64, func(ctx context.Context, s []uint64) { s[0] = current(ctx).k.inLen })
	def("input_offset", none, one64, func(ctx context.Context, s []uint64) { s[0] = current(ctx).k.inOff })
	def("input_load_u8", one64, []api.ValueType{i32}, func(ctx context.Context, s []uint64) {
		s[0] = uint64(current(ctx).k.inputLoadU8(s[0]))
	})
	def("input_load_u64", one64, one64, func(ctx context.Context, s []uint64) { s[0] = current(ctx).k.inputLoadU64(s[0]) })
	def("input_set", two64, none, func(ctx context.Context, s []uint64) {
		in := current(ctx)
		if !in.k.in(s[0], s[1]) {
			in.trap("input_set", s[0])
		}
		in.k.inOff, in.k.inLen = s[0], s[1]
	})
	def("output_set", two64, none, func(ctx context.Context, s []uint64) {
		in := current(ctx)
		if s[1] > uint64(in.p.limits.MaxOutputBytes) {
			in.fail(KindOutputTooLarge, "output of %d bytes exceeds the limit of %d bytes (Limits.MaxOutputBytes)", s[1], in.p.limits.MaxOutputBytes)
		}
		if s[1] > 0 && !in.k.in(s[0], s[1]) {
			in.trap("output_set", s[0])
		}
		in.k.outOff, in.k.outLen = s[0], s[1]
	})
	def("output_length", none, one64, func(ctx context.Context, s []uint64) { s[0] = current(ctx).k.outLen })
	def("output_offset", none, one64, func(ctx context.Context, s []uint64) { s[0] = current(ctx).k.outOff })
	def("error_set", one64, none, func(ctx context.Context, s []uint64) { current(ctx).k.errOff = s[0] })
	def("error_get", none, one64, func(ctx context.Context, s []uint64) { s[0] = current(ctx).k.errOff })

	// Config and vars.
	def("config_get", one64, one64, func(ctx context.Context, s []uint64) {
		in := current(ctx)
		key := in.k.bytes(s[0])
		if key == nil {
			in.trap("config_get", s[0])
		}
		v, ok := in.p.config[string(key)]
		if !ok {
			s[0] = 0
			return
		}
		s[0] = in.k.alloc(uint64(len(v)))
		if s[0] != 0 {
			copy(in.k.mem[s[0]:], v)
		}
	})
	def("var_get", one64, one64, func(ctx context.Context, s []uint64) {
		in := current(ctx)
		name := in.k.bytes(s[0])
		if name == nil {
			in.trap("var_get", s[0])
		}
		v, ok := in.vars[string(name)]
		in.k.free(s[0])
		if !ok || len(v) == 0 {
			s[0] = 0
			return
		}
		s[0] = in.k.alloc(uint64(len(v)))
		if s[0] != 0 {
			copy(in.k.mem[s[0]:], v)
		}
	})
	def("var_set", two64, none, func(ctx context.Context, s []uint64) {
		in := current(ctx)
		name := in.k.bytes(s[0])
		if name == nil {
			in.trap("var_set", s[0])
		}
		key := string(name)
		if old, ok := in.vars[key]; ok {
			in.varBytes -= len(key) + len(old)
			delete(in.vars, key)
		}
		if s[1] != 0 {
			v := in.k.bytes(s[1])
			if v == nil {
				in.trap("var_set", s[1])
			}
			if in.varBytes+len(key)+len(v) > maxVarBytes {
				in.fail(KindMemory, "var_set: vars exceed %d bytes", maxVarBytes)
			}
			in.vars[key] = append([]byte(nil), v...)
			in.varBytes += len(key) + len(v)
			in.k.free(s[1])
		}
		in.k.free(s[0])
	})

	// Logging.
	logFn := func(name string, level slog.Level) {
		def(name, one64, none, func(ctx context.Context, s []uint64) {
			in := current(ctx)
			msg := in.k.bytes(s[0])
			if msg == nil {
				in.trap(name, s[0])
			}
			if in.p.log.Enabled(ctx, level) {
				if len(msg) > maxLogBytes {
					msg = msg[:maxLogBytes]
				}
				if in.logLines >= maxLogLinesPerCall || in.logBytes+len(msg) > maxLogBytesPerCall {
					in.logDropped++
				} else {
					in.logLines++
					in.logBytes += len(msg)
					in.p.log.LogAttrs(ctx, level, string(msg), slog.String("plugin", in.p.name))
				}
			}
			in.k.free(s[0])
		})
	}
	logFn("log_trace", slog.LevelDebug-4)
	logFn("log_debug", slog.LevelDebug)
	logFn("log_info", slog.LevelInfo)
	logFn("log_warn", slog.LevelWarn)
	logFn("log_error", slog.LevelError)
	def("get_log_level", none, []api.ValueType{i32}, func(ctx context.Context, s []uint64) {
		in := current(ctx)
		lvl := int32(math.MaxInt32) // off
		for i, l := range []slog.Level{slog.LevelDebug - 4, slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError} {
			if in.p.log.Enabled(ctx, l) {
				lvl = int32(i)
				break
			}
		}
		s[0] = api.EncodeI32(lvl)
	})

	// HTTP: denied. A plugin acts by returning http effects, which the host
	// executes with retries, allow-lists and idempotency keys.
	def("http_request", two64, one64, func(ctx context.Context, s []uint64) {
		current(ctx).fail(KindDenied, "http_request is not available to observer plugins: return an http effect instead")
	})
	def("http_status_code", none, []api.ValueType{i32}, func(ctx context.Context, s []uint64) { s[0] = 0 })
	def("http_headers", none, one64, func(ctx context.Context, s []uint64) { s[0] = 0 })

	_, err := b.Instantiate(ctx)
	return err
}
