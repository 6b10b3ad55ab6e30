package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Defaults for Install and Config.
const (
	DefaultSchema  = "observer"
	DefaultChannel = "observer_events"
)

// DB is what Install, Uninstall and OpenStore's helpers need: *pgx.Conn and
// *pgxpool.Pool both satisfy it. Everything runs in one transaction.
type DB interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// TableSpec names one table to capture.
type TableSpec struct {
	// Name is the table, as PostgreSQL would parse it: "payment",
	// "public.payment", `"Mixed"."Case"`.
	Name string
	// Entity is the event's entity name; default: the table's own name
	// (without schema).
	Entity string
	// KeyColumns make the event key (values joined by ","); default: the
	// table's primary key. A table without one needs KeyColumns.
	KeyColumns []string
	// TenantColumn, when set, fills the event's tenant from this column of
	// the row; otherwise from the writer's session setting observer.tenant.
	TenantColumn string
}

// InstallOptions is what `observer capture install` passes.
type InstallOptions struct {
	Schema  string // default "observer"
	Channel string // NOTIFY channel; default "observer_events"
	Tables  []TableSpec
}

// UninstallOptions is what `observer capture uninstall` passes.
type UninstallOptions struct {
	Schema string // default "observer"
	// Tables to stop capturing; empty means every table in the registry
	// (<schema>.captured_table).
	Tables []string
	// DropSchema also drops the observer's state in the schema — the
	// change log, cursors, dead letters, dedup records, leader epochs and
	// the capture function — and then the schema itself if nothing else
	// is left in it. Irreversible.
	DropSchema bool
}

func (o *InstallOptions) defaults() {
	if o.Schema == "" {
		o.Schema = DefaultSchema
	}
	if o.Channel == "" {
		o.Channel = DefaultChannel
	}
}

// names holds the quoted identifiers of one installation.
type names struct {
	schema, changeLog, seq, checkpoint, deadLetter, registry, fn string
	trigger                                                      string // unquoted trigger name
}

func namesFor(schema string) names {
	q := func(n string) string { return pgx.Identifier{schema, n}.Sanitize() }
	trig := schema + "_capture"
	if len(trig) > 63 {
		trig = trig[:63]
	}
	return names{
		schema:     pgx.Identifier{schema}.Sanitize(),
		changeLog:  q("change_log"),
		seq:        q("change_log_id_seq"),
		checkpoint: q("checkpoint"),
		deadLetter: q("dead_letter"),
		registry:   q("captured_table"),
		fn:         q("capture_row"),
		trigger:    trig,
	}
}

// lockKey serialises concurrent installs (CREATE ... IF NOT EXISTS races).
const lockSQL = `SELECT pg_advisory_xact_lock(hashtext('observer.install'))`

// stateDDL creates the schema, the change log and the state tables. It is
// shared by Install and OpenStore, and idempotent.
func stateDDL(n names) []string {
	return []string{
		`CREATE SCHEMA IF NOT EXISTS ` + n.schema,
		// CACHE 1 keeps nextval globally monotonic across sessions; the
		// hole proof (doc.go) relies on it.
		`CREATE SEQUENCE IF NOT EXISTS ` + n.seq + ` AS bigint CACHE 1`,
		`CREATE TABLE IF NOT EXISTS ` + n.changeLog + ` (
			id             bigint PRIMARY KEY DEFAULT nextval('` + strings.ReplaceAll(n.seq, `'`, `''`) + `'),
			txid           xid8 NOT NULL,
			entity         text NOT NULL,
			op             text NOT NULL,
			key            text NOT NULL,
			before         jsonb,
			after          jsonb,
			changed_fields text[],
			tenant         text,
			trace_context  jsonb,
			-- clock_timestamp() at the write, an approximation of the commit
			-- time: PostgreSQL does not expose the commit timestamp to a
			-- trigger (track_commit_timestamp is off by default).
			commit_time    timestamptz NOT NULL DEFAULT clock_timestamp()
		)`,
		`ALTER SEQUENCE ` + n.seq + ` OWNED BY ` + n.changeLog + `.id`,
		`CREATE TABLE IF NOT EXISTS ` + n.checkpoint + ` (
			source     text NOT NULL,
			grp        text NOT NULL,
			cursor     jsonb NOT NULL,
			updated_at timestamptz NOT NULL DEFAULT now(),
			PRIMARY KEY (source, grp)
		)`,
		`CREATE TABLE IF NOT EXISTS ` + n.deadLetter + ` (
			id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
			source     text NOT NULL,
			grp        text NOT NULL,
			observer   text NOT NULL,
			event_id   text NOT NULL,
			position   bigint NOT NULL,
			event      jsonb NOT NULL,
			effect     integer NOT NULL,
			stage      text NOT NULL,
			error      text NOT NULL,
			attempts   integer NOT NULL,
			created_at timestamptz NOT NULL DEFAULT now()
		)`,
		`CREATE INDEX IF NOT EXISTS dead_letter_by_observer ON ` + n.deadLetter + ` (source, grp, observer, id)`,
		`CREATE TABLE IF NOT EXISTS ` + n.registry + ` (
			table_name    text PRIMARY KEY,
			entity        text NOT NULL,
			key_columns   text[] NOT NULL,
			tenant_column text,
			installed_at  timestamptz NOT NULL DEFAULT now()
		)`,
	}
}

