package conformance_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fraiseql/observer/conformance"
	"github.com/fraiseql/observer/host/pluginhost"
	"github.com/fraiseql/observer/internal/testenv"
)

func root(t *testing.T) string { return testenv.RepoRoot(t) }

// guest builds the Go guest in dir (relative to the repository root) from
// source, cached by a hash of its sources, the SDK and the ABI.
func guest(t *testing.T, dir string) string { return testenv.GoPlugin(t, dir) }

func newHost(t *testing.T) *pluginhost.Host {
	h, err := pluginhost.New(context.Background(), pluginhost.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close(context.Background()) })
	return h
}

func run(t *testing.T, h *pluginhost.Host, wasm string, opts conformance.Options) *conformance.Report {
	t.Helper()
	rep, err := conformance.Run(context.Background(), h, wasm, opts)
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	if err := rep.Write(&text); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + text.String())
	if !strings.HasSuffix(strings.TrimSpace(text.String()), rep.Summary()) {
		t.Fatalf("summary line missing from the text report")
	}
	return rep
}

func generic(t *testing.T) int {
	vs, err := conformance.GenericVectors()
	if err != nil {
		t.Fatal(err)
	}
	return len(vs)
}

func result(t *testing.T, rep *conformance.Report, name string) conformance.Result {
	t.Helper()
	for _, r := range rep.Results {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("no result %q in the report", name)
	return conformance.Result{}
}

// TestConformingPlugins: the first-party plugins and the Go examples pass
// every generic vector, their own vectors, the manifest check and the
// forward-compatibility check, for each role they declare.
func TestConformingPlugins(t *testing.T) {
	h := newHost(t)
	for _, tc := range []struct {
		dir, vectors string
		roles        int
	}{
		{"plugins/field-filter", "plugins/field-filter/testdata/vectors", 1},
		{"plugins/webhook", "plugins/webhook/testdata/vectors", 1},
		{"examples/plugins/go/min-amount", "examples/plugins/vectors/min-amount", 1},
		{"examples/plugins/go/notify", "examples/plugins/vectors/notify", 1},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			dir := filepath.Join(root(t), tc.vectors)
			rep := run(t, h, guest(t, tc.dir), conformance.Options{VectorDirs: []string{dir}})
			files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
			// The manifest, every generic vector per role, every own
			// vector, and one forward-compatibility check per role.
			if want := 1 + tc.roles*generic(t) + len(files) + tc.roles; !rep.OK() || rep.Passed != want {
				t.Fatalf("%s: %s, want %d passed and none failed", tc.dir, rep.Summary(), want)
			}
			fc := rep.Results[len(rep.Results)-1]
			if !strings.HasPrefix(fc.Name, "ABI 1.1 inputs with unknown fields") || !strings.HasSuffix(fc.Got, "vectors resent") {
				t.Fatalf("last result %+v, want the forward-compatibility check", fc)
			}
		})
	}
}

// TestReportJSON: the --json shape a CI job reads.
func TestReportJSON(t *testing.T) {
	h := newHost(t)
	rep := run(t, h, guest(t, "examples/plugins/go/notify"), conformance.Options{
		VectorDirs: []string{filepath.Join(root(t), "conformance", "testdata", "nonconforming")},
	})
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Path, Plugin, HostABI, Summary string
		OK                             *bool
		Passed, Failed                 int
		Results                        []struct {
			Name, Role, File, Got string
			Pass                  bool
			Diff                  []string
		}
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	// encoding/json matches "host_abi" to HostABI case-insensitively only
	// without the underscore; check the raw keys too.
	for _, key := range []string{`"host_abi":"1.0"`, `"ok":false`, `"summary":"`, `"duration_ms":`, `"duration_us":`} {
		if !bytes.Contains(b, []byte(key)) {
			t.Errorf("JSON report lacks %s: %s", key, b)
		}
	}
	if got.Plugin != "notify" || got.OK == nil || *got.OK || got.Failed == 0 || got.Summary != rep.Summary() {
		t.Fatalf("report %+v", got)
	}
	failed := 0
	for _, r := range got.Results {
		if !r.Pass {
			failed++
			if len(r.Diff) == 0 || r.Got == "" {
				t.Errorf("failed result %q has no diff or no got", r.Name)
			}
		}
	}
	if failed != got.Failed {
		t.Fatalf("%d failed results, failed=%d", failed, got.Failed)
	}
}

