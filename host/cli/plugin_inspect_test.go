package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fraiseql/observer/internal/testenv"
)

// fixedWAT is a module whose describe outputs manifest and whose filter
// passes, importing extra (WAT import lines) besides the kernel.
func fixedWAT(manifest, extra string) string {
	esc := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace
	result := `{"abi":"1.0","pass":true}`
	return fmt.Sprintf(`(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  %s
  (memory (export "memory") 1 4)
  (data (i32.const 0) "%s")
  (data (i32.const 2048) "%s")
  (func $out (param $p i32) (param $n i32) (result i32)
    (local $k i64) (local $i i32)
    (local.set $k (call $alloc (i64.extend_i32_u (local.get $n))))
    (block $d (loop $l
      (br_if $d (i32.ge_u (local.get $i) (local.get $n)))
      (call $store_u8 (i64.add (local.get $k) (i64.extend_i32_u (local.get $i))) (i32.load8_u (i32.add (local.get $p) (local.get $i))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
    (call $output_set (local.get $k) (i64.extend_i32_u (local.get $n)))
    (i32.const 0))
  (func (export "describe") (result i32) (call $out (i32.const 0) (i32.const %d)))
  (func (export "filter") (result i32) (call $out (i32.const 2048) (i32.const %d))))
`, extra, esc(manifest), esc(result), len(manifest), len(result))
}

func TestPluginInspect(t *testing.T) {
	t.Setenv("OBSERVER_CACHE_DIR", t.TempDir()) // compile each plugin once
	dir := t.TempDir()
	notify := testenv.GoPlugin(t, "examples/plugins/go/notify")
	hostile := testenv.GoPlugin(t, "host/pluginhost/testdata/guests/hostile")
	wat := watFile(t, dir, "caps", fixedWAT(`{"abi":"1.3","name":"caps","version":"2.1.0","roles":["filter","enrich"],"capabilities":{"effects":["http"],"http_hosts":["api.example.com"],"log":true,"config":true},"description":"asks for things"}`,
		`(import "extism:host/env" "config_get" (func (param i64) (result i64)))
  (import "extism:host/env" "log_info" (func (param i64)))
  (import "extism:host/env" "var_get" (func (param i64) (result i64)))`))
	foreign := watFile(t, dir, "foreign", fixedWAT(`{"abi":"1.0","name":"foreign","version":"1","roles":["filter"]}`,
		`(import "env" "now" (func (result i64)))`))
	major := watFile(t, dir, "major", fixedWAT(`{"abi":"2.0","name":"future","version":"1","roles":["filter"]}`, ""))
	notWasm := filepath.Join(dir, "not.wasm")
	if err := os.WriteFile(notWasm, []byte("\x00asm\x01\x00\x00\x00\x01\x09\x01"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"go plugin", []string{notify}, exitOK, []string{
			"plugin          notify 1.0.0", "abi             1.0 (host 1.0: same)", "roles           act", "effects         http",
			"http hosts      any host the operator allows", "WASI: yes", "exports (5):", "describe     func    (result i32)",
			"_initialize", "extism:host/env.output_set", "func  (param i64 i64)", "custom sections: go:buildid",
			fmt.Sprintf("size            %d bytes", size(t, notify))}},
		{"newer minor, capabilities", []string{wat}, exitOK, []string{
			"plugin          caps 2.1.0", "description     asks for things", "1.3 (host 1.0: newer minor: loaded as 1.0)",
			"roles           filter\n", "api.example.com (narrowed by the operator's allow_hosts)", "log: yes, config: yes",
			"config_get: yes, log: yes, vars: yes, WASI: no", "memory          defined, 1 pages (64 KiB) at start, maximum 4 pages",
			"extism:host/env.config_get", "func  (param i64) (result i64)"}},
		{"denied import", []string{hostile}, exitOK, []string{"DENIED: extism:host/env.http_request (every call fails: return an http effect instead)"}},
		{"foreign import", []string{foreign}, exitFailed, []string{"REFUSED: env.now (only extism:host/env and wasi_snapshot_preview1 may be imported)", "load            REFUSED: ", "  env.now  "}},
		{"other major", []string{major}, exitFailed, []string{"load            REFUSED: load plugin " + major, "speaks ABI 2.0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, context.Background(), append([]string{"plugin", "inspect"}, tc.args...)...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, tc.code, stdout, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stdout, w) {
					t.Errorf("output lacks %q:\n%s", w, stdout)
				}
			}
			// The same in JSON.
			code, stdout, _ = runCLI(t, context.Background(), append([]string{"plugin", "inspect", "--format", "json"}, tc.args...)...)
			var got struct {
				Path     string
				Size     int `json:"size_bytes"`
				Manifest *struct{ Name string }
				ABI      struct{ Status string }
				Exports  []struct{ Name, Kind, Type string }
				Imports  []struct{ Module, Name, Kind, Type string }
				Load     string `json:"load_error"`
			}
			if code != tc.code || json.Unmarshal([]byte(stdout), &got) != nil {
				t.Fatalf("--format json: exit %d, output:\n%s", code, stdout)
			}
			if got.Size != size(t, tc.args[0]) || len(got.Imports) == 0 || len(got.Exports) == 0 || (got.Manifest == nil) != (got.Load != "") {
				t.Fatalf("--format json: %+v", got)
			}
		})
	}

	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"truncated", []string{notWasm}, exitFailed, "plugin inspect " + notWasm + ": truncated module"},
		{"missing", []string{filepath.Join(dir, "absent.wasm")}, exitUsage, "absent.wasm: no such file"},
		{"no file", nil, exitUsage, "accepts 1 arg"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, context.Background(), append([]string{"plugin", "inspect"}, tc.args...)...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d (want %d), stderr %q, want it to contain %q\n%s", code, tc.code, stderr, tc.want, stdout)
			}
		})
	}
}

