package leader

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/fraiseql/observer/host/source/sqlite"
)

// SQLiteConfig configures an SQLite elector.
type SQLiteConfig struct {
	// Path of the watched database file (the lease row lives there).
	Path string
	// Source and Group name what is led: one leader per (source, group).
	Source, Group string
	// Holder names this process (HolderID when "").
	Holder string
	// PollInterval is how often a standby tries to take the lease.
	PollInterval time.Duration
	// LeaseTTL is how long a lease lasts unless renewed; the leader renews
	// it every LeaseTTL/3.
	LeaseTTL time.Duration
	Logger   *slog.Logger
	// Now is the clock (time.Now when nil), for tests.
	Now func() time.Time
	// Gone reports whether the holder of an unexpired lease is known to
	// have stopped, so that its lease is taken at once rather than after
	// LeaseTTL. Nil means HolderGone; a func returning false always waits
	// for the expiry.
	Gone func(holder string) bool
}

// SQLite elects through a lease row. See the package documentation.
type SQLite struct {
	cfg SQLiteConfig
	log *slog.Logger
}

var _ Elector = (*SQLite)(nil)

// NewSQLite returns an elector; nothing is opened before Acquire.
func NewSQLite(cfg SQLiteConfig) *SQLite {
	if cfg.Holder == "" {
		cfg.Holder = HolderID()
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = DefaultLeaseTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Gone == nil {
		cfg.Gone = HolderGone
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("source", cfg.Source, "group", cfg.Group, "holder", cfg.Holder)
	return &SQLite{cfg: cfg, log: log}
}

// Acquire implements Elector.
func (s *SQLite) Acquire(ctx context.Context) (*Lease, error) {
	db, err := sqlite.Open(ctx, s.cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("leadership lease: %w", err)
	}
	waiting, lastErr := false, ""
	for {
		cur, ok, err := sqlite.TakeLease(ctx, db, s.cfg.Source, s.cfg.Group, s.cfg.Holder, s.cfg.LeaseTTL, s.cfg.Now(), s.cfg.Gone)
		switch {
		case ctx.Err() != nil:
			db.Close()
			return nil, ctx.Err()
		case err != nil:
			if err.Error() != lastErr {
				s.log.Warn("standby: cannot take the leadership lease; retrying", "error", err, "poll_interval", s.cfg.PollInterval)
				lastErr = err.Error()
			}
		case ok:
			s.log.Info(fmt.Sprintf("leader: acquired (epoch %d)", cur.Epoch), "epoch", cur.Epoch, "lease_ttl", s.cfg.LeaseTTL)
			return s.lease(ctx, db, cur.Epoch), nil
		case !waiting:
			s.log.Info("standby: waiting for leadership", "leader", cur.Holder, "leader_epoch", cur.Epoch,
				"lease_expires", cur.ExpiresAt.UTC().Format(time.RFC3339Nano), "poll_interval", s.cfg.PollInterval)
			waiting, lastErr = true, ""
		}
		if !sleep(ctx, s.cfg.PollInterval) {
			db.Close()
			return nil, ctx.Err()
		}
	}
}

// Leader implements Elector: a lease that has not expired and whose
// holder is not known to be gone.
func (s *SQLite) Leader(ctx context.Context) (string, bool, error) {
	if _, err := os.Stat(s.cfg.Path); err != nil {
		return "", false, nil // no database, no leader
	}
	st, err := sqlite.OpenStore(ctx, s.cfg.Path)
	if err != nil {
		return "", false, err
	}
	defer st.Close()
	l, ok, err := st.CurrentLease(ctx, s.cfg.Source, s.cfg.Group)
	if err != nil || !ok || !l.ExpiresAt.After(s.cfg.Now()) || s.cfg.Gone(l.Holder) {
		return "", false, err
	}
	return l.Holder, true, nil
}

// lease keeps an acquired lease: renewed every LeaseTTL/3; lost when it
// was taken over, or when it could not be renewed for 2/3 of its TTL.
func (s *SQLite) lease(parent context.Context, db *sql.DB, epoch int64) *Lease {
	ttl := s.cfg.LeaseTTL
	renewed := s.cfg.Now() // TakeLease set the expiry from about this instant
	keep := func() error {
		start := s.cfg.Now()
		err := s.renew(db, epoch, start)
		switch {
		case err == nil:
			renewed = start
			return nil
		case errors.Is(err, errTakenOver):
			return err
		case start.Sub(renewed) < ttl*2/3:
			s.log.Warn("leader: cannot renew the lease; retrying", "epoch", epoch, "error", err,
				"lost_in", (ttl*2/3 - start.Sub(renewed)).Round(time.Millisecond))
			return nil
		}
		return fmt.Errorf("lease not renewed for %s of its %s TTL: %w", start.Sub(renewed).Round(time.Millisecond), ttl, err)
	}
	return hold(parent, epoch, s.log, ttl/3, keep,
		func(ctx context.Context) error {
			return sqlite.ReleaseLease(ctx, db, s.cfg.Source, s.cfg.Group, s.cfg.Holder, epoch, s.cfg.Now())
		},
		func() { _ = db.Close() })
}

var errTakenOver = errors.New("the lease was taken over by a newer epoch")

func (s *SQLite) renew(db *sql.DB, epoch int64, now time.Time) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.LeaseTTL/3)
	defer cancel()
	ok, err := sqlite.RenewLease(ctx, db, s.cfg.Source, s.cfg.Group, s.cfg.Holder, epoch, s.cfg.LeaseTTL, now)
	if err != nil {
		return err
	}
	if !ok {
		return errTakenOver
	}
	return nil
}
