// Package sdktest tests the observer C SDK (observer.h, observer.c) from
// Go: it compiles testdata/probe.c with clang in both build modes (freestanding
// and wasi-libc), loads it into the real host (pluginhost) and compares what
// the SDK reads and writes with Go's own reading of the same JSON. The
// example plugins built on the SDK are checked by the conformance run
// (`make conformance`); this covers what that run cannot see: every lookup,
// number and escaping rule, both build modes, and failure paths (memory
// exhaustion, misuse of the API).
//
// clang, wasm-ld and wasi-libc must be installed (`make toolchain-c`); the
// tests are skipped without them, and fail under CI.
package sdktest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/fraiseql/observer/abi"
	"github.com/fraiseql/observer/host/pluginhost"
	"github.com/fraiseql/observer/internal/testenv"
)

// The build modes of the SDK, with the flags of mk/lang-c.mk.
var modes = []struct {
	name  string
	flags []string
}{
	{"freestanding", []string{"-ffreestanding", "-nostdlib", "-Wl,--no-entry"}},
	{"libc", []string{"-mexec-model=reactor"}},
}

// buildProbe compiles testdata/probe.c with the SDK in the given mode and
// returns the .wasm path, cached in .cache/testwasm by a hash of the sources
// and flags.
func buildProbe(t testing.TB, mode string) string {
	t.Helper()
	var flags []string
	for _, m := range modes {
		if m.name == mode {
			flags = m.flags
		}
	}
	root := testenv.RepoRoot(t)
	cc, err := exec.LookPath("clang")
	if err != nil {
		testenv.Missing(t, "clang (make toolchain-c)", err)
		return ""
	}
	sdk := filepath.Join(root, "sdk-guest", "c")
	srcs := []string{filepath.Join(sdk, "sdktest", "testdata", "probe.c"), filepath.Join(sdk, "observer.c")}
	args := append([]string{"--target=wasm32-wasi", "-Os", "-Wall", "-Wextra", "-Werror", "-I" + sdk,
		"-Wl,--strip-all", "-Wl,--stack-first"}, flags...)
	h := sha256.New()
	for _, f := range append(srcs, filepath.Join(sdk, "observer.h")) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("read C SDK source: %v", err)
		}
		h.Write(b)
	}
	fmt.Fprint(h, args)
	out := filepath.Join(root, ".cache", "testwasm", "c-probe-"+mode+"-"+hex.EncodeToString(h.Sum(nil))[:16]+".wasm")
	if _, err := os.Stat(out); err == nil {
		return out
	}
	if mode == "freestanding" {
		b, err := exec.Command(cc, "--target=wasm32-wasi", "-print-libgcc-file-name").Output()
		if err != nil {
			testenv.Missing(t, "clang's wasm32 target (make toolchain-c)", err)
			return ""
		}
		rt := strings.TrimSpace(string(b))
		if _, err := os.Stat(rt); err != nil {
			testenv.Missing(t, "the wasm32 compiler-rt builtins (Debian libclang-rt-dev-wasm32)", err)
			return ""
		}
		srcs = append(srcs, rt)
	} else if _, err := os.Stat("/usr/lib/wasm32-wasi/libc.a"); err != nil {
		testenv.Missing(t, "wasi-libc (Debian wasi-libc)", err)
		return ""
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := fmt.Sprintf("%s.%d.tmp", out, os.Getpid())
	cmd := exec.Command(cc, append(append(args, "-o", tmp), srcs...)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("compile the C probe (%s): %v\n%s\n%s", mode, err, cmd, b)
	}
	if err := os.Rename(tmp, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// load starts a host and loads the probe built in mode.
func load(t testing.TB, mode string, limits pluginhost.Limits) *pluginhost.Plugin {
	t.Helper()
	path := buildProbe(t, mode)
	ctx := context.Background()
	h, err := pluginhost.New(ctx, pluginhost.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(ctx) })
	p, err := h.Load(ctx, pluginhost.Spec{Path: path, Limits: limits, Config: map[string]string{"greeting": "hello"}})
	if err != nil {
		t.Fatalf("load the C probe (%s): %v", mode, err)
	}
	return p
}

// outcome is a call's result: a filter decision, act effects, or an error
// result.
type outcome struct {
	pass    bool
	reason  string
	effects []abi.Effect
	err     *abi.Error
}

// call runs role on the raw input; any failure other than an error result
// (a trap, bad output, error_set) fails the test.
func call(t testing.TB, p *pluginhost.Plugin, role string, input []byte) outcome {
	t.Helper()
	var (
		o   outcome
		err error
	)
	if role == abi.RoleFilter {
		var r abi.FilterResult
		r, err = p.FilterRaw(context.Background(), input)
		o.pass, o.reason, o.err = r.Pass, r.Reason, r.Error
	} else {
		var r abi.ActResult
		r, err = p.ActRaw(context.Background(), input)
		o.effects, o.err = r.Effects, r.Error
	}
	var ce *pluginhost.CallError
	if err != nil && !(errors.As(err, &ce) && ce.Kind == pluginhost.KindGuest && o.err != nil) {
		t.Fatalf("%s on %.200q: want a result or an error result, got %v", role, input, err)
	}
	return o
}

// input is an ABI input with the given event and config JSON.
func input(event, config string) []byte {
	s := `{"abi":"1.0","context":{"observer":"o","plugin":"probe","role":"act","attempt":1,"now":"2026-01-01T00:00:00Z"},"event":` + event
	if config != "" {
		s += `,"config":` + config
	}
	return []byte(s + "}")
}

// probe runs an act op and returns the body_json of its one effect, decoded.
func probe(t testing.TB, p *pluginhost.Plugin, event string, config map[string]any) map[string]any {
	t.Helper()
	cfg, err := json.Marshal(config)
	if err != nil {
		t.Fatal(err)
	}
	o := call(t, p, abi.RoleAct, input(event, string(cfg)))
	if o.err != nil {
		t.Fatalf("probe %s: error result %+v", cfg, *o.err)
	}
	if len(o.effects) != 1 || o.effects[0].HTTP == nil {
		t.Fatalf("probe %s: want one http effect, got %+v", cfg, o.effects)
	}
	return decode(t, o.effects[0].HTTP.BodyJSON)
}

func decode(t testing.TB, b []byte) map[string]any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatalf("decode %q: %v", b, err)
	}
	return m
}

