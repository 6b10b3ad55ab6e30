package leader

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fraiseql/observer/host/source"
)

// Defaults of Config.
const (
	DefaultPollInterval  = time.Second
	DefaultCheckInterval = time.Second
	DefaultLeaseTTL      = 10 * time.Second
)

// Elector makes this process the leader of one source and group.
type Elector interface {
	// Acquire blocks, as a standby, until this process leads; then it
	// returns the lease. It returns ctx's error when ctx ends first.
	// Database errors while waiting are logged and retried.
	Acquire(ctx context.Context) (*Lease, error)
	// Leader reports the process that leads right now, if one does: its
	// holder id (HolderID). It takes nothing.
	Leader(ctx context.Context) (holder string, leading bool, err error)
}

// ErrLost is matched (errors.Is) by Lease.Err after the leadership was
// lost, as opposed to released.
var ErrLost = errors.New("leadership lost")

var errReleased = errors.New("leadership released")

// Lease is held leadership. Its methods are safe for concurrent use.
type Lease struct {
	epoch   int64
	ctx     context.Context
	cancel  context.CancelCauseFunc
	release func(ctx context.Context) error
	once    sync.Once
	err     error
}

// Unfenced returns a lease for a process that runs without failover: its
// context is ctx, without an epoch, so store writes are not fenced, and
// Release does nothing.
func Unfenced(ctx context.Context) *Lease {
	return &Lease{ctx: ctx, release: func(context.Context) error { return nil }}
}

// hold returns the lease of an acquired epoch and starts its keeper: every
// interval it calls keep, and the first error keep returns loses the
// leadership (logged, Context cancelled, Err set). Release stops the keeper,
// calls free to give the lock or lease back unless it was lost, then
// closes the connection with done. keep and free run on the keeper's
// goroutine and the releaser's, never at once.
func hold(parent context.Context, epoch int64, log *slog.Logger, interval time.Duration,
	keep func() error, free func(ctx context.Context) error, done func()) *Lease {
	ctx, cancel := context.WithCancelCause(parent)
	l := &Lease{epoch: epoch, ctx: source.WithEpoch(ctx, epoch), cancel: cancel}
	log = log.With("epoch", epoch)
	stop := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			if err := keep(); err != nil {
				log.Error("leader: lost", "error", err,
					"detail", "stopped reading; writes under this epoch are refused once another process takes over")
				l.lose(err)
				return
			}
		}
	}()
	l.release = func(ctx context.Context) error {
		close(stop)
		<-stopped
		defer done()
		if l.Err() != nil {
			return nil // already gone
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := free(cctx); err != nil {
			return err
		}
		log.Info("leader: released")
		return nil
	}
	return l
}

// lose ends the lease's context because leadership is gone. The cause
// matches ErrLost and source.ErrDeposed, so an engine running under the
// context abandons its work instead of draining it.
func (l *Lease) lose(why error) {
	l.cancel(&lostError{why: why})
}

type lostError struct{ why error }

func (e *lostError) Error() string   { return ErrLost.Error() + ": " + e.why.Error() }
func (e *lostError) Unwrap() []error { return []error{ErrLost, source.ErrDeposed, e.why} }

// Epoch is the lease's fencing token, 0 for an Unfenced lease.
func (l *Lease) Epoch() int64 { return l.epoch }

// Context is the context to work under while leading: it carries the
// epoch (source.WithEpoch) and is cancelled when the leadership is lost or
// released, or when the context given to Acquire ends.
func (l *Lease) Context() context.Context { return l.ctx }

// Err returns an error matching ErrLost, naming why, once the leadership
// has been lost; nil while leading, after Release, and for an Unfenced
// lease.
func (l *Lease) Err() error {
	if l.cancel == nil {
		return nil
	}
	if c := context.Cause(l.ctx); errors.Is(c, ErrLost) {
		return c
	}
	return nil
}

// Release stops leading: it cancels Context and frees the lock or lease so
// a standby can take over at its next attempt. Call it after the work done
// under the lease has stopped (the engine's final checkpoint is saved).
// Safe to call more than once.
func (l *Lease) Release(ctx context.Context) error {
	l.once.Do(func() {
		if l.cancel != nil {
			l.cancel(errReleased)
		}
		l.err = l.release(ctx)
	})
	return l.err
}

// HolderID names this process in logs and in the leader table:
// host:pid:random, so that a restarted process is a new holder, followed
// by @scope when the process can tell which kernel boot and process-id
// namespace its pid belongs to (see HolderGone).
func HolderID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	var b [3]byte
	_, _ = rand.Read(b[:])
	id := fmt.Sprintf("%s:%d:%s", host, os.Getpid(), hex.EncodeToString(b[:]))
	if sc := pidScope(); sc != "" {
		id += "@" + sc
	}
	return id
}

// pidScope names where this process's pid means something: the kernel's
// boot (two machines, or two boots of one, never share it) and the pid
// namespace (two containers on one kernel have their own pids, both
// perhaps 1). "" when /proc does not say.
func pidScope() string {
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	ns, err := os.Readlink("/proc/self/ns/pid") // "pid:[4026531836]"
	if err != nil {
		return ""
	}
	ns = strings.TrimSuffix(strings.TrimPrefix(ns, "pid:["), "]")
	return strings.ReplaceAll(strings.TrimSpace(string(boot)), "-", "") + "." + ns
}

// HolderGone reports whether holder, a HolderID, names a process that no
// longer exists. It answers false whenever it cannot be sure: a holder
// from another boot, machine or pid namespace (whose pid this process
// cannot look up), an id without a scope or that it cannot parse, or a
// process that exists (perhaps a reused pid, which only means waiting for
// the lease to expire).
//
// It lets a process restarted after a crash take over the SQLite lease of
// its dead predecessor at once instead of after the lease's TTL.
func HolderGone(holder string) bool {
	id, scope, ok := strings.Cut(holder, "@")
	if !ok || scope == "" || scope != pidScope() {
		return false
	}
	parts := strings.Split(id, ":")
	if len(parts) != 3 {
		return false
	}
	pid, err := strconv.Atoi(parts[1])
	if err != nil || pid <= 0 {
		return false
	}
	if pid == os.Getpid() {
		// A holder with this process's pid in this namespace that is not
		// this process's own id (callers never ask about their own) is an
		// earlier process that had the pid.
		return true
	}
	// Signal 0 checks existence without signalling; ESRCH: no such process.
	if errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
		return true
	}
	return zombie(pid)
}

// zombie reports whether pid has exited but not been reaped yet (Linux's
// /proc), which kill(pid, 0) cannot tell from a live process. A leader
// killed under a parent that does not reap its children (an init that is
// not one) stays a zombie indefinitely.
func zombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// pid (comm) state ...: comm may hold spaces and parentheses, so the
	// state is the first field after the last ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	st := b[i+2]
	return st == 'Z' || st == 'X'
}

// sleep waits d or until ctx ends, reporting whether ctx is still alive.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
