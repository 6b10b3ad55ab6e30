// Package testenv gives tests the real components they run against: a
// scratch PostgreSQL database, and WebAssembly guests compiled from source.
//
// When a component is missing the test is skipped with a message naming
// it, except when the CI environment variable is set: then it fails, since a
// skipped test proves nothing.
package testenv

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultPostgresURL is the admin connection used when OBSERVER_TEST_PG is unset.
const DefaultPostgresURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// Missing skips the test, or fails it under CI, because what names is not available.
func Missing(t testing.TB, what string, err error) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is required under CI but not available: %v", what, err)
	}
	t.Skipf("%s not available: %v", what, err)
}

// AdminURL returns the PostgreSQL URL used to create scratch databases.
func AdminURL() string {
	if u := os.Getenv("OBSERVER_TEST_PG"); u != "" {
		return u
	}
	return DefaultPostgresURL
}

// Postgres creates a scratch database and returns its URL. It is dropped
// when the test ends.
func Postgres(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, AdminURL())
	if err != nil {
		Missing(t, "PostgreSQL at "+AdminURL()+" (set OBSERVER_TEST_PG)", err)
		return ""
	}
	defer admin.Close(ctx)
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "observer_test_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create scratch database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, AdminURL())
		if err != nil {
			t.Logf("drop scratch database %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("drop scratch database %s: %v", name, err)
		}
	})
	return WithDatabase(AdminURL(), name)
}

// WithDatabase returns url with its database name replaced.
func WithDatabase(url, db string) string {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return url
	}
	rest := ""
	if i := strings.Index(url, "?"); i >= 0 {
		rest = url[i:]
	}
	user := cfg.User
	if cfg.Password != "" {
		user += ":" + cfg.Password
	}
	return fmt.Sprintf("postgres://%s@%s:%d/%s%s", user, cfg.Host, cfg.Port, db, rest)
}

// RepoRoot returns the repository root (the directory holding the main go.mod).
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate testenv source file")
	}
	// file is <root>/internal/testenv/testenv.go
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

var buildMu sync.Mutex

// GoPlugin compiles the Go guest in dir (relative to the repository root,
// such as "plugins/webhook") to WebAssembly and returns the .wasm path.
// Builds are cached by a hash of the sources, in the repository's .cache
// directory, so a test run compiles each guest once.
func GoPlugin(t testing.TB, dir string) string {
	t.Helper()
	root := RepoRoot(t)
	src := filepath.Join(root, dir)
	sum, err := hashGoSources(root, src)
	if err != nil {
		t.Fatalf("hash guest sources %s: %v", dir, err)
	}
	out := filepath.Join(root, ".cache", "testwasm", strings.ReplaceAll(dir, "/", "_")+"-"+sum[:16]+".wasm")
	buildMu.Lock()
	defer buildMu.Unlock()
	if _, err := os.Stat(out); err == nil {
		return out
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := fmt.Sprintf("%s.%d.tmp", out, os.Getpid())
	if err := BuildGoWasm(src, tmp); err != nil {
		t.Fatalf("build guest %s: %v", dir, err)
	}
	if err := os.Rename(tmp, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// BuildGoWasm builds the Go guest package in dir into out with the flags
// of the Makefile's plugins target.
func BuildGoWasm(dir, out string) error {
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-trimpath", "-ldflags=-s -w", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	b, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go build (GOOS=wasip1) in %s: %v\n%s", dir, err, b)
	}
	return nil
}

// hashGoSources hashes the guest's own sources plus the guest SDK and ABI,
// which every Go guest compiles in.
func hashGoSources(root, src string) (string, error) {
	h := sha256.New()
	for _, d := range []string{src, filepath.Join(root, "sdk-guest", "go"), filepath.Join(root, "abi")} {
		err := filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if e.IsDir() {
				return nil
			}
			if ext := filepath.Ext(p); ext != ".go" && ext != ".mod" && ext != ".sum" {
				return nil
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "%s\x00%d\x00", p, len(b))
			h.Write(b)
			return nil
		})
		if err != nil && !os.IsNotExist(err) {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// WatPlugin compiles the WebAssembly text file at path (relative to the
// repository root) with wabt's wat2wasm and returns the .wasm path, cached
// by a hash of the source like GoPlugin. A missing wat2wasm skips the test,
// or fails it under CI (Missing).
func WatPlugin(t testing.TB, path string) string {
	t.Helper()
	root := RepoRoot(t)
	src, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		t.Fatalf("read guest source: %v", err)
	}
	tool, err := exec.LookPath("wat2wasm")
	if err != nil {
		Missing(t, "wat2wasm (Debian package wabt)", err)
		return ""
	}
	sum := sha256.Sum256(src)
	out := filepath.Join(root, ".cache", "testwasm", strings.ReplaceAll(strings.TrimSuffix(path, ".wat"), "/", "_")+"-"+hex.EncodeToString(sum[:8])+".wasm")
	buildMu.Lock()
	defer buildMu.Unlock()
	if _, err := os.Stat(out); err == nil {
		return out
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := fmt.Sprintf("%s.%d.tmp", out, os.Getpid())
	if b, err := exec.Command(tool, filepath.Join(root, path), "-o", tmp).CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm %s: %v\n%s", path, err, b)
	}
	if err := os.Rename(tmp, out); err != nil {
		t.Fatal(err)
	}
	return out
}
