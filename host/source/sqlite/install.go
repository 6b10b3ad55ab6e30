package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// TableSpec names one table to capture.
type TableSpec struct {
	Name string
	// Entity is the event's entity name; default: the table name.
	Entity string
	// KeyColumns make the event key (values joined by ","); default: the
	// table's primary key.
	KeyColumns []string
	// TenantColumn, when set, fills the event's tenant from this column;
	// otherwise from observer_context (SetWriterContext).
	TenantColumn string
}

// InstallOptions is what `observer capture install` passes.
type InstallOptions struct {
	Tables []TableSpec
}

// UninstallOptions is what `observer capture uninstall` passes.
type UninstallOptions struct {
	// Tables to stop capturing; empty means every registered table.
	Tables []string
	// DropAll also drops the change log and the state tables. Irreversible.
	DropAll bool
}

// stateDDL creates the change log and the state tables; idempotent, shared
// with OpenStore.
var stateDDL = []string{
	`CREATE TABLE IF NOT EXISTS observer_change_log (
		id             INTEGER PRIMARY KEY AUTOINCREMENT,
		entity         TEXT NOT NULL,
		op             TEXT NOT NULL,
		key            TEXT NOT NULL,
		before         TEXT,
		after          TEXT,
		changed_fields TEXT,
		tenant         TEXT,
		trace_context  TEXT,
		commit_time    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
	)`,
	`CREATE TABLE IF NOT EXISTS observer_context (
		id          INTEGER PRIMARY KEY CHECK (id = 1),
		traceparent TEXT,
		tracestate  TEXT,
		tenant      TEXT
	)`,
	`CREATE TABLE IF NOT EXISTS observer_checkpoint (
		source     TEXT NOT NULL,
		grp        TEXT NOT NULL,
		cursor     TEXT NOT NULL,
		updated_at TEXT NOT NULL,
		PRIMARY KEY (source, grp)
	)`,
	`CREATE TABLE IF NOT EXISTS observer_dead_letter (
		id         INTEGER PRIMARY KEY AUTOINCREMENT,
		source     TEXT NOT NULL,
		grp        TEXT NOT NULL,
		observer   TEXT NOT NULL,
		event_id   TEXT NOT NULL,
		position   INTEGER NOT NULL,
		event      TEXT NOT NULL,
		effect     INTEGER NOT NULL,
		stage      TEXT NOT NULL,
		error      TEXT NOT NULL,
		attempts   INTEGER NOT NULL,
		created_at TEXT NOT NULL
	)`,
	`CREATE INDEX IF NOT EXISTS observer_dead_letter_by_observer ON observer_dead_letter (source, grp, observer, id)`,
	`CREATE TABLE IF NOT EXISTS observer_captured_table (
		table_name    TEXT PRIMARY KEY,
		entity        TEXT NOT NULL,
		key_columns   TEXT NOT NULL,
		tenant_column TEXT,
		installed_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
	)`,
}

// Install creates (idempotently) the change log, the state tables and three
// capture triggers (after insert, update, delete) on each named table, in
// one transaction. The triggers list the table's columns as they are now:
// after adding or renaming columns, run Install again.
func Install(ctx context.Context, db *sql.DB, opts InstallOptions) error {
	if len(opts.Tables) == 0 {
		return errors.New("install capture: no tables given")
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("install capture: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after commit
	for _, s := range stateDDL {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("install capture: %w", err)
		}
	}
	for _, t := range opts.Tables {
		if err := installTable(ctx, tx, t); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("install capture: commit: %w", err)
	}
	return nil
}

type column struct {
	name string
	pk   int
}

func tableColumns(ctx context.Context, tx *sql.Tx, table string) ([]column, error) {
	var kind string
	err := tx.QueryRowContext(ctx, `SELECT type FROM sqlite_master WHERE name = ? AND type IN ('table', 'view')`, table).Scan(&kind)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("table %q does not exist", table)
	}
	if err != nil {
		return nil, fmt.Errorf("table %q: %w", table, err)
	}
	if kind != "table" {
		return nil, fmt.Errorf("%q is a %s, not a table", table, kind)
	}
	rows, err := tx.QueryContext(ctx, `SELECT name, pk FROM pragma_table_info(?) ORDER BY cid`, table)
	if err != nil {
		return nil, fmt.Errorf("table %q: read columns: %w", table, err)
	}
	defer rows.Close()
	var cols []column
	for rows.Next() {
		var c column
		if err := rows.Scan(&c.name, &c.pk); err != nil {
			return nil, fmt.Errorf("table %q: read columns: %w", table, err)
		}
		cols = append(cols, c)
	}
	return cols, rows.Err()
}

// triggerNames are the three capture triggers of a table.
func triggerNames(table string) [3]string {
	return [3]string{"observer_capture_" + table + "_insert", "observer_capture_" + table + "_update", "observer_capture_" + table + "_delete"}
}

