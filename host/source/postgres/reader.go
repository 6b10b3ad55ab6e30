package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fraiseql/observer/host/source"
)

// Modes of Config.Mode.
const (
	ModeNative   = "native"
	ModeFraiseQL = "fraiseql"
)

// Defaults for Config.
const (
	DefaultPollInterval  = time.Second
	DefaultBatchSize     = 1000
	DefaultReconnectMin  = 100 * time.Millisecond
	DefaultReconnectMax  = 10 * time.Second
	DefaultQueryTimeout  = 30 * time.Second
	DefaultFraiseQLTable = "tb_entity_change_log"
	DefaultFraiseQLSchem = "core"
)

// Config configures a Reader.
type Config struct {
	// Name is the source name, part of every event id.
	Name string
	DSN  string
	// Schema holding the change log: default "observer" (native) or "core"
	// (fraiseql).
	Schema string
	// Table is the change-log table: default "change_log" (native) or
	// "tb_entity_change_log" (fraiseql).
	Table string
	// Channel to LISTEN on for wake-ups: default "observer_events" in native
	// mode; none in fraiseql mode (polling only) unless set.
	Channel string
	// PollInterval bounds the wait between reads when no NOTIFY arrives;
	// it is also how soon a rolled-back transaction's hole is dropped.
	PollInterval time.Duration
	// Mode is "native" (the change log Install creates, the default) or
	// "fraiseql" (an existing FraiseQL core.tb_entity_change_log).
	Mode string
	// ReconnectMin and ReconnectMax bound the exponential backoff after a
	// failed read or connection.
	ReconnectMin, ReconnectMax time.Duration
	// QueryTimeout bounds one read, so a silently dead connection is
	// noticed; default 30s.
	QueryTimeout time.Duration
}

func (c *Config) defaults() error {
	if c.Name == "" {
		return errors.New("postgres source: name is empty")
	}
	switch c.Mode {
	case "", ModeNative:
		c.Mode = ModeNative
		if c.Schema == "" {
			c.Schema = DefaultSchema
		}
		if c.Table == "" {
			c.Table = "change_log"
		}
		if c.Channel == "" {
			c.Channel = DefaultChannel
		}
	case ModeFraiseQL:
		if c.Schema == "" {
			c.Schema = DefaultFraiseQLSchem
		}
		if c.Table == "" {
			c.Table = DefaultFraiseQLTable
		}
	default:
		return fmt.Errorf("postgres source %q: mode %q is not %q or %q", c.Name, c.Mode, ModeNative, ModeFraiseQL)
	}
	if c.PollInterval <= 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.ReconnectMin <= 0 {
		c.ReconnectMin = DefaultReconnectMin
	}
	if c.ReconnectMax < c.ReconnectMin {
		c.ReconnectMax = max(DefaultReconnectMax, c.ReconnectMin)
	}
	if c.QueryTimeout <= 0 {
		c.QueryTimeout = DefaultQueryTimeout
	}
	return nil
}

// Reader reads a trigger change log (or a FraiseQL one) in id order,
// delivering every committed row exactly once per run, including rows whose
// transaction commits after a higher id was read. See the package doc.
//
// A Reader is used by one goroutine at a time; Close may be called after
// Read has returned (cancel Read's context first).
type Reader struct {
	cfg     Config
	cfgErr  error
	log     *slog.Logger
	connCfg *pgx.ConnConfig

	// Queries built at Open from the mode and the table's columns.
	selectNew, selectHoles string

	mu     sync.Mutex // guards conn and closed against a concurrent Close
	conn   *pgx.Conn
	closed bool

	pos      frontier
	opened   bool
	failures int // consecutive failed attempts, for backoff and logging
}

var _ source.Source = (*Reader)(nil)

// New returns a Reader; it opens nothing until Open.
func New(cfg Config, logger *slog.Logger) *Reader {
	if logger == nil {
		logger = slog.Default()
	}
	err := cfg.defaults()
	return &Reader{cfg: cfg, cfgErr: err, log: logger.With("source", cfg.Name, "mode", cfg.Mode)}
}

// Name returns the configured source name.
func (r *Reader) Name() string { return r.cfg.Name }

