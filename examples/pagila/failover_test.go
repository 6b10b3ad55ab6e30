package pagila_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// leaderRow is the row of observer.leader for the harness's source.
type leaderRow struct {
	epoch int64
	pid   int
}

func (p *pagila) leader(ctx context.Context) (leaderRow, bool) {
	p.t.Helper()
	var l leaderRow
	var holder string
	err := p.db.QueryRowContext(ctx, `SELECT epoch, holder FROM observer.leader WHERE source = 'pagila' AND grp = 'default'`).Scan(&l.epoch, &holder)
	if err != nil {
		return leaderRow{}, false
	}
	// holder is host:pid:random (leader.HolderID).
	parts := strings.Split(holder, ":")
	if len(parts) != 3 {
		p.t.Fatalf("leader holder %q is not host:pid:random", holder)
	}
	l.pid, _ = strconv.Atoi(parts[1])
	return l, true
}

// waitLeader waits until a process of procs holds an epoch newer than
// after, and returns it with the time it took.
func (p *pagila) waitLeader(ctx context.Context, after int64, procs []*process, timeout time.Duration) (*process, leaderRow, time.Duration) {
	p.t.Helper()
	start := time.Now()
	for time.Since(start) < timeout {
		if l, ok := p.leader(ctx); ok && l.epoch > after {
			for _, pr := range procs {
				if pr.cmd.Process.Pid == l.pid {
					return pr, l, time.Since(start)
				}
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	var out strings.Builder
	for i, pr := range procs {
		fmt.Fprintf(&out, "--- process %d (pid %d):\n%s\n", i, pr.cmd.Process.Pid, tailString(pr.stderr.String(), 2000))
	}
	p.t.Fatalf("no process took the leadership (epoch > %d) within %s\n%s", after, timeout, out.String())
	return nil, leaderRow{}, 0
}

// TestPagilaFailover runs two `observer run` processes on one PostgreSQL
// source while Pagila is replayed: exactly one leads and delivers; when
// the leader is killed with SIGKILL the standby takes over from the
// checkpoint within the bound that [failover] poll_interval sets, three
// times over (each killed process is restarted as the next standby).
// Every expected event is delivered, duplicates only for work in flight
// at a kill, each with its first delivery's idempotency key and body.
func TestPagilaFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	ctx := context.Background()
	const (
		maxInFlight = 200
		failovers   = 3
		// The lock is freed when the killed leader's socket closes; the
		// standby tries it every poll_interval (100ms), then issues its
		// epoch. A generous bound for a loaded 2-core machine.
		takeoverBound = 5 * time.Second
	)
	p := newPagila(t, 1500, `
[failover]
poll_interval = "100ms"
check_interval = "200ms"
`)
	p.setMaxInFlight(t, maxInFlight)

	procs := []*process{p.start(), p.start()}
	leader, row, _ := p.waitLeader(ctx, 0, procs, 30*time.Second)
	if row.epoch != 1 {
		t.Fatalf("first epoch %d, want 1", row.epoch)
	}

	replayDone := make(chan error, 1)
	go func() { replayDone <- p.replayPaced(ctx, 20*time.Millisecond) }()

	var takeovers []time.Duration
	for i := 0; i < failovers; i++ {
		time.Sleep(time.Duration(700+300*i) * time.Millisecond)
		// While one leads, the other must not: the lock row names one
		// process, and the other is alive and waiting.
		var standby *process
		for _, pr := range procs {
			if pr != leader {
				standby = pr
			}
		}
		if standby.cmd.ProcessState != nil {
			t.Fatalf("the standby exited:\n%s", standby.stderr.String())
		}
		leader.kill()
		killedAt := time.Now()
		next, nrow, _ := p.waitLeader(ctx, row.epoch, procs, takeoverBound+10*time.Second)
		took := time.Since(killedAt)
		if next != standby {
			t.Fatalf("after killing the leader (pid %d), pid %d leads", leader.cmd.Process.Pid, next.cmd.Process.Pid)
		}
		if took > takeoverBound {
			t.Errorf("takeover %d took %s, more than %s", i+1, took.Round(time.Millisecond), takeoverBound)
		}
		takeovers = append(takeovers, took)
		// The killed process comes back, as the new standby.
		procs = []*process{next, p.start()}
		leader, row = next, nrow
	}
	if err := <-replayDone; err != nil {
		t.Fatal(err)
	}

	want := p.expected(ctx)
	p.wait(want.total(), 3*time.Minute, leader)
	if l, _ := p.leader(ctx); l.epoch != int64(failovers+1) {
		t.Errorf("epoch %d at the end, want %d (one per leadership)", l.epoch, failovers+1)
	}
	for _, pr := range procs {
		pr.stop(t)
	}
	dups := p.verify(want)
	if limit := failovers * (maxInFlight + 500); dups > limit {
		t.Errorf("%d duplicates after %d failovers: more than the work in flight could explain (%d)", dups, failovers, limit)
	}
	t.Logf("%d writes, %d leader SIGKILLs: takeovers in %v; all %d expected events delivered, %d duplicates (recognised by idempotency key)",
		len(p.steps), failovers, takeovers, want.total(), dups)
}