func installTable(ctx context.Context, tx *sql.Tx, t TableSpec) error {
	if strings.TrimSpace(t.Name) == "" {
		return errors.New("install capture: a table has an empty name")
	}
	if strings.HasPrefix(t.Name, "observer_") {
		return fmt.Errorf("install capture: table %q: the observer's own tables cannot be captured", t.Name)
	}
	cols, err := tableColumns(ctx, tx, t.Name)
	if err != nil {
		return fmt.Errorf("install capture: %w", err)
	}
	has := map[string]bool{}
	var pk []column
	for _, c := range cols {
		has[c.name] = true
		if c.pk > 0 {
			pk = append(pk, c)
		}
	}
	keys := t.KeyColumns
	if len(keys) == 0 {
		slices.SortFunc(pk, func(a, b column) int { return a.pk - b.pk })
		for _, c := range pk {
			keys = append(keys, c.name)
		}
		if len(keys) == 0 {
			return fmt.Errorf("install capture: table %q has no primary key; give its key columns explicitly", t.Name)
		}
	}
	for _, k := range keys {
		if !has[k] {
			return fmt.Errorf("install capture: table %q has no key column %q", t.Name, k)
		}
	}
	if t.TenantColumn != "" && !has[t.TenantColumn] {
		return fmt.Errorf("install capture: table %q has no tenant column %q", t.Name, t.TenantColumn)
	}
	entity := t.Entity
	if entity == "" {
		entity = t.Name
	}
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.name
	}
	img := func(row string) (string, error) { return imageExpr(row, names) }
	newImg, err := img("NEW")
	if err != nil {
		return fmt.Errorf("install capture: table %q: %w", t.Name, err)
	}
	oldImg, _ := img("OLD")
	trace := `(SELECT CASE WHEN coalesce(traceparent, '') = '' AND coalesce(tracestate, '') = '' THEN NULL
		ELSE json_object('traceparent', traceparent, 'tracestate', tracestate) END FROM observer_context WHERE id = 1)`
	tenant := func(row string) string {
		if t.TenantColumn != "" {
			return `CAST(` + row + `.` + quoteIdent(t.TenantColumn) + ` AS TEXT)`
		}
		return `(SELECT tenant FROM observer_context WHERE id = 1)`
	}
	insert := func(op, keyRow, before, after, changed string) string {
		return `INSERT INTO observer_change_log (entity, op, key, before, after, changed_fields, tenant, trace_context) VALUES (` +
			strings.Join([]string{quoteLiteral(entity), quoteLiteral(op), keyExpr(keyRow, keys), before, after, changed, tenant(keyRow), trace}, ", ") + `);`
	}
	trig := triggerNames(t.Name)
	tbl := quoteIdent(t.Name)
	stmts := []string{
		`DROP TRIGGER IF EXISTS ` + quoteIdent(trig[0]),
		`DROP TRIGGER IF EXISTS ` + quoteIdent(trig[1]),
		`DROP TRIGGER IF EXISTS ` + quoteIdent(trig[2]),
		`CREATE TRIGGER ` + quoteIdent(trig[0]) + ` AFTER INSERT ON ` + tbl + ` FOR EACH ROW BEGIN ` +
			insert("INSERT", "NEW", "NULL", newImg, "NULL") + ` END`,
		`CREATE TRIGGER ` + quoteIdent(trig[1]) + ` AFTER UPDATE ON ` + tbl + ` FOR EACH ROW BEGIN ` +
			insert("UPDATE", "NEW", oldImg, newImg, changedExpr(names)) + ` END`,
		`CREATE TRIGGER ` + quoteIdent(trig[2]) + ` AFTER DELETE ON ` + tbl + ` FOR EACH ROW BEGIN ` +
			insert("DELETE", "OLD", oldImg, "NULL", "NULL") + ` END`,
	}
	for _, s := range stmts {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("install capture: table %q: %w", t.Name, err)
		}
	}
	kj, _ := json.Marshal(keys)
	_, err = tx.ExecContext(ctx, `INSERT INTO observer_captured_table (table_name, entity, key_columns, tenant_column)
		VALUES (?, ?, ?, ?)
		ON CONFLICT (table_name) DO UPDATE SET entity = excluded.entity, key_columns = excluded.key_columns,
			tenant_column = excluded.tenant_column, installed_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')`,
		t.Name, entity, string(kj), nullIfEmpty(t.TenantColumn))
	if err != nil {
		return fmt.Errorf("install capture: table %q: register: %w", t.Name, err)
	}
	return nil
}

// valueExpr is a column's value as JSON can hold it: BLOBs (which
// json_object refuses) as hex text.
func valueExpr(row, col string) string {
	v := row + "." + quoteIdent(col)
	return `CASE WHEN typeof(` + v + `) = 'blob' THEN hex(` + v + `) ELSE ` + v + ` END`
}