// Open connects, checks that the change log exists and sets the position to
// cur: Through and every pending id are read again from there. While the
// database is unreachable Open keeps retrying with backoff until ctx is done;
// it fails at once for a bad DSN, a missing database, role or table.
func (r *Reader) Open(ctx context.Context, cur source.Cursor) error {
	if r.cfgErr != nil {
		return r.cfgErr
	}
	cc, err := pgx.ParseConfig(r.cfg.DSN)
	if err != nil {
		// The parse error masks any password in the DSN.
		return fmt.Errorf("postgres source %q: %w", r.cfg.Name, err)
	}
	if _, ok := cc.RuntimeParams["application_name"]; !ok {
		cc.RuntimeParams["application_name"] = "observer-reader:" + r.cfg.Name
	}
	r.connCfg = cc
	for {
		err := r.connect(ctx)
		if err == nil {
			err = r.prepareQueries(ctx)
		}
		if err == nil {
			break
		}
		r.dropConn()
		if ctx.Err() != nil {
			return fmt.Errorf("postgres source %q: open: %w", r.cfg.Name, ctx.Err())
		}
		if permanent(err) {
			return fmt.Errorf("postgres source %q: open %s.%s: %w", r.cfg.Name, r.cfg.Schema, r.cfg.Table, err)
		}
		if err := r.backoff(ctx, err); err != nil {
			return fmt.Errorf("postgres source %q: open: %w", r.cfg.Name, err)
		}
	}
	r.pos = newFrontier(cur)
	r.opened = true
	return nil
}

// connect opens the dedicated connection and LISTENs before anything is
// read, so a commit is either seen by the next read or wakes it.
func (r *Reader) connect(ctx context.Context) error {
	r.mu.Lock()
	closed := r.closed
	r.mu.Unlock()
	if closed {
		return ErrClosed
	}
	cctx, cancel := context.WithTimeout(ctx, r.cfg.QueryTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, r.connCfg)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	if r.cfg.Channel != "" {
		if _, err := conn.Exec(cctx, "LISTEN "+pgx.Identifier{r.cfg.Channel}.Sanitize()); err != nil {
			conn.Close(context.Background())
			return fmt.Errorf("listen %q: %w", r.cfg.Channel, err)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		conn.Close(context.Background())
		return ErrClosed
	}
	r.conn = conn
	return nil
}

func (r *Reader) dropConn() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		r.conn.Close(ctx)
		cancel()
		r.conn = nil
	}
}

// prepareQueries checks the change-log table and builds the two SELECTs.
func (r *Reader) prepareQueries(ctx context.Context) error {
	qctx, cancel := context.WithTimeout(ctx, r.cfg.QueryTimeout)
	defer cancel()
	sel, idCol, err := buildSelect(qctx, r.conn, &r.cfg)
	if err != nil {
		return err
	}
	r.selectNew = sel + " WHERE " + idCol + " > $1 ORDER BY " + idCol + " LIMIT $2"
	r.selectHoles = sel + " WHERE " + idCol + " = ANY($1) ORDER BY " + idCol
	return nil
}

// querier is what buildSelect and scanRows need of a connection, a pool or
// a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// buildSelect checks cfg's change-log table and returns the SELECT (without
// WHERE) that reads its rows in scanRows' column order, and the id column.
// In fraiseql mode, optional columns missing from older FraiseQL versions
// read as NULL.
func buildSelect(ctx context.Context, q querier, cfg *Config) (sel, idCol string, err error) {
	table := pgx.Identifier{cfg.Schema, cfg.Table}.Sanitize()
	rows, err := q.Query(ctx, `SELECT attname FROM pg_attribute
		WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped`, table)
	if err != nil {
		return "", "", fmt.Errorf("read columns of %s: %w", table, err)
	}
	cols, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return "", "", fmt.Errorf("read columns of %s: %w", table, err)
	}
	if len(cols) == 0 {
		return "", "", fmt.Errorf("change-log table %s does not exist (run `observer capture install`?): %w", table, errUndefinedTable)
	}
	have := map[string]bool{}
	for _, c := range cols {
		have[c] = true
	}
	col := func(name, expr, null string, required bool) (string, error) {
		if have[name] {
			return expr, nil
		}
		if required {
			return "", fmt.Errorf("change-log table %s has no column %q: %w", table, name, errUndefinedTable)
		}
		return null, nil
	}
	var spec [][4]string // name, expression, NULL substitute, required
	if cfg.Mode == ModeNative {
		idCol = "id"
		spec = [][4]string{
			{"id", "id", "", "y"},
			{"txid", "txid::text", "NULL::text", ""},
			{"entity", "entity", "", "y"},
			{"op", "op", "", "y"},
			{"key", "key", "", "y"},
			{"before", "before::text", "NULL::text", "y"},
			{"after", "after::text", "NULL::text", "y"},
			{"changed_fields", "to_jsonb(changed_fields)::text", "NULL::text", ""},
			{"tenant", "tenant", "NULL::text", ""},
			{"trace_context", "trace_context::text", "NULL::text", ""},
			{"commit_time", "commit_time", "", "y"},
		}
	} else {
		idCol = "pk_entity_change_log"
		spec = [][4]string{
			{"pk_entity_change_log", "pk_entity_change_log", "", "y"},
			{"", "NULL::text", "", ""}, // FraiseQL records no transaction id
			{"object_type", "object_type::text", "", "y"},
			{"modification_type", "modification_type::text", "", "y"},
			{"object_id", "object_id::text", "NULL::text", ""},
			{"object_data_before", "to_jsonb(object_data_before)::text", "NULL::text", ""},
			{"object_data", "to_jsonb(object_data)::text", "NULL::text", ""},
			{"updated_fields", "to_jsonb(updated_fields)::text", "NULL::text", ""},
			{"tenant_id", "tenant_id::text", "NULL::text", ""},
			{"trace_context", "to_jsonb(trace_context)::text", "NULL::text", ""},
			{"created_at", "created_at", "", "y"},
		}
	}
	exprs := make([]string, len(spec))
	for i, s := range spec {
		if s[0] == "" {
			exprs[i] = s[1]
			continue
		}
		e, err := col(s[0], s[1], s[2], s[3] == "y")
		if err != nil {
			return "", "", err
		}
		exprs[i] = e
	}
	return "SELECT " + strings.Join(exprs, ", ") + " FROM " + table, idCol, nil
}

