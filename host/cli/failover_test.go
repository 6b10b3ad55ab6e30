package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fraiseql/observer/host/leader"
	"github.com/fraiseql/observer/host/source"
	"github.com/fraiseql/observer/host/source/sqlite"
)

// TestFailoverSQLite runs real `observer run` processes on one SQLite
// file. One leads; the other waits. A SIGKILLed leader is replaced at once
// (its lease names a process that no longer exists), not after the lease
// expires. A leader frozen with SIGSTOP keeps its lease until it expires,
// then a standby takes over; when the frozen process resumes, its lease is
// gone and its writes are fenced: it stops its engine and waits as a
// standby, and the checkpoint never moves backwards. Every order is
// delivered; repeats only for work in flight at a kill or freeze.
func TestFailoverSQLite(t *testing.T) {
	bin := buildObserver(t)
	var mu sync.Mutex
	seen := map[int]int{} // order id → deliveries
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var o struct{ ID int }
		if json.Unmarshal(b, &o) == nil {
			mu.Lock()
			seen[o.ID]++
			mu.Unlock()
		}
	}))
	defer srv.Close()
	distinct := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(seen)
	}
	cfgPath, dbPath := sqliteSetup(t, srv.URL)
	const ttl = 1500 * time.Millisecond
	f, err := os.OpenFile(cfgPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("\n[failover]\npoll_interval = \"50ms\"\nlease_ttl = \"1500ms\"\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()

	type proc = runProc
	start := func() *proc { return startRun(t, bin, cfgPath) }
	store, err := sqlite.OpenStore(context.Background(), dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	type lease struct{ pid, epoch int }
	current := func() lease {
		l, ok, err := store.CurrentLease(context.Background(), "shop", "default")
		if err != nil || !ok {
			return lease{}
		}
		pid, _ := strconv.Atoi(strings.Split(l.Holder, ":")[1])
		return lease{pid, int(l.Epoch)}
	}
	all := []*proc{}
	dump := func() string {
		var b strings.Builder
		for _, p := range all {
			b.WriteString("--- pid " + strconv.Itoa(p.cmd.Process.Pid) + ":\n" + p.stderr.String())
		}
		return b.String()
	}
	waitUntil := func(what string, d time.Duration, cond func() bool) time.Duration {
		t.Helper()
		t0 := time.Now()
		for !cond() {
			if time.Since(t0) > d {
				t.Fatalf("timed out after %s waiting for %s\n%s", d, what, dump())
			}
			time.Sleep(10 * time.Millisecond)
		}
		return time.Since(t0)
	}
	byPid := func(pid int) *proc {
		for _, p := range all {
			if p.cmd.Process.Pid == pid {
				return p
			}
		}
		t.Fatalf("lease holder pid %d is none of the test's processes\n%s", pid, dump())
		return nil
	}

	a, b := start(), start()
	all = append(all, a, b)
	waitUntil("a leader", 30*time.Second, func() bool { return current().epoch == 1 })
	first := byPid(current().pid)
	standby := a
	if first == a {
		standby = b
	}
	insertOrders(t, dbPath, 1, 40)
	waitUntil("orders 1-40", 30*time.Second, func() bool { return distinct() == 40 })
	time.Sleep(300 * time.Millisecond) // one more checkpoint
	if strings.Contains(standby.stderr.String(), "engine started") {
		t.Fatalf("the standby started an engine while the other process leads:\n%s", standby.stderr.String())
	}

	// 1. SIGKILL: taken over at once, well within the lease's TTL.
	_ = first.cmd.Process.Kill()
	<-first.done
	took := waitUntil("takeover after SIGKILL", 10*time.Second, func() bool { return current().epoch == 2 })
	if current().pid != standby.cmd.Process.Pid {
		t.Fatalf("epoch 2 is held by pid %d, not the standby %d", current().pid, standby.cmd.Process.Pid)
	}
	if took >= ttl {
		t.Errorf("takeover after SIGKILL took %s: the dead holder's lease should not be waited for (TTL %s)", took, ttl)
	}
	insertOrders(t, dbPath, 41, 80)
	waitUntil("orders 41-80 from the new leader", 30*time.Second, func() bool { return distinct() == 80 })

	// 2. SIGSTOP: the frozen leader's lease expires, a new standby takes over.
	leader := standby
	c := start()
	all = append(all, c)
	time.Sleep(500 * time.Millisecond) // c is a standby by now
	cpBefore, _, _ := store.LoadCursor(context.Background(), "shop", "default")
	if err := leader.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	frozenAt := time.Now()
	insertOrders(t, dbPath, 81, 120)
	waitUntil("takeover from the frozen leader", 10*time.Second, func() bool { return current().epoch == 3 })
	tookFrozen := time.Since(frozenAt)
	if current().pid != c.cmd.Process.Pid {
		t.Fatalf("epoch 3 is held by pid %d, not %d", current().pid, c.cmd.Process.Pid)
	}
	if tookFrozen < ttl/2 {
		t.Errorf("the frozen leader's lease was taken after %s, before it could have expired (TTL %s)", tookFrozen, ttl)
	}
	waitUntil("orders 81-120 from the third leader", 30*time.Second, func() bool { return distinct() == 120 })

	// 3. The frozen one resumes: deposed, it stops and waits as a standby.
	if err := leader.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	waitUntil("the resumed process to notice", 10*time.Second, func() bool {
		return strings.Contains(leader.stderr.String(), "leadership lost")
	})
	insertOrders(t, dbPath, 121, 160)
	waitUntil("orders 121-160", 30*time.Second, func() bool { return distinct() == 160 })
	time.Sleep(300 * time.Millisecond)
	if l := current(); l.epoch != 3 || l.pid != c.cmd.Process.Pid {
		t.Errorf("lease after the resume: %+v, want epoch 3 held by %d", l, c.cmd.Process.Pid)
	}
	cp, _, err := store.LoadCursor(context.Background(), "shop", "default")
	if err != nil || cp.Through < cpBefore.Through || cp.Through != 160 {
		t.Errorf("checkpoint %d (before the freeze %d), want 160", cp.Through, cpBefore.Through)
	}

	for _, p := range []*proc{leader, c} {
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-p.done:
			if err != nil {
				t.Errorf("pid %d exit after SIGTERM: %v\n%s", p.cmd.Process.Pid, err, p.stderr.String())
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("pid %d did not stop\n%s", p.cmd.Process.Pid, p.stderr.String())
		}
	}
	mu.Lock()
	repeats := 0
	for id := 1; id <= 160; id++ {
		if seen[id] == 0 {
			t.Errorf("order %d never delivered", id)
		}
		repeats += seen[id] - 1
	}
	mu.Unlock()
	if repeats > 80 {
		t.Errorf("%d repeated deliveries: more than the work in flight at one kill and one freeze", repeats)
	}
	t.Logf("takeover after SIGKILL %s (lease TTL %s); after SIGSTOP %s; 160 orders delivered, %d repeats",
		took.Round(time.Millisecond), ttl, tookFrozen.Round(time.Millisecond), repeats)
}

// TestRunAdminFlag: `run --admin` follows the rules of [admin] address,
// and a second process on a taken address is told what to do.
func TestRunAdminFlag(t *testing.T) {
	cfgPath, _ := sqliteSetup(t, "http://127.0.0.1:1")
	for _, tc := range []struct {
		addr string
		want string
	}{
		{"0.0.0.0:9999", `"0.0.0.0:9999" is not a loopback address`},
		{"9999", `--admin: got "9999", want host:port`},
	} {
		code, _, stderr := runCLI(t, context.Background(), "--config", cfgPath, "run", "--admin", tc.addr)
		if code != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("run --admin %s: exit %d: %s", tc.addr, code, stderr)
		}
	}
	taken := httptest.NewServer(http.NotFoundHandler())
	defer taken.Close()
	code, _, stderr := runCLI(t, context.Background(), "--config", cfgPath, "run", "--admin", strings.TrimPrefix(taken.URL, "http://"))
	if code != exitFailed || !strings.Contains(stderr, "the address is in use") || !strings.Contains(stderr, "its own [admin] address") {
		t.Errorf("run on a taken admin address: exit %d: %s", code, stderr)
	}
}

// TestRunRefusesAMissingSQLiteFile: a source.dsn naming no file is a
// usage error (not an empty database created behind the user's back), and
// a store that cannot be opened is an error, not a panic.
func TestRunRefusesAMissingSQLiteFile(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "observer.toml")
	write := func(dsn string) {
		t.Helper()
		if err := os.WriteFile(cfg, []byte(fmt.Sprintf("[source]\ntype = \"sqlite\"\ndsn = %q\n[admin]\nenabled = false\n", dsn)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, dsn := range []string{"fresh.db", "no-such-dir/pagila.db"} {
		write(dsn)
		code, _, stderr := runCLI(t, context.Background(), "--config", cfg, "run")
		if code != exitUsage || !strings.Contains(stderr, "source.dsn") || !strings.Contains(stderr, "does not exist") {
			t.Errorf("dsn %s: exit %d: %s", dsn, code, stderr)
		}
		if _, err := os.Stat(filepath.Join(dir, dsn)); err == nil {
			t.Errorf("dsn %s: the file was created", dsn)
		}
	}
	// Below the check: a store that cannot be opened fails the build with
	// its reason (it used to panic closing a nil store).
	a := &app{stdout: io.Discard, stderr: io.Discard, configPath: cfg, format: "text"}
	c, err := a.loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := build(context.Background(), c, slog.New(slog.DiscardHandler), buildOptions{}); err == nil || !strings.Contains(err.Error(), "open state store") {
		t.Errorf("build on a missing directory: %v", err)
	}
}

// TestUnfencedRunRefusedBesideALeader: a process with [failover] enabled =
// false does not start while another leads the source with failover on
// (both would deliver every event).
func TestUnfencedRunRefusedBesideALeader(t *testing.T) {
	cfgPath, dbPath := sqliteSetup(t, "http://127.0.0.1:1")
	f, err := os.OpenFile(cfgPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("\n[failover]\nenabled = false\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	el := leader.NewSQLite(leader.SQLiteConfig{Path: dbPath, Source: "shop", Group: "default", Holder: "other-host:7:abcdef"})
	lease, err := el.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCLI(t, context.Background(), "--config", cfgPath, "run", "--progress", "0")
	if code != exitUsage || !strings.Contains(stderr, "process other-host:7:abcdef leads source") || !strings.Contains(stderr, "enable [failover] here too") {
		t.Errorf("unfenced run beside a leader: exit %d: %s", code, stderr)
	}
	_ = lease.Release(context.Background())
}

// TestDropStateRefusedUnderALeader: capture uninstall --drop-state does not
// pull the state from under a running observer.
func TestDropStateRefusedUnderALeader(t *testing.T) {
	cfgPath, dbPath := sqliteSetup(t, "http://127.0.0.1:1")
	el := leader.NewSQLite(leader.SQLiteConfig{Path: dbPath, Source: "shop", Group: "default", Holder: "other-host:7:abcdef"})
	lease, err := el.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCLI(t, context.Background(), "--config", cfgPath, "capture", "uninstall", "--drop-state")
	if code != exitUsage || !strings.Contains(stderr, "an observer (other-host:7:abcdef) is running") {
		t.Errorf("drop-state under a leader: exit %d: %s", code, stderr)
	}
	_ = lease.Release(context.Background())
	code, out, stderr := runCLI(t, context.Background(), "--config", cfgPath, "capture", "uninstall", "--drop-state")
	if code != 0 || !strings.Contains(out, "starts again at position 1") {
		t.Errorf("drop-state with no observer: exit %d: %s%s", code, out, stderr)
	}
}

// TestDLQStaysInItsGroup: dlq list, show, purge and retry work on the
// config's source and observer.group only: another group's entries on the
// same database (a dry run's, another deployment's) are neither listed
// nor purged nor retried through this config's observers.
func TestDLQStaysInItsGroup(t *testing.T) {
	cfgPath, dbPath := sqliteSetup(t, "http://127.0.0.1:1")
	st, err := sqlite.OpenStore(context.Background(), dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	put := func(group string) int64 {
		id, err := st.PutDead(context.Background(), source.DeadLetter{Source: "shop", Group: group, Observer: "orders", EventID: "shop:1",
			Position: 1, Event: []byte(`{"id":"shop:1"}`), Stage: "effect", Error: "status 500", Attempts: 2})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	mine, theirs := put("default"), put("default.dry-run")
	code, out, stderr := runCLI(t, context.Background(), "--config", cfgPath, "--format", "json", "dlq", "list")
	var ds []source.DeadLetter
	if code != 0 || json.Unmarshal([]byte(out), &ds) != nil || len(ds) != 1 || ds[0].ID != mine {
		t.Fatalf("dlq list: exit %d: %s%s", code, out, stderr)
	}
	other := strconv.FormatInt(theirs, 10)
	for _, cmd := range [][]string{{"show", other}, {"purge", other}, {"retry", other}} {
		code, _, stderr := runCLI(t, context.Background(), append([]string{"--config", cfgPath, "dlq"}, cmd...)...)
		if code != exitUsage || !strings.Contains(stderr, `group "default.dry-run", not to this config's source "shop" group "default"`) {
			t.Errorf("dlq %v: exit %d: %s", cmd, code, stderr)
		}
	}
	if code, out, _ := runCLI(t, context.Background(), "--config", cfgPath, "dlq", "purge", "--all"); code != 0 || !strings.Contains(out, "purged 1 ") {
		t.Errorf("purge --all: exit %d: %s", code, out)
	}
	if _, err := st.GetDead(context.Background(), theirs); err != nil {
		t.Errorf("the other group's entry is gone: %v", err)
	}
}

// TestAdminClientNamesAForeignAnswer: an answer that is not the admin
// server's (an empty 502 from a proxy, a 404 page) is reported with its
// status, not as an empty message.
func TestAdminClientNamesAForeignAnswer(t *testing.T) {
	for _, tc := range []struct {
		code int
		body string
	}{{502, ""}, {404, "<html>not here</html>"}} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(tc.code)
			_, _ = io.WriteString(w, tc.body)
		}))
		code, _, stderr := runCLI(t, context.Background(), "status", "--admin", strings.TrimPrefix(srv.URL, "http://"))
		srv.Close()
		if code != exitFailed || !strings.Contains(stderr, fmt.Sprintf("answered %d", tc.code)) || !strings.Contains(stderr, "is this an observer's admin address?") {
			t.Errorf("status against a %d: exit %d: %q", tc.code, code, stderr)
		}
	}
}

// TestReloadKeepsTheLeadershipsIdentity: with failover on, a reload that
// changes observer.group (what the leadership is of) is refused, and the
// running configuration keeps delivering.
func TestReloadKeepsTheLeadershipsIdentity(t *testing.T) {
	bin := buildObserver(t)
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { n.Add(1) }))
	defer srv.Close()
	cfgPath, dbPath := sqliteSetup(t, srv.URL)
	p := startRun(t, bin, cfgPath)
	deadline := time.Now().Add(30 * time.Second)
	wait := func(what string, cond func() bool) {
		t.Helper()
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s:\n%s", what, p.stderr.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	wait("the engine", func() bool { return strings.Contains(p.stderr.String(), "engine started") })
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, []byte(strings.Replace(string(b), "[observer]\n", "[observer]\ngroup = \"elsewhere\"\n", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	wait("the refusal", func() bool { return strings.Contains(p.stderr.String(), "reload refused") })
	if !strings.Contains(p.stderr.String(), `leads (or waits to lead) source \"shop\" group \"default\"`) &&
		!strings.Contains(p.stderr.String(), `leads (or waits to lead) source "shop" group "default"`) {
		t.Errorf("the refusal does not say why:\n%s", p.stderr.String())
	}
	insertOrders(t, dbPath, 1, 3)
	wait("3 deliveries by the running configuration", func() bool { return n.Load() == 3 })
}
