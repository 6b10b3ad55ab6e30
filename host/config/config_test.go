package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fraiseql/observer/abi"
	"github.com/fraiseql/observer/host/resilience"
)

var update = flag.Bool("update", false, "rewrite the expected sections of testdata/*.toml")

// wantMarker separates a golden file's input from its expected output.
// The expected lines follow as "#| " comments, so the whole file stays
// valid TOML and is itself the input.
const wantMarker = "# ---- want ----"

// goldenEnv is the environment every golden case sees.
var goldenEnv = map[string]string{
	"WEBHOOK_SECRET": "s3cr3t-from-env",
	"DB_URL":         "postgres://app:dbpass@db.internal:5432/app",
}

func lookup(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

// TestGolden runs every testdata/*.toml: the expected output is the
// resolved config as JSON (secrets redacted) or the error text.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.toml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, path := range files {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".toml"), func(t *testing.T) {
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			input, wantText, _ := strings.Cut(string(raw), wantMarker+"\n")
			cfg, err := parse(path, raw, lookup(goldenEnv))
			var got string
			if err != nil {
				got = "error:\n" + err.Error()
				var le *LoadError
				if !errors.As(err, &le) || len(le.Errs) == 0 {
					t.Errorf("error is %T, want *LoadError", err)
				}
			} else {
				got = "config:\n" + cfg.String()
			}
			if *update {
				var b strings.Builder
				b.WriteString(strings.TrimRight(input, "\n") + "\n\n" + wantMarker + "\n")
				for _, l := range strings.Split(got, "\n") {
					b.WriteString(strings.TrimRight("#| "+l, " ") + "\n")
				}
				if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			var want []string
			for _, l := range strings.Split(strings.TrimRight(wantText, "\n"), "\n") {
				want = append(want, strings.TrimPrefix(strings.TrimPrefix(l, "#|"), " "))
			}
			if w := strings.Join(want, "\n"); got != w {
				t.Errorf("%s: output differs (run go test -update to accept)\n--- got\n%s\n--- want\n%s", path, got, w)
			}
		})
	}
}

func TestResolvedValues(t *testing.T) {
	cfg, err := parse("testdata/valid_full.toml", mustRead(t, "testdata/valid_full.toml"), lookup(goldenEnv))
	if err != nil {
		t.Fatal(err)
	}
	o := cfg.Observers[0]
	if o.HTTP.Secret != "s3cr3t-from-env" || cfg.Observers[1].HTTP.Secret != "file-secret-value" || cfg.Observers[2].HTTP.Secret != "inline-secret" {
		t.Errorf("secrets not resolved: %q %q %q", o.HTTP.Secret, cfg.Observers[1].HTTP.Secret, cfg.Observers[2].HTTP.Secret)
	}
	if cfg.Source.DSN != "postgres://observer:hunter2@127.0.0.1:5432/shop?sslmode=disable&password=alsosecret" {
		t.Errorf("DSN = %q", cfg.Source.DSN)
	}
	if want := []abi.Operation{abi.OpInsert, abi.OpUpdate}; fmt.Sprint(o.Operations) != fmt.Sprint(want) || !o.Matches(abi.OpUpdate) || o.Matches(abi.OpDelete) {
		t.Errorf("operations = %v", o.Operations)
	}
	if (o.Retry != resilience.Policy{Strategy: resilience.Linear, MaxAttempts: 3, InitialDelay: time.Second, MaxDelay: 5 * time.Second}) {
		t.Errorf("retry = %+v", o.Retry)
	}
	var merged map[string]any
	if err := json.Unmarshal(o.Action.Config, &merged); err != nil {
		t.Fatal(err)
	}
	if merged["url"] != "http://127.0.0.1:9000/payments" || merged["method"] != "POST" {
		t.Errorf("action config not merged (step wins): %v", merged)
	}
	wantBreaker := resilience.BreakerConfig{Enabled: true, FailureRatio: 0.25, Window: time.Minute, MinRequests: 20,
		OpenTimeout: 10 * time.Second, HalfOpenProbes: 3}
	if p := cfg.EffectPolicy(&o); p.Secret != "s3cr3t-from-env" || p.Timeout != 3*time.Second || len(p.AllowedHosts) != 5 ||
		!p.AllowPrivate || p.Breaker != wantBreaker {
		t.Errorf("EffectPolicy = %+v", p)
	}
	// Breaker keys left out keep their default; enabled = false turns it off.
	def := resilience.DefaultBreakerConfig()
	if b := cfg.Observers[1].Breaker; b.Enabled {
		t.Errorf("breaker = { enabled = false } gave %+v", b)
	}
	def.FailureRatio = 1
	if b := cfg.Observers[2].Breaker; b != def {
		t.Errorf("breaker = { failure_ratio = 1 } gave %+v, want %+v", b, def)
	}
	if err := cfg.Observers[2].Breaker.Validate(); err != nil {
		t.Error(err)
	}
	if cfg.Plugins["webhook"].Path != filepath.Join("testdata", "plugins", "webhook") || cfg.Plugins["webhook"].MaxOutput != 65536 {
		t.Errorf("plugin = %+v", cfg.Plugins["webhook"])
	}
	if cfg.Observer.LogLevel != slog.LevelDebug {
		t.Errorf("log level = %v", cfg.Observer.LogLevel)
	}
	if ok, _ := o.Condition.Eval(&abi.Event{Op: abi.OpUpdate, After: map[string]any{"amount": json.Number("10")}, ChangedFields: []string{"status"}}); !ok {
		t.Error("condition did not compile as written")
	}
}