// Read returns the next batch: rows of resolved holes first, then new rows,
// all in id order, at most max (DefaultBatchSize when max <= 0). It waits
// for a NOTIFY or the poll interval when there is nothing new, and retries
// database errors with backoff, reconnecting and resuming from its
// in-memory position; it returns an error only when ctx is done or the
// Reader is closed.
func (r *Reader) Read(ctx context.Context, max int) (source.Batch, error) {
	if !r.opened {
		return source.Batch{}, fmt.Errorf("postgres source %q: Read before Open", r.cfg.Name)
	}
	if max <= 0 {
		max = DefaultBatchSize
	}
	for {
		r.mu.Lock()
		closed, conn := r.closed, r.conn
		r.mu.Unlock()
		if closed {
			return source.Batch{}, ErrClosed
		}
		if err := ctx.Err(); err != nil {
			return source.Batch{}, err
		}
		if conn == nil {
			if err := r.connect(ctx); err != nil {
				// Closed and ctx done are reported at the top of the loop.
				if !errors.Is(err, ErrClosed) && ctx.Err() == nil {
					_ = r.backoff(ctx, err)
				}
				continue
			}
			if r.failures > 0 {
				r.log.Info("postgres source: reconnected", "after_failures", r.failures)
			}
			continue
		}
		b, moved, err := r.readOnce(ctx, conn, max)
		if err != nil {
			r.dropConn()
			if ctx.Err() != nil {
				continue
			}
			_ = r.backoff(ctx, err)
			continue
		}
		r.failures = 0
		if len(b.Records) > 0 || moved {
			return b, nil
		}
		if err := r.wait(ctx, conn); err != nil {
			r.dropConn()
			if ctx.Err() != nil {
				continue
			}
			_ = r.backoff(ctx, err)
		}
	}
}

