package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Cluster is a private, throw-away PostgreSQL server for one test: its own
// data directory (initdb) and its own loopback port, so that the test may
// stop and restart it without disturbing the shared server other tests
// use. Durability is switched off (fsync, synchronous_commit,
// full_page_writes) for speed; a fast stop still checkpoints, so a restart
// loses nothing.
type Cluster struct {
	// Port is the TCP port on 127.0.0.1.
	Port int
	// Bin is the directory of the server binaries (initdb, pg_ctl).
	Bin string

	dir, data, logPath string
	// runAs is "postgres" when the test runs as root: initdb and postgres
	// refuse to run as root, so they run through runuser.
	runAs string
}

// PostgresBinDir returns the directory holding initdb and pg_ctl:
// OBSERVER_TEST_PG_BIN when set, else the newest /usr/lib/postgresql/*/bin,
// else the directory of pg_ctl on the PATH.
func PostgresBinDir() (string, error) {
	if d := os.Getenv("OBSERVER_TEST_PG_BIN"); d != "" {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err != nil {
			return "", fmt.Errorf("OBSERVER_TEST_PG_BIN=%s: %w", d, err)
		}
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgMajor(dirs[i]) > pgMajor(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		d := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", fmt.Errorf("no initdb in /usr/lib/postgresql/*/bin or beside pg_ctl on the PATH (set OBSERVER_TEST_PG_BIN)")
}

func pgMajor(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// StartCluster creates and starts a private PostgreSQL server (superuser
// "postgres", trust authentication, loopback only). It is stopped and its
// files removed when the test ends. Missing server binaries (or, as root,
// a missing postgres account or runuser) skip the test, or fail it under
// CI (Missing).
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	bin, err := PostgresBinDir()
	if err != nil {
		Missing(t, "PostgreSQL server binaries (initdb, pg_ctl)", err)
		return nil
	}
	c := &Cluster{Bin: bin}
	dir, err := os.MkdirTemp("", "observer-pgcluster-")
	if err != nil {
		t.Fatal(err)
	}
	c.dir, c.data, c.logPath = dir, filepath.Join(dir, "data"), filepath.Join(dir, "server.log")
	t.Cleanup(func() { os.RemoveAll(dir) })
	if os.Geteuid() == 0 {
		if _, err := exec.LookPath("runuser"); err != nil {
			Missing(t, "runuser (to run PostgreSQL as the postgres user while the tests run as root)", err)
			return nil
		}
		u, err := user.Lookup("postgres")
		if err != nil {
			Missing(t, "the postgres system user (initdb refuses to run as root)", err)
			return nil
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		c.runAs = "postgres"
	}
	if c.Port, err = freePort(); err != nil {
		t.Fatal(err)
	}
	if out, err := c.cmd("initdb", "-D", c.data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
		"--locale=C.UTF-8", "--no-sync", "--no-instructions").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	conf := fmt.Sprintf(`
listen_addresses = '127.0.0.1'
port = %d
unix_socket_directories = '%s'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
`, c.Port, dir)
	f, err := os.OpenFile(filepath.Join(c.data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString(conf)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("private PostgreSQL server log (%s), last lines:\n%s", c.logPath, c.LogTail(3000))
		}
		if err := c.Stop(); err != nil {
			t.Logf("stop private PostgreSQL: %v", err)
		}
	})
	return c
}

// cmd runs one of the server binaries, as the postgres user when root.
func (c *Cluster) cmd(name string, args ...string) *exec.Cmd {
	path := filepath.Join(c.Bin, name)
	if c.runAs != "" {
		return exec.Command("runuser", append([]string{"-u", c.runAs, "--", path}, args...)...)
	}
	return exec.Command(path, args...)
}

// Start starts the server and waits until it accepts connections.
func (c *Cluster) Start() error {
	if out, err := c.cmd("pg_ctl", "-D", c.data, "-l", c.logPath, "-w", "-t", "60", "start").CombinedOutput(); err != nil {
		return fmt.Errorf("pg_ctl start: %v\n%s\nserver log:\n%s", err, out, c.LogTail(2000))
	}
	return nil
}

// Stop stops the server in fast mode: sessions are disconnected, running
// transactions rolled back, and a checkpoint is written. Stopping a
// stopped server does nothing.
func (c *Cluster) Stop() error {
	if _, err := os.Stat(filepath.Join(c.data, "postmaster.pid")); os.IsNotExist(err) {
		return nil
	}
	if out, err := c.cmd("pg_ctl", "-D", c.data, "-m", "fast", "-w", "-t", "60", "stop").CombinedOutput(); err != nil {
		return fmt.Errorf("pg_ctl stop: %v\n%s", err, out)
	}
	return nil
}

// URL returns the connection URL of database db as the superuser.
func (c *Cluster) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.Port, db)
}

// CreateDatabase creates database name and returns its URL.
func (c *Cluster) CreateDatabase(t testing.TB, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		t.Fatalf("connect to the private PostgreSQL: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	return c.URL(name)
}

// LogTail returns the last n bytes of the server log.
func (c *Cluster) LogTail(n int) string {
	b, err := os.ReadFile(c.logPath)
	if err != nil {
		return err.Error()
	}
	s := string(b)
	if len(s) > n {
		s = s[len(s)-n:]
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			s = s[i+1:]
		}
	}
	return s
}

// freePort returns a loopback TCP port nobody listens on now.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