// imageExpr builds the row image: json_object over the first columns, then
// json_insert for the rest, since an SQL function takes at most 127
// arguments. (json_patch would drop NULL values.)
func imageExpr(row string, cols []string) (string, error) {
	const chunk = 60 // name/value pairs per call
	var sb strings.Builder
	first := min(chunk, len(cols))
	parts := make([]string, 0, 2*first)
	for _, c := range cols[:first] {
		parts = append(parts, quoteLiteral(c), valueExpr(row, c))
	}
	expr := "json_object(" + strings.Join(parts, ", ") + ")"
	for i := first; i < len(cols); i += chunk {
		parts = parts[:0]
		for _, c := range cols[i:min(i+chunk, len(cols))] {
			if strings.ContainsAny(c, `"\`) {
				return "", fmt.Errorf("column %q: names with quotes or backslashes are not supported in tables wider than %d columns", c, chunk)
			}
			parts = append(parts, quoteLiteral(`$."`+c+`"`), valueExpr(row, c))
		}
		expr = "json_insert(" + expr + ", " + strings.Join(parts, ", ") + ")"
	}
	sb.WriteString(expr)
	return sb.String(), nil
}

// keyExpr joins the key columns' text values with ",".
func keyExpr(row string, keys []string) string {
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = `coalesce(CAST(` + row + `.` + quoteIdent(k) + ` AS TEXT), '')`
	}
	return strings.Join(parts, ` || ',' || `)
}

// changedExpr is the JSON array of the columns an UPDATE changed, sorted
// byte-wise like the PostgreSQL trigger's.
func changedExpr(cols []string) string {
	sorted := slices.Clone(cols)
	slices.Sort(sorted)
	parts := make([]string, len(sorted))
	for i, c := range sorted {
		js, _ := json.Marshal(c)
		parts[i] = `CASE WHEN NEW.` + quoteIdent(c) + ` IS NOT OLD.` + quoteIdent(c) + ` THEN ` + quoteLiteral(string(js)+",") + ` ELSE '' END`
	}
	return `'[' || rtrim(` + strings.Join(parts, " || ") + `, ',') || ']'`
}

// Uninstall drops the capture triggers of the named tables (every
// registered table when none are named) and, with DropAll, the change log
// and state tables. Idempotent.
func Uninstall(ctx context.Context, db *sql.DB, opts UninstallOptions) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("uninstall capture: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after commit
	var hasRegistry bool
	if err := tx.QueryRowContext(ctx, `SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'observer_captured_table'`).Scan(&hasRegistry); err != nil {
		return fmt.Errorf("uninstall capture: %w", err)
	}
	tables := opts.Tables
	if len(tables) == 0 && hasRegistry {
		rows, err := tx.QueryContext(ctx, `SELECT table_name FROM observer_captured_table ORDER BY table_name`)
		if err != nil {
			return fmt.Errorf("uninstall capture: read registry: %w", err)
		}
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				rows.Close()
				return fmt.Errorf("uninstall capture: read registry: %w", err)
			}
			tables = append(tables, n)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("uninstall capture: read registry: %w", err)
		}
	}
	for _, t := range tables {
		for _, trig := range triggerNames(t) {
			if _, err := tx.ExecContext(ctx, `DROP TRIGGER IF EXISTS `+quoteIdent(trig)); err != nil {
				return fmt.Errorf("uninstall capture: table %q: %w", t, err)
			}
		}
		if hasRegistry {
			if _, err := tx.ExecContext(ctx, `DELETE FROM observer_captured_table WHERE table_name = ?`, t); err != nil {
				return fmt.Errorf("uninstall capture: table %q: unregister: %w", t, err)
			}
		}
	}
	if opts.DropAll {
		// Triggers of tables missing from the registry would fail on the
		// next write once the log is gone; drop every capture trigger.
		rows, err := tx.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'observer\_capture\_%' ESCAPE '\'`)
		if err != nil {
			return fmt.Errorf("uninstall capture: list triggers: %w", err)
		}
		var trigs []string
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err == nil {
				trigs = append(trigs, n)
			}
		}
		rows.Close()
		for _, n := range trigs {
			if _, err := tx.ExecContext(ctx, `DROP TRIGGER IF EXISTS `+quoteIdent(n)); err != nil {
				return fmt.Errorf("uninstall capture: drop trigger %q: %w", n, err)
			}
		}
		// Every state table: dedup records left behind would match the
		// positions a new change log starts again at 1, and skip its events.
		for _, tbl := range []string{"observer_change_log", "observer_context", "observer_checkpoint", "observer_dead_letter",
			"observer_captured_table", "observer_done", "observer_leader"} {
			if _, err := tx.ExecContext(ctx, `DROP TABLE IF EXISTS `+tbl); err != nil {
				return fmt.Errorf("uninstall capture: drop %s: %w", tbl, err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("uninstall capture: commit: %w", err)
	}
	return nil
}
