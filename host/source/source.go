// Package source defines the contract between change-capture sources and
// the engine, and the durable state they share (cursor, dead letters).
//
// Lifecycle of an event, which every implementation keeps:
//
//	row committed in the watched database
//	→ Source.Read returns it in a Batch (never before its transaction commits)
//	→ engine processes it (filters, action, effects, retries)
//	→ finished: every effect done, or the event dead-lettered
//	→ the engine's checkpoint moves past it (Store.SaveCursor).
//
// An event not finished when the process dies is read again after restart,
// because the saved Cursor still lists it as pending.
package source

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/fraiseql/observer/host/event"
)

// Cursor is a source's durable read position. Every position ≤ Through
// is finished, except those listed in Pending, which must be read (again)
// after a restart. Pending holds both events that were delivered but not
// finished and holes: positions below Through whose rows were not yet
// visible (an uncommitted transaction) when a higher one was read.
type Cursor struct {
	Through uint64   `json:"through"`
	Pending []uint64 `json:"pending,omitempty"`
}

// Normalize sorts and de-duplicates Pending and drops entries above Through.
func (c Cursor) Normalize() Cursor {
	p := slices.Clone(c.Pending)
	slices.Sort(p)
	p = slices.Compact(p)
	p = slices.DeleteFunc(p, func(x uint64) bool { return x > c.Through })
	if len(p) == 0 {
		p = nil
	}
	return Cursor{Through: c.Through, Pending: p}
}

// Batch is what one Read returns.
type Batch struct {
	// Events in the order they must be processed (log order). An event
	// whose row could not be decoded has DecodeErr set on its Record.
	Records []Record
	// Frontier is the reader's own position after this batch: Through is
	// the highest position read, Pending the holes still unresolved.
	Frontier Cursor
}

// Record is one read row: the event, or why it could not be decoded.
type Record struct {
	Event *event.Event
	// DecodeErr is set when the row could not be turned into an Event; Event
	// then carries what could be read (at least ID, Position and Source) and
	// Raw the row as JSON, so the engine can dead-letter it with the reason.
	DecodeErr error
	Raw       json.RawMessage
}

// Source reads committed change events in log order.
//
// A Source is used by one goroutine at a time.
type Source interface {
	// Name is the configured source name, part of every event ID.
	Name() string
	// Open prepares reading from cur. It reconnects by itself later; Open
	// fails only for errors that retrying cannot fix (bad DSN, missing
	// change-log table).
	Open(ctx context.Context, cur Cursor) error
	// Read blocks until at least one record is available, the frontier
	// moves, or ctx is done. It returns at most max records. Transient
	// database errors are retried inside with backoff; Read returns an
	// error only when ctx is done or the source is closed.
	Read(ctx context.Context, max int) (Batch, error)
	// Close releases connections. Safe to call more than once.
	Close() error
}

// DeadLetter is an event parked after its last attempt or a permanent
// error, for one observer.
type DeadLetter struct {
	ID       int64           `json:"id"`
	Source   string          `json:"source"`
	Group    string          `json:"group"`
	Observer string          `json:"observer"`
	EventID  string          `json:"event_id"`
	Position uint64          `json:"position"`
	Event    json.RawMessage `json:"event"`
	// Effect is the index of the failing effect, -1 when the failure was
	// before any effect ran (decode, filter, action).
	Effect    int       `json:"effect"`
	Stage     string    `json:"stage"` // decode, filter, act, effect
	Error     string    `json:"error"`
	Attempts  int       `json:"attempts"`
	CreatedAt time.Time `json:"created_at"`
}

// DeadFilter narrows ListDead.
type DeadFilter struct {
	Source   string
	Group    string
	Observer string
	Limit    int // 0: no limit
}

