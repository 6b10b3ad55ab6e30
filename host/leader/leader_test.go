package leader

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fraiseql/observer/host/source"
	"github.com/fraiseql/observer/host/source/postgres"
	"github.com/fraiseql/observer/host/source/sqlite"
	"github.com/fraiseql/observer/internal/testenv"
)

// acquireAsync runs el.Acquire in the background.
func acquireAsync(ctx context.Context, el Elector) <-chan *Lease {
	ch := make(chan *Lease, 1)
	go func() {
		l, err := el.Acquire(ctx)
		if err != nil {
			close(ch)
			return
		}
		ch <- l
	}()
	return ch
}

// waitLease returns the lease from ch, failing after d.
func waitLease(t *testing.T, ch <-chan *Lease, d time.Duration, what string) *Lease {
	t.Helper()
	select {
	case l, ok := <-ch:
		if !ok {
			t.Fatalf("%s: Acquire failed", what)
		}
		return l
	case <-time.After(d):
		t.Fatalf("%s: not acquired within %s", what, d)
	}
	return nil
}

// notAcquired checks that nothing arrives on ch for d.
func notAcquired(t *testing.T, ch <-chan *Lease, d time.Duration, what string) {
	t.Helper()
	select {
	case l := <-ch:
		t.Fatalf("%s: acquired (epoch %d) while another process leads", what, l.Epoch())
	case <-time.After(d):
	}
}