// TestEffectsThroughTheRunner: every result and effect form of ABI 1.0
// (filter pass/drop, http with body, body_json and headers, log at every
// level, error results) goes through the host and the runner and matches
// its vector.
func TestEffectsThroughTheRunner(t *testing.T) {
	h := newHost(t)
	dir := filepath.Join(root(t), "conformance", "testdata", "effects")
	rep := run(t, h, guest(t, "conformance/testdata/guests/mirror"), conformance.Options{VectorDirs: []string{dir}})
	if !rep.OK() {
		t.Fatalf("mirror: %s", rep.Summary())
	}
	for _, name := range []string{"an http effect with body_json keeps numbers exact and compares regardless of key order", "log effects at every level, with and without fields"} {
		if r := result(t, rep, name); !r.Pass || r.Role != "act" {
			t.Fatalf("%+v", r)
		}
	}
}

// TestNonConformingResults: each vector in testdata/nonconforming must fail
// with a diff that says what is wrong.
func TestNonConformingResults(t *testing.T) {
	h := newHost(t)
	dir := filepath.Join(root(t), "conformance", "testdata", "nonconforming")
	rep := run(t, h, guest(t, "conformance/testdata/guests/mirror"), conformance.Options{VectorDirs: []string{dir}})
	want := map[string]string{
		"effect-unknown-type.json":     `unknown effect type "kafka"`,
		"effect-both-bodies.json":      "sets both body and body_json",
		"effect-no-url.json":           "http effect has no url",
		"effect-bad-method.json":       `effects[0].http.method: want an HTTP method such as "POST", got "PO ST"`,
		"effect-relative-url.json":     `effects[0].http.url: want an absolute http:// or https:// URL, got "/hook"`,
		"effect-header-injection.json": `effects[0].http.headers["X-A"]: a header value cannot hold CR or LF`,
		"effect-log-level.json":        `effects[0].log.level: want debug, info, warn or error, got "verbose"`,
		"output-trailing.json":         "trailing data",
		"output-not-json.json":         "not a JSON result object",
		"output-other-major.json":      "result is ABI 2.0",
		"output-no-pass.json":          `neither "pass" nor "error"`,
		"expect-pass-differs.json":     `pass: want false, got pass=true reason="kept"`,
		"expect-reason-differs.json":   `reason: want it to contain "amount", got "kept"`,
		"expect-effects-differ.json":   "effects: want [{\"http\":{\"method\":\"POST\",\"url\":\"https://x.example.com/b\"}",
		"expect-error-got-result.json": "error: want an error result, got a result (pass=true",
		"expect-result-got-error.json": `want a result, got an error result: code "bad_config": nope`,
		"expect-code-differs.json":     `error.code: want "bad_config", got "bad_input"`,
		"expect-limit-got-result.json": "want the timeout limit to stop the call, got result pass=true",
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) != len(want) {
		t.Fatalf("%d vector files, %d expectations: keep them in step", len(files), len(want))
	}
	seen := 0
	for _, r := range rep.Results {
		sub, ok := want[filepath.Base(r.File)]
		if !ok || !strings.HasPrefix(r.File, dir) {
			continue
		}
		seen++
		if r.Pass || !strings.Contains(strings.Join(r.Diff, "\n"), sub) {
			t.Errorf("%s: pass=%v diff %q, want a failure mentioning %q", r.File, r.Pass, r.Diff, sub)
		}
	}
	if seen != len(want) {
		t.Fatalf("%d of %d nonconforming vectors ran", seen, len(want))
	}
	// Everything else (generic vectors, manifest, forward compatibility) passes.
	if rep.Failed != len(want) {
		t.Fatalf("%s, want exactly the %d nonconforming vectors failed", rep.Summary(), len(want))
	}
	if !strings.Contains(strings.Join(result(t, rep, "the error code differs").Diff, "\n"), "error.retryable: want false, got true") {
		t.Fatal("a vector with several differences must list each")
	}
}