// No rendering of a loaded config shows a secret.
func TestSecretsNeverPrinted(t *testing.T) {
	cfg, err := parse("testdata/valid_full.toml", mustRead(t, "testdata/valid_full.toml"), lookup(goldenEnv))
	if err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("loaded", "config", cfg, "http", cfg.Observers[0].HTTP, "source", cfg.Source)
	js, _ := json.Marshal(cfg)
	renderings := []string{cfg.String(), string(js), logged.String(),
		fmt.Sprintf("%v %+v", cfg.Observers[0], cfg.Observers), fmt.Sprint(cfg.Source), fmt.Sprintf("%+v", cfg.Source)}
	for _, r := range renderings {
		for _, secret := range []string{"s3cr3t-from-env", "file-secret-value", "inline-secret", "hunter2", "alsosecret"} {
			if strings.Contains(r, secret) {
				t.Errorf("rendering leaks %q:\n%s", secret, r)
			}
		}
	}
	if !strings.Contains(cfg.String(), `"secret": "REDACTED"`) {
		t.Error("String does not show that a secret is set")
	}
}

func TestEnvOverridesDSN(t *testing.T) {
	data := mustRead(t, "testdata/dsn_env.toml")
	tests := []struct {
		name     string
		env      map[string]string
		dsn, src string
	}{
		{"dsn_env set", map[string]string{"DB_URL": "postgres://a@h/db"}, "postgres://a@h/db", "dsn_env:DB_URL"},
		{"dsn_env unset falls back to dsn", nil, "postgres://ignored@127.0.0.1/x", "dsn"},
		{"OBSERVER_SOURCE_DSN wins", map[string]string{"DB_URL": "postgres://a@h/db", EnvSourceDSN: "postgres://b@h/db"}, "postgres://b@h/db", "env:" + EnvSourceDSN},
		{"empty override ignored", map[string]string{EnvSourceDSN: ""}, "postgres://ignored@127.0.0.1/x", "dsn"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parse("testdata/dsn_env.toml", data, lookup(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Source.DSN != tt.dsn || cfg.Source.DSNFrom != tt.src {
				t.Errorf("DSN = %q from %q, want %q from %q", cfg.Source.DSN, cfg.Source.DSNFrom, tt.dsn, tt.src)
			}
		})
	}
	// The real environment is read by Parse.
	t.Setenv(EnvSourceDSN, "/tmp/other.db")
	cfg, err := Parse("testdata/valid_minimal.toml", mustRead(t, "testdata/valid_minimal.toml"))
	if err != nil || cfg.Source.DSN != "/tmp/other.db" {
		t.Errorf("Parse with %s: %v, %+v", EnvSourceDSN, err, cfg)
	}
}

func TestLoad(t *testing.T) {
	cfg, err := Load("testdata/valid_minimal.toml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Source.DSN != filepath.Join("testdata", "demo.db") || cfg.Runtime.CacheDir != filepath.Join("testdata", DefaultCacheDir) {
		t.Errorf("relative paths not resolved against the config dir: %q %q", cfg.Source.DSN, cfg.Runtime.CacheDir)
	}
	if _, err := Load("testdata/absent.toml"); err == nil || !strings.Contains(err.Error(), "testdata/absent.toml") {
		t.Errorf("Load of a missing file: %v", err)
	}
}

// TestDocExample parses the example in doc.go, so it cannot drift.
func TestDocExample(t *testing.T) {
	src := mustRead(t, "doc.go")
	_, after, ok := strings.Cut(string(src), "// # observer.toml\n")
	if !ok {
		t.Fatal("doc.go has no observer.toml section")
	}
	var b strings.Builder
	started := false
	for _, l := range strings.Split(after, "\n") {
		if strings.HasPrefix(l, "//\t") {
			started = true
			b.WriteString(strings.TrimPrefix(l, "//\t") + "\n")
		} else if started && l == "//" {
			b.WriteString("\n")
		} else if started {
			break
		}
	}
	dir := t.TempDir()
	for _, p := range []string{"plugins/webhook.wasm", "plugins/field-filter.wasm"} {
		os.MkdirAll(filepath.Join(dir, "plugins"), 0o755)
		os.WriteFile(filepath.Join(dir, p), []byte("x"), 0o644)
	}
	cfg, err := parse(filepath.Join(dir, "observer.toml"), []byte(b.String()), lookup(goldenEnv))
	if err != nil {
		t.Fatalf("doc example does not load:\n%v\n---\n%s", err, b.String())
	}
	if len(cfg.Observers) != 1 || len(cfg.Observers[0].Filters) != 2 || cfg.Observers[0].HTTP.Secret == "" {
		t.Errorf("doc example parsed to %s", cfg)
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{{"16MiB", 16 << 20}, {"1MB", 1e6}, {"512kib", 512 << 10}, {"100", 100}, {"7B", 7}, {" 2 GiB ", 2 << 30}}
	for _, tt := range tests {
		if got, err := ParseSize(tt.in); err != nil || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "MiB", "1.5MiB", "-1", "1TB", "9999999999999999GiB"} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) accepted", bad)
		}
	}
}

