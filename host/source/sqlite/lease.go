package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fraiseql/observer/host/source"
)

// Leadership leases. SQLite has no session locks that outlive a statement,
// so the leader of a (source, group) holds a lease: a row of
// observer_leader with its holder id, an expiry time and an epoch. It
// renews the row before it expires; another process takes the row over
// only once it has expired, and taking it over issues the next epoch.
// Expiry times are wall-clock milliseconds of the processes involved,
// which share the database file and therefore (in practice) one host and
// one clock.
//
// Writes made with an epoch in their context (source.WithEpoch) check it
// against the row inside their own BEGIN IMMEDIATE transaction; SQLite
// runs one write transaction at a time, so a takeover either happens
// before the check (and the write is refused) or after the commit.

const leaseDDL = `CREATE TABLE IF NOT EXISTS observer_leader (
	source      TEXT NOT NULL,
	grp         TEXT NOT NULL,
	holder      TEXT NOT NULL,
	epoch       INTEGER NOT NULL,
	expires_at  INTEGER NOT NULL, -- Unix milliseconds
	acquired_at TEXT NOT NULL,
	PRIMARY KEY (source, grp)
)`

// Lease is the leadership row of one (source, group).
type Lease struct {
	Holder    string
	Epoch     int64
	ExpiresAt time.Time
}

// TakeLease makes holder the leader of (src, group) until now+ttl with a
// new epoch, unless another holder's lease has not expired at now. It
// returns the lease as it stands afterwards, and whether holder got it.
// db must come from Open (its transactions BEGIN IMMEDIATE).
//
// gone, when not nil, is asked about a current holder whose lease has not
// expired: true means that holder is known to have stopped (its process no
// longer exists), and the lease is taken without waiting for the expiry.
// It is asked inside the write transaction, so the answer applies to the
// row as read.
func TakeLease(ctx context.Context, db *sql.DB, src, group, holder string, ttl time.Duration, now time.Time, gone func(holder string) bool) (Lease, bool, error) {
	fail := func(err error) (Lease, bool, error) {
		return Lease{}, false, fmt.Errorf("take leadership lease of source %q group %q: %w", src, group, err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fail(err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after commit
	if _, err := tx.ExecContext(ctx, leaseDDL); err != nil {
		return fail(err)
	}
	var cur Lease
	var exp int64
	err = tx.QueryRowContext(ctx, `SELECT holder, epoch, expires_at FROM observer_leader WHERE source = ? AND grp = ?`, src, group).
		Scan(&cur.Holder, &cur.Epoch, &exp)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return fail(err)
	default:
		cur.ExpiresAt = time.UnixMilli(exp)
		if cur.Holder != holder && exp > now.UnixMilli() && (gone == nil || !gone(cur.Holder)) {
			return cur, false, nil
		}
	}
	next := Lease{Holder: holder, Epoch: cur.Epoch + 1, ExpiresAt: now.Add(ttl)}
	_, err = tx.ExecContext(ctx, `INSERT INTO observer_leader (source, grp, holder, epoch, expires_at, acquired_at) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (source, grp) DO UPDATE SET holder = excluded.holder, epoch = excluded.epoch,
			expires_at = excluded.expires_at, acquired_at = excluded.acquired_at`,
		src, group, holder, next.Epoch, next.ExpiresAt.UnixMilli(), now.UTC().Format(time.RFC3339Nano))
	if err != nil {
		return fail(err)
	}
	if err := tx.Commit(); err != nil {
		return fail(err)
	}
	return next, true, nil
}

// RenewLease extends holder's lease of epoch to now+ttl. ok is false when
// the lease has been taken over (a newer epoch exists): holder no longer
// leads.
func RenewLease(ctx context.Context, db *sql.DB, src, group, holder string, epoch int64, ttl time.Duration, now time.Time) (ok bool, err error) {
	res, err := db.ExecContext(ctx, `UPDATE observer_leader SET expires_at = ? WHERE source = ? AND grp = ? AND holder = ? AND epoch = ?`,
		now.Add(ttl).UnixMilli(), src, group, holder, epoch)
	if err != nil {
		return false, fmt.Errorf("renew leadership lease of source %q group %q: %w", src, group, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("renew leadership lease of source %q group %q: %w", src, group, err)
	}
	return n == 1, nil
}

// ReleaseLease ends holder's lease of epoch at now, so that a standby can
// take over at its next attempt instead of waiting for the expiry. The
// epoch stays: the next leader gets a newer one.
func ReleaseLease(ctx context.Context, db *sql.DB, src, group, holder string, epoch int64, now time.Time) error {
	_, err := db.ExecContext(ctx, `UPDATE observer_leader SET expires_at = ? WHERE source = ? AND grp = ? AND holder = ? AND epoch = ?`,
		now.UnixMilli(), src, group, holder, epoch)
	if err != nil {
		return fmt.Errorf("release leadership lease of source %q group %q: %w", src, group, err)
	}
	return nil
}

// CurrentLease returns the lease of (src, group); ok is false when no
// process has ever taken it.
func (s *Store) CurrentLease(ctx context.Context, src, group string) (l Lease, ok bool, err error) {
	var exp int64
	err = s.db.QueryRowContext(ctx, `SELECT holder, epoch, expires_at FROM observer_leader WHERE source = ? AND grp = ?`, src, group).
		Scan(&l.Holder, &l.Epoch, &exp)
	switch {
	case errors.Is(err, sql.ErrNoRows), isNoTable(err):
		return Lease{}, false, nil
	case err != nil:
		return Lease{}, false, fmt.Errorf("read leadership lease of source %q group %q: %w", src, group, err)
	}
	l.ExpiresAt = time.UnixMilli(exp)
	return l, true, nil
}

func isNoTable(err error) bool {
	return err != nil && strings.Contains(err.Error(), "no such table")
}

// fenced runs write in a transaction that first checks that epoch is the
// epoch of (src, group)'s lease.
func (s *Store) fenced(ctx context.Context, src, group, op string, epoch int64, write func(Execer) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // no-op after commit
	var current int64
	err = tx.QueryRowContext(ctx, `SELECT epoch FROM observer_leader WHERE source = ? AND grp = ?`, src, group).Scan(&current)
	if err != nil && !errors.Is(err, sql.ErrNoRows) && !isNoTable(err) {
		return fmt.Errorf("check leadership epoch: %w", err)
	}
	if current != epoch {
		return &source.FencedError{Source: src, Group: group, Op: op, Epoch: epoch, Current: current}
	}
	if err := write(tx); err != nil {
		return err
	}
	return tx.Commit()
}