// TestPostgresElection: one of two electors leads; the other takes over
// with the next epoch when the leader releases, and when the leader's
// session is terminated (as when its process dies or PostgreSQL drops it).
// The deposed leader's context ends with ErrLost, and its checkpoint
// writes are refused from then on.
func TestPostgresElection(t *testing.T) {
	dsn := testenv.Postgres(t)
	ctx := context.Background()
	cfg := func(holder string) PostgresConfig {
		return PostgresConfig{DSN: dsn, Schema: "ha", Source: "pg", Group: "g", Holder: holder,
			PollInterval: 50 * time.Millisecond, CheckInterval: 50 * time.Millisecond}
	}
	a, b := NewPostgres(cfg("a")), NewPostgres(cfg("b"))
	if a.Key() != b.Key() || a.Key() == Key("ha", "pg", "other") || a.Key() == Key("other", "pg", "g") {
		t.Fatalf("lock keys: %d %d", a.Key(), b.Key())
	}
	la, err := a.Acquire(ctx)
	if err != nil || la.Epoch() != 1 {
		t.Fatalf("a: %v epoch %d", err, la.Epoch())
	}
	if h, ok, err := b.Leader(ctx); err != nil || !ok || h != "a" {
		t.Fatalf("Leader while a leads: %q %v %v", h, ok, err)
	}
	bCh := acquireAsync(ctx, b)
	notAcquired(t, bCh, 300*time.Millisecond, "b")

	st, err := postgres.OpenStore(ctx, dsn, "ha")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.SaveCursor(la.Context(), "pg", "g", source.Cursor{Through: 7}); err != nil {
		t.Fatalf("leader's save: %v", err)
	}

	// A clean release hands over at the standby's next poll.
	if err := la.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if la.Err() != nil || la.Context().Err() == nil {
		t.Fatalf("released lease: err %v, ctx %v", la.Err(), la.Context().Err())
	}
	lb := waitLease(t, bCh, 5*time.Second, "b after a's release")
	if lb.Epoch() != 2 {
		t.Fatalf("b's epoch %d, want 2", lb.Epoch())
	}
	// a's epoch is fenced now.
	if err := st.SaveCursor(context.WithoutCancel(la.Context()), "pg", "g", source.Cursor{Through: 99}); !errors.Is(err, source.ErrFenced) {
		t.Fatalf("deposed save: %v", err)
	}

	// b's session dies: b loses the lease, a standby takes over.
	aCh := acquireAsync(ctx, a)
	notAcquired(t, aCh, 200*time.Millisecond, "a while b leads")
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var killed int
	if err := conn.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND objid = ($1::bigint & 4294967295)::bigint::oid`, b.Key()).Scan(&killed); err != nil || killed != 1 {
		t.Fatalf("terminate b's lock session: %d, %v", killed, err)
	}
	select {
	case <-lb.Context().Done():
	case <-time.After(5 * time.Second):
		t.Fatal("b's lease context did not end after its session was terminated")
	}
	if !errors.Is(lb.Err(), ErrLost) {
		t.Fatalf("b's Err = %v, want ErrLost", lb.Err())
	}
	la2 := waitLease(t, aCh, 5*time.Second, "a after b's session died")
	if la2.Epoch() != 3 {
		t.Fatalf("a's second epoch %d, want 3", la2.Epoch())
	}
	if err := lb.Release(ctx); err != nil {
		t.Errorf("releasing a lost lease: %v", err)
	}
	l, ok, err := st.CurrentLeader(ctx, "pg", "g")
	if err != nil || !ok || l.Epoch != 3 || l.Holder != "a" {
		t.Fatalf("leader row: %+v %v %v", l, ok, err)
	}
	_ = la2.Release(ctx)
	if h, ok, err := b.Leader(ctx); err != nil || ok {
		t.Fatalf("Leader after every release: %q %v %v", h, ok, err)
	}
	cur, _, _ := st.LoadCursor(ctx, "pg", "g")
	if cur.Through != 7 {
		t.Fatalf("cursor %d, want 7 (the deposed writes were refused)", cur.Through)
	}
	_ = la2.Release(ctx)
}

// TestPostgresAcquireStopsWithContext: a standby stops waiting when its
// context ends; an unreachable database is retried, not fatal.
func TestPostgresAcquireStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	el := NewPostgres(PostgresConfig{DSN: "postgres://nobody@127.0.0.1:1/none?connect_timeout=1", Source: "s", Group: "g",
		PollInterval: 50 * time.Millisecond})
	start := time.Now()
	if _, err := el.Acquire(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Acquire = %v, want the context's error", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Acquire took %s after its context ended", d)
	}
}

// TestSQLiteElection: the lease is taken over only after it expires, and a
// leader that cannot renew loses it before then; a released lease is taken
// at once.
func TestSQLiteElection(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ha.db")
	ctx := context.Background()
	never := func(string) bool { return false }
	const ttl = 600 * time.Millisecond
	cfg := func(holder string) SQLiteConfig {
		return SQLiteConfig{Path: path, Source: "lite", Group: "g", Holder: holder,
			PollInterval: 20 * time.Millisecond, LeaseTTL: ttl, Gone: never}
	}
	a, b := NewSQLite(cfg("a")), NewSQLite(cfg("b"))
	if _, ok, err := b.Leader(ctx); ok || err != nil {
		t.Fatalf("Leader before any: %v %v", ok, err)
	}
	la, err := a.Acquire(ctx)
	if err != nil || la.Epoch() != 1 {
		t.Fatalf("a: %v", err)
	}
	if h, ok, err := b.Leader(ctx); err != nil || !ok || h != "a" {
		t.Fatalf("Leader while a leads: %q %v %v", h, ok, err)
	}
	bCh := acquireAsync(ctx, b)
	// a renews every ttl/3: b waits well past one TTL.
	notAcquired(t, bCh, 3*ttl, "b while a renews")
	if err := la.Release(ctx); err != nil {
		t.Fatal(err)
	}
	lb := waitLease(t, bCh, 2*time.Second, "b after a's release")
	if lb.Epoch() != 2 {
		t.Fatalf("b's epoch %d", lb.Epoch())
	}

	st, err := sqlite.OpenStore(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.SaveCursor(lb.Context(), "lite", "g", source.Cursor{Through: 3}); err != nil {
		t.Fatalf("leader's save: %v", err)
	}
	if err := st.SaveCursor(context.WithoutCancel(la.Context()), "lite", "g", source.Cursor{Through: 9}); !errors.Is(err, source.ErrFenced) {
		t.Fatalf("deposed save: %v", err)
	}

	// Someone else takes the row over behind b's back (as a standby does
	// once b has been paused past its TTL): b's renewer sees it and loses.
	c := NewSQLite(cfg("c"))
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE observer_leader SET expires_at = 0 WHERE source = 'lite'`); err != nil {
		t.Fatal(err)
	}
	lc, err := c.Acquire(ctx)
	if err != nil || lc.Epoch() != 3 {
		t.Fatalf("c: %v epoch %d", err, lc.Epoch())
	}
	select {
	case <-lb.Context().Done():
	case <-time.After(2 * time.Second):
		t.Fatal("b did not notice the takeover")
	}
	if !errors.Is(lb.Err(), ErrLost) {
		t.Fatalf("b's Err = %v", lb.Err())
	}
	_ = lb.Release(ctx)
	if l, ok, err := st.CurrentLease(ctx, "lite", "g"); err != nil || !ok || l.Holder != "c" || l.Epoch != 3 {
		t.Fatalf("lease after takeover: %+v %v %v", l, ok, err)
	}
	_ = lc.Release(ctx)
}

