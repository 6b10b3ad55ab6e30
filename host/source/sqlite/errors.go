package sqlite

import (
	"errors"
	"fmt"
)

// ErrClosed is returned by Read after Close.
var ErrClosed = errors.New("sqlite source: closed")

// DecodeError says why a change-log row could not become an event. It is
// carried in source.Record.DecodeErr: the row is delivered (and
// dead-lettered by the engine), never skipped.
type DecodeError struct {
	Source   string
	Position uint64
	Err      error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("source %s: decode change-log row %d: %v", e.Source, e.Position, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }
