package conformance_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
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

func TestFirstPartyPluginsConform(t *testing.T) {
	h := newHost(t)
	for _, name := range []string{"field-filter", "webhook"} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(root(t), "plugins", name, "testdata", "vectors")
			rep, err := conformance.Run(context.Background(), h, guest(t, "plugins/"+name), conformance.Options{VectorDirs: []string{dir}})
			if err != nil {
				t.Fatal(err)
			}
			var text bytes.Buffer
			if err := rep.Write(&text); err != nil {
				t.Fatal(err)
			}
			t.Log("\n" + text.String())
			files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
			// Every plugin-specific vector ran, plus the manifest check and
			// the generic vectors.
			if !rep.OK() || rep.Passed < len(files)+1+10 {
				t.Fatalf("%s does not conform: %s", name, rep.Summary())
			}
			if !strings.HasSuffix(strings.TrimSpace(text.String()), fmt.Sprintf("%d passed, 0 failed", rep.Passed)) {
				t.Fatalf("summary line missing from the text report")
			}
			b, err := json.Marshal(rep)
			if err != nil || !bytes.Contains(b, []byte(`"failed":0`)) {
				t.Fatalf("JSON report: %s %v", b, err)
			}
		})
	}
}

// TestHostileGuestFails: a plugin that traps, loops and floods fails the
// run, each vector with the reason.
func TestHostileGuestFails(t *testing.T) {
	h := newHost(t)
	rep, err := conformance.Run(context.Background(), h, guest(t, "host/pluginhost/testdata/guests/hostile"), conformance.Options{
		VectorDirs: []string{filepath.Join(root(t), "conformance", "testdata", "hostile")},
		Limits:     pluginhost.Limits{Timeout: 2 * time.Second, MemoryBytes: 24 << 20},
	})
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	_ = rep.Write(&text)
	t.Log("\n" + text.String())
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

// TestNonConformingGuest: a guest that ignores its input (Extism style,
// no SDK) passes malformed input instead of reporting an error result.
func TestNonConformingGuest(t *testing.T) {
	h := newHost(t)
	rep, err := conformance.Run(context.Background(), h, guest(t, "host/pluginhost/testdata/guests/rawextism"), conformance.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	_ = rep.Write(&text)
	t.Log("\n" + text.String())
	found := false
	for _, r := range rep.Results {
		if r.Name == "malformed JSON input yields an error result" {
			found = true
			if r.Pass || !strings.Contains(strings.Join(r.Diff, "\n"), "want an error result, got a result") {
				t.Fatalf("malformed JSON: %+v", r)
			}
		}
	}
	if !found || rep.OK() {
		t.Fatalf("want the malformed-input vector to fail: %s", rep.Summary())
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

func TestBadVectorDir(t *testing.T) {
	dir := t.TempDir()
	_ = os.WriteFile(filepath.Join(dir, "x.json"), []byte(`{"name": "x", "role": "filter", "event": {}, "expect": {}}`), 0o644)
	_, err := conformance.LoadVectors(dir)
	if err == nil || !strings.Contains(err.Error(), "x.json") || !strings.Contains(err.Error(), "exactly one") {
		t.Fatalf("got %v", err)
	}
	if _, err := conformance.LoadVectors(filepath.Join(dir, "absent")); err == nil {
		t.Fatal("a missing vector directory was accepted")
	}
}
