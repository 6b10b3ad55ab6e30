package cli

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"text/template"

	"github.com/spf13/cobra"
)

// scaffolds holds the templates of `plugin new`: scaffold/LANG/* (each
// file's name without .tmpl, NAME replaced by the plugin's name) and
// scaffold/vectors/*.json, the conformance vectors every scaffold shares.
//
//go:embed scaffold
var scaffolds embed.FS

// scaffoldLangs are the languages `plugin new` knows, with the SDK
// directory (under sdk-guest/) each one's template uses.
var scaffoldLangs = map[string]struct {
	sdk, what string
}{
	"go":             {"go", "Go's own GOOS=wasip1 target and the Go SDK"},
	"c":              {"c", "clang + wasm-ld and the C SDK"},
	"assemblyscript": {"assemblyscript", "the assemblyscript compiler (asc) and the AssemblyScript SDK"},
	"rust":           {"rust", "Debian's rustc (wasm32-unknown-unknown) and the Rust SDK"},
	"wat":            {"wat", "wabt's wat2wasm and the WAT SDK's scanner"},
}

var pluginName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,63}$`)

// scaffoldData fills the templates.
type scaffoldData struct {
	Name  string // the plugin's name: my-plugin
	Ident string // Name as an identifier: my_plugin
	Lang  string
	SDK   string // the sdk-guest directory, relative to the plugin's (or absolute)
	Root  string // the observer checkout (SDK's parent), the same way
}

func (a *app) pluginNewCommand() *cobra.Command {
	var lang, dir, sdk string
	langs := make([]string, 0, len(scaffoldLangs))
	for l := range scaffoldLangs {
		langs = append(langs, l)
	}
	sort.Strings(langs)
	cmd := &cobra.Command{
		Use:   "new --lang LANG NAME",
		Short: "Scaffold a plugin: a filter and an action, a Makefile and conformance vectors",
		Long: `new writes a working plugin in LANG (` + strings.Join(langs, ", ") + `) to DIR (default ./NAME):
a filter that drops DELETEs, an action that posts each event to config.url and logs a
line, a Makefile (make build, make test) and testdata/vectors for the conformance
suite. It builds as it is and passes ` + "`observer plugin test`" + `; replace the handlers
with your own logic.

