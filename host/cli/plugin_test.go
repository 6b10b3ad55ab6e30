package cli

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fraiseql/observer/internal/testenv"
)

// watFile assembles WAT source with wat2wasm into dir/name.wasm; without
// wat2wasm the test is skipped, or fails under CI.
func watFile(t *testing.T, dir, name, src string) string {
	t.Helper()
	bin, err := exec.LookPath("wat2wasm")
	if err != nil {
		testenv.Missing(t, "wat2wasm (Debian package wabt)", err)
	}
	in := filepath.Join(dir, name+".wat")
	out := filepath.Join(dir, name+".wasm")
	if err := os.WriteFile(in, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command(bin, in, "-o", out).CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm %s: %v\n%s", in, err, b)
	}
	return out
}

func repo(t *testing.T, parts ...string) string {
	return filepath.Join(append([]string{testenv.RepoRoot(t)}, parts...)...)
}

// TestPluginTestCommand: exit codes, the text report and --json.
func TestPluginTestCommand(t *testing.T) {
	t.Setenv("OBSERVER_CACHE_DIR", t.TempDir()) // compile each plugin once
	minAmount := testenv.GoPlugin(t, "examples/plugins/go/min-amount")
	mirror := testenv.GoPlugin(t, "conformance/testdata/guests/mirror")
	dir := t.TempDir()
	notWasm := filepath.Join(dir, "not.wasm")
	if err := os.WriteFile(notWasm, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	vectors := repo(t, "examples", "plugins", "vectors", "min-amount")
	src, err := os.ReadFile(repo(t, "conformance", "testdata", "wat", "configured.wat"))
	if err != nil {
		t.Fatal(err)
	}
	configured := watFile(t, dir, "configured", string(src))
	future := `manifest={"abi":"1.3","name":"future","version":"1","roles":["filter"]}`
	broken := repo(t, "conformance", "testdata", "nonconforming")
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout []string
		stderr []string
	}{
		{"conforms", []string{"plugin", "test", minAmount, "--vectors", vectors}, exitOK,
			[]string{"conformance: min-amount", "PASS  filter: amount equal to min passes", "PASS  filter: ABI 1.1 inputs with unknown fields", " passed, 0 failed"}, nil},
		{"conforms, json", []string{"plugin", "test", minAmount, "--vectors", vectors, "--json"}, exitOK,
			[]string{`"ok": true`, `"plugin": "min-amount"`, `"host_abi": "1.0"`, `"failed": 0`}, nil},
		{"fails", []string{"plugin", "test", mirror, "--vectors", broken}, exitFailed,
			[]string{"FAIL  act: a log level ABI 1.0 does not define", `effects[0].log.level: want debug, info, warn or error, got "verbose"`, " passed, 18 failed"},
			[]string{"observer: ", " passed, 18 failed"}},
		{"fails, json", []string{"plugin", "test", mirror, "--vectors", broken, "--format", "json"}, exitFailed,
			[]string{`"ok": false`, `"failed": 18`}, []string{`"error":`}},
		{"plugin config, newer minor", []string{"plugin", "test", configured, "--plugin-config", future, "--plugin-config", `filter_output={"pass":true}`}, exitFailed,
			[]string{"conformance: future", "note: the plugin asks for ABI 1.3, newer than this host's 1.0", "PASS  describe: manifest",
				"FAIL  filter: malformed JSON input yields an error result"}, nil},
		{"bad plugin config", []string{"plugin", "test", configured, "--plugin-config", "manifest"}, exitUsage, nil, []string{`--plugin-config "manifest": want KEY=VALUE`}},
		{"not wasm", []string{"plugin", "test", notWasm}, exitFailed, []string{"FAIL  load and describe", "not a WebAssembly module"}, nil},
		{"no file", []string{"plugin", "test", filepath.Join(dir, "absent.wasm")}, exitUsage, nil, []string{"absent.wasm"}},
		{"vectors not a dir", []string{"plugin", "test", minAmount, "--vectors", notWasm}, exitUsage, nil, []string{"--vectors " + notWasm + ": not a directory"}},
		{"no args", []string{"plugin", "test"}, exitUsage, nil, []string{"accepts 1 arg"}},
		{"unknown flag", []string{"plugin", "test", minAmount, "--vector", vectors}, exitUsage, nil, []string{"unknown flag: --vector"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, context.Background(), tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, stdout, stderr)
			}
			for _, w := range tc.stdout {
				if !strings.Contains(stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout)
				}
			}
			for _, w := range tc.stderr {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			if strings.Contains(strings.Join(tc.args, " "), "json") {
				var rep map[string]any
				if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
					t.Fatalf("--json output is not one JSON object: %v\n%s", err, stdout)
				}
			}
		})
	}
}
