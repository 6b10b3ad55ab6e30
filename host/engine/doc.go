// Package engine runs observers over the events of one source: route →
// filter* → act → effects, with per-key ordering, retries that never block
// other keys, dead-lettering, and the watermark that becomes the checkpoint.
//
// # Lifecycle of an event
//
//	Source.Read returns it in a batch
//	→ registered unfinished in the watermark (with the batch's frontier)
//	→ routed: every observer whose entity, operations and condition match
//	  gets one unit (observer, event); no match → finished at once
//	→ each unit waits in its queue, one queue per (observer, order key)
//	→ a worker runs the queue's head unit: filters in order, the action,
//	  then each effect through the executor of its type
//	→ the unit finishes: done, filtered out (a filter said no), or
//	  dead-lettered (Store.PutDead succeeded)
//	→ when its last unit finishes the event is finished and leaves the
//	  watermark's unfinished set
//	→ the next checkpoint's Pending no longer lists it, so it is never
//	  delivered again.
//
// A record the source could not decode is one unit of no observer that is
// dead-lettered with stage "decode"; a condition that fails to evaluate
// dead-letters its unit with stage "condition". Both are permanent.
//
// # Ordering and retries
//
// Only the head of a queue runs, so units of one observer and one order key
// (entity + key) run strictly in log order; queues of different keys run in
// parallel on Concurrency workers. When a step fails and may be retried, the
// worker arms a timer and goes back to serve other queues: the failing
// queue (and only it) waits, with its later units behind its head. That is
// the ordering promise, and it costs the other keys nothing.
//
// Each piece of work (one plugin call, one effect) gets the observer's
// Retry.MaxAttempts attempts; the attempt count restarts when a step
// succeeds. A retry resumes where the unit failed: filters that passed are
// not asked again, the action's result is kept, and effects already
// executed are not sent again. After the last attempt, or at once for a
// permanent error (resilience.Permanent; a plugin's non-retryable result
// error; an unknown effect type), the unit is dead-lettered. A store that
// refuses the dead letter is retried with backoff: a unit is never dropped.
//
// # Checkpoint
//
// The cursor saved is {Through: the latest frontier's Through, Pending: the
// frontier's holes ∪ the positions of unfinished events}. It is saved every
// CheckpointInterval when it changed, and once at stop. Reading pauses while
// MaxInFlight events are unfinished.
//
// # Stop
//
// Cancelling Run's context stops reading and starting units; units already
// running get ShutdownTimeout to finish (then their context is cancelled
// and they stay unfinished); retries waiting on a timer are abandoned. The
// final cursor is saved and the source closed. A clean stop therefore
// re-delivers nothing that finished, and a crash re-delivers at most what
// was unfinished at the last checkpoint.
//
// The engine imports no plugin runtime and no config: Filter, Actor and
// Condition are the small interfaces it needs, satisfied by
// *pluginhost.Plugin and *condition.Expr, wired by the CLI.
package engine
