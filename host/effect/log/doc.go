// Package log executes "log" effects: a plugin asks for a line in the
// host's structured log, and the Executor writes exactly one slog record per
// effect, at the requested level, with the plugin's fields in a "fields"
// group (so they can never shadow the host's attributes) and the event_id,
// observer, plugin and effect attributes that tie the line to its event.
//
// The observer's http secret (effect.Policy.Secret), should a plugin's
// config hold a copy, is replaced by REDACTED in the message and fields.
//
// A log effect with an unknown level or no message is a permanent error:
// retrying the same plugin output cannot fix it. Writing never fails
// otherwise, so a log effect is never retried.
package log
