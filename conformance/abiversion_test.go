package conformance_test

// The tests of abi/SPEC.md §7 (versioning), named in its rule table. The
// plugins are tiny WAT modules (testdata/wat, built with wabt's wat2wasm in
// the test) whose manifest and results come from their plugin config, and
// Go guests built from source.

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fraiseql/observer/abi"
	"github.com/fraiseql/observer/conformance"
	"github.com/fraiseql/observer/host/pluginhost"
	"github.com/fraiseql/observer/internal/testenv"
)

// wat builds testdata/wat/NAME.wat with wat2wasm into a temporary file.
// Without wat2wasm the test is skipped, or fails when CI is set.
func wat(t *testing.T, name string) string {
	t.Helper()
	bin, err := exec.LookPath("wat2wasm")
	if err != nil {
		testenv.Missing(t, "wat2wasm (Debian package wabt)", err)
	}
	src := filepath.Join(root(t), "conformance", "testdata", "wat", name+".wat")
	out := filepath.Join(t.TempDir(), name+".wasm")
	if b, err := exec.Command(bin, src, "-o", out).CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm %s: %v\n%s", src, err, b)
	}
	return out
}

// hostWithLogs returns a host whose warnings are captured.
func hostWithLogs(t *testing.T) (*pluginhost.Host, *bytes.Buffer) {
	var logs bytes.Buffer
	h, err := pluginhost.New(context.Background(), pluginhost.Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close(context.Background()) })
	return h, &logs
}

// configured loads configured.wat with the given manifest and outputs.
func configured(t *testing.T, h *pluginhost.Host, path, manifest, filterOut, actOut string) (*pluginhost.Plugin, error) {
	cfg := map[string]string{"manifest": manifest, "filter_output": filterOut, "act_output": actOut}
	p, err := h.Load(context.Background(), pluginhost.Spec{Path: path, Config: cfg})
	if err == nil {
		t.Cleanup(func() { _ = p.Close(context.Background()) })
	}
	return p, err
}

const okFilter = `{"abi":"1.0","pass":true}`

// TestABIManifestVersion: the manifest's abi decides at load (SPEC §7).
func TestABIManifestVersion(t *testing.T) {
	h, logs := hostWithLogs(t)
	path := wat(t, "configured")
	for _, tc := range []struct {
		name, abi string
		loads     bool
		mention   []string // in the load error, or in the warning
	}{
		{"same version", `"1.0"`, true, nil},
		{"bare major", `"1"`, true, nil},
		{"newer minor", `"1.3"`, true, []string{"newer ABI minor", "plugin_abi=1.3", "host_abi=1.0", path}},
		{"newer major", `"2.0"`, false, []string{path, "ABI 2.0", "ABI 1.0"}},
		{"older major", `"0.9"`, false, []string{path, "ABI 0.9", "ABI 1.0"}},
		{"no abi", ``, false, []string{path, "abi version is empty"}},
		{"empty abi", `""`, false, []string{path, "abi version is empty"}},
		{"words", `"one"`, false, []string{path, `abi version "one"`}},
		{"three parts", `"1.0.0"`, false, []string{path, `abi version "1.0.0"`}},
		{"x minor", `"1.x"`, false, []string{path, `abi version "1.x"`}},
		{"negative", `"-1.0"`, false, []string{path, `abi version "-1.0"`}},
		{"number", `1.0`, false, []string{path, "not a manifest"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs.Reset()
			field := ""
			if tc.abi != "" {
				field = `"abi":` + tc.abi + `,`
			}
			p, err := configured(t, h, path, `{`+field+`"name":"v","version":"1","roles":["filter"]}`, okFilter, "")
			if tc.loads != (err == nil) {
				t.Fatalf("loads=%v, err %v", err == nil, err)
			}
			text := logs.String()
			if err != nil {
				var le *pluginhost.LoadError
				if !errors.As(err, &le) {
					t.Fatalf("%T %v, want a *pluginhost.LoadError", err, err)
				}
				text = err.Error()
			} else if len(tc.mention) == 0 && strings.Contains(text, "level=WARN") {
				t.Fatalf("unexpected warning: %s", text)
			}
			for _, m := range tc.mention {
				if !strings.Contains(text, m) {
					t.Errorf("%q does not mention %q", text, m)
				}
			}
			if err == nil {
				if _, err := p.Filter(context.Background(), &abi.Input{Event: &abi.Event{ID: "x:1"}}); err != nil {
					t.Fatalf("a loaded plugin's call failed: %v", err)
				}
			}
		})
	}
}

