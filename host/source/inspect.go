package source

import (
	"context"
	"time"
)

// Head describes the newest end of a change log, for lag: how far the
// checkpoint is behind the source.
type Head struct {
	// Position is the highest position in the log (0: the log is empty).
	Position uint64
	// Behind is the number of rows above the checkpoint's Through (an
	// upper bound on the events still to process: a rolled-back
	// transaction leaves a gap in positions).
	Behind int64
	// OldestUnread is the commit time of the first row above Through, zero
	// when there is none. now − OldestUnread is the lag in seconds.
	OldestUnread time.Time
}

// Inspector reads a change log outside the engine's reading order: its head
// (for lag), a single event (for `observer debug-event`) and the dead-letter
// count. It is safe for concurrent use, and separate from the Source, which
// belongs to the engine's read loop.
type Inspector interface {
	// Head returns the log's head relative to through (the checkpoint).
	Head(ctx context.Context, through uint64) (Head, error)
	// Event reads the row at position and decodes it as the Source would.
	// It returns ErrNotFound when there is no such row (never written,
	// rolled back or pruned). A row that cannot be decoded returns its
	// Record with DecodeErr set.
	Event(ctx context.Context, position uint64) (Record, error)
	// DeadCount returns the number of dead letters of (source, group).
	DeadCount(ctx context.Context, source, group string) (int64, error)
}

// DoneRecord says that one observer finished one event, so that the event
// delivered again after a crash does not repeat that observer's effects.
type DoneRecord struct {
	Position uint64
	EventID  string
	Observer string
	// Outcome is how the unit finished: "done" or "dead_lettered".
	Outcome string
}

// DedupStore keeps DoneRecords durably (in the same database as the
// checkpoint). Implemented by the PostgreSQL and SQLite stores.
type DedupStore interface {
	// MaxDone returns the highest position with a record for (source,
	// group), 0 when there is none: events above it cannot be re-deliveries.
	MaxDone(ctx context.Context, source, group string) (uint64, error)
	// Completed returns the records of the given positions.
	Completed(ctx context.Context, source, group string, positions []uint64) ([]DoneRecord, error)
	// RecordDone stores recs; a record already present is kept.
	RecordDone(ctx context.Context, source, group string, recs []DoneRecord) error
	// PruneDone deletes the records of (source, group) written before
	// before, returning how many went.
	PruneDone(ctx context.Context, source, group string, before time.Time) (int64, error)
}
