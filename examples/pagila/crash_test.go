package pagila_test

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fraiseql/observer/examples/pagila/workload"
	"github.com/fraiseql/observer/internal/testenv"
)

// The crash harness's knobs.
const (
	// crashMaxInFlight bounds the work one process holds (setMaxInFlight
	// also sets batch_size to half of it), and so what a kill can make
	// the next process deliver again.
	crashMaxInFlight = 200
	// Each process is killed a random crashMinGap–crashMaxGap after it
	// was started: some kills land during start-up (plugins, leader
	// election), most while it reads and delivers.
	crashMinGap = 50 * time.Millisecond
	crashMaxGap = 1350 * time.Millisecond
	// pgDowntime is how long PostgreSQL stays down during its restart.
	pgDowntime = 2 * time.Second
	// recoveryBound: after PostgreSQL is back, the running observer must
	// deliver an event written after the restart within this long. What it
	// takes: the leader notices its lost lock (check_interval, 1s), rebuilds
	// its engine, tries the lock again (poll_interval, 1s), then reads
	// from its checkpoint. Generous for a loaded 2-core machine.
	recoveryBound = 15 * time.Second
)

// TestCrashHarness is the crash test: it replays a slice of Pagila into a
// private PostgreSQL server while killing `observer run` with SIGKILL at
// random points OBSERVER_CRASH_KILLS times (default 20), restarting it
// after each kill, and restarts the PostgreSQL server once in the middle
// while the observer runs. The running observer must recover from the
// restart by itself, within recoveryBound. At the end every event SQL says
// is expected must have reached the receiver; a duplicate must carry the
// same idempotency key and body as the first delivery; and duplicates must
// stay within what can be in flight at the crashes. It logs the figures.
//
// The schedule's seed is logged; OBSERVER_CRASH_SEED=N replays the same
// schedule (kill gaps and restart point; timings still vary).
func TestCrashHarness(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	began := time.Now()
	kills := envInt(t, "OBSERVER_CRASH_KILLS", 20)
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("OBSERVER_CRASH_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("OBSERVER_CRASH_SEED=%q: %v", s, err)
		}
		seed = v
	}
	rng := rand.New(rand.NewPCG(seed, 7))
	t.Logf("crash harness: %d SIGKILLs and one PostgreSQL restart; schedule seed %d (OBSERVER_CRASH_SEED=%d repeats it)", kills, seed, seed)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	cluster := testenv.StartCluster(t)
	p := newPagilaAt(t, cluster.CreateDatabase(t, "pagila"), 1500, "")
	p.setMaxInFlight(t, crashMaxInFlight)
	setupTook := time.Since(began)

	// The restart comes after a random transaction between a quarter and
	// a half of the writes (all rentals and returns: the payments come
	// last). The writer waits while the server is down, so no write is
	// lost or left in doubt; the observer keeps running through it.
	const stepsPerTx = 20
	numTx := (len(p.steps) + stepsPerTx - 1) / stepsPerTx
	cut := min(len(p.steps), stepsPerTx*(numTx/4+rng.IntN(numTx/4+1)))
	// Rentals returned after the restart: a delivery of one proves the
	// observer captures and delivers again.
	returnedAfter := map[string]bool{}
	for _, s := range p.steps[cut:] {
		if s.Kind == workload.RentalReturned {
			returnedAfter[strconv.FormatInt(s.Rental.ID, 10)] = true
		}
	}
	if len(returnedAfter) == 0 {
		t.Fatalf("no rental is returned after write %d of %d: the restart point is too late", cut, len(p.steps))
	}
	// Pace the writer so the replay lasts about as long as the kills.
	pause := time.Duration(kills) * (crashMinGap + crashMaxGap) / 2 / time.Duration(numTx)
	pause = min(max(pause, 2*time.Millisecond), time.Second).Round(time.Millisecond)

	cutDone := make(chan error, 1)
	replayDone := make(chan error, 1)
	resume := make(chan struct{})
	go func() {
		err := p.replayStepsPaced(ctx, p.steps[:cut], pause)
		cutDone <- err
		if err != nil {
			return
		}
		select {
		case <-resume:
		case <-ctx.Done():
			replayDone <- ctx.Err()
			return
		}
		replayDone <- p.replayStepsPaced(ctx, p.steps[cut:], pause)
	}()

	nextKill := func() <-chan time.Time {
		return time.After(crashMinGap + time.Duration(rng.Int64N(int64(crashMaxGap-crashMinGap))))
	}
	pr := p.start()
	startedAt := time.Now()
	var killTimer <-chan time.Time
	if kills > 0 {
		killTimer = nextKill()
	}
	killed, leaderKills, replaying := 0, 0, true
	var restart pgRestart
	for killed < kills || replaying {
		select {
		case err := <-cutDone:
			if err != nil {
				t.Fatalf("replay: %v", err)
			}
			restart = p.restartPostgres(t, cluster, pr, resume, returnedAfter)
			restart.atWrite = cut
			if killed < kills {
				killTimer = nextKill()
			}
		case err := <-replayDone:
			if err != nil {
				t.Fatalf("replay: %v", err)
			}
			replaying = false
		case <-killTimer:
			if gone, err := pr.exited(); gone {
				t.Fatalf("observer (pid %d) exited by itself (%v) before kill %d:\n%s", pr.cmd.Process.Pid, err, killed+1, tailString(pr.stderr.String(), 4000))
			}
			if _, pid, ok := p.leaderEpoch(); ok && pid == pr.cmd.Process.Pid {
				leaderKills++ // it led and worked; the others died starting up
			}
			pr.kill()
			killed++
			killTimer = nil
			if killed < kills {
				killTimer = nextKill()
			}
			pr = p.start()
			startedAt = time.Now()
		}
	}
	writesTook := time.Since(began) - setupTook

	want := p.expected(ctx)
	p.wait(want.total(), 3*time.Minute, pr)
	// Let the last process finish starting (signal handlers in place)
	// before the SIGTERM, even if the work is already done.
	time.Sleep(time.Until(startedAt.Add(time.Second)))
	pr.stop(t)

	dups := p.verify(want)
	checkOneKeyPerEvent(t, p)
	st := p.recv.Stats()
	if st.Rejected != 0 {
		t.Errorf("%d deliveries had a bad signature", st.Rejected)
	}
	// What a crash can make the next process deliver again: the events it
	// held (at most max_in_flight) that were delivered but not yet
	// recorded as done. One per kill, and one for the restart of
	// PostgreSQL (the leader abandons its work when it loses the lock).
	crashes := killed + 1
	if limit := crashes * crashMaxInFlight; dups > limit {
		t.Errorf("%d duplicates after %d kills and a PostgreSQL restart: more than the work in flight could explain (%d × max_in_flight %d = %d)",
			dups, killed, crashes, crashMaxInFlight, limit)
	}
	verdict := "every expected event, duplicates with the same key and body as the first delivery"
	if t.Failed() {
		verdict = "FAILED: see the errors above"
	}
	t.Logf("crash harness figures (seed %d):\n"+
		"  writes replayed:          %d (%d per transaction, %s pause)\n"+
		"  SIGKILLs:                 %d (each %s–%s after the process started; %d of a leader, %d during start-up)\n"+
		"  PostgreSQL restart:       after write %d; down %s (fast stop, %s down, start)\n"+
		"  leadership re-acquired:   %s after PostgreSQL was back\n"+
		"  recovered:                %s after PostgreSQL was back (first delivery of an event written after the restart; bound %s)\n"+
		"  expected events (SQL):    %d (%d payments >= 9.99, %d returns)\n"+
		"  delivered:                %d deliveries, %d distinct idempotency keys: %s\n"+
		"  duplicates:               %d (%.1f%% of expected; bound %d)\n"+
		"  time:                     %s in all (set-up %s, writes and kills %s)",
		seed,
		len(p.steps), stepsPerTx, pause,
		killed, crashMinGap, crashMaxGap, leaderKills, killed-leaderKills,
		restart.atWrite, restart.down.Round(time.Millisecond), pgDowntime,
		restart.leader.Round(time.Millisecond),
		restart.recovered.Round(time.Millisecond), recoveryBound,
		want.total(), len(want.payments), len(want.returns),
		st.Deliveries, st.Distinct, verdict,
		dups, 100*float64(dups)/float64(max(1, want.total())), crashes*crashMaxInFlight,
		time.Since(began).Round(time.Millisecond), setupTook.Round(time.Millisecond), writesTook.Round(time.Millisecond))
}

