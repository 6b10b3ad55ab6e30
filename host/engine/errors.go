package engine

import (
	"fmt"

	"github.com/fraiseql/observer/abi"
)

// Stages of the pipeline, as recorded in source.DeadLetter.Stage.
const (
	StageDecode    = "decode"
	StageCondition = "condition"
	StageFilter    = "filter"
	StageAct       = "act"
	StageEffect    = "effect"
)

// StageError is a failure of one step of an observer's pipeline for one
// event. It names where the failure happened; the wrapped error decides
// whether retrying can help (resilience.Permanent sees through Unwrap).
type StageError struct {
	Stage    string
	Observer string
	Plugin   string // empty for decode and condition
	// Effect is the index of the failing effect, -1 for other stages.
	Effect int
	Err    error
}

func (e *StageError) Error() string {
	var where string
	switch {
	case e.Stage == StageEffect:
		where = fmt.Sprintf("effect %d of plugin %q", e.Effect, e.Plugin)
	case e.Plugin != "":
		where = fmt.Sprintf("%s plugin %q", e.Stage, e.Plugin)
	default:
		where = e.Stage
	}
	if e.Observer == "" {
		return fmt.Sprintf("%s: %v", where, e.Err)
	}
	return fmt.Sprintf("observer %q: %s: %v", e.Observer, where, e.Err)
}

// Unwrap returns the underlying error.
func (e *StageError) Unwrap() error { return e.Err }

// PluginError is a failure a plugin reported in its result (abi.Error), as
// opposed to a failed call (trap, timeout), which the plugin host reports.
type PluginError struct {
	Plugin string
	Role   string
	Err    abi.Error
}

func (e *PluginError) Error() string {
	msg := e.Err.Message
	if msg == "" {
		msg = "(no message)"
	}
	if e.Err.Code != "" {
		return fmt.Sprintf("plugin %q %s reported error [%s]: %s", e.Plugin, e.Role, e.Err.Code, msg)
	}
	return fmt.Sprintf("plugin %q %s reported error: %s", e.Plugin, e.Role, msg)
}

// Permanent is true unless the plugin marked the error retryable.
func (e *PluginError) Permanent() bool { return !e.Err.Retryable }

// Unwrap lets errors.As reach the abi.Error.
func (e *PluginError) Unwrap() error { return &e.Err }
