package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fraiseql/observer/abi"
	"github.com/fraiseql/observer/host/event"
	"github.com/fraiseql/observer/host/source"
)

// Defaults for Config.
const (
	DefaultPollInterval = 200 * time.Millisecond
	DefaultBatchSize    = 1000
	DefaultRetryMin     = 50 * time.Millisecond
	DefaultRetryMax     = 5 * time.Second
)

// Config configures a Reader.
type Config struct {
	// Name is the source name, part of every event id.
	Name string
	// Path is the database file (DSN adds WAL and the busy timeout).
	Path string
	// PollInterval is the wait between reads that found nothing.
	PollInterval time.Duration
	// RetryMin and RetryMax bound the backoff after a failed read.
	RetryMin, RetryMax time.Duration
}

// Reader polls observer_change_log in id order.
//
// A Reader is used by one goroutine at a time; Close may be called after
// Read has returned.
type Reader struct {
	cfg Config
	log *slog.Logger

	mu     sync.Mutex
	db     *sql.DB
	closed bool

	through  uint64
	pending  []uint64 // ids from the cursor still to re-read, sorted
	failures int
}

var _ source.Source = (*Reader)(nil)

// New returns a Reader; it opens nothing until Open.
func New(cfg Config, logger *slog.Logger) *Reader {
	if logger == nil {
		logger = slog.Default()
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = DefaultRetryMin
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = max(DefaultRetryMax, cfg.RetryMin)
	}
	return &Reader{cfg: cfg, log: logger.With("source", cfg.Name)}
}

// Name returns the configured source name.
func (r *Reader) Name() string { return r.cfg.Name }