// backoff logs the failure (once, here) and sleeps the next backoff step.
// It returns ctx's error if ctx ends first.
func (r *Reader) backoff(ctx context.Context, cause error) error {
	r.failures++
	d := r.cfg.ReconnectMin
	for i := 1; i < r.failures && d < r.cfg.ReconnectMax; i++ {
		d *= 2
	}
	d = min(d, r.cfg.ReconnectMax)
	r.log.Warn("postgres source: database error, retrying", "attempt", r.failures, "retry_in", d, "error", cause)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// wait blocks until a notification arrives, the poll interval passes or ctx
// is done. Queued notifications are drained: one read serves them all.
func (r *Reader) wait(ctx context.Context, conn *pgx.Conn) error {
	wctx, cancel := context.WithTimeout(ctx, r.cfg.PollInterval)
	defer cancel()
	if r.cfg.Channel == "" {
		<-wctx.Done()
		return nil
	}
	_, err := conn.WaitForNotification(wctx)
	if err != nil {
		if ctx.Err() == nil && wctx.Err() != nil && !conn.IsClosed() {
			return nil // poll interval elapsed; the connection is still good
		}
		return fmt.Errorf("wait for notification: %w", err)
	}
	done, stop := context.WithCancel(ctx)
	stop()
	for {
		// With a done context only already-received notifications return.
		if n, err := conn.WaitForNotification(done); err != nil || n == nil {
			return nil
		}
	}
}

// readOnce runs one read transaction. The position is changed only if the
// whole transaction succeeds, so a failure mid-way delivers nothing twice.
func (r *Reader) readOnce(ctx context.Context, conn *pgx.Conn, max int) (source.Batch, bool, error) {
	qctx, cancel := context.WithTimeout(ctx, r.cfg.QueryTimeout)
	defer cancel()
	tx, err := conn.BeginTx(qctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return source.Batch{}, false, fmt.Errorf("begin read: %w", err)
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck // read only; no-op after commit

	// The snapshot is the transaction's, taken at its first statement, so
	// every SELECT below sees exactly what xmin describes: every
	// transaction id below it has ended.
	var xminText string
	if err := tx.QueryRow(qctx, `SELECT pg_snapshot_xmin(pg_current_snapshot())::text`).Scan(&xminText); err != nil {
		return source.Batch{}, false, fmt.Errorf("read snapshot: %w", err)
	}
	xmin, err := strconv.ParseUint(xminText, 10, 64)
	if err != nil {
		return source.Batch{}, false, fmt.Errorf("parse snapshot xmin %q: %w", xminText, err)
	}

	next := r.pos.clone()
	var rows []row
	if holes := next.holeIDs(); len(holes) > 0 {
		ids := make([]int64, len(holes))
		for i, h := range holes {
			ids[i] = int64(h)
		}
		found, err := scanRows(qctx, tx, r.selectHoles, ids)
		if err != nil {
			return source.Batch{}, false, fmt.Errorf("re-read holes: %w", err)
		}
		visible := make(map[uint64]bool, len(found))
		for _, f := range found {
			visible[uint64(f.ID)] = true
		}
		// A hole row delivered now comes after rows with higher ids that
		// were delivered earlier. That cannot reorder one key: a later
		// change to the same row waits for the earlier transaction's row
		// lock before its trigger draws an id, so whenever a higher id of
		// the same key was visible, this one was visible too and was never
		// a hole. Within this batch the order is plain id order: every
		// hole is below through, every new row above it.
		if len(found) > max {
			found = found[:max]
		}
		delivered := make([]uint64, len(found))
		for i, f := range found {
			delivered[i] = uint64(f.ID)
		}
		next.resolveHoles(xmin, visible, delivered)
		rows = found
	}
	if room := max - len(rows); room > 0 {
		found, err := scanRows(qctx, tx, r.selectNew, int64(next.through), room)
		if err != nil {
			return source.Batch{}, false, fmt.Errorf("read change log: %w", err)
		}
		ids := make([]uint64, len(found))
		for i, f := range found {
			ids[i] = uint64(f.ID)
		}
		next.advance(ids)
		rows = append(rows, found...)
	}
	if err := tx.Commit(qctx); err != nil {
		return source.Batch{}, false, fmt.Errorf("end read: %w", err)
	}
	if next.unstamped() {
		// Stamp the new holes with a transaction id assigned now, after the
		// snapshot that found them missing, in its own committed
		// transaction. See doc.go for why the snapshot's xmax is not
		// enough. It costs one transaction id per read that finds holes.
		var xidText string
		if err := conn.QueryRow(qctx, `SELECT pg_current_xact_id()::text`).Scan(&xidText); err != nil {
			return source.Batch{}, false, fmt.Errorf("stamp holes: %w", err)
		}
		xid, err := strconv.ParseUint(xidText, 10, 64)
		if err != nil {
			return source.Batch{}, false, fmt.Errorf("parse transaction id %q: %w", xidText, err)
		}
		next.stamp(xid)
	}

	mode := decodeNative
	if r.cfg.Mode == ModeFraiseQL {
		mode = decodeFraiseQL
	}
	recs := make([]source.Record, 0, len(rows))
	for _, rw := range rows {
		rec, skip := decodeRow(r.cfg.Name, mode, rw)
		if !skip {
			recs = append(recs, rec)
		}
	}
	moved := !next.equal(r.pos)
	r.pos = next
	return source.Batch{Records: recs, Frontier: next.cursor()}, moved, nil
}

func scanRows(ctx context.Context, q querier, sql string, args ...any) ([]row, error) {
	rs, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []row
	for rs.Next() {
		var rw row
		var before, after, changed, trace *string
		if err := rs.Scan(&rw.ID, &rw.TxID, &rw.Entity, &rw.Op, &rw.Key, &before, &after, &changed, &rw.Tenant, &trace, &rw.CommitTime); err != nil {
			return nil, fmt.Errorf("scan change-log row: %w", err)
		}
		rw.Before, rw.After, rw.ChangedFields, rw.TraceContext = bytesOf(before), bytesOf(after), bytesOf(changed), bytesOf(trace)
		out = append(out, rw)
	}
	return out, rs.Err()
}

func bytesOf(s *string) []byte {
	if s == nil {
		return nil
	}
	return []byte(*s)
}

// Frontier returns the reader's current position (what the last Batch
// reported).
func (r *Reader) Frontier() source.Cursor { return r.pos.cursor() }

// Close closes the connection. Safe to call more than once.
func (r *Reader) Close() error {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.dropConn()
	return nil
}
