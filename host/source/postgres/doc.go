// Package postgres captures committed changes from PostgreSQL through a
// trigger-filled change log, and keeps the observer's durable state (cursors,
// dead letters) in the same database.
//
// # Capture
//
// Install creates, in one transaction and idempotently, the schema
// (default "observer") with the change log <schema>.change_log, the state
// tables (checkpoint, dead_letter, captured_table) and a generic row trigger
// AFTER INSERT OR UPDATE OR DELETE on each named table. The trigger writes
// one log row per changed row: entity, op, key (the key columns' values as
// text, joined by ","), the before and after images (to_jsonb of OLD/NEW),
// the changed columns of an UPDATE (sorted), the tenant (a tenant column, or
// the writer's `observer.tenant` setting), the writer's W3C trace context
// from `SET LOCAL observer.traceparent = '00-…'` and `observer.tracestate`,
// its transaction id and clock_timestamp() as an approximation of the commit
// time (the real commit time is not visible to a trigger). The entity and
// key columns are trigger arguments, because on a partitioned table (Pagila's
// payment) the trigger is cloned to every partition and TG_TABLE_NAME names
// the partition. The first write of each transaction also queues a NOTIFY on
// the channel (default "observer_events"); PostgreSQL delivers it at commit.
// TRUNCATE is not captured. Uninstall drops the triggers (and optionally the
// schema).
//
// # Reading: NOTIFY plus polling
//
// A Reader owns one dedicated connection. It LISTENs first, then reads, so a
// commit is either in the next read or wakes the reader; if notifications
// are lost (the connection dropped, the listener queue overflowed) the poll
// interval still bounds the delay. Reads are batched (up to 1000 rows) in id
// order. Any error drops the connection; Read reconnects with exponential
// backoff, re-LISTENs and continues from its in-memory position, which only
// changes once a read transaction has fully succeeded. Nothing is lost or
// delivered twice within one run, whatever the connection does.
//
// # Why holes
//
// Log ids come from a sequence when the trigger runs, but a row becomes
// visible when its transaction commits: a long transaction can hold id 10
// while id 11 commits and is read. "Read everything above the highest id
// seen" would then skip 10 forever. So the reader keeps, besides `through`
// (the highest id read), a set of holes: ids below `through` that were not
// visible. Each read, in one REPEATABLE READ READ ONLY transaction:
//
//  1. takes the snapshot's xmin (every transaction id below it has ended);
//  2. re-reads the holes: those now visible are delivered; a hole still
//     invisible whose stamp is ≤ xmin is dropped: every transaction that
//     could own it has ended without committing it (rolled back, or the
//     sequence value was never used);
//  3. reads id > through in order; every id skipped between consecutive
//     rows (and between through and the first new row) becomes a hole;
//
// and then, only if there are unstamped holes, it stamps them with a
// transaction id assigned after that snapshot (pg_current_xact_id() in its
// own, committed transaction). The batch frontier is {Through: through,
// Pending: holes}, which the engine folds into the saved source.Cursor; on
// Open the cursor's pending ids are holes again, stamped at the first read.
// No time window is guessed.
//
// Why the stamp is sound, and why the trigger takes the transaction id
// (pg_current_xact_id()) before drawing the log id: the sequence has CACHE 1,
// so ids are drawn in a global order. A hole g lies below a visible id v, so
// g's owner drew g before v was drawn, before v's transaction committed,
// before the snapshot; and it held its transaction id before drawing g. So
// the owner's transaction id was assigned before the stamp s was, hence is
// below s. The stamp's transaction has committed, so any later snapshot
// lists every still-running transaction below s in its xip, and its xmin ≥ s
// proves they have all ended; a committed owner's row would then be visible.
//
// The snapshot's own xmax cannot serve as the stamp, though
// docs/architecture.md first said so: xmax is "latest completed transaction
// id + 1", and a transaction that got its id after the latest one to
// complete, and is still running, has an id ≥ xmax and lowers no later
// xmin. TestHoleOwnerAboveXmax builds that case; TestReconnect with
// overlapping writers lost rows under the xmax stamp and loses none now.
// The price is one transaction id per read that finds new holes.
//
// Holes and key order: a hole delivered late comes after rows with higher
// ids. That never reorders one key: a later change to the same row waits for
// the earlier transaction's row lock before its trigger draws an id, so
// whenever the later id was visible the earlier one was too. This needs the
// key columns to be a unique key of the table (the primary key by default).
//
// # FraiseQL compatibility mode
//
// Mode "fraiseql" reads an existing FraiseQL core.tb_entity_change_log
// (pk_entity_change_log as the position; object_type as entity;
// modification_type as op, case-insensitive, NOOP rows skipped since they
// record no change, anything else unknown a decode error; object_id as key;
// object_data_before and object_data as images, a DELETE's object_data moved
// to before; updated_fields as text[] or jsonb; tenant_id; created_at;
// trace_context), with the same hole algorithm. FraiseQL's trigger does not
// take the transaction id before drawing pk_entity_change_log, so the proof
// above relies on the transaction already holding an id when the log row's
// default is evaluated. That is the case whenever the mutation wrote its
// entity first, as FraiseQL's mutation functions do; a transaction whose
// first write is the log row itself draws the id a moment before it has a
// transaction id, and a hole seen in that moment could be dropped early.
// There is no NOTIFY by default in this mode (set Config.Channel if the
// database sends one); reads poll.
//
// # State
//
// Store keeps cursors (<schema>.checkpoint) and dead letters
// (<schema>.dead_letter) through a pgx pool, in the watched database by
// default, so a checkpoint and the data it describes share a backup.
//
// Notes: xmin is cluster wide, so a long transaction in any database delays
// dropping rolled-back holes (never delivering committed ones). A hole costs
// memory and a cursor entry until resolved; a huge gap (a pruned log read
// from position 0 while writers are busy) is resolved after one more read.
package postgres
