// Package leader elects one leader among the `observer run` processes
// watching the same source and checkpoint group, and fences the writes of
// a leader that has been deposed.
//
// # Lifecycle
//
//	Acquire ──(standby: retry every PollInterval)──▶ leader: acquired (epoch N)
//	  │                                                 │
//	  │ ctx done                                        ├─ Release (clean stop) ─▶ lock/lease freed
//	  ▼                                                 └─ lock/lease lost ─▶ Lease.Context() cancelled,
//	returns ctx.Err()                                      Lease.Err() is ErrLost ("leader: lost")
//
// A process runs its engine under Lease.Context(). That context ends when
// the process stops leading, so the engine stops reading at once; the lost
// leadership is never continued silently. `observer run` then builds a
// fresh engine and waits as a standby again (host/cli, runLeading); it
// never leads again with the engine it had, whose writes carry the old
// epoch.
//
// # Epochs and fencing
//
// Every acquisition issues the next epoch of the (source, group), a
// monotonically increasing fencing token stored in the watched database
// next to the checkpoint. Lease.Context() carries it (source.WithEpoch), so
// every checkpoint save and dead-letter write the engine makes is checked
// against the newest epoch in the same transaction, and refused with a
// *source.FencedError once another process has taken over. A deposed leader
// that is still running (paused, partitioned, draining its last effects)
// can therefore neither move the checkpoint backwards nor forwards.
//
// # PostgreSQL: a session advisory lock
//
// The leader holds pg_try_advisory_lock(Key(schema, source, group)) on a
// dedicated connection (application_name "observer-leader") and issues its
// epoch on that same connection, so the epoch is only issued while the
// lock is held. Every CheckInterval it checks that its session still holds
// the lock; a failed or timed-out check (the connection was lost,
// PostgreSQL restarted, the backend was terminated) is a loss. The lock
// goes with the session: when the leader process dies its socket closes
// and PostgreSQL releases the lock at once, so a standby takes over within
// PollInterval. When the leader's host vanishes without closing the socket,
// PostgreSQL notices through TCP keepalives, which the lock session sets
// to about 8 seconds (tcp_keepalives_idle 5s, interval 1s, count 3,
// tcp_user_timeout 8s).
//
// # SQLite: a lease row
//
// SQLite has no session locks, so the leader holds a lease, a row of
// observer_leader (holder, epoch, expires_at), which it renews every
// LeaseTTL/3. A standby takes the row over only after it has expired, so a
// leader that dies is replaced within LeaseTTL + PollInterval. A leader
// that cannot renew for 2/3 of LeaseTTL counts its leadership as lost, a
// third of the TTL before anyone else may take it. Expiry times are
// compared across processes, which is sound because the processes sharing
// an SQLite file share a host and its clock. For the same reason a process
// may take over at once, without waiting for the expiry, a lease whose
// holder is a process of this host that no longer exists (HolderGone):
// a leader restarted after a crash does not wait LeaseTTL for itself.
package leader