// pgRestart is what the restart of PostgreSQL measured.
type pgRestart struct {
	atWrite int
	// down: from the stop until the server accepted connections again.
	down time.Duration
	// From the server being back to the observer's new leadership epoch,
	// and to the first delivery of an event written after the restart.
	leader, recovered time.Duration
}

// restartPostgres restarts the private server under the running observer
// pr, once pr leads, then lets the writer resume and waits until pr
// delivers one of the rentals returned after the restart. pr must do so by
// itself: its exit, or no such delivery within recoveryBound, fails the
// test with its output.
func (p *pagila) restartPostgres(t *testing.T, c *testenv.Cluster, pr *process, resume chan<- struct{}, returnedAfter map[string]bool) pgRestart {
	t.Helper()
	epoch := p.waitLeads(t, pr, 30*time.Second)
	// Past the engine's start-up (cursor, source, dedup records: a few
	// milliseconds after the leadership): the restart hits a running engine.
	time.Sleep(500 * time.Millisecond)
	stopAt := time.Now()
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(pgDowntime)
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	up := time.Now()
	r := pgRestart{down: up.Sub(stopAt)}
	// The writer's pooled connections died with the server.
	p.db.SetMaxIdleConns(0)
	p.db.SetMaxIdleConns(2)
	close(resume)
	seen := 0
	for {
		if r.leader == 0 {
			if e, pid, ok := p.leaderEpoch(); ok && e > epoch && pid == pr.cmd.Process.Pid {
				r.leader = time.Since(up)
			}
		}
		ds := p.recv.Deliveries()
		for _, d := range ds[seen:] {
			if d.Path != "/hooks/rental-returned" {
				continue
			}
			var ev struct {
				Key string `json:"key"`
			}
			if json.Unmarshal(d.Body, &ev) == nil && returnedAfter[ev.Key] {
				r.recovered = d.At.Sub(up)
				if r.leader == 0 {
					if e, _, ok := p.leaderEpoch(); ok && e > epoch {
						r.leader = time.Since(up)
					}
				}
				return r
			}
		}
		seen = len(ds)
		if gone, err := pr.exited(); gone {
			t.Fatalf("observer (pid %d) exited (%v) after PostgreSQL restarted instead of reconnecting; its output:\n%s",
				pr.cmd.Process.Pid, err, tailString(pr.stderr.String(), 6000))
		}
		if time.Since(up) > recoveryBound {
			t.Fatalf("observer (pid %d) delivered no event written after the PostgreSQL restart within %s of the server being back (leadership re-acquired: %v); its output:\n%s",
				pr.cmd.Process.Pid, recoveryBound, r.leader != 0, tailString(pr.stderr.String(), 6000))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// leaderEpoch returns the newest leadership epoch of the harness's source
// and group and the pid of its holder (host:pid:random).
func (p *pagila) leaderEpoch() (epoch int64, pid int, ok bool) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var holder string
	if err := p.db.QueryRowContext(ctx, `SELECT epoch, holder FROM observer.leader WHERE source = 'pagila' AND grp = 'default'`).Scan(&epoch, &holder); err != nil {
		return 0, 0, false
	}
	parts := strings.Split(holder, ":")
	if len(parts) != 3 {
		return 0, 0, false
	}
	pid, _ = strconv.Atoi(parts[1])
	return epoch, pid, true
}

// waitLeads waits until pr holds the leadership and returns its epoch.
func (p *pagila) waitLeads(t *testing.T, pr *process, timeout time.Duration) int64 {
	t.Helper()
	for start := time.Now(); time.Since(start) < timeout; time.Sleep(20 * time.Millisecond) {
		if e, pid, ok := p.leaderEpoch(); ok && pid == pr.cmd.Process.Pid {
			return e
		}
		if gone, err := pr.exited(); gone {
			t.Fatalf("observer (pid %d) exited by itself (%v):\n%s", pr.cmd.Process.Pid, err, tailString(pr.stderr.String(), 4000))
		}
	}
	t.Fatalf("observer (pid %d) did not become the leader within %s:\n%s", pr.cmd.Process.Pid, timeout, tailString(pr.stderr.String(), 4000))
	return 0
}

// checkOneKeyPerEvent checks that every delivery of one payment or one
// returned rental carried the same idempotency key: a duplicate is always
// recognisable as one.
func checkOneKeyPerEvent(t *testing.T, p *pagila) {
	t.Helper()
	keys := map[string]map[string]bool{}
	for _, d := range p.recv.Deliveries() {
		var b struct {
			PaymentID json.Number `json:"payment_id"`
			Key       string      `json:"key"`
		}
		if err := json.Unmarshal(d.Body, &b); err != nil {
			continue // verify reported it
		}
		what := d.Path + " " + b.PaymentID.String() + b.Key
		if keys[what] == nil {
			keys[what] = map[string]bool{}
		}
		keys[what][d.IdempotencyKey] = true
	}
	for what, ks := range keys {
		if len(ks) > 1 {
			t.Errorf("%s was delivered under %d idempotency keys: %v", what, len(ks), sortedKeys(ks))
		}
	}
}

// envInt reads a non-negative integer from the environment, def when unset.
func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		t.Fatalf("%s=%q: want a non-negative integer", name, s)
	}
	return n
}