The plugin uses the guest SDK of an observer checkout, referenced by a relative path:
--sdk names its sdk-guest directory. By default it is found from $OBSERVER_SDK, from
the current directory or one of its parents, or beside the observer binary
(bin/observer → sdk-guest).`,
		Example: `  observer plugin new --lang go big-payments
  observer plugin new --lang c --dir plugins/audit audit --sdk ~/src/observer/sdk-guest
  cd big-payments && make test OBSERVER=../bin/observer`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if !pluginName.MatchString(name) {
				return usagef("plugin new: name %q: want lower-case letters, digits and '-', starting with a letter, at most 64 characters", name)
			}
			l, ok := scaffoldLangs[lang]
			if lang == "" {
				return usagef("plugin new: --lang is required: one of %s", strings.Join(langs, ", "))
			}
			if !ok {
				return usagef("plugin new: --lang %q: want one of %s", lang, strings.Join(langs, ", "))
			}
			if dir == "" {
				dir = name
			}
			sdkDir, err := findSDK(sdk)
			if err != nil {
				return err
			}
			if st, err := os.Stat(filepath.Join(sdkDir, l.sdk)); err != nil || !st.IsDir() {
				return usagef("plugin new: --sdk %s has no %s/ (the %s SDK): is it an up-to-date observer checkout's sdk-guest?", sdkDir, l.sdk, lang)
			}
			files, err := scaffold(lang, name, dir, sdkDir)
			if err != nil {
				return err
			}
			return a.emit(map[string]any{"dir": dir, "lang": lang, "name": name, "sdk": sdkDir, "files": files}, func(w io.Writer) {
				fmt.Fprintf(w, "created %s plugin %q in %s (%s):\n", lang, name, dir, l.what)
				for _, f := range files {
					fmt.Fprintf(w, "  %s\n", f)
				}
				fmt.Fprintf(w, "next: cd %s && make build && make test OBSERVER=<path to bin/observer>\n", dir)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&lang, "lang", "", "language: "+strings.Join(langs, ", ")+" (required)")
	f.StringVar(&dir, "dir", "", "directory to create (default ./NAME); it must not exist or be empty")
	f.StringVar(&sdk, "sdk", "", "the sdk-guest directory of an observer checkout (default: found, see above)")
	return cmd
}

// findSDK returns the sdk-guest directory: flag, $OBSERVER_SDK, the
// current directory or a parent holding sdk-guest/, or beside the binary.
func findSDK(flag string) (string, error) {
	isSDK := func(d string) bool {
		st, err := os.Stat(filepath.Join(d, "go", "go.mod"))
		return err == nil && !st.IsDir()
	}
	for _, c := range []struct{ dir, from string }{{flag, "--sdk"}, {os.Getenv("OBSERVER_SDK"), "$OBSERVER_SDK"}} {
		if c.dir == "" {
			continue
		}
		abs, err := filepath.Abs(c.dir)
		if err != nil || !isSDK(abs) {
			return "", usagef("plugin new: %s %s is not an observer sdk-guest directory (no go/go.mod in it)", c.from, c.dir)
		}
		return abs, nil
	}
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			if isSDK(filepath.Join(d, "sdk-guest")) {
				return filepath.Join(d, "sdk-guest"), nil
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	if exe, err := os.Executable(); err == nil {
		if exe, err = filepath.EvalSymlinks(exe); err == nil {
			if d := filepath.Join(filepath.Dir(filepath.Dir(exe)), "sdk-guest"); isSDK(d) {
				return d, nil
			}
		}
	}
	return "", usagef("plugin new: cannot find the guest SDKs: pass --sdk PATH (the sdk-guest directory of an observer checkout) or set OBSERVER_SDK")
}

// scaffold writes the plugin and returns the files it wrote, relative to dir.
func scaffold(lang, name, dir, sdkDir string) ([]string, error) {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return nil, usagef("plugin new: %s exists and is not empty: choose another --dir or name", dir)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, usagef("plugin new: %v", err)
	}
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	rel := func(target string) string {
		r, err := filepath.Rel(absDir, target)
		if err != nil {
			return filepath.ToSlash(target)
		}
		r = filepath.ToSlash(r)
		if !strings.HasPrefix(r, "../") && r != ".." {
			r = "./" + r
		}
		return r
	}
	data := scaffoldData{
		Name:  name,
		Ident: strings.ReplaceAll(name, "-", "_"),
		Lang:  lang,
		SDK:   rel(sdkDir),
		Root:  rel(filepath.Dir(sdkDir)),
	}
	type file struct {
		name string
		body []byte
	}
	var out []file
	root := "scaffold/" + lang
	err = fs.WalkDir(scaffolds, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		src, err := scaffolds.ReadFile(p)
		if err != nil {
			return err
		}
		t, err := template.New(p).Option("missingkey=error").Parse(string(src))
		if err != nil {
			return fmt.Errorf("scaffold template %s: %w", p, err)
		}
		var b bytes.Buffer
		if err := t.Execute(&b, data); err != nil {
			return fmt.Errorf("scaffold template %s: %w", p, err)
		}
		n := strings.TrimSuffix(strings.TrimPrefix(p, root+"/"), ".tmpl")
		n = strings.ReplaceAll(n, "NAME", name)
		out = append(out, file{n, b.Bytes()})
		return nil
	})
	if err != nil {
		return nil, err
	}
	vectors, err := fs.Glob(scaffolds, "scaffold/vectors/*.json")
	if err != nil {
		return nil, err
	}
	for _, v := range vectors {
		b, err := scaffolds.ReadFile(v)
		if err != nil {
			return nil, err
		}
		out = append(out, file{"testdata/vectors/" + path.Base(v), b})
	}
	out = append(out, file{"README.md", scaffoldReadme(data)}, file{".gitignore", []byte("*.wasm\ntarget/\n")})

	names := make([]string, 0, len(out))
	for _, f := range out {
		p := filepath.Join(dir, filepath.FromSlash(f.name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, fmt.Errorf("plugin new: %w", err)
		}
		if err := os.WriteFile(p, f.body, 0o644); err != nil {
			return nil, fmt.Errorf("plugin new: %w", err)
		}
		names = append(names, f.name)
	}
	sort.Strings(names)
	return names, nil
}

// scaffoldReadme is the scaffold's README: what it is, how to build and
// test it, where to read on.
func scaffoldReadme(d scaffoldData) []byte {
	var b bytes.Buffer
	src := map[string]string{"go": "main.go", "c": d.Name + ".c", "assemblyscript": "index.ts", "rust": d.Name + ".rs", "wat": d.Name + ".wat"}[d.Lang]
	fmt.Fprintf(&b, "# %s\n\nAn observer plugin in %s, scaffolded by `observer plugin new --lang %s`.\n\n", d.Name, d.Lang, d.Lang)
	fmt.Fprintf(&b, "`%s` holds two roles, to replace with your own logic:\n\n", src)
	b.WriteString("- **filter**: drops DELETEs, keeps everything else, with a reason (`op is INSERT`);\n")
	b.WriteString("- **act**: needs `config.url` (else a `bad_config` error result) and returns an\n")
	b.WriteString("  `http` effect, a POST of `{\"event\":ID,\"entity\":ENTITY,\"op\":OP}` to it, and a\n")
	b.WriteString("  `log` effect, `notified` with `event=ID`. The host executes both after the call.\n\n")
	b.WriteString("```sh\nmake build                                   # " + d.Name + ".wasm\n")
	b.WriteString("make test OBSERVER=path/to/observer/bin/observer   # the conformance suite with testdata/vectors\n```\n\n")
	b.WriteString("`testdata/vectors/` holds one JSON file per case (an event, a config and the\n")
	b.WriteString("expected result); change them with the handlers. `observer plugin run " + d.Name + ".wasm\n")
	b.WriteString("--role act --event event.json --config '{\"url\": \"https://example.com\"}'` runs one call.\n\n")
	fmt.Fprintf(&b, "The SDK is `%s/%s` of an observer checkout (its README documents the API);\n", d.SDK, scaffoldLangs[d.Lang].sdk)
	b.WriteString("`docs/plugins.md` there explains roles, effects, errors, the sandbox and how to wire\n")
	b.WriteString("the plugin into `observer.toml`.\n")
	return b.Bytes()
}
