// Package journal keeps an in-memory history of the latest events the
// engine handled, for `observer debug-event`: the event as read (its row
// images), every observer's routing decision and reason, each filter call
// (pass, reason, duration, error), the action (effect count, duration,
// error), every effect attempt (type, status code, duration, error,
// idempotency key), the retries, the dead letters and the final outcome.
//
// # Lifecycle of an entry
//
//	Routed hook: the entry is created with the event and the decisions
//	  (the oldest entry is evicted when the journal is full)
//	→ PluginDone, EffectDone, RetryScheduled, DeadLettered: appended to
//	  the observer's record in the entry
//	→ UnitFinished: the observer's outcome and stage timings
//	→ EventFinished: the event's outcome and timings
//	→ evicted once Size newer events were read.
//
// A hook for an event the journal does not hold (evicted, or read before
// the journal was attached) starts a partial entry without the event.
//
// # Cost and bounds
//
// Memory is bounded by the number of entries (Options.Size) and, inside an
// entry, by MaxRecords per list (calls, attempts, retries): records past
// it are counted, not kept. An entry holds the *event.Event the engine
// read, not a copy, so its size is the event's own; events are never
// modified after they are read. The journal is split into shards by event
// id, each with its own lock and its own oldest-first eviction, so
// concurrent workers seldom wait for each other; the journal therefore
// holds about — not exactly — the latest Size events.
//
// Journal is safe for concurrent use. Reports are copies: later hooks do
// not change a Report already returned.
package journal