// TestParseWasmHostile: lengths that point past the end are errors, not
// panics or huge allocations.
func TestParseWasmHostile(t *testing.T) {
	for _, tc := range []struct{ name, bin, want string }{
		{"empty", "", "not a WebAssembly module"},
		{"version 2", "\x00asm\x02\x00\x00\x00", "binary version"},
		{"section past end", "\x00asm\x01\x00\x00\x00\x07\x7f", "bytes wanted"},
		{"huge vector", "\x00asm\x01\x00\x00\x00\x07\x05\xff\xff\xff\xff\x0f", "export section: at byte 15: vector of 4294967295 elements in 0 bytes"},
		{"bad value type", "\x00asm\x01\x00\x00\x00\x01\x04\x01\x60\x01\x01", "unknown value type 0x01"},
		{"leb too long", "\x00asm\x01\x00\x00\x00\x01\x0b\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", "too long"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseWasm([]byte(tc.bin))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func size(t *testing.T, p string) int {
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return int(st.Size())
}

// FuzzParseWasm: any bytes give a module or an error, never a panic, and
// never an allocation beyond the input's size (vector lengths are bounded
// by the bytes left).
func FuzzParseWasm(f *testing.F) {
	f.Add([]byte("\x00asm\x01\x00\x00\x00"))
	f.Add([]byte("\x00asm\x01\x00\x00\x00\x01\x05\x01\x60\x00\x01\x7f\x03\x02\x01\x00\x07\x07\x01\x03run\x00\x00\x0a\x06\x01\x04\x00\x41\x00\x0b"))
	f.Add([]byte("\x00asm\x01\x00\x00\x00\x02\x0b\x01\x03env\x03now\x00\x00\x05\x04\x01\x01\x01\x04"))
	f.Add([]byte("\x00asm\x01\x00\x00\x00\x00\x05\x04name\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseWasm(b)
		if (m == nil) == (err == nil) {
			t.Fatalf("module %v and error %v", m, err)
		}
		if m != nil && len(m.Imports)+len(m.Exports)+len(m.Sections) > len(b) {
			t.Fatalf("%d entries from %d bytes", len(m.Imports)+len(m.Exports)+len(m.Sections), len(b))
		}
	})
}
