package config

import "time"

// Failover defaults. See host/leader for what each interval bounds.
const (
	DefaultFailoverPollInterval  = time.Second
	DefaultFailoverCheckInterval = time.Second
	DefaultFailoverLeaseTTL      = 10 * time.Second
	// MinFailoverLeaseTTL leaves each renewal (every TTL/3, allowed TTL/3)
	// time to get the SQLite write lock from a busy writer: at 300ms a
	// leader under an unthrottled writer lost its lease twice in 2s.
	MinFailoverLeaseTTL = time.Second
	// MinFailoverInterval keeps standbys from polling in a busy loop (on
	// SQLite each poll is a write transaction).
	MinFailoverInterval = 50 * time.Millisecond
)

// Failover is the [failover] table: several `observer run` processes on
// one source and group, of which exactly one (the leader) captures and
// works while the others wait as standbys and take over when it dies.
type Failover struct {
	// Enabled elects a leader before the engine starts (default true). A
	// single process simply becomes the leader at once; false runs
	// without election or fencing, for a deployment that guarantees one
	// process by other means.
	Enabled bool
	// PollInterval is how often a standby tries to become the leader.
	PollInterval time.Duration
	// CheckInterval is how often a PostgreSQL leader confirms that its
	// session still holds the leadership lock.
	CheckInterval time.Duration
	// LeaseTTL is how long an SQLite leader's lease lasts unless renewed
	// (every LeaseTTL/3): a leader that dies without releasing it is
	// replaced within LeaseTTL + PollInterval.
	LeaseTTL time.Duration
}

// failoverSettings reads [failover]; t may be an empty table.
func (d *decoder) failoverSettings(t *table) Failover {
	f := Failover{
		Enabled:       t.boolean("enabled", true),
		PollInterval:  t.duration("poll_interval", DefaultFailoverPollInterval),
		CheckInterval: t.duration("check_interval", DefaultFailoverCheckInterval),
		LeaseTTL:      t.duration("lease_ttl", DefaultFailoverLeaseTTL),
	}
	if f.LeaseTTL < MinFailoverLeaseTTL {
		t.errorf("lease_ttl", "got %q, want at least %s", f.LeaseTTL, MinFailoverLeaseTTL)
	}
	if f.PollInterval < MinFailoverInterval {
		t.errorf("poll_interval", "got %q, want at least %s", f.PollInterval, MinFailoverInterval)
	}
	if f.CheckInterval < MinFailoverInterval {
		t.errorf("check_interval", "got %q, want at least %s", f.CheckInterval, MinFailoverInterval)
	}
	t.done()
	return f
}

type failoverView struct {
	Enabled       bool   `json:"enabled"`
	PollInterval  string `json:"poll_interval"`
	CheckInterval string `json:"check_interval"`
	LeaseTTL      string `json:"lease_ttl"`
}

func (f Failover) view() failoverView {
	return failoverView{f.Enabled, dur(f.PollInterval), dur(f.CheckInterval), dur(f.LeaseTTL)}
}
