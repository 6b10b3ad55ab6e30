package observer

import "github.com/fraiseql/observer/abi"

// The payload types are those of package abi, re-exported so that a plugin
// needs one import.
type (
	Input        = abi.Input
	CallContext  = abi.CallContext
	Event        = abi.Event
	Operation    = abi.Operation
	Manifest     = abi.Manifest
	Capabilities = abi.Capabilities
	FilterResult = abi.FilterResult
	ActResult    = abi.ActResult
	Effect       = abi.Effect
	HTTPEffect   = abi.HTTPEffect
	LogEffect    = abi.LogEffect
	Error        = abi.Error
	TraceContext = abi.TraceContext
)

// Operations.
const (
	OpInsert = abi.OpInsert
	OpUpdate = abi.OpUpdate
	OpDelete = abi.OpDelete
)

// Pass keeps the event, with a reason for dry runs and debugging.
func Pass(reason string) FilterResult { return FilterResult{Pass: true, Reason: reason} }

// Drop drops the event for this observer; that is a decision, not an error.
func Drop(reason string) FilterResult { return FilterResult{Pass: false, Reason: reason} }

// HTTP returns an http effect. The host executes it with retries and an
// Idempotency-Key header.
func HTTP(method, url string, headers map[string]string, body string) Effect {
	return Effect{Type: abi.EffectHTTP, HTTP: &HTTPEffect{Method: method, URL: url, Headers: headers, Body: body}}
}

// LogLine returns a log effect: one structured line written by the host.
func LogLine(level, message string, fields map[string]string) Effect {
	return Effect{Type: abi.EffectLog, Log: &LogEffect{Level: level, Message: message, Fields: fields}}
}