// captureFunctionSQL is the generic row trigger. Arguments: entity, tenant
// column (” for none), then the key columns.
//
// Order matters: the transaction id is taken before the change-log id is
// drawn, so that the owner of any id a reader finds missing was already
// running (or finished) when the reader's snapshot was taken. See doc.go.
//
// NOTIFY is sent at most once per transaction (remembered in a
// transaction-local setting, which a rolled-back savepoint also undoes), and
// PostgreSQL delivers it only at commit.
func captureFunctionSQL(n names, channel string) string {
	return `CREATE OR REPLACE FUNCTION ` + n.fn + `() RETURNS trigger
LANGUAGE plpgsql AS $observer$
DECLARE
	v_txid    xid8;
	v_id      bigint;
	v_before  jsonb;
	v_after   jsonb;
	v_img     jsonb;
	v_key     text := '';
	v_changed text[];
	v_tenant  text;
	v_tp      text;
	v_ts      text;
	v_trace   jsonb;
	v_mark    text;
BEGIN
	v_txid := pg_current_xact_id();
	IF TG_OP <> 'INSERT' THEN v_before := to_jsonb(OLD); END IF;
	IF TG_OP <> 'DELETE' THEN v_after := to_jsonb(NEW); END IF;
	v_img := coalesce(v_after, v_before);
	FOR i IN 2 .. TG_NARGS - 1 LOOP
		IF i > 2 THEN v_key := v_key || ','; END IF;
		v_key := v_key || coalesce(v_img ->> TG_ARGV[i], '');
	END LOOP;
	IF TG_OP = 'UPDATE' THEN
		SELECT coalesce(array_agg(a.key ORDER BY a.key COLLATE "C"), '{}')
		  INTO v_changed
		  FROM jsonb_each(v_after) a
		 WHERE a.value IS DISTINCT FROM v_before -> a.key;
	END IF;
	IF TG_ARGV[1] <> '' THEN
		v_tenant := v_img ->> TG_ARGV[1];
	ELSE
		v_tenant := nullif(current_setting('observer.tenant', true), '');
	END IF;
	v_tp := nullif(current_setting('observer.traceparent', true), '');
	v_ts := nullif(current_setting('observer.tracestate', true), '');
	IF v_tp IS NOT NULL OR v_ts IS NOT NULL THEN
		v_trace := jsonb_strip_nulls(jsonb_build_object('traceparent', v_tp, 'tracestate', v_ts));
	END IF;
	v_id := nextval('` + strings.ReplaceAll(n.seq, `'`, `''`) + `');
	INSERT INTO ` + n.changeLog + ` (id, txid, entity, op, key, before, after, changed_fields, tenant, trace_context)
	VALUES (v_id, v_txid, TG_ARGV[0], TG_OP, v_key, v_before, v_after, v_changed, v_tenant, v_trace);
	v_mark := v_txid::text || ':' || ` + quoteLiteral(channel) + `;
	IF current_setting('observer.notified', true) IS DISTINCT FROM v_mark THEN
		PERFORM pg_notify(` + quoteLiteral(channel) + `, '');
		PERFORM set_config('observer.notified', v_mark, true);
	END IF;
	RETURN NULL;
END
$observer$`
}

// quoteLiteral quotes s as an SQL string constant (standard_conforming_strings
// on, the default since PostgreSQL 9.1).
func quoteLiteral(s string) string {
	return `'` + strings.ReplaceAll(s, `'`, `''`) + `'`
}