// TestSQLiteTakesOverADeadHoldersLease: a lease held by a process of this
// host that no longer exists is taken at once, without waiting for it to
// expire; one held by a live process is not.
func TestSQLiteTakesOverADeadHoldersLease(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ha.db")
	ctx := context.Background()
	host, err := os.Hostname()
	if err != nil {
		t.Skip("no hostname")
	}
	// A pid that existed and is gone: a child that has exited and been
	// reaped.
	child := exec.Command("true")
	if err := child.Run(); err != nil {
		t.Fatal(err)
	}
	scope := pidScope()
	if scope == "" {
		t.Skip("no /proc: holders have no scope, leases are always waited for")
	}
	deadHolder := fmt.Sprintf("%s:%d:abcdef@%s", host, child.Process.Pid, scope)
	// One killed but not reaped yet: a zombie, which kill(pid, 0) still
	// finds (a leader killed under a parent that does not reap).
	zombie := exec.Command("sleep", "60")
	if err := zombie.Start(); err != nil {
		t.Fatal(err)
	}
	_ = zombie.Process.Kill()
	zombieHolder := fmt.Sprintf("%s:%d:abcdef@%s", host, zombie.Process.Pid, scope)
	deadline := time.Now().Add(5 * time.Second)
	for !HolderGone(zombieHolder) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond) // until the kill has landed
	}
	if !HolderGone(zombieHolder) {
		t.Errorf("a killed, unreaped process is not gone")
	}
	_ = zombie.Wait()
	liveHolder := fmt.Sprintf("%s:%d:abcdef@%s", host, os.Getppid(), scope)
	for _, tc := range []struct {
		holder string
		gone   bool
	}{
		{deadHolder, true},
		{liveHolder, false},
		// The dead pid, but in another pid namespace or boot: its pid
		// cannot be looked up from here, so the lease is waited for.
		{fmt.Sprintf("%s:%d:abcdef@%s", host, child.Process.Pid, "0000.1"), false},
		{fmt.Sprintf("%s:%d:abcdef", host, child.Process.Pid), false}, // no scope
		{"garbage", false},
	} {
		if got := HolderGone(tc.holder); got != tc.gone {
			t.Errorf("HolderGone(%q) = %v, want %v", tc.holder, got, tc.gone)
		}
	}
	if id := HolderID(); !strings.HasSuffix(id, "@"+scope) || strings.Count(id, ":") != 2 {
		t.Errorf("HolderID() = %q, want host:pid:random@%s", id, scope)
	}

	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, tc := range []struct {
		holder string
		taken  bool
	}{{liveHolder, false}, {deadHolder, true}} {
		if _, err := db.Exec(`DROP TABLE IF EXISTS observer_leader`); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := sqlite.TakeLease(ctx, db, "lite", "g", tc.holder, time.Hour, time.Now(), nil); err != nil || !ok {
			t.Fatalf("seed lease: %v %v", ok, err)
		}
		el := NewSQLite(SQLiteConfig{Path: path, Source: "lite", Group: "g", PollInterval: 20 * time.Millisecond, LeaseTTL: time.Hour})
		if tc.taken {
			l := waitLease(t, acquireAsync(ctx, el), 2*time.Second, "the lease of a dead holder")
			if l.Epoch() != 2 {
				t.Fatalf("epoch %d", l.Epoch())
			}
			_ = l.Release(ctx)
		} else {
			actx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			if _, err := el.Acquire(actx); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("the lease of a live holder: %v", err)
			}
			cancel()
		}
	}
}

// TestUnfenced: a lease without election writes unfenced and releases
// nothing.
func TestUnfenced(t *testing.T) {
	ctx := context.Background()
	l := Unfenced(ctx)
	if _, ok := source.EpochFrom(l.Context()); ok || l.Epoch() != 0 || l.Err() != nil || l.Release(ctx) != nil {
		t.Fatal("Unfenced lease is not inert")
	}
}