// TestABINewerMinorDowngrade: a plugin written for 1.3 is used as a 1.0
// plugin: roles the host does not know are dropped, manifest fields it
// does not know are ignored, results are read by 1.0 rules, and the
// conformance report says so.
func TestABINewerMinorDowngrade(t *testing.T) {
	h, _ := hostWithLogs(t)
	path := wat(t, "configured")
	manifest := `{"abi":"1.3","name":"future","version":"2.0.0","roles":["enrich","filter","act"],
		"capabilities":{"effects":["http","kafka"],"kv":{"scope":"plugin"},"log":true},"x_new_manifest_field":[1,{}]}`
	p, err := configured(t, h, path, manifest,
		`{"abi":"1.3","pass":false,"reason":"r","score":0.5,"x_new":{"a":[1]}}`,
		`{"abi":"1.3","effects":[{"type":"kafka","kafka":{"topic":"t"}}]}`)
	if err != nil {
		t.Fatal(err)
	}
	m := p.Manifest()
	if strings.Join(m.Roles, ",") != "filter,act" || m.ABI != "1.3" {
		t.Fatalf("manifest roles %v abi %s, want [filter act] (enrich dropped) and the plugin's own abi", m.Roles, m.ABI)
	}
	res, err := p.Filter(context.Background(), &abi.Input{Event: &abi.Event{ID: "x:1"}})
	if err != nil || res.Pass || res.Reason != "r" || res.ABI != "1.3" {
		t.Fatalf("filter result %+v %v: unknown fields in a result must be ignored", res, err)
	}
	_, err = p.Act(context.Background(), &abi.Input{Event: &abi.Event{ID: "x:1"}})
	var ce *pluginhost.CallError
	if !errors.As(err, &ce) || ce.Kind != pluginhost.KindBadOutput || !strings.Contains(err.Error(), `unknown effect type "kafka"`) {
		t.Fatalf("act: %v, want bad output naming the unknown effect type", err)
	}

	rep, err := conformance.Run(context.Background(), h, path, conformance.Options{PluginConfig: map[string]string{
		"manifest": manifest, "filter_output": okFilter, "act_output": `{"abi":"1.0","effects":[]}`}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Notes) != 1 || !strings.Contains(rep.Notes[0], "asks for ABI 1.3, newer than this host's 1.0") {
		t.Fatalf("notes %q, want one saying the plugin was tested as a 1.0 plugin", rep.Notes)
	}
	var text bytes.Buffer
	_ = rep.Write(&text)
	if !strings.Contains(text.String(), "note: the plugin asks for ABI 1.3") {
		t.Fatalf("text report lacks the note:\n%s", text.String())
	}
	if mr := rep.Results[0]; mr.Name != "describe: manifest" || !mr.Pass {
		t.Fatalf("a newer minor's own effect types (kafka) are not a manifest failure: %+v", mr)
	}

	// Only roles of the newer minor: it loads with none, and fails the
	// suite's manifest check.
	only := `{"abi":"1.3","name":"future","version":"2.0.0","roles":["enrich"]}`
	p2, err := configured(t, h, path, only, okFilter, "")
	if err != nil {
		t.Fatal(err)
	}
	if r := p2.Manifest().Roles; len(r) != 0 {
		t.Fatalf("roles %v; want none left", r)
	}
	rep, err = conformance.Run(context.Background(), h, path, conformance.Options{PluginConfig: map[string]string{"manifest": only}})
	if err != nil {
		t.Fatal(err)
	}
	if mr := rep.Results[0]; mr.Pass || !strings.Contains(strings.Join(mr.Diff, " "), "roles: want at least one of filter, act") || rep.OK() {
		t.Fatalf("manifest check %+v, want a failure for no usable role", mr)
	}
}

// TestABIResultVersion: a result's "abi", if present, must have the host's
// major (SPEC §4.4); its minor does not matter.
func TestABIResultVersion(t *testing.T) {
	h, _ := hostWithLogs(t)
	path := wat(t, "configured")
	for _, tc := range []struct {
		name, out string
		ok        bool
	}{
		{"this version", `{"abi":"1.0","pass":true}`, true},
		{"no abi", `{"pass":true}`, true},
		{"newer minor", `{"abi":"1.9","pass":true}`, true},
		{"other major", `{"abi":"2.0","pass":true}`, false},
		{"older major", `{"abi":"0.1","pass":true}`, false},
		{"malformed", `{"abi":"one","pass":true}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := configured(t, h, path, `{"abi":"1.0","name":"r","version":"1","roles":["filter"]}`, tc.out, "")
			if err != nil {
				t.Fatal(err)
			}
			_, err = p.Filter(context.Background(), &abi.Input{Event: &abi.Event{ID: "x:1"}})
			var ce *pluginhost.CallError
			if tc.ok != (err == nil) || (err != nil && (!errors.As(err, &ce) || ce.Kind != pluginhost.KindBadOutput)) {
				t.Fatalf("got %v, want ok=%v or bad output", err, tc.ok)
			}
		})
	}
}

// TestABIUnknownInputFields: a plugin built for 1.0 keeps working when a
// 1.x host sends fields it does not know and a newer minor (SPEC §4.1,
// §7). A Go SDK plugin answers the extended input exactly as the plain
// one; a plugin that matches the input's text instead of parsing it is
// caught by the conformance suite's forward-compatibility check.
func TestABIUnknownInputFields(t *testing.T) {
	h := newHost(t)
	ctx := context.Background()
	p, err := h.Load(ctx, pluginhost.Spec{Path: guest(t, "examples/plugins/go/min-amount")})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	const plain = `{"abi":"1.0","context":{"observer":"o","plugin":"p","role":"filter","attempt":1,"now":"2026-01-01T00:00:00Z"},` +
		`"event":{"id":"pg:1","position":1,"source":"pg","entity":"payment","op":"INSERT","key":"1","before":null,"after":{"amount":11.99},"changed_fields":[],"commit_time":"2026-01-01T00:00:00Z"},` +
		`"config":{"min":9.99}}`
	extended := `{"x_lookups":{"customer":{"tier":"gold","after":{"amount":0}}},"abi":"1.4",` +
		`"context":{"observer":"o","plugin":"p","role":"filter","attempt":1,"now":"2026-01-01T00:00:00Z","deadline":"2026-01-01T00:00:02Z","x":[[],{}]},` +
		`"event":{"id":"pg:1","position":1,"source":"pg","entity":"payment","op":"INSERT","key":"1","before":null,"after":{"amount":11.99},"changed_fields":[],"commit_time":"2026-01-01T00:00:00Z","schema_version":7,"lsn":"0/16B3748"},` +
		`"config":{"min":9.99},"enrichments":{"score":0.9}}`
	a, errA := p.FilterRaw(ctx, []byte(plain))
	b, errB := p.FilterRaw(ctx, []byte(extended))
	if errA != nil || errB != nil || a != b || !a.Pass {
		t.Fatalf("plain input: %+v %v; input with 1.x fields: %+v %v; want the same passing result", a, errA, b, errB)
	}

	rep := run(t, h, wat(t, "strict"), conformance.Options{})
	fc := result(t, rep, "ABI 1.1 inputs with unknown fields give the same outcomes")
	if fc.Pass || !strings.Contains(strings.Join(fc.Diff, "\n"), `as ABI 1.1 input error result code=bad_input ("not an ABI 1.0 input")`) {
		t.Fatalf("forward-compatibility check on strict.wat: %+v, want a failure quoting its bad_input", fc)
	}
}

// TestABIOtherMajorInput: a plugin receiving an input of another major
// answers with a bad_input error result (SPEC §7), for the Go SDK.
func TestABIOtherMajorInput(t *testing.T) {
	h := newHost(t)
	ctx := context.Background()
	p, err := h.Load(ctx, pluginhost.Spec{Path: guest(t, "examples/plugins/go/notify")})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	for _, v := range []string{"2.0", "0.9", "10.1"} {
		_, err := p.ActRaw(ctx, []byte(`{"abi":"`+v+`","context":{},"event":{"id":"pg:1"},"config":{"url":"https://x.example.com"}}`))
		var ce *pluginhost.CallError
		var ge *abi.Error
		if !errors.As(err, &ce) || ce.Kind != pluginhost.KindGuest || !errors.As(err, &ge) || ge.Code != "bad_input" || !strings.Contains(ge.Message, v) {
			t.Fatalf("abi %s: %v, want a bad_input error result naming the version", v, err)
		}
	}
}
