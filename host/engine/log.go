package engine

import "log/slog"

// Structured-log field names. Every log line of the engine uses these keys,
// so that one grep or one query finds all lines of an event, an observer or
// a plugin. Keep them here, in one place.
const (
	logEventID  = "event_id"
	logPosition = "position"
	logObserver = "observer"
	logPlugin   = "plugin"
	logStage    = "stage"
	logAttempt  = "attempt"
	logEffect   = "effect"
	logType     = "effect_type"
	logError    = "error"
	logDelay    = "delay"
	logSource   = "source"
	logGroup    = "group"
	logThrough  = "through"
	logPending  = "pending"
	logStatus   = "status"
	logHost     = "host"
	logDryRun   = "dry_run"
)

// effectAttr is the effect index attribute, or nothing when the failure
// came before any effect (index -1).
func effectAttr(i int) slog.Attr {
	if i < 0 {
		return slog.Attr{}
	}
	return slog.Int(logEffect, i)
}
