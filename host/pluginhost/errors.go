package pluginhost

import (
	"errors"
	"fmt"

	"github.com/fraiseql/observer/abi"
)

// ErrorKind classifies a failed call. The engine decides from the kind
// (through CallError.Permanent), never from the message.
type ErrorKind int

const (
	// KindTrap: the guest trapped (unreachable, out-of-bounds access, a Go
	// panic, proc_exit) or misused a kernel import. A bug in the plugin or
	// a transient state: retried, then dead-lettered.
	KindTrap ErrorKind = iota + 1
	// KindTimeout: the call ran past Limits.Timeout and was stopped.
	KindTimeout
	// KindMemory: the guest hit Limits.MemoryBytes (its linear memory or
	// its kernel memory).
	KindMemory
	// KindOutputTooLarge: the guest set an output above Limits.MaxOutputBytes.
	KindOutputTooLarge
	// KindBadOutput: the output is not valid JSON or not a result of this
	// ABI (wrong major, missing fields, unknown or undeclared effect).
	KindBadOutput
	// KindGuest: the guest reported an error: an error result, error_set,
	// or a non-zero return code.
	KindGuest
	// KindMissingExport: the export does not exist or has the wrong signature.
	KindMissingExport
	// KindDenied: the guest called a host function observer does not grant
	// (http_request: plugins return http effects instead).
	KindDenied
	// KindCanceled: the caller's context ended before or during the call.
	KindCanceled
)

func (k ErrorKind) String() string {
	switch k {
	case KindTrap:
		return "trap"
	case KindTimeout:
		return "timeout"
	case KindMemory:
		return "memory limit"
	case KindOutputTooLarge:
		return "output too large"
	case KindBadOutput:
		return "bad output"
	case KindGuest:
		return "guest error"
	case KindMissingExport:
		return "missing export"
	case KindDenied:
		return "denied"
	case KindCanceled:
		return "canceled"
	}
	return fmt.Sprintf("ErrorKind(%d)", int(k))
}

// CallError is the error of a failed plugin call. It names the plugin and
// the export, and for limits the limit.
type CallError struct {
	Plugin string
	Export string
	Kind   ErrorKind
	// Err is the cause. For KindGuest it is an *abi.Error.
	Err error
}

func (e *CallError) Error() string {
	return fmt.Sprintf("plugin %q: %s: %s: %v", e.Plugin, e.Export, e.Kind, e.Err)
}

func (e *CallError) Unwrap() error { return e.Err }

// Permanent reports whether retrying the same input cannot help: a guest
// error that is not marked retryable, a missing export, bad output, or a
// denied host function. Traps, timeouts, memory and output limits and
// cancellation are not permanent: the engine retries them and dead-letters
// the event after its last attempt.
func (e *CallError) Permanent() bool {
	switch e.Kind {
	case KindMissingExport, KindBadOutput, KindDenied:
		return true
	case KindGuest:
		var ae *abi.Error
		if errors.As(e.Err, &ae) {
			return !ae.Retryable
		}
		return true
	}
	return false
}

// ErrClosed is returned by calls on a closed Plugin or Host.
var ErrClosed = errors.New("plugin host closed")

// LoadError is the error of a refused plugin. It names the file.
type LoadError struct {
	Path string
	Err  error
}

func (e *LoadError) Error() string { return fmt.Sprintf("load plugin %s: %v", e.Path, e.Err) }

func (e *LoadError) Unwrap() error { return e.Err }
