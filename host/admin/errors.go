package admin

import (
	"errors"
	"net/http"
	"strconv"
)

// Errors a Backend returns to choose the HTTP status.
var (
	// ErrNotFound: Backend.Event knows no such event (404).
	ErrNotFound = errors.New("not found")
	// ErrReloadBusy: a reload is already running (409).
	ErrReloadBusy = errors.New("a reload is already in progress")
	// ErrUnavailable: the instance cannot answer now, e.g. no engine has
	// started yet or it is stopping (503).
	ErrUnavailable = errors.New("not available now")
)

// RefusedError says a reload was refused (bad configuration, a plugin
// that does not load) and the running configuration was kept (422).
type RefusedError struct{ Err error }

func (e *RefusedError) Error() string {
	return "new configuration refused, the running one is kept: " + e.Err.Error()
}

func (e *RefusedError) Unwrap() error { return e.Err }

// Refused wraps err as a RefusedError; nil stays nil.
func Refused(err error) error {
	if err == nil {
		return nil
	}
	return &RefusedError{Err: err}
}

// InvalidIDError is an event id that is not SOURCE:POSITION (400).
type InvalidIDError struct{ ID string }

func (e *InvalidIDError) Error() string {
	return "event id " + quote(e.ID) + " is not SOURCE:POSITION (such as main:42)"
}

func quote(s string) string {
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return strconv.Quote(s)
}

// statusOf maps a Backend error to an HTTP status.
func statusOf(err error) int {
	var refused *RefusedError
	var bad *InvalidIDError
	switch {
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.As(err, &bad):
		return http.StatusBadRequest
	case errors.Is(err, ErrReloadBusy):
		return http.StatusConflict
	case errors.As(err, &refused):
		return http.StatusUnprocessableEntity
	case errors.Is(err, ErrUnavailable):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}
