package cli

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fraiseql/observer/internal/testenv"
)

// syncBuffer is a bytes.Buffer safe for a child process and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// buildObserver compiles the observer binary into a temporary directory.
func buildObserver(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "observer")
	cmd := exec.Command("go", "build", "-o", bin, "./host/cmd/observer")
	cmd.Dir = testenv.RepoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// runProc is a test's running `observer run` child process.
type runProc struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan error // Wait's result
}

// startRun starts `observer run` on cfgPath; the test's cleanup kills it
// (after a SIGCONT, in case the test froze it).
func startRun(t *testing.T, bin, cfgPath string) *runProc {
	t.Helper()
	p := &runProc{cmd: exec.Command(bin, "--config", cfgPath, "run", "--progress", "0"), stderr: &syncBuffer{}, done: make(chan error, 1)}
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGCONT)
		_ = p.cmd.Process.Kill()
	})
	return p
}

// TestReloadOnSIGHUP runs a real `observer run` process and reloads it:
// a broken config is refused while the old one keeps delivering, and a new
// config (another URL, a second observer) takes over from the checkpoint.
// Every order is delivered exactly once across both reloads.
func TestReloadOnSIGHUP(t *testing.T) {
	bin := buildObserver(t)
	var mu sync.Mutex
	got := map[string][]string{} // path → bodies
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got[r.URL.Path] = append(got[r.URL.Path], string(b))
		mu.Unlock()
	}))
	defer srv.Close()
	count := func(path string) int {
		mu.Lock()
		defer mu.Unlock()
		return len(got[path])
	}
	cfgPath, dbPath := sqliteSetup(t, srv.URL)
	original, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}

	p := startRun(t, bin, cfgPath)
	cmd, stderr := p.cmd, p.stderr
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; observer stderr:\n%s", what, stderr.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitUntil("observer to run", func() bool { return strings.Contains(stderr.String(), "observer running") })

	insertOrders(t, dbPath, 1, 5)
	waitUntil("5 orders", func() bool { return count("/orders") == 5 })

	// A broken config is refused; the old engine keeps going.
	if err := os.WriteFile(cfgPath, append(original, []byte("\n[[observers]]\nname = \"x\"\nentity = \"orders\"\naction = { plugin = \"nope\" }\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitUntil("the refusal", func() bool { return strings.Contains(stderr.String(), "reload refused") })
	if !strings.Contains(stderr.String(), `unknown plugin \"nope\"`) && !strings.Contains(stderr.String(), `unknown plugin "nope"`) {
		t.Errorf("refusal does not say why:\n%s", stderr.String())
	}
	insertOrders(t, dbPath, 6, 10)
	waitUntil("10 orders after the refused reload", func() bool { return count("/orders") == 10 })

	// A good new config: orders now go to /v2, and a second observer
	// posts big orders to /big.
	next := strings.Replace(string(original), "/orders", "/v2", 1) + `
[[observers]]
name = "big"
entity = "orders"
operations = ["INSERT"]
condition = "after.total >= 8"
action = { plugin = "webhook", config = { url = "` + srv.URL + `/big" } }
`
	if err := os.WriteFile(cfgPath, []byte(next), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitUntil("the reload", func() bool { return strings.Contains(stderr.String(), "configuration reloaded") })
	insertOrders(t, dbPath, 11, 15)
	waitUntil("5 orders on /v2", func() bool { return count("/v2") == 5 })
	waitUntil("big orders", func() bool { return count("/big") >= 1 })

	// `observer run` serves its metrics, and counts SIGHUP reloads.
	m := regexp.MustCompile(`admin server listening" address=(\S+)`).FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("no admin address logged:\n%s", stderr.String())
	}
	resp, err := http.Get("http://" + m[1] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, w := range []string{`observer_config_reloads_total{result="failure"} 1`, `observer_config_reloads_total{result="success"} 1`,
		`observer_events_read_total{source="shop"} 15`, `observer_leader 1`} {
		if !strings.Contains(string(body), w) {
			t.Errorf("/metrics lacks %s:\n%s", w, grepLines(string(body), "observer_config", "observer_events_read", "observer_leader"))
		}
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-p.done; err != nil {
		t.Fatalf("observer exit: %v\n%s", err, stderr.String())
	}
	if n := count("/orders"); n != 10 {
		t.Errorf("/orders got %d deliveries, want 10 (nothing repeated by the reloads)", n)
	}
	if n := count("/v2"); n != 5 {
		t.Errorf("/v2 got %d deliveries, want 5", n)
	}
	if n := count("/big"); n != 5 {
		t.Errorf("/big got %d deliveries, want 5 (orders 11-15; the new observer starts at the checkpoint)", n)
	}
}

// TestSIGHUPDuringStartup: a SIGHUP that arrives while the plugins still
// compile (a cold cache) neither kills the process (SIGHUP's default
// action) nor is lost: it is taken as a reload once the engine runs.
func TestSIGHUPDuringStartup(t *testing.T) {
	bin := buildObserver(t)
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	cfgPath, _ := sqliteSetup(t, srv.URL)
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cold := filepath.Join(t.TempDir(), "cache") // compiles from scratch: start-up takes a while
	if err := os.WriteFile(cfgPath, append(b, []byte(fmt.Sprintf("\n[runtime]\ncache_dir = %q\n", cold))...), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startRun(t, bin, cfgPath)
	cmd, stderr, done := p.cmd, p.stderr, p.done
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(stderr.String(), "loading plugin") {
		if time.Now().After(deadline) {
			t.Fatalf("no plugin loading seen:\n%s", stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(60 * time.Second)
	for !strings.Contains(stderr.String(), "configuration reloaded") {
		select {
		case err := <-done:
			t.Fatalf("the process ended (%v) after a SIGHUP during start-up:\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the SIGHUP caught during start-up was never taken as a reload:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, stderr.String())
	}
}

// TestSIGHUPDuringDrain: a SIGHUP that arrives while the observer drains
// after SIGTERM (a logrotate, a reload racing a stop) is ignored: the
// process still finishes its drain, saves its checkpoint and exits 0.
func TestSIGHUPDuringDrain(t *testing.T) {
	bin := buildObserver(t)
	arrived := make(chan struct{}, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		time.Sleep(1500 * time.Millisecond) // still running when SIGTERM and SIGHUP come
	}))
	defer srv.Close()
	cfgPath, dbPath := sqliteSetup(t, srv.URL)
	p := startRun(t, bin, cfgPath)
	cmd, stderr := p.cmd, p.stderr
	insertOrders(t, dbPath, 1, 1)
	select {
	case <-arrived:
	case <-time.After(30 * time.Second):
		t.Fatalf("no delivery:\n%s", stderr.String())
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if err := <-p.done; err != nil {
		t.Fatalf("exit after SIGTERM then SIGHUP: %v (a SIGHUP during the drain killed it?)\n%s", err, stderr.String())
	}
	for _, w := range []string{"SIGHUP ignored: the observer is stopping", "engine stopped", "observer stopped"} {
		if !strings.Contains(stderr.String(), w) {
			t.Errorf("log lacks %q:\n%s", w, stderr.String())
		}
	}
}
