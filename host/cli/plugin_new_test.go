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

// toolchain reports what is missing to build lang's scaffold here, or "".
func toolchain(t *testing.T, lang string) string {
	have := func(cmd string) bool { _, err := exec.LookPath(cmd); return err == nil }
	if !have("make") {
		return "make"
	}
	switch lang {
	case "c":
		if !have("clang") || !have("wasm-ld") {
			return "clang and wasm-ld (apt install clang lld; make toolchain-c)"
		}
		out, err := exec.Command("clang", "--target=wasm32-wasi", "-print-libgcc-file-name").Output()
		if _, statErr := os.Stat(strings.TrimSpace(string(out))); err != nil || statErr != nil {
			return "the wasm32 compiler-rt builtins (apt install libclang-rt-dev-wasm32; make toolchain-c)"
		}
	case "wat":
		if !have("wat2wasm") {
			return "wat2wasm (apt install wabt; make toolchain-wat)"
		}
	case "rust":
		out, err := exec.Command("/usr/bin/rustc", "--print", "sysroot").Output()
		if err != nil {
			return "Debian's /usr/bin/rustc (apt install rustc libstd-rust-dev-wasm32; make toolchain-rust)"
		}
		if _, err := os.Stat(filepath.Join(strings.TrimSpace(string(out)), "lib", "rustlib", "wasm32-unknown-unknown", "lib")); err != nil {
			return "the wasm32 standard library of /usr/bin/rustc (apt install libstd-rust-dev-wasm32; make toolchain-rust)"
		}
	case "assemblyscript":
		if !have("node") {
			return "node (apt install nodejs npm)"
		}
		if _, err := os.Stat(repo(t, "sdk-guest", "assemblyscript", "node_modules", ".bin", "asc")); err != nil {
			return "the pinned AssemblyScript compiler (make toolchain-assemblyscript)"
		}
	}
	return ""
}

// TestPluginNewScaffoldsConform: for every language, the scaffold builds
// with its own Makefile and toolchain and passes the whole conformance
// suite with its vectors.
func TestPluginNewScaffoldsConform(t *testing.T) {
	t.Setenv("OBSERVER_CACHE_DIR", t.TempDir())
	sdk := repo(t, "sdk-guest")
	for _, lang := range []string{"go", "c", "wat", "assemblyscript", "rust"} {
		t.Run(lang, func(t *testing.T) {
			if missing := toolchain(t, lang); missing != "" {
				testenv.Missing(t, missing+" to build the "+lang+" scaffold", nil)
			}
			name := "my-" + lang + "-plugin"
			dir := filepath.Join(t.TempDir(), "plugins", name)
			code, stdout, stderr := runCLI(t, context.Background(), "plugin", "new", "--lang", lang, name, "--dir", dir, "--sdk", sdk)
			if code != exitOK || !strings.Contains(stdout, "created "+lang+" plugin \""+name+"\"") || !strings.Contains(stdout, "testdata/vectors/act-posts.json") {
				t.Fatalf("plugin new: exit %d\n%s%s", code, stdout, stderr)
			}
			for _, f := range []string{"Makefile", "README.md", ".gitignore", "testdata/vectors/filter-drops-delete.json"} {
				if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
					t.Fatalf("scaffold lacks %s: %v", f, err)
				}
			}
			make := func(target string) {
				cmd := exec.Command("make", target)
				cmd.Dir = dir
				if b, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("make %s in the %s scaffold: %v\n%s", target, lang, err, b)
				}
			}
			make("build")
			if lang == "go" || lang == "rust" {
				make("unit") // the scaffold's native tests
			}
			wasm := filepath.Join(dir, name+".wasm")
			code, stdout, stderr = runCLI(t, context.Background(), "plugin", "test", wasm, "--vectors", filepath.Join(dir, "testdata", "vectors"), "--json")
			var rep struct {
				OK      bool
				Plugin  string
				Passed  int
				Results []struct {
					Name string
					Pass bool
					Diff []string
				}
			}
			if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
				t.Fatalf("plugin test --json: %v\n%s%s", err, stdout, stderr)
			}
			for _, r := range rep.Results {
				if !r.Pass {
					t.Errorf("FAIL %s: %s", r.Name, strings.Join(r.Diff, "; "))
				}
			}
			// The manifest, the generic vectors and the forward check for
			// both roles, and the scaffold's 4 vectors.
			if code != exitOK || !rep.OK || rep.Plugin != name || rep.Passed < 1+2*20+4+2 {
				t.Fatalf("the %s scaffold does not conform: exit %d, %d passed\n%s", lang, code, rep.Passed, stderr)
			}
		})
	}
}

func TestPluginNewErrors(t *testing.T) {
	sdk := repo(t, "sdk-guest")
	dir := t.TempDir()
	full := filepath.Join(dir, "full")
	if err := os.MkdirAll(full, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(full, "keep.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no lang", []string{"x"}, "--lang is required: one of assemblyscript, c, go, rust, wat"},
		{"unknown lang", []string{"--lang", "cobol", "x"}, `--lang "cobol": want one of`},
		{"bad name", []string{"--lang", "go", "My Plugin"}, `name "My Plugin": want lower-case letters`},
		{"name too long", []string{"--lang", "go", strings.Repeat("a", 65)}, "at most 64 characters"},
		{"dir not empty", []string{"--lang", "go", "x", "--dir", full, "--sdk", sdk}, full + " exists and is not empty"},
		{"bad sdk", []string{"--lang", "go", "x", "--dir", filepath.Join(dir, "x"), "--sdk", dir}, "--sdk " + dir + " is not an observer sdk-guest directory"},
		{"no args", []string{"--lang", "go"}, "accepts 1 arg"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, context.Background(), append([]string{"plugin", "new"}, tc.args...)...)
			if code != exitUsage || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d (want %d), stderr %q, want it to contain %q\n%s", code, exitUsage, stderr, tc.want, stdout)
			}
		})
	}
	if b, err := os.ReadFile(filepath.Join(full, "keep.txt")); err != nil || string(b) != "mine" {
		t.Fatal("plugin new touched a non-empty directory")
	}

	// Without --sdk it is found from the working directory (here: inside
	// the checkout) and referenced by a relative path.
	t.Chdir(repo(t, "host"))
	out := filepath.Join(dir, "found")
	code, stdout, stderr := runCLI(t, context.Background(), "plugin", "new", "--lang", "go", "found", "--dir", out, "--format", "json")
	var res struct{ SDK string }
	if code != exitOK || json.Unmarshal([]byte(stdout), &res) != nil || res.SDK != sdk {
		t.Fatalf("exit %d, %s%s; want the checkout's sdk-guest %s", code, stdout, stderr, sdk)
	}
	mod, err := os.ReadFile(filepath.Join(out, "go.mod"))
	rel, _ := filepath.Rel(out, sdk)
	if err != nil || !strings.Contains(string(mod), "=> "+filepath.ToSlash(rel)+"/go") {
		t.Fatalf("go.mod does not point at %s by a relative path:\n%s", rel, mod)
	}
}