// Install creates (idempotently) the change log, the state tables and the
// capture trigger on each table in opts, in one transaction: either every
// table is captured or nothing changed. Re-running it with different options
// replaces the triggers of the named tables.
func Install(ctx context.Context, db DB, opts InstallOptions) error {
	opts.defaults()
	if len(opts.Tables) == 0 {
		return errors.New("install capture: no tables given")
	}
	n := namesFor(opts.Schema)
	tx, err := db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("install capture: begin: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // no-op after commit
	stmts := append([]string{lockSQL}, stateDDL(n)...)
	stmts = append(stmts, captureFunctionSQL(n, opts.Channel))
	for _, s := range stmts {
		if _, err := tx.Exec(ctx, s); err != nil {
			return fmt.Errorf("install capture in schema %q: %w", opts.Schema, err)
		}
	}
	for _, t := range opts.Tables {
		if err := installTable(ctx, tx, n, t); err != nil {
			return err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("install capture: commit: %w", err)
	}
	return nil
}

// resolvedTable is a table found in the catalog.
type resolvedTable struct {
	qualified string // "schema"."name", quoted
	relname   string
	relkind   string
	columns   map[string]bool
}

func resolveTable(ctx context.Context, tx pgx.Tx, name string) (*resolvedTable, bool, error) {
	var oid *uint32
	if err := tx.QueryRow(ctx, `SELECT to_regclass($1)::oid`, name).Scan(&oid); err != nil {
		return nil, false, fmt.Errorf("table %q: resolve name: %w", name, err)
	}
	if oid == nil {
		return nil, false, nil
	}
	rt := &resolvedTable{columns: map[string]bool{}}
	err := tx.QueryRow(ctx, `
		SELECT format('%I.%I', n.nspname, c.relname), c.relname, c.relkind::text
		  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		 WHERE c.oid = $1`, *oid).Scan(&rt.qualified, &rt.relname, &rt.relkind)
	if err != nil {
		return nil, false, fmt.Errorf("table %q: read catalog: %w", name, err)
	}
	rows, err := tx.Query(ctx, `SELECT attname FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped`, *oid)
	if err != nil {
		return nil, false, fmt.Errorf("table %q: read columns: %w", name, err)
	}
	cols, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, false, fmt.Errorf("table %q: read columns: %w", name, err)
	}
	for _, c := range cols {
		rt.columns[c] = true
	}
	return rt, true, nil
}

func primaryKey(ctx context.Context, tx pgx.Tx, qualified string) ([]string, error) {
	rows, err := tx.Query(ctx, `
		SELECT a.attname
		  FROM pg_index i
		  JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey::int2[])
		 WHERE i.indrelid = $1::regclass AND i.indisprimary
		 ORDER BY array_position(i.indkey::int2[], a.attnum)`, qualified)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

func installTable(ctx context.Context, tx pgx.Tx, n names, t TableSpec) error {
	if strings.TrimSpace(t.Name) == "" {
		return errors.New("install capture: a table has an empty name")
	}
	rt, ok, err := resolveTable(ctx, tx, t.Name)
	if err != nil {
		return fmt.Errorf("install capture: %w", err)
	}
	if !ok {
		return fmt.Errorf("install capture: table %q does not exist", t.Name)
	}
	if rt.relkind != "r" && rt.relkind != "p" {
		return fmt.Errorf("install capture: %q is not a table (relkind %q); only tables and partitioned tables can be captured", t.Name, rt.relkind)
	}
	keys := t.KeyColumns
	if len(keys) == 0 {
		keys, err = primaryKey(ctx, tx, rt.qualified)
		if err != nil {
			return fmt.Errorf("install capture: table %q: read primary key: %w", t.Name, err)
		}
		if len(keys) == 0 {
			return fmt.Errorf("install capture: table %q has no primary key; give its key columns explicitly", t.Name)
		}
	}
	for _, k := range keys {
		if !rt.columns[k] {
			return fmt.Errorf("install capture: table %q has no key column %q", t.Name, k)
		}
	}
	if t.TenantColumn != "" && !rt.columns[t.TenantColumn] {
		return fmt.Errorf("install capture: table %q has no tenant column %q", t.Name, t.TenantColumn)
	}
	entity := t.Entity
	if entity == "" {
		entity = rt.relname
	}
	args := []string{quoteLiteral(entity), quoteLiteral(t.TenantColumn)}
	for _, k := range keys {
		args = append(args, quoteLiteral(k))
	}
	trig := pgx.Identifier{n.trigger}.Sanitize()
	// A trigger on a partitioned table is cloned to every partition (and
	// to partitions attached later); TG_TABLE_NAME is then the partition's
	// name, which is why the entity travels as an argument.
	for _, s := range []string{
		`DROP TRIGGER IF EXISTS ` + trig + ` ON ` + rt.qualified,
		`CREATE TRIGGER ` + trig + ` AFTER INSERT OR UPDATE OR DELETE ON ` + rt.qualified +
			` FOR EACH ROW EXECUTE FUNCTION ` + n.fn + `(` + strings.Join(args, ", ") + `)`,
	} {
		if _, err := tx.Exec(ctx, s); err != nil {
			return fmt.Errorf("install capture: table %q: %w", t.Name, err)
		}
	}
	_, err = tx.Exec(ctx, `INSERT INTO `+n.registry+` (table_name, entity, key_columns, tenant_column)
		VALUES ($1, $2, $3, nullif($4, ''))
		ON CONFLICT (table_name) DO UPDATE
		   SET entity = excluded.entity, key_columns = excluded.key_columns,
		       tenant_column = excluded.tenant_column, installed_at = now()`,
		rt.qualified, entity, keys, t.TenantColumn)
	if err != nil {
		return fmt.Errorf("install capture: table %q: register: %w", t.Name, err)
	}
	return nil
}

// Uninstall removes the capture triggers of the named tables (all registered
// tables when none are named) and, with DropSchema, the observer's state
// (the schema too when it holds nothing else). It is
// idempotent: tables or a schema that are already gone are not an error.
func Uninstall(ctx context.Context, db DB, opts UninstallOptions) error {
	if opts.Schema == "" {
		opts.Schema = DefaultSchema
	}
	n := namesFor(opts.Schema)
	tx, err := db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("uninstall capture: begin: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // no-op after commit
	if _, err := tx.Exec(ctx, lockSQL); err != nil {
		return fmt.Errorf("uninstall capture: %w", err)
	}
	var hasRegistry bool
	if err := tx.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, n.registry).Scan(&hasRegistry); err != nil {
		return fmt.Errorf("uninstall capture: %w", err)
	}
	tables := opts.Tables
	if len(tables) == 0 && hasRegistry {
		rows, err := tx.Query(ctx, `SELECT table_name FROM `+n.registry+` ORDER BY table_name`)
		if err != nil {
			return fmt.Errorf("uninstall capture: read registry: %w", err)
		}
		if tables, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return fmt.Errorf("uninstall capture: read registry: %w", err)
		}
	}
	trig := pgx.Identifier{n.trigger}.Sanitize()
	for _, name := range tables {
		rt, ok, err := resolveTable(ctx, tx, name)
		if err != nil {
			return fmt.Errorf("uninstall capture: %w", err)
		}
		key := name
		if ok {
			key = rt.qualified
			if _, err := tx.Exec(ctx, `DROP TRIGGER IF EXISTS `+trig+` ON `+rt.qualified); err != nil {
				return fmt.Errorf("uninstall capture: table %q: %w", name, err)
			}
		}
		if hasRegistry {
			if _, err := tx.Exec(ctx, `DELETE FROM `+n.registry+` WHERE table_name = $1`, key); err != nil {
				return fmt.Errorf("uninstall capture: table %q: unregister: %w", name, err)
			}
		}
	}
	if opts.DropSchema {
		// Only the observer's own objects: the schema may be one the
		// application uses too ("public"), so never DROP SCHEMA CASCADE.
		// The function goes with CASCADE, which drops exactly the capture
		// triggers still using it (a table captured but missing from the
		// registry); the tables go without, so that nothing else that
		// depends on them (a view someone made) disappears silently.
		drops := []string{
			`DROP FUNCTION IF EXISTS ` + n.fn + `() CASCADE`,
			`DROP TABLE IF EXISTS ` + n.changeLog + `, ` + n.checkpoint + `, ` + n.deadLetter + `, ` + n.registry + `, ` +
				n.schema + `.done, ` + leaderTable(opts.Schema),
			`DROP SEQUENCE IF EXISTS ` + n.seq,
		}
		for _, q := range drops {
			if _, err := tx.Exec(ctx, q); err != nil {
				return fmt.Errorf("uninstall capture: drop the observer's state in schema %q: %w", opts.Schema, err)
			}
		}
		// The schema itself only when nothing else lives in it.
		var others int
		if err := tx.QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace WHERE ns.nspname = $1)
			+ (SELECT count(*) FROM pg_proc p JOIN pg_namespace ns ON ns.oid = p.pronamespace WHERE ns.nspname = $1)
			+ (SELECT count(*) FROM pg_type t JOIN pg_namespace ns ON ns.oid = t.typnamespace WHERE ns.nspname = $1 AND t.typrelid = 0 AND t.typelem = 0)`,
			opts.Schema).Scan(&others); err != nil {
			return fmt.Errorf("uninstall capture: schema %q: %w", opts.Schema, err)
		}
		if others == 0 {
			if _, err := tx.Exec(ctx, `DROP SCHEMA IF EXISTS `+n.schema); err != nil {
				return fmt.Errorf("uninstall capture: drop schema %q: %w", opts.Schema, err)
			}
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("uninstall capture: commit: %w", err)
	}
	return nil
}
