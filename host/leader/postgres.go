package leader

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fraiseql/observer/host/source/postgres"
)

// PostgresConfig configures a PostgreSQL elector.
type PostgresConfig struct {
	// DSN of the watched database; Schema is where the observer keeps its
	// state (the leader table lives there); "" means "observer".
	DSN, Schema string
	// Source and Group name what is led: one leader per (source, group).
	Source, Group string
	// Holder names this process (HolderID when "").
	Holder string
	// PollInterval is how often a standby tries the lock.
	PollInterval time.Duration
	// CheckInterval is how often the leader checks that it still holds the
	// lock; each check must answer within max(CheckInterval, 1s).
	CheckInterval time.Duration
	Logger        *slog.Logger
}

// Postgres elects through a session-level advisory lock. See the package
// documentation.
type Postgres struct {
	cfg PostgresConfig
	key int64
	log *slog.Logger
}

var _ Elector = (*Postgres)(nil)

// NewPostgres returns an elector; nothing is opened before Acquire.
func NewPostgres(cfg PostgresConfig) *Postgres {
	if cfg.Schema == "" {
		cfg.Schema = postgres.DefaultSchema
	}
	if cfg.Holder == "" {
		cfg.Holder = HolderID()
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.CheckInterval <= 0 {
		cfg.CheckInterval = DefaultCheckInterval
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("source", cfg.Source, "group", cfg.Group, "holder", cfg.Holder)
	return &Postgres{cfg: cfg, key: Key(cfg.Schema, cfg.Source, cfg.Group), log: log}
}

// Key is the advisory lock key of (schema, source, group): the FNV-1a
// 64-bit hash of the three, so that different groups, sources or
// observer schemas in one database have different leaders.
func Key(schema, source, group string) int64 {
	h := fnv.New64a()
	for _, s := range []string{"observer.leader", schema, source, group} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return int64(h.Sum64())
}

// Key returns the advisory lock key this elector uses.
func (p *Postgres) Key() int64 { return p.key }

// Acquire implements Elector.
func (p *Postgres) Acquire(ctx context.Context) (*Lease, error) {
	var conn *pgx.Conn
	closeConn := func() {
		if conn != nil {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			_ = conn.Close(cctx)
			cancel()
			conn = nil
		}
	}
	waiting, lastErr := false, ""
	for {
		err := p.try(ctx, &conn)
		if err == nil && conn != nil {
			var epoch int64
			epoch, err = postgres.IssueEpoch(ctx, conn, p.cfg.Schema, p.cfg.Source, p.cfg.Group, p.cfg.Holder)
			if err == nil {
				p.log.Info(fmt.Sprintf("leader: acquired (epoch %d)", epoch), "epoch", epoch, "lock_key", p.key)
				return p.lease(ctx, conn, epoch), nil
			}
		}
		switch {
		case ctx.Err() != nil:
			closeConn()
			return nil, ctx.Err()
		case errors.Is(err, errBusy):
			if !waiting {
				attrs := []any{"lock_key", p.key, "poll_interval", p.cfg.PollInterval}
				if l, ok := p.currentLeader(ctx, conn); ok {
					attrs = append(attrs, "leader", l.Holder, "leader_epoch", l.Epoch)
				}
				p.log.Info("standby: waiting for leadership", attrs...)
				waiting, lastErr = true, ""
			}
		case err != nil:
			closeConn()
			// Log each distinct failure once, not every poll.
			if err.Error() != lastErr {
				p.log.Warn("standby: cannot take the leadership; retrying", "error", err, "poll_interval", p.cfg.PollInterval)
				lastErr = err.Error()
			}
		}
		if !sleep(ctx, p.cfg.PollInterval) {
			closeConn()
			return nil, ctx.Err()
		}
	}
}

// Leader implements Elector: a session holds the advisory lock; the
// holder is the one the newest epoch was issued to.
func (p *Postgres) Leader(ctx context.Context) (string, bool, error) {
	conn, err := p.connect(ctx)
	if err != nil {
		return "", false, err
	}
	defer conn.Close(context.WithoutCancel(ctx)) //nolint:errcheck // read-only
	var held bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1
		AND classid = (($1::bigint >> 32) & 4294967295)::bigint::oid AND objid = ($1::bigint & 4294967295)::bigint::oid)`, p.key).Scan(&held); err != nil {
		return "", false, fmt.Errorf("read the leadership lock %d: %w", p.key, err)
	}
	if !held {
		return "", false, nil
	}
	l, _ := p.currentLeader(ctx, conn)
	return l.Holder, true, nil
}

// errBusy: another session holds the lock.
var errBusy = errors.New("the leadership lock is held by another process")

// try connects if needed and tries the lock once. On success *conn holds
// the lock; on errBusy *conn is kept for the next try; on any other error
// the caller closes *conn.
func (p *Postgres) try(ctx context.Context, conn **pgx.Conn) error {
	if *conn == nil {
		c, err := p.connect(ctx)
		if err != nil {
			return err
		}
		*conn = c
	}
	var got bool
	if err := (*conn).QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, p.key).Scan(&got); err != nil {
		return fmt.Errorf("try advisory lock %d: %w", p.key, err)
	}
	if !got {
		return errBusy
	}
	return nil
}

// connect opens the dedicated lock connection.
func (p *Postgres) connect(ctx context.Context) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(p.cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("leadership connection: %w", err)
	}
	cfg.RuntimeParams["application_name"] = "observer-leader"
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("leadership connection: %w", err)
	}
	// Let the server notice a vanished leader host within about 8s instead
	// of the kernel's default of two hours. Settings the server does not
	// know (tcp_user_timeout before PostgreSQL 12) or cannot apply (a Unix
	// socket) are skipped.
	for _, s := range []string{
		`SET tcp_keepalives_idle = 5`, `SET tcp_keepalives_interval = 1`,
		`SET tcp_keepalives_count = 3`, `SET tcp_user_timeout = 8000`,
	} {
		if _, err := conn.Exec(cctx, s); err != nil {
			p.log.Debug("leadership connection: setting skipped", "setting", s, "error", err)
		}
	}
	return conn, nil
}

func (p *Postgres) currentLeader(ctx context.Context, conn *pgx.Conn) (postgres.Leader, bool) {
	if conn == nil {
		return postgres.Leader{}, false
	}
	l, ok, err := postgres.LeaderOf(ctx, conn, p.cfg.Schema, p.cfg.Source, p.cfg.Group)
	if err != nil {
		return postgres.Leader{}, false
	}
	return l, ok
}

// lease keeps an acquired lock: its session must still hold it.
func (p *Postgres) lease(parent context.Context, conn *pgx.Conn, epoch int64) *Lease {
	return hold(parent, epoch, p.log, p.cfg.CheckInterval,
		func() error { return p.check(conn) },
		func(ctx context.Context) error {
			if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, p.key); err != nil {
				return fmt.Errorf("release advisory lock %d: %w", p.key, err)
			}
			return nil
		},
		func() { _ = conn.Close(context.Background()) }) // closing frees the lock anyway
}

// check confirms that the lock session is alive and still holds the lock.
func (p *Postgres) check(conn *pgx.Conn) error {
	ctx, cancel := context.WithTimeout(context.Background(), max(p.cfg.CheckInterval, time.Second))
	defer cancel()
	var held bool
	err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()
		AND granted AND objsubid = 1 AND classid = (($1::bigint >> 32) & 4294967295)::bigint::oid
		AND objid = ($1::bigint & 4294967295)::bigint::oid)`, p.key).Scan(&held)
	if err != nil {
		return fmt.Errorf("lock connection: %w", err)
	}
	if !held {
		return fmt.Errorf("advisory lock %d is no longer held by this session", p.key)
	}
	return nil
}