func TestRedactDSN(t *testing.T) {
	tests := []struct{ in, want string }{
		{"postgres://u:pw@h:5432/db?sslmode=disable", "postgres://u:REDACTED@h:5432/db?sslmode=disable"},
		{"postgres://u@h/db?password=pw&sslmode=require", "postgres://u@h/db?password=REDACTED&sslmode=require"},
		{"host=h user=u password=pw dbname=d", "host=h user=u password=REDACTED dbname=d"},
		{"host=h password='p w\\'x' dbname=d", "host=h password=REDACTED dbname=d"},
		{"demo.db", "demo.db"},
	}
	for _, tt := range tests {
		if got := RedactDSN(tt.in); got != tt.want {
			t.Errorf("RedactDSN(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzParse feeds arbitrary bytes to the parser: it must never panic, and
// it must either fail with a *LoadError or return a config whose rendering
// works. Seeds: every golden file plus testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.toml")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	env := lookup(goldenEnv)
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := parse("testdata/fuzz.toml", data, env)
		if err != nil {
			var le *LoadError
			if !errors.As(err, &le) || len(le.Errs) == 0 {
				t.Fatalf("error %T is not a non-empty *LoadError: %v", err, err)
			}
			for _, e := range le.Errs {
				if !strings.HasPrefix(e.Error(), "testdata/fuzz.toml") {
					t.Fatalf("error does not name the file: %v", e)
				}
			}
			return
		}
		_ = cfg.String()
		if cfg.Source.Type != SourceSQLite && cfg.Source.Type != SourcePostgres {
			t.Fatalf("accepted source type %q", cfg.Source.Type)
		}
		for _, o := range cfg.Observers {
			if o.Name == "" || o.Entity == "" || o.Action.Plugin == "" || len(o.Operations) == 0 {
				t.Fatalf("accepted incomplete observer %+v", o)
			}
			if err := o.Retry.Validate(); err != nil {
				t.Fatalf("accepted invalid retry policy: %v", err)
			}
		}
	})
}

// TestLoadForState: commands that only touch durable state load a config
// whose plugin files are not built yet and whose secret is not in the
// environment; syntax and key errors are still reported.
func TestLoadForState(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "observer.toml")
	good := `
[source]
type = "sqlite"
dsn = "x.db"
[plugins.p]
path = "not-built-yet.wasm"
[[observers]]
name = "o"
entity = "t"
action = { plugin = "p" }
http = { secret_env = "OBSERVER_TEST_UNSET_SECRET" }
`
	if err := os.WriteFile(path, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil {
		t.Fatal("Load accepted a missing plugin file and an unset secret")
	}
	cfg, err := LoadForState(path)
	if err != nil {
		t.Fatalf("LoadForState: %v", err)
	}
	if cfg.Observers[0].HTTP.Secret != "" || cfg.Source.DSN != filepath.Join(dir, "x.db") {
		t.Errorf("LoadForState: secret %q, dsn %q", cfg.Observers[0].HTTP.Secret, cfg.Source.DSN)
	}
	if err := os.WriteFile(path, []byte(good+"bogus = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadForState(path); err == nil || !strings.Contains(err.Error(), "observers[0].bogus") {
		t.Errorf("LoadForState did not report the unknown key: %v", err)
	}
}
