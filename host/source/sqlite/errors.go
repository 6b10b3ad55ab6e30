package sqlite

import (
	"errors"
)

// ErrClosed is returned by Read after Close.
var ErrClosed = errors.New("sqlite source: closed")