// TestHostileGuestFails: a plugin that traps, loops and floods fails the
// run, each vector with the reason.
func TestHostileGuestFails(t *testing.T) {
	h := newHost(t)
	rep := run(t, h, guest(t, "host/pluginhost/testdata/guests/hostile"), conformance.Options{
		VectorDirs: []string{filepath.Join(root(t), "conformance", "testdata", "hostile")},
		Limits:     pluginhost.Limits{Timeout: 2 * time.Second, MemoryBytes: 24 << 20},
	})
	want := map[string]string{
		"hostile mode loop":    "exceeded a limit (timeout)",
		"hostile mode panic":   "got trap",
		"hostile mode hugeout": "exceeded a limit (output too large)",
		"hostile mode memhog":  "exceeded a limit (memory limit)",
	}
	for _, r := range rep.Results {
		reason, ok := want[r.Name]
		if !ok {
			continue
		}
		delete(want, r.Name)
		if r.Pass || !strings.Contains(strings.Join(r.Diff, "\n"), reason) {
			t.Errorf("%s: pass=%v diff %q, want a failure with %q", r.Name, r.Pass, r.Diff, reason)
		}
	}
	if len(want) > 0 {
		t.Errorf("vectors not run: %v", want)
	}
	if rep.OK() || rep.Failed != 4 {
		t.Fatalf("summary %s, want exactly the 4 hostile vectors failed", rep.Summary())
	}
}

// TestLimitVectors: vectors can set their own limits and expect a limit to
// stop the call; the call after one gets a fresh instance.
func TestLimitVectors(t *testing.T) {
	h := newHost(t)
	start := time.Now()
	rep := run(t, h, guest(t, "host/pluginhost/testdata/guests/hostile"), conformance.Options{
		VectorDirs: []string{filepath.Join(root(t), "conformance", "testdata", "limits")},
	})
	if !rep.OK() {
		t.Fatalf("limit vectors: %s", rep.Summary())
	}
	loop := result(t, rep, "a call that never returns is stopped at the timeout")
	if loop.Got != "timeout" || loop.DurationUS < 150_000 || loop.DurationUS > 1_500_000 {
		t.Fatalf("loop: %+v, want a timeout after about 150ms", loop)
	}
	if time.Since(start) > time.Minute {
		t.Fatalf("the run took %s", time.Since(start))
	}
}

// TestNonConformingGuest: a guest that ignores its input (Extism style,
// no SDK) passes malformed input instead of reporting an error result.
func TestNonConformingGuest(t *testing.T) {
	h := newHost(t)
	rep := run(t, h, guest(t, "host/pluginhost/testdata/guests/rawextism"), conformance.Options{})
	r := result(t, rep, "malformed JSON input yields an error result")
	if r.Pass || !strings.Contains(strings.Join(r.Diff, "\n"), "want an error result, got a result") {
		t.Fatalf("malformed JSON: %+v", r)
	}
	if rep.OK() {
		t.Fatalf("want the malformed-input vectors to fail: %s", rep.Summary())
	}
}

func TestRefusedPlugin(t *testing.T) {
	h := newHost(t)
	bad := filepath.Join(t.TempDir(), "bad.wasm")
	_ = os.WriteFile(bad, []byte("nope"), 0o644)
	rep, err := conformance.Run(context.Background(), h, bad, conformance.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() || rep.Failed != 1 || !strings.Contains(rep.Results[0].Diff[0], "not a WebAssembly module") {
		t.Fatalf("report %+v", rep)
	}
}

// TestBadVectors: a vector file that breaks the format is an error naming
// the file and the problem, before anything runs.
func TestBadVectors(t *testing.T) {
	const ev = `"event": {"id": "pg:1"}`
	for _, tc := range []struct{ name, body, want string }{
		{"no expectation", `{"name": "x", "role": "filter", ` + ev + `, "expect": {}}`, "exactly one"},
		{"two expectations", `{"name": "x", "role": "filter", ` + ev + `, "expect": {"pass": true, "no_trap": true}}`, "exactly one"},
		{"no name", `{"role": "filter", ` + ev + `, "expect": {"no_trap": true}}`, `"name" is required`},
		{"bad role", `{"name": "x", "role": "enrich", ` + ev + `, "expect": {"no_trap": true}}`, `role "enrich"`},
		{"no input", `{"name": "x", "role": "filter", "expect": {"no_trap": true}}`, `want "event" or "raw_input"`},
		{"raw and event", `{"name": "x", "role": "filter", "raw_input": "", ` + ev + `, "expect": {"no_trap": true}}`, "cannot be combined"},
		{"unknown field", `{"name": "x", "role": "filter", ` + ev + `, "expect": {"no_trap": true}, "extra": 1}`, `unknown field "extra"`},
		{"effects on filter", `{"name": "x", "role": "filter", ` + ev + `, "expect": {"effects": []}}`, `needs "role": "act"`},
		{"pass on act", `{"name": "x", "role": "act", ` + ev + `, "expect": {"pass": true}}`, `need "role": "filter"`},
		{"bad effects", `{"name": "x", "role": "act", ` + ev + `, "expect": {"effects": {"type": "http"}}}`, "want a list of effects"},
		{"bad limit", `{"name": "x", "role": "filter", ` + ev + `, "expect": {"limit": "cpu"}}`, `expect.limit "cpu"`},
		{"bad timeout", `{"name": "x", "role": "filter", ` + ev + `, "limits": {"timeout": "soon"}, "expect": {"no_trap": true}}`, `limits.timeout "soon"`},
		{"bad repeat", `{"name": "x", "role": "filter", ` + ev + `, "repeat": -1, "expect": {"no_trap": true}}`, "repeat -1"},
		{"trailing data", `{"name": "x", "role": "filter", ` + ev + `, "expect": {"no_trap": true}} {}`, "trailing data"},
		{"stray brace", `{"name": "x", "role": "filter", ` + ev + `, "expect": {"no_trap": true}} }`, "trailing data"},
		{"not JSON", `{"name": `, "unexpected EOF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			f := filepath.Join(dir, "v.json")
			if err := os.WriteFile(f, []byte(tc.body), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := conformance.LoadVectors(dir)
			if err == nil || !strings.Contains(err.Error(), f) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error naming %s and %q", err, f, tc.want)
			}
		})
	}
	for _, dir := range []string{filepath.Join(t.TempDir(), "absent"), t.TempDir()} {
		if _, err := conformance.LoadVectors(dir); err == nil || !strings.Contains(err.Error(), dir) {
			t.Errorf("LoadVectors(%s) = %v, want an error naming the directory", dir, err)
		}
	}
}

// TestGenericVectorsCoverage: the generic suite holds a vector for each
// case SPEC §8 and docs/plugins.md promise; a deleted file fails here.
func TestGenericVectorsCoverage(t *testing.T) {
	vs, err := conformance.GenericVectors()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]conformance.Vector{}
	for _, v := range vs {
		have[strings.TrimPrefix(v.File, "generic:")] = v
		if v.Role != conformance.RoleAny {
			t.Errorf("%s: generic vectors run on every role, got role %q", v.File, v.Role)
		}
	}
	errorResult := []string{"malformed-json", "empty-input", "not-an-object", "null-input", "string-input", "trailing-data",
		"other-major", "older-major"}
	noTrap := []string{"insert", "update-all-fields", "delete", "null-event", "missing-event", "event-not-object", "null-images", "empty-objects", "config-null",
		"config-not-object", "unicode", "unicode-escapes", "large-numbers", "big-integers", "deep-nesting", "deep-arrays",
		"wide-row", "large-row", "repeat"}
	for _, n := range errorResult {
		if v, ok := have[n+".json"]; !ok || v.Expect.Error == nil {
			t.Errorf("generic vector %s.json: missing, or not expecting an error result", n)
		}
	}
	for _, n := range noTrap {
		if v, ok := have[n+".json"]; !ok || !v.Expect.NoTrap {
			t.Errorf("generic vector %s.json: missing, or not expecting no_trap", n)
		}
	}
	if len(have) != len(errorResult)+len(noTrap) {
		t.Errorf("%d generic vectors, %d listed here: list the new ones", len(have), len(errorResult)+len(noTrap))
	}
	if have["repeat.json"].Repeat < 100 {
		t.Error("repeat.json must repeat its call at least 100 times")
	}
}

// FuzzParseVector: any bytes give a vector or an error naming the file,
// never a panic.
func FuzzParseVector(f *testing.F) {
	for _, dir := range []string{"vectors", "testdata/effects", "testdata/limits"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
		for _, file := range files {
			if b, err := os.ReadFile(file); err == nil && len(b) < 4096 {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := conformance.ParseVector(b, "fuzz.json")
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz.json") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if v.Name == "" || v.File != "fuzz.json" {
			t.Fatalf("accepted %+v", v)
		}
	})
}
