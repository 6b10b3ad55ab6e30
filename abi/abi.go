package abi

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Version is the ABI version this package describes.
const (
	Major = 1
	Minor = 0
)

// VersionString is Version rendered as "MAJOR.MINOR", the form used in every
// payload's "abi" field.
var VersionString = fmt.Sprintf("%d.%d", Major, Minor)

// Role names; each role is one export of the same name.
const (
	RoleFilter = "filter"
	RoleAct    = "act"
)

// Export names other than roles.
const (
	ExportDescribe = "describe"
)

// ParseVersion parses "MAJOR.MINOR" (a bare "MAJOR" means MAJOR.0).
func ParseVersion(s string) (major, minor int, err error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, 0, fmt.Errorf("abi version is empty, want \"MAJOR.MINOR\" such as %q", VersionString)
	}
	maj, min, hasMinor := strings.Cut(s, ".")
	major, err = strconv.Atoi(maj)
	if err != nil || major < 0 {
		return 0, 0, fmt.Errorf("abi version %q: major %q is not a non-negative integer", s, maj)
	}
	if hasMinor {
		minor, err = strconv.Atoi(min)
		if err != nil || minor < 0 {
			return 0, 0, fmt.Errorf("abi version %q: minor %q is not a non-negative integer", s, min)
		}
	}
	return major, minor, nil
}

// Manifest is what the describe export returns.
type Manifest struct {
	// ABI is the version the plugin was written against, "MAJOR.MINOR".
	ABI     string   `json:"abi"`
	Name    string   `json:"name"`
	Version string   `json:"version"`
	Roles   []string `json:"roles"`
	// Capabilities the plugin asks for. The host grants the intersection of
	// this and what the operator configured.
	Capabilities Capabilities `json:"capabilities,omitzero"`
	// Description is free text for humans.
	Description string `json:"description,omitempty"`
}

// HasRole reports whether m declares role.
func (m *Manifest) HasRole(role string) bool {
	for _, r := range m.Roles {
		if r == role {
			return true
		}
	}
	return false
}

// Capabilities are the things a plugin may ask of the host.
type Capabilities struct {
	// Effects lists the effect types the plugin may return ("http", "log").
	Effects []string `json:"effects,omitempty"`
	// HTTPHosts lists hosts ("api.example.com", "127.0.0.1:8080") the
	// plugin's http effects may target. The operator's allow-list wins.
	HTTPHosts []string `json:"http_hosts,omitempty"`
	// Log asks for the log host functions.
	Log bool `json:"log,omitempty"`
	// Config asks for config_get.
	Config bool `json:"config,omitempty"`
}

// TraceContext is a W3C trace context.
type TraceContext struct {
	Traceparent string `json:"traceparent,omitempty"`
	Tracestate  string `json:"tracestate,omitempty"`
}

// IsZero reports whether no trace context is set.
func (t TraceContext) IsZero() bool { return t.Traceparent == "" && t.Tracestate == "" }

// CallContext is passed with every role call. Time comes from here, never
// from a clock in the guest, so replays are deterministic.
type CallContext struct {
	Observer string `json:"observer"`
	Plugin   string `json:"plugin"`
	Role     string `json:"role"`
	// Attempt counts from 1.
	Attempt int  `json:"attempt"`
	DryRun  bool `json:"dry_run,omitempty"`
	// Now is the host's time for this call, RFC 3339 with nanoseconds, UTC.
	Now   string        `json:"now"`
	Trace *TraceContext `json:"trace,omitempty"`
}

// Input is the JSON passed to every role export.
type Input struct {
	ABI     string          `json:"abi"`
	Context CallContext     `json:"context"`
	Event   *Event          `json:"event"`
	Config  json.RawMessage `json:"config,omitempty"`
}

// Error is how a plugin reports a failure in a result.
type Error struct {
	Message string `json:"message"`
	// Retryable asks the host to retry the call later (for example a
	// lookup that was not ready). False means the input can never succeed:
	// the host dead-letters the event at once.
	Retryable bool `json:"retryable,omitempty"`
	// Code is an optional machine-readable reason.
	Code string `json:"code,omitempty"`
}

func (e *Error) Error() string { return e.Message }

// FilterResult is the output of the filter role.
type FilterResult struct {
	ABI string `json:"abi,omitempty"`
	// Pass keeps the event for this observer; false drops it (not an error).
	Pass bool `json:"pass"`
	// Reason explains the decision, for debugging and dry runs.
	Reason string `json:"reason,omitempty"`
	Error  *Error `json:"error,omitempty"`
}

// ActResult is the output of the act role.
type ActResult struct {
	ABI     string   `json:"abi,omitempty"`
	Effects []Effect `json:"effects"`
	Error   *Error   `json:"error,omitempty"`
}

// Effect types.
const (
	EffectHTTP = "http"
	EffectLog  = "log"
)

// Effect is one thing the host should do on the plugin's behalf. Exactly
// the member named by Type is set.
type Effect struct {
	Type string      `json:"type"`
	HTTP *HTTPEffect `json:"http,omitempty"`
	Log  *LogEffect  `json:"log,omitempty"`
}

// HTTPEffect is an outgoing HTTP request executed by the host with
// retries, an Idempotency-Key header and (if configured) a signature.
type HTTPEffect struct {
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers,omitempty"`
	// Body is sent as is. BodyJSON, if set instead, is sent as JSON with
	// Content-Type application/json.
	Body     string          `json:"body,omitempty"`
	BodyJSON json.RawMessage `json:"body_json,omitempty"`
}

// LogEffect writes one structured log line through the host's logger.
type LogEffect struct {
	Level   string            `json:"level,omitempty"` // debug, info (default), warn, error
	Message string            `json:"message"`
	Fields  map[string]string `json:"fields,omitempty"`
}