// Open opens the database and checks that the change log exists. Reading
// starts with cur's pending ids, then everything above cur.Through.
func (r *Reader) Open(ctx context.Context, cur source.Cursor) error {
	if r.cfg.Name == "" {
		return errors.New("sqlite source: name is empty")
	}
	if r.cfg.Path == "" {
		return fmt.Errorf("sqlite source %q: path is empty", r.cfg.Name)
	}
	db, err := Open(ctx, r.cfg.Path)
	if err != nil {
		return fmt.Errorf("sqlite source %q: %w", r.cfg.Name, err)
	}
	// One connection: reads are sequential, and one WAL snapshot per query
	// is all the consistency needed.
	db.SetMaxOpenConns(1)
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'observer_change_log'`).Scan(&n); err != nil {
		db.Close()
		return fmt.Errorf("sqlite source %q: %w", r.cfg.Name, err)
	}
	if n == 0 {
		db.Close()
		return fmt.Errorf("sqlite source %q: change-log table observer_change_log does not exist in %s (run `observer capture install`?)", r.cfg.Name, r.cfg.Path)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		db.Close()
		return ErrClosed
	}
	if r.db != nil {
		r.db.Close()
	}
	r.db = db
	cur = cur.Normalize()
	r.through, r.pending = cur.Through, cur.Pending
	return nil
}

const selectCols = `SELECT id, entity, op, key, before, after, changed_fields, tenant, trace_context, commit_time FROM observer_change_log`

// Read returns the next batch in id order: first the cursor's pending ids
// (once, after Open), then new rows. SQLite runs one write transaction at a
// time, so ids become visible in order and there are no holes to track.
// Errors (a locked database) are retried with backoff; Read returns an
// error only when ctx is done or the Reader is closed.
func (r *Reader) Read(ctx context.Context, max int) (source.Batch, error) {
	if max <= 0 {
		max = DefaultBatchSize
	}
	for {
		r.mu.Lock()
		db, closed := r.db, r.closed
		r.mu.Unlock()
		if closed {
			return source.Batch{}, ErrClosed
		}
		if db == nil {
			return source.Batch{}, fmt.Errorf("sqlite source %q: Read before Open", r.cfg.Name)
		}
		if err := ctx.Err(); err != nil {
			return source.Batch{}, err
		}
		b, moved, err := r.readOnce(ctx, db, max)
		if err != nil {
			if ctx.Err() != nil {
				continue
			}
			r.failures++
			d := r.cfg.RetryMin
			for i := 1; i < r.failures && d < r.cfg.RetryMax; i++ {
				d *= 2
			}
			d = min(d, r.cfg.RetryMax)
			r.log.Warn("sqlite source: read failed, retrying", "attempt", r.failures, "retry_in", d, "error", err)
			sleep(ctx, d)
			continue
		}
		r.failures = 0
		if len(b.Records) > 0 || moved {
			return b, nil
		}
		sleep(ctx, r.cfg.PollInterval)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func (r *Reader) readOnce(ctx context.Context, db *sql.DB, max int) (source.Batch, bool, error) {
	var rows []row
	pending := r.pending
	moved := false
	if len(pending) > 0 {
		// Re-read at most max pending ids; those missing (pruned) are done.
		take := pending[:min(len(pending), max)]
		q := selectCols + ` WHERE id IN (` + strings.TrimSuffix(strings.Repeat("?,", len(take)), ",") + `) ORDER BY id`
		args := make([]any, len(take))
		for i, id := range take {
			args[i] = int64(id)
		}
		found, err := scanRows(ctx, db, q, args...)
		if err != nil {
			return source.Batch{}, false, fmt.Errorf("re-read pending ids: %w", err)
		}
		rows = found
		pending = pending[len(take):]
		moved = true
	}
	through := r.through
	if room := max - len(rows); room > 0 {
		found, err := scanRows(ctx, db, selectCols+` WHERE id > ? ORDER BY id LIMIT ?`, int64(through), room)
		if err != nil {
			return source.Batch{}, false, fmt.Errorf("read change log: %w", err)
		}
		if len(found) > 0 {
			through = uint64(found[len(found)-1].ID)
		}
		rows = append(rows, found...)
	}
	recs := make([]source.Record, len(rows))
	for i, rw := range rows {
		recs[i] = decodeRow(r.cfg.Name, rw)
	}
	r.through, r.pending = through, pending
	fr := source.Cursor{Through: through, Pending: slices.Clone(pending)}
	if len(fr.Pending) == 0 {
		fr.Pending = nil
	}
	return source.Batch{Records: recs, Frontier: fr}, moved, nil
}

// row is one change-log row; every column but id may be NULL (or hold
// anything: SQLite columns are not typed), which decodeRow reports.
type row struct {
	ID            int64
	Entity        sql.NullString
	Op            sql.NullString
	Key           sql.NullString
	Before        sql.NullString
	After         sql.NullString
	ChangedFields sql.NullString
	Tenant        sql.NullString
	TraceContext  sql.NullString
	CommitTime    sql.NullString
}

func scanRows(ctx context.Context, db *sql.DB, q string, args ...any) ([]row, error) {
	rs, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []row
	for rs.Next() {
		var rw row
		if err := rs.Scan(&rw.ID, &rw.Entity, &rw.Op, &rw.Key, &rw.Before, &rw.After, &rw.ChangedFields, &rw.Tenant, &rw.TraceContext, &rw.CommitTime); err != nil {
			return nil, fmt.Errorf("scan change-log row: %w", err)
		}
		out = append(out, rw)
	}
	return out, rs.Err()
}

func nsBytes(s sql.NullString) []byte {
	if !s.Valid {
		return nil
	}
	return []byte(s.String)
}

// decodeRow turns a row into a Record; a row that cannot be decoded keeps
// its id and position and carries the reason and the raw row.
func decodeRow(src string, r row) source.Record {
	pos := uint64(r.ID)
	ev := &event.Event{ID: event.ID(src, pos), Position: pos, Source: src}
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if r.ID <= 0 {
		bad("id %d is not positive", r.ID)
	}
	if r.Entity.String == "" {
		bad("entity is empty")
	}
	ev.Entity, ev.Key, ev.Tenant = r.Entity.String, r.Key.String, r.Tenant.String
	if op := abi.Operation(r.Op.String); op.Valid() {
		ev.Op = op
	} else {
		bad("op %q is not INSERT, UPDATE or DELETE", r.Op.String)
	}
	var err error
	if ev.Before, err = event.DecodeImage(nsBytes(r.Before)); err != nil {
		bad("before: %w", err)
	}
	if ev.After, err = event.DecodeImage(nsBytes(r.After)); err != nil {
		bad("after: %w", err)
	}
	if b := bytes.TrimSpace(nsBytes(r.ChangedFields)); len(b) > 0 && !bytes.Equal(b, []byte("null")) {
		if err := json.Unmarshal(b, &ev.ChangedFields); err != nil {
			bad("changed fields: not an array of strings: %w", err)
		}
	}
	if t, err := time.Parse(time.RFC3339Nano, r.CommitTime.String); err != nil {
		bad("commit time %q: %w", r.CommitTime.String, err)
	} else {
		ev.CommitTime = t.UTC().Format(time.RFC3339Nano)
	}
	if tc, err := event.DecodeImage(nsBytes(r.TraceContext)); err != nil {
		bad("trace context: %w", err)
	} else if tc != nil {
		var t abi.TraceContext
		t.Traceparent, _ = tc["traceparent"].(string)
		t.Tracestate, _ = tc["tracestate"].(string)
		if !t.IsZero() {
			ev.Trace = &t
		}
	}
	if len(errs) == 0 {
		return source.Record{Event: ev}
	}
	raw, merr := json.Marshal(map[string]any{
		"id": r.ID, "entity": r.Entity.String, "op": r.Op.String, "key": r.Key.String,
		"before": r.Before.String, "after": r.After.String, "changed_fields": r.ChangedFields.String,
		"tenant": r.Tenant.String, "trace_context": r.TraceContext.String, "commit_time": r.CommitTime.String,
	})
	if merr != nil {
		raw = fmt.Appendf(nil, `{"id":%d}`, r.ID)
	}
	return source.Record{Event: ev, DecodeErr: &source.DecodeError{Source: src, Position: pos, Err: errors.Join(errs...)}, Raw: raw}
}

// Close closes the database. Safe to call more than once.
func (r *Reader) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	if r.db != nil {
		err := r.db.Close()
		r.db = nil
		return err
	}
	return nil
}