func TestManifest(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			got := load(t, m.name, pluginhost.Limits{}).Manifest()
			want := abi.Manifest{ABI: "1.0", Name: "probe", Version: "0.0.1", Roles: []string{"filter", "act"},
				Capabilities: abi.Capabilities{Effects: []string{"http", "log"}, HTTPHosts: []string{"probe.test"}, Log: true, Config: true},
				Description:  "exposes the C SDK to its tests"}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("manifest:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

// TestInputErrors: every way an input can be wrong is a bad_input error
// result naming what is wrong, in both roles and both modes.
func TestInputErrors(t *testing.T) {
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	cases := []struct {
		name, input, message string // message "" means the input is fine
	}{
		{"empty", "", "input is empty"},
		{"blank", " \n\t\r", "input is empty"},
		{"truncated", `{"abi":"1.0","event":{"id":`, "input is not valid JSON: unexpected end of input at byte 27"},
		{"trailing data", `{"abi":"1.0","event":{}} x`, "input is not valid JSON: data after the JSON value at byte 25"},
		{"control character", "{\"abi\":\"1.0\",\"event\":{\"id\":\"a\tb\"}}", "control character in a string at byte 29"},
		{"bad escape", `{"abi":"1.0","event":{"id":"\x"}}`, "invalid escape"},
		{"bad unicode escape", `{"abi":"1.0","event":{"id":"\u12g4"}}`, "invalid \\u escape"},
		{"leading zero", `{"abi":"1.0","event":{"n":01}}`, "want ',' or '}' after an object member at byte 27"},
		{"bare minus", `{"abi":"1.0","event":{"n":-}}`, "invalid number at byte 26"},
		{"bad literal", `{"abi":"1.0","event":{"n":tru}}`, "invalid literal"},
		{"single quotes", `{'abi':"1.0"}`, "want a string as object key at byte 1"},
		{"array", `[1,2]`, "input is a JSON array"},
		{"string", `"x"`, "input is a JSON string"},
		{"no abi", `{"event":{}}`, `input has no "abi" version string (got missing)`},
		{"abi number", `{"abi":1,"event":{}}`, `(got number)`},
		{"abi empty", `{"abi":"  ","event":{}}`, `input: abi version "  ": empty`},
		{"abi junk", `{"abi":"one","event":{}}`, `major is not a non-negative integer`},
		{"abi bad minor", `{"abi":"1.x","event":{}}`, `minor is not a non-negative integer`},
		{"abi negative", `{"abi":"-1.0","event":{}}`, `major is not a non-negative integer`},
		{"other major", `{"abi":"2.0","event":{}}`, "input is ABI 2.0 but this plugin speaks ABI 1.x"},
		{"last abi wins", `{"abi":"1.0","abi":"0.9","event":{}}`, "input is ABI 0.9"},
		{"null event", `{"abi":"1.0","event":null}`, "input has no event object (event is null)"},
		{"no event", `{"abi":"1.0"}`, "input has no event object (event is missing)"},
		{"too deep", `{"abi":"1.0","event":{"a":` + deep(10000) + `}}`, "nested deeper than 10000 levels"},
		// inputs that are fine, the way abi.ParseVersion reads versions
		{"newer minor", `{"abi":"1.7","event":{}}`, ""},
		{"major only", `{"abi":"1","event":{}}`, ""},
		{"spaces", "{\"abi\":\"\u00a0 +1.0\\n\",\"event\":{}}", ""},
		{"deep but allowed", `{"abi":"1.0","event":{"a":` + deep(9998) + `}}`, ""},
		{"escaped key", `{"\u0061bi":"1.0","ev\u0065nt":{}}`, ""},
	}
	for _, m := range modes {
		p := load(t, m.name, pluginhost.Limits{})
		for _, tc := range cases {
			for _, role := range []string{abi.RoleFilter, abi.RoleAct} {
				t.Run(m.name+"/"+role+"/"+tc.name, func(t *testing.T) {
					o := call(t, p, role, []byte(tc.input))
					if tc.message == "" {
						// The input reaches the handler (the probe's act answers
						// bad_config to an input without config.op).
						if o.err != nil && o.err.Code == "bad_input" {
							t.Fatalf("want the input accepted, got an error result %+v", *o.err)
						}
						return
					}
					if o.err == nil {
						t.Fatalf("want a bad_input error result, got %+v", o)
					}
					if o.err.Code != "bad_input" || o.err.Retryable || !strings.Contains(o.err.Message, tc.message) {
						t.Errorf("want bad_input, permanent, message containing %q; got %+v", tc.message, *o.err)
					}
				})
			}
		}
	}
}

func TestFilterResults(t *testing.T) {
	for _, m := range modes {
		p := load(t, m.name, pluginhost.Limits{})
		for _, tc := range []struct {
			name, config string
			pass         bool
			reason       string
			code         string
		}{
			{"pass without reason", `{}`, true, "", ""},
			{"no config", ``, true, "", ""},
			{"pass with reason", `{"reason":"\"quoted\"\n\ttab \\ é 🚀 \u0001"}`, true, "\"quoted\"\n\ttab \\ é 🚀 \u0001", ""},
			{"drop", `{"pass":false,"reason":"too small"}`, false, "too small", ""},
			{"no decision", `{"nodecision":true}`, false, "", "bad_plugin"},
		} {
			t.Run(m.name+"/"+tc.name, func(t *testing.T) {
				o := call(t, p, abi.RoleFilter, input(`{"id":"pg:1"}`, tc.config))
				if tc.code != "" {
					if o.err == nil || o.err.Code != tc.code {
						t.Fatalf("want an error result with code %q, got %+v", tc.code, o)
					}
					return
				}
				if o.err != nil || o.pass != tc.pass || o.reason != tc.reason {
					t.Errorf("want pass=%v reason=%q, got %+v (err %+v)", tc.pass, tc.reason, o, o.err)
				}
			})
		}
	}
}

func TestActResults(t *testing.T) {
	for _, m := range modes {
		p := load(t, m.name, pluginhost.Limits{MemoryBytes: 16 << 20})
		t.Run(m.name+"/effects", func(t *testing.T) {
			o := call(t, p, abi.RoleAct, input(`{"id":"pg:\u00e9\"1"}`, `{"op":"effects"}`))
			want := []abi.Effect{
				{Type: "http", HTTP: &abi.HTTPEffect{Method: "PUT", URL: "http://probe.test/put",
					Headers: map[string]string{"content-type": "text/plain", "x-quote": `a"b`}, Body: "line 1\nline 2"}},
				{Type: "log", Log: &abi.LogEffect{Level: "warn", Message: `probe "says" hi`, Fields: map[string]string{"event": "pg:é\"1"}}},
			}
			if o.err != nil || !reflect.DeepEqual(o.effects, want) {
				t.Errorf("effects:\n got %s (err %+v)\nwant %s", js(o.effects), o.err, js(want))
			}
		})
		t.Run(m.name+"/no effects", func(t *testing.T) {
			o := call(t, p, abi.RoleAct, input(`{}`, `{"op":"none"}`))
			if o.err != nil || o.effects == nil || len(o.effects) != 0 {
				t.Errorf("want \"effects\": [], got %+v", o)
			}
		})
		t.Run(m.name+"/sprintf", func(t *testing.T) {
			got := probe(t, p, `{}`, map[string]any{"op": "sprintf"})
			want := "-42|7|42|ff|-1|-9223372036854775808|18446744073709551615|9|-9|z|str|ab|%|(null)|0"
			if got["s"] != want {
				t.Errorf("obs_sprintf: got %q, want %q", got["s"], want)
			}
			if g := js(got["ints"]); g != `[-9223372036854775808,9223372036854775807,0,false,null,[1,{}]]` {
				t.Errorf("obs_jw_int/bool/null/raw: got %s", g)
			}
		})
		for _, tc := range []struct {
			name, config, code, message string
			retryable                   bool
		}{
			{"permanent error", `{"op":"error","code":"lookup","message":"no such \"customer\""}`, "lookup", `no such "customer"`, false},
			{"retryable error", `{"op":"error","code":"later","message":"not ready","retryable":true}`, "later", "not ready", true},
			{"unknown op", `{"op":"what"}`, "bad_config", `config.op: unknown op "what"`, false},
			{"filter API in act", `{"op":"misuse"}`, "bad_plugin", "obs_pass called in the act handler", false},
			{"invalid body_json", `{"op":"bad_json"}`, "bad_plugin", "obs_http_json: the body is not valid JSON: unexpected end of input at byte 5", false},
			{"non-zero return", `{"op":"rc"}`, "bad_plugin", "the act handler returned 3 without an error result", false},
			{"out of memory", `{"op":"alloc","n":64}`, "no_memory", "ran out of memory", true},
		} {
			t.Run(m.name+"/"+tc.name, func(t *testing.T) {
				o := call(t, p, abi.RoleAct, input(`{}`, tc.config))
				if o.err == nil || o.err.Code != tc.code || o.err.Retryable != tc.retryable || !strings.Contains(o.err.Message, tc.message) {
					t.Errorf("want error code %q retryable %v message containing %q, got %+v (err %+v)", tc.code, tc.retryable, tc.message, o, o.err)
				}
			})
		}
		t.Run(m.name+"/after out of memory", func(t *testing.T) {
			// The arena is emptied for the next call: the instance keeps working.
			if got := probe(t, p, `{}`, map[string]any{"op": "write", "s": "ok"}); got["s"] != "ok" {
				t.Errorf("after a failed call: got %v", got)
			}
		})
		t.Run(m.name+"/config_get", func(t *testing.T) {
			if got := probe(t, p, `{}`, map[string]any{"op": "config_get", "key": "greeting"}); got["value"] != "hello" {
				t.Errorf("config_get greeting: got %v", got)
			}
			if got := probe(t, p, `{}`, map[string]any{"op": "config_get", "key": "nope"}); got["value"] != nil {
				t.Errorf("config_get of an unset key: got %v", got)
			}
		})
		t.Run(m.name+"/raw values", func(t *testing.T) {
			got := probe(t, p, `{}`, map[string]any{"op": "raw", "v": json.RawMessage(`{"n":123456789012345678901234567890.5e-3,"a":[true,null]}`), "parse": " [1, {\"a\": \"b\"}] "})
			if js(got["v"]) != `{"a":[true,null],"n":123456789012345678901234567890.5e-3}` || got["missing"] != nil {
				t.Errorf("obs_jw_value: got %s", js(got))
			}
			if got["parse_ok"] != true || got["parse_type"] != "array" {
				t.Errorf("obs_parse: got %s", js(got))
			}
			got = probe(t, p, `{}`, map[string]any{"op": "raw", "parse": "[1,"})
			if got["parse_ok"] != false || got["parse_type"] != "missing" {
				t.Errorf("obs_parse of bad JSON: got %s", js(got))
			}
		})
	}
}

func js(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	return string(b)
}

// lookupDoc exercises every lookup rule: escaped and repeated keys,
// arrays, unicode, surrogate pairs, invalid UTF-8, deep and odd values.
const lookupDoc = `{"a":{"b":[10,{"c":"x\"y\\z\u00e9\ud83d\ude80\n"},[],{}]},"a.b":1,"dup":1,"dup":{"k":2},` +
	`"esc\u0061ped":"yes","":{"":"empty"},"n":{"i":-9223372036854775808,"big":9223372036854775808,"f":11.99,` +
	`"e":2.50e1,"tiny":1e-320,"huge":1e999999999,"neg0":-0.0},"lone":"\ud800x","bad":"` + "\xff\xfeok\xed\xa0\x80" + `",` +
	`"t":true,"f":false,"z":null,"sp" : [ 1 , 2 ] }`

func TestLookup(t *testing.T) {
	paths := []string{"", "a", "a.b", "a.b.0", "a.b.1", "a.b.1.c", "a.b.2", "a.b.3", "a.b.4", "a.b.01", "a.b.-1",
		"a.b", "a.b.1.c.d", "dup", "dup.k", "escaped", "esc\\u0061ped", ".", "..", ".x", "n.i", "n.big", "n.f", "n.e",
		"n.tiny", "n.huge", "n.neg0", "lone", "bad", "t", "f", "z", "sp", "sp.1", "missing", "t.x", "a.b.1.c.0"}
	for _, m := range modes {
		p := load(t, m.name, pluginhost.Limits{})
		for _, path := range paths {
			t.Run(m.name+"/"+path, func(t *testing.T) { checkLookup(t, p, m.name, lookupDoc, path, "x\"y\\zé🚀\n") })
		}
	}
}

// checkLookup compares obs_get and friends on event.doc.PATH with Go's own
// reading of doc.
func checkLookup(t testing.TB, p *pluginhost.Plugin, mode, doc, path, eq string) {
	t.Helper()
	full := "event.doc"
	if path != "" {
		full += "." + path
	}
	cfg, _ := json.Marshal(map[string]any{"op": "get", "path": full, "eq": eq})
	var sent struct{ Path, Eq string }
	_ = json.Unmarshal(cfg, &sent) // what the guest sees: Marshal replaced invalid UTF-8
	o := call(t, p, abi.RoleAct, input(`{"doc":`+doc+`}`, string(cfg)))
	if o.err != nil {
		t.Fatalf("error result %+v", *o.err)
	}
	if len(o.effects) != 1 {
		t.Fatalf("want one effect, got %+v", o.effects)
	}
	got := decode(t, o.effects[0].HTTP.BodyJSON)

	raw, found := walk([]byte(doc), strings.TrimPrefix(strings.TrimPrefix(sent.Path, "event.doc"), "."), sent.Path == "event.doc")
	want := map[string]any{"type": "missing", "json": "", "str": nil, "copy_len": json.Number("0"), "copy": "",
		"count": json.Number("0"), "members": []any{}, "i64": nil, "f64_bits": nil, "is_eq": false}
	if found {
		want = expectValue(t, raw, mode, sent.Eq)
	}
	// The JSON text is compared by meaning; the guest's is the input's own text.
	if found {
		if got["json"] != replaceInvalid(string(raw)) {
			t.Errorf("json: got %q, want %q", got["json"], raw)
		}
		delete(got, "json")
		delete(want, "json")
	}
	if gf, wf := got["f64_bits"], want["f64_bits"]; gf != nil && wf != nil {
		checkFloat(t, string(raw), gf.(json.Number), wf.(json.Number), mode)
		delete(got, "f64_bits")
		delete(want, "f64_bits")
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("path %q:\n got %s\nwant %s", path, js(got), js(want))
	}
}

// walk follows the dotted path through doc as obs_get does: object members
// by decoded name (the last of duplicates), array elements by an index of 1
// to 9 digits. It returns the value's JSON text.
func walk(doc []byte, path string, whole bool) ([]byte, bool) {
	cur := json.RawMessage(bytes.TrimSpace(doc))
	if whole {
		return cur, true
	}
	for _, seg := range strings.Split(path, ".") {
		switch {
		case len(cur) > 0 && cur[0] == '{':
			var m map[string]json.RawMessage
			if json.Unmarshal(cur, &m) != nil {
				return nil, false
			}
			v, ok := m[seg]
			if !ok {
				return nil, false
			}
			cur = v
		case len(cur) > 0 && cur[0] == '[' && indexRE.MatchString(seg):
			var a []json.RawMessage
			if json.Unmarshal(cur, &a) != nil {
				return nil, false
			}
			i, _ := strconv.Atoi(seg)
			if i >= len(a) {
				return nil, false
			}
			cur = a[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

var indexRE = regexp.MustCompile(`^[0-9]{1,9}$`)

var numberRE = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)

// expectValue is what the probe's get op should answer for the value raw.
func expectValue(t testing.TB, raw []byte, mode, eq string) map[string]any {
	t.Helper()
	w := map[string]any{"str": nil, "copy_len": json.Number("0"), "copy": "", "count": json.Number("0"),
		"members": []any{}, "i64": nil, "f64_bits": nil, "is_eq": false}
	switch raw[0] {
	case '{', '[':
		w["type"] = map[byte]string{'{': "object", '[': "array"}[raw[0]]
		members := []any{}
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		d.Token() // the opener
		for d.More() {
			if raw[0] == '{' {
				k, _ := d.Token()
				members = append(members, k)
			}
			var v json.RawMessage
			if err := d.Decode(&v); err != nil {
				t.Fatalf("oracle: %v", err)
			}
			if raw[0] == '[' {
				members = append(members, typeName(v))
			}
		}
		w["members"] = members
		w["count"] = json.Number(strconv.Itoa(len(members)))
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			t.Fatalf("oracle: %v", err)
		}
		w["type"], w["str"], w["copy_len"], w["is_eq"] = "string", s, json.Number(strconv.Itoa(len(s))), s == eq
		prefix := s[:min(4, len(s))]
		if i := strings.IndexByte(prefix, 0); i >= 0 {
			prefix = prefix[:i]
		}
		w["copy"] = replaceInvalid(prefix)
	default:
		w["type"] = typeName(raw)
		if w["type"] == "number" {
			r, ok := rat(string(raw))
			if ok && r.IsInt() && r.Num().IsInt64() {
				w["i64"] = json.Number(r.Num().String())
			}
			f, _ := strconv.ParseFloat(string(raw), 64)
			w["f64_bits"] = json.Number(strconv.FormatInt(int64(math.Float64bits(f)), 10))
		}
	}
	return w
}

// replaceInvalid replaces each byte that does not start a valid UTF-8
// sequence with U+FFFD, as the SDK's writer does.
func replaceInvalid(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

func typeName(raw []byte) string {
	switch raw[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't':
		return "true"
	case 'f':
		return "false"
	case 'n':
		return "null"
	}
	return "number"
}

// rat is the exact value of a JSON number, if it is zero or its exponent
// is small enough to compute with (|exponent| < 10000).
func rat(s string) (*big.Rat, bool) {
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		if strings.Trim(s[:i], "-0.") == "" {
			return new(big.Rat), true // zero, whatever the exponent
		}
		e, err := strconv.Atoi(strings.TrimPrefix(s[i+1:], "+"))
		if err != nil || e > 9999 || e < -9999 {
			return nil, false
		}
	}
	r, ok := new(big.Rat).SetString(s)
	return r, ok
}

// checkFloat compares obs_num_f64 with strconv.ParseFloat (correctly
// rounded): equal where the SDK promises it (its fast path; any number
// under 256 bytes with libc's strtod), within 8 units in the last place
// otherwise.
func checkFloat(t testing.TB, text string, got, want json.Number, mode string) {
	t.Helper()
	g, _ := strconv.ParseInt(string(got), 10, 64)
	w, _ := strconv.ParseInt(string(want), 10, 64)
	exact := (mode == "libc" && len(text) < 256) || fastPath(text)
	d := g - w
	if d < 0 {
		d = -d
	}
	if (exact && d != 0) || d > 8 {
		t.Errorf("obs_num_f64(%s) = %v (bits %d), want %v (bits %d)", text,
			math.Float64frombits(uint64(g)), g, math.Float64frombits(uint64(w)), w)
	}
}

// fastPath reports whether the SDK computes text exactly without libc: at
// most 19 significant digits making at most 2^53, times a power of ten
// within 10^±22 (Clinger's fast path), or zero.
func fastPath(text string) bool {
	m := numberRE.FindStringSubmatch(text)
	if m == nil {
		return false
	}
	intPart := strings.TrimPrefix(m[0][:len(m[0])-len(m[2])-len(m[3])], "-")
	digits := intPart + strings.TrimPrefix(m[2], ".")
	lz := len(digits) - len(strings.TrimLeft(digits, "0"))
	sig := digits[lz:]
	if sig == "" {
		return true
	}
	e := 0
	if m[3] != "" {
		var err error
		if e, err = strconv.Atoi(strings.TrimPrefix(m[3][1:], "+")); err != nil {
			return false
		}
	}
	take := min(len(sig), 19)
	mant, _ := strconv.ParseUint(sig[:take], 10, 64)
	e = len(intPart) - lz + e - take
	return len(sig) <= 19 && mant <= 1<<53 && e >= -22 && e <= 22
}

func TestNumbers(t *testing.T) {
	cases := []struct {
		a, b string
		cmp  int
	}{
		{"11.99", "9.99", 1}, {"9.99", "11.99", -1}, {"11.99", "11.990", 0}, {"11", "11.99", -1},
		{"-7.5", "-5", -1}, {"-0", "0", 0}, {"0.0e5", "-0.000", 0}, {"1e2", "100", 0}, {"1E+2", "99.9999", 1},
		{"0.001", "1e-3", 0}, {"123456789012345678901234567890.5", "123456789012345678901234567890.4999999", 1},
		{"1e999999999", "1e999999998", 1}, {"-1e999999999", "1", -1}, {"1e-999999999", "0", 1},
		{"9223372036854775807", "9223372036854775808", -1}, {"0.1", "0.10000000000000000001", -1},
		{"1e999999999999999999", "1e999999999999999998", 1}, {"-1e-999999999999999999", "-1e-999999999999999998", 1},
	}
	for _, m := range modes {
		p := load(t, m.name, pluginhost.Limits{})
		for _, tc := range cases {
			t.Run(m.name+"/"+tc.a+"~"+tc.b, func(t *testing.T) {
				checkCmp(t, p, tc.a, tc.b, &tc.cmp)
				checkCmp(t, p, tc.b, tc.a, ptr(-tc.cmp))
			})
		}
		t.Run(m.name+"/not numbers", func(t *testing.T) {
			got := probe(t, p, `{}`, map[string]any{"op": "cmp", "a": "1", "b": 1, "b_text": "1."})
			if got["cmp"] != json.Number("2") || got["cmp_text"] != json.Number("2") {
				t.Errorf("want OBS_CMP_INVALID (2) for a string and for bad text, got %v", got)
			}
		})
	}
}

func ptr(i int) *int { return &i }

// checkCmp compares obs_num_cmp and obs_num_cmp_text with want (or, if nil,
// with big.Rat), and obs_num_i64 and obs_num_f64 of a with Go's readings.
func checkCmp(t testing.TB, p *pluginhost.Plugin, a, b string, want *int) {
	t.Helper()
	if want == nil {
		ra, ok1 := rat(a)
		rb, ok2 := rat(b)
		if !ok1 || !ok2 {
			return
		}
		want = ptr(ra.Cmp(rb))
	}
	got := probe(t, p, `{}`, map[string]any{"op": "cmp", "a": json.RawMessage(a), "b": json.RawMessage(b), "b_text": b})
	w := json.Number(strconv.Itoa(*want))
	if got["cmp"] != w || got["cmp_text"] != w {
		t.Errorf("compare %s with %s: got %v / %v, want %v", a, b, got["cmp"], got["cmp_text"], *want)
	}
}

// FuzzInput: the SDK accepts exactly the inputs that are valid JSON objects
// with an abi of major 1 (as abi.ParseVersion reads it) and an event
// object, and answers every other input with a bad_input error result,
// never a trap.
func FuzzInput(f *testing.F) {
	for _, s := range []string{``, `{}`, `[]`, `{"abi":"1.0","event":{}}`, `{"abi":" 1.2 ","event":{"a":[1,2,{"b":null}]},"config":{"pass":false}}`,
		`{"abi":"1.0","event":{"x":"\ud83d\ude80\u0000"}}`, `{"abi":"1.0","event":{}} `, `{"abi":"2.0","event":{}}`,
		`{"abi":"1.0","event":{"n":-0.5e+10}}`, `{"abi":"1.0","event":{"s":"` + "\xff" + `"}}`, `{"abi":"1.0","event":{"n":1.}}`,
		`{"abi":"1.0","event":{}` + strings.Repeat(" ", 3), `{"abi":"1.0","config":{"nodecision":true},"event":{}}`} {
		f.Add([]byte(s))
	}
	p := load(f, "freestanding", pluginhost.Limits{})
	f.Fuzz(func(t *testing.T, in []byte) {
		o := call(t, p, abi.RoleFilter, in)
		ok, wantPass, noDecision := acceptable(in)
		switch {
		case !ok:
			if o.err == nil || o.err.Code != "bad_input" {
				t.Fatalf("input %q: want a bad_input error result, got %+v (err %+v)", in, o, o.err)
			}
		case noDecision:
			if o.err == nil || o.err.Code != "bad_plugin" {
				t.Fatalf("input %q: want the bad_plugin error of a filter without decision, got %+v (err %+v)", in, o, o.err)
			}
		default:
			if o.err != nil || o.pass != wantPass {
				t.Fatalf("input %q: want pass=%v, got %+v (err %+v)", in, wantPass, o, o.err)
			}
		}
	})
}

// acceptable is the oracle of FuzzInput: whether in is a valid input, and
// what the probe filter then decides.
func acceptable(in []byte) (ok, pass, noDecision bool) {
	if !json.Valid(in) {
		return false, false, false
	}
	var root map[string]json.RawMessage
	if json.Unmarshal(in, &root) != nil {
		return false, false, false
	}
	var ver string
	if raw := root["abi"]; len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &ver) != nil {
		return false, false, false
	}
	if major, _, err := abi.ParseVersion(ver); err != nil || major != 1 {
		return false, false, false
	}
	if ev := root["event"]; len(ev) == 0 || ev[0] != '{' {
		return false, false, false
	}
	var cfg map[string]json.RawMessage
	if c := root["config"]; len(c) > 0 && c[0] == '{' {
		_ = json.Unmarshal(c, &cfg)
	}
	if string(cfg["nodecision"]) == "true" {
		return true, false, true
	}
	return true, string(cfg["pass"]) != "false", false
}

// FuzzNumbers: exact decimal comparison against big.Rat, and the integer
// and double readings against Go's.
func FuzzNumbers(f *testing.F) {
	for _, s := range [][2]string{{"11.99", "9.99"}, {"-0", "0.0"}, {"1e2", "100"}, {"123456789012345678901234567890", "1.2e29"},
		{"0.000001", "1e-6"}, {"9007199254740993", "9007199254740992"}, {"-5", "-7.5"}, {"1.7976931348623157e308", "2.2250738585072014e-308"}} {
		f.Add(s[0], s[1])
	}
	p := load(f, "freestanding", pluginhost.Limits{})
	f.Fuzz(func(t *testing.T, a, b string) {
		if !numberRE.MatchString(a) || !numberRE.MatchString(b) {
			return
		}
		checkCmp(t, p, a, b, nil)
		checkLookup(t, p, "freestanding", a, "", "")
	})
}

// FuzzLookup: obs_get, obs_member, obs_at, iteration, string decoding and
// the writer's escaping against Go's reading of the same document.
func FuzzLookup(f *testing.F) {
	f.Add(lookupDoc, "a.b.1.c", "x")
	f.Add(`{"k":"\u00e9\ud83d\ude80\ud800\"\\\/\b\f\n\r\t"}`, "k", "é")
	f.Add(`[1,[2,[3]]]`, "1.1.0", "")
	f.Add(`{"a":{"a":{"a":"a"}},"a":"b"}`, "a", "b")
	f.Add("{\"\xff\":\"\xc3\x28\"}", "\xff", "")
	p := load(f, "freestanding", pluginhost.Limits{})
	f.Fuzz(func(t *testing.T, doc, path, eq string) {
		if !json.Valid([]byte(doc)) || strings.ContainsRune(path, 0) || strings.ContainsRune(eq, 0) || len(doc) > 1<<16 {
			return
		}
		checkLookup(t, p, "freestanding", doc, path, eq)
	})
}
