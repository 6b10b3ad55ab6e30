// Package sqlite captures committed changes from an SQLite database with the
// same change-log design as the PostgreSQL source, by polling, and keeps the
// observer's state (cursors, dead letters) in the same file. It is the
// embedded default: no server, pure Go (modernc.org/sqlite, driver "sqlite").
//
// # Capture
//
// Install creates observer_change_log (id INTEGER PRIMARY KEY AUTOINCREMENT,
// entity, op, key, before, after, changed_fields, tenant, trace_context,
// commit_time) and, per table, three AFTER INSERT / UPDATE / DELETE triggers
// generated from PRAGMA table_info: the images are json_object over every
// column (BLOBs as hex text; json_insert continues past SQLite's 127-argument
// limit for wide tables), changed_fields is the sorted JSON array of columns
// whose value IS NOT the old one, the key is the primary key columns' text
// joined by ",". Because the column list is baked into the triggers, run
// Install again after altering a captured table. Uninstall drops the
// triggers (and, with DropAll, the observer's tables).
//
// SQLite has no session settings, so a writer's trace context and tenant
// travel through the one-row table observer_context: SetWriterContext inside
// the writing transaction, ClearWriterContext before its commit. SQLite runs
// one write transaction at a time, so no other writer ever sees (or
// overwrites) it; a writer that sets it and forgets to clear it leaks it
// into the next transactions, which is why both helpers exist.
//
// # Reading
//
// Every connection (DSN) uses WAL, so the reader and the workload's writer
// never block each other, a 10 s busy timeout, and BEGIN IMMEDIATE, so
// concurrent writers queue instead of failing. The Reader polls
// "id > through ORDER BY id LIMIT n" every PollInterval (200 ms by default)
// when the last read found nothing, and reads back to back while rows keep
// coming.
//
// No holes: SQLite serialises write transactions, and AUTOINCREMENT draws
// ids inside them (a rolled-back transaction gives its ids back), so ids
// become visible in order and "above the highest id read" never skips a
// committed row. A cursor's Pending ids (events delivered but not finished
// before a restart) are still honoured: they are re-read first after Open.
// Commit time is the trigger's clock (millisecond precision), not the commit
// itself; TxID is empty since SQLite exposes no transaction id.
//
// A row that cannot be decoded (someone wrote the log by hand) is delivered
// with DecodeErr and Raw, never skipped. Read retries database errors with
// backoff, logging each one.
package sqlite