// Store keeps a source's durable state: cursors per (source, group) and
// dead letters. By default it lives in the watched database.
//
// A Store is safe for concurrent use.
//
// Fencing: when the ctx of SaveCursor or PutDead carries an epoch
// (WithEpoch), the write is made only if that epoch is still the newest
// issued for its (source, group), atomically with the check; otherwise it
// returns a *FencedError and changes nothing. Without an epoch the write is
// made unconditionally.
type Store interface {
	// LoadCursor returns the saved cursor, or the zero Cursor and ok=false.
	LoadCursor(ctx context.Context, source, group string) (cur Cursor, ok bool, err error)
	SaveCursor(ctx context.Context, source, group string, cur Cursor) error
	PutDead(ctx context.Context, d DeadLetter) (int64, error)
	ListDead(ctx context.Context, f DeadFilter) ([]DeadLetter, error)
	GetDead(ctx context.Context, id int64) (DeadLetter, error)
	DeleteDead(ctx context.Context, ids ...int64) (int64, error)
	Close() error
}

// WithEpoch returns a copy of ctx that fences the Store writes made with
// it: SaveCursor and PutDead then succeed only while epoch is the newest
// leadership epoch issued for the (source, group) they write, and fail with
// a *FencedError once a newer one has been issued (another process took
// over). Without an epoch in ctx the writes are not fenced.
//
// The epoch travels in the context rather than in a Store wrapper so that
// every write made under a leadership (which runs under the lease's
// context, see host/leader) carries it, including the engine's final save
// made with context.WithoutCancel after the lease's context ended.
func WithEpoch(ctx context.Context, epoch int64) context.Context {
	return context.WithValue(ctx, epochKey{}, epoch)
}

// EpochFrom returns the epoch WithEpoch put in ctx.
func EpochFrom(ctx context.Context) (epoch int64, ok bool) {
	epoch, ok = ctx.Value(epochKey{}).(int64)
	return epoch, ok
}

type epochKey struct{}

// ErrFenced matches (errors.Is) every *FencedError.
var ErrFenced = errors.New("fenced: a newer leadership epoch has been issued")

// ErrDeposed is matched by every reason a process stops leading: a
// *FencedError, and the cause of a leadership lease's context when the
// lease was lost (host/leader). Work done under a ctx whose cause matches
// it belongs to another process now: an engine abandons it at once rather
// than draining it.
var ErrDeposed = errors.New("no longer the leader")

// FencedError refuses a write made under an epoch that is no longer the
// newest: the process that made it has been deposed, and its write would
// move the checkpoint (or park an event) behind the new leader's back.
// Retrying it cannot succeed.
type FencedError struct {
	Source, Group string
	Op            string // "save cursor", "put dead letter"
	Epoch         int64  // the epoch the write carried
	Current       int64  // the newest epoch issued (0: none)
}

func (e *FencedError) Error() string {
	if e.Current == 0 {
		return fmt.Sprintf("%s of source %q group %q refused: this process leads epoch %d but no epoch is recorded any more (the leader table was emptied or dropped)",
			e.Op, e.Source, e.Group, e.Epoch)
	}
	return fmt.Sprintf("%s of source %q group %q refused: this process leads epoch %d but epoch %d has been issued since (another instance took over)",
		e.Op, e.Source, e.Group, e.Epoch, e.Current)
}

// Is makes errors.Is(err, ErrFenced) and errors.Is(err, ErrDeposed) true.
func (e *FencedError) Is(target error) bool { return target == ErrFenced || target == ErrDeposed }

// DecodeError says why a change-log row could not become an event. It is
// carried in Record.DecodeErr, never returned from Read: a row that cannot
// be decoded is delivered (and dead-lettered by the engine), so it neither
// disappears nor blocks the rows after it.
type DecodeError struct {
	Source   string
	Position uint64
	Err      error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("source %s: decode change-log row %d: %v", e.Source, e.Position, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// ErrNotFound is returned by GetDead for an unknown id.
var ErrNotFound = errNotFound{}

type errNotFound struct{}

func (errNotFound) Error() string { return "not found" }
