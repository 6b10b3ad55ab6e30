package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/fraiseql/observer/host/config"
	"github.com/fraiseql/observer/host/source/postgres"
	"github.com/fraiseql/observer/host/source/sqlite"
	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"
)

func (a *app) captureCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "capture",
		Short: "Install or remove change capture on tables of the configured source",
	}
	cmd.AddCommand(a.captureInstallCommand(), a.captureUninstallCommand(), a.capturePruneCommand())
	return cmd
}

// parseTableFlag parses NAME or NAME:COL1,COL2 (explicit key columns).
func parseTableFlag(v string) (name string, keys []string, err error) {
	name, keyList, hasKeys := strings.Cut(v, ":")
	name = strings.TrimSpace(name)
	if name == "" {
		return "", nil, usagef("--table %q: want NAME or NAME:KEY_COLUMN[,KEY_COLUMN...]", v)
	}
	if hasKeys {
		for _, k := range strings.Split(keyList, ",") {
			if k = strings.TrimSpace(k); k == "" {
				return "", nil, usagef("--table %q: empty key column", v)
			}
			keys = append(keys, k)
		}
	}
	return name, keys, nil
}

func (a *app) captureInstallCommand() *cobra.Command {
	var tables []string
	var tenantColumn string
	cmd := &cobra.Command{
		Use:   "install --table NAME[:KEY,...] [--table ...]",
		Short: "Create the change log and the capture triggers on the named tables",
		Long: `install creates (idempotently) the change-log table, its wake-up notification and
a row trigger on each named table that records before/after images, changed columns,
transaction id, commit time and any W3C trace context the writer set
(SET LOCAL observer.traceparent = '00-…'). The key defaults to the table's primary
key; give NAME:COL1,COL2 for a table without one.`,
		Example: `  observer capture install --table payment --table rental --table customer`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(tables) == 0 {
				return usagef("capture install: name at least one --table")
			}
			cfg, err := a.loadStateConfig()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var names []string
			switch cfg.Source.Type {
			case config.SourcePostgres:
				if cfg.Source.Mode == config.ModeFraiseQL {
					return usagef("capture install: source %q is in fraiseql mode: FraiseQL's own triggers fill core.tb_entity_change_log", cfg.Source.Name)
				}
				opts := postgres.InstallOptions{Schema: cfg.Source.Schema, Channel: cfg.Source.Channel}
				for _, t := range tables {
					name, keys, err := parseTableFlag(t)
					if err != nil {
						return err
					}
					opts.Tables = append(opts.Tables, postgres.TableSpec{Name: name, KeyColumns: keys, TenantColumn: tenantColumn})
					names = append(names, name)
				}
				conn, err := pgx.Connect(ctx, cfg.Source.DSN)
				if err != nil {
					return fmt.Errorf("connect to source %q: %w", cfg.Source.Name, err)
				}
				defer conn.Close(ctx)
				if err := postgres.Install(ctx, conn, opts); err != nil {
					return fmt.Errorf("capture install: %w", err)
				}
			case config.SourceSQLite:
				var opts sqlite.InstallOptions
				for _, t := range tables {
					name, keys, err := parseTableFlag(t)
					if err != nil {
						return err
					}
					opts.Tables = append(opts.Tables, sqlite.TableSpec{Name: name, KeyColumns: keys, TenantColumn: tenantColumn})
					names = append(names, name)
				}
				db, err := sqlite.Open(ctx, cfg.Source.DSN)
				if err != nil {
					return fmt.Errorf("open sqlite source %q: %w", cfg.Source.DSN, err)
				}
				defer db.Close()
				if err := sqlite.Install(ctx, db, opts); err != nil {
					return fmt.Errorf("capture install: %w", err)
				}
			}
			return a.emit(map[string]any{"source": cfg.Source.Name, "installed": names}, func(w io.Writer) {
				fmt.Fprintf(w, "capture installed on %s for source %q\n", strings.Join(names, ", "), cfg.Source.Name)
			})
		},
	}
	cmd.Flags().StringArrayVarP(&tables, "table", "t", nil, "table to capture, NAME or NAME:KEY_COLUMN[,...] (repeatable)")
	cmd.Flags().StringVar(&tenantColumn, "tenant-column", "", "column that holds the tenant id (default: the writer's observer.tenant setting)")
	return cmd
}

func (a *app) captureUninstallCommand() *cobra.Command {
	var tables []string
	var dropSchema bool
	cmd := &cobra.Command{
		Use:   "uninstall [--table NAME ...] [--drop-state]",
		Short: "Remove capture triggers (all, or the named tables)",
		Long: `uninstall removes the capture triggers from the named tables, or from every
captured table when none is named. --drop-state also drops the observer's state
— the change log, the checkpoints, the dead-letter queue, dedup records and
leader epochs — irreversibly (on PostgreSQL only the observer's own objects in
source.schema, and the schema itself only if nothing else is left in it). It is
refused while an observer runs on the source. A new change log starts again at
position 1: event ids and idempotency keys repeat unless the source gets a new
name.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.loadStateConfig()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if dropSchema {
				// Not under a running observer: its checkpoint and positions
				// would no longer match the log.
				if holder, leading := runningLeader(ctx, cfg); leading {
					return usagef("capture uninstall --drop-state: an observer (%s) is running on source %q; stop it first", holder, cfg.Source.Name)
				}
			}
			switch cfg.Source.Type {
			case config.SourcePostgres:
				conn, err := pgx.Connect(ctx, cfg.Source.DSN)
				if err != nil {
					return fmt.Errorf("connect to source %q: %w", cfg.Source.Name, err)
				}
				defer conn.Close(ctx)
				if err := postgres.Uninstall(ctx, conn, postgres.UninstallOptions{Schema: cfg.Source.Schema, Tables: tables, DropSchema: dropSchema}); err != nil {
					return fmt.Errorf("capture uninstall: %w", err)
				}
			case config.SourceSQLite:
				db, err := sqlite.Open(ctx, cfg.Source.DSN)
				if err != nil {
					return fmt.Errorf("open sqlite source %q: %w", cfg.Source.DSN, err)
				}
				defer db.Close()
				if err := sqlite.Uninstall(ctx, db, sqlite.UninstallOptions{Tables: tables, DropAll: dropSchema}); err != nil {
					return fmt.Errorf("capture uninstall: %w", err)
				}
			}
			what := "all captured tables"
			if len(tables) > 0 {
				what = strings.Join(tables, ", ")
			}
			return a.emit(map[string]any{"source": cfg.Source.Name, "uninstalled": tables, "dropped_state": dropSchema}, func(w io.Writer) {
				fmt.Fprintf(w, "capture removed from %s for source %q\n", what, cfg.Source.Name)
				if dropSchema {
					fmt.Fprintf(w, "state dropped: a new change log starts again at position 1, so its events get the ids (and idempotency keys) %s:1, %s:2, … again;\n"+
						"if a receiver remembers keys, give the source a new [source] name before capturing again\n", cfg.Source.Name, cfg.Source.Name)
				}
			})
		},
	}
	cmd.Flags().StringArrayVarP(&tables, "table", "t", nil, "table to stop capturing (repeatable; default all)")
	cmd.Flags().BoolVar(&dropSchema, "drop-state", false, "also drop the observer's state: change log, checkpoints, dead letters, dedup records, epochs")
	return cmd
}

func (a *app) capturePruneCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "prune",
		Short: "Delete change-log rows that every checkpoint has passed",
		Long: `prune deletes the change-log rows at or below the lowest checkpoint of every
source and group that keeps its state in this database, except positions a
checkpoint still lists as pending (unfinished events, and transactions that may
yet commit). It is safe while observers run. A checkpoint nobody advances any more
(an old group, a dry run's GROUP.dry-run) holds pruning back: the output names it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.loadStateConfig()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var deleted, bound, kept int64
			var heldBy string
			switch cfg.Source.Type {
			case config.SourcePostgres:
				if cfg.Source.Mode == config.ModeFraiseQL {
					return usagef("capture prune: source %q reads FraiseQL's core.tb_entity_change_log, which FraiseQL owns", cfg.Source.Name)
				}
				conn, err := pgx.Connect(ctx, cfg.Source.DSN)
				if err != nil {
					return fmt.Errorf("connect to source %q: %w", cfg.Source.Name, err)
				}
				defer conn.Close(ctx)
				r, err := postgres.Prune(ctx, conn, cfg.Source.Schema)
				if err != nil {
					return err
				}
				deleted, bound, kept, heldBy = r.Deleted, r.Bound, r.Kept, r.HeldBy
			case config.SourceSQLite:
				db, err := sqlite.Open(ctx, cfg.Source.DSN)
				if err != nil {
					return fmt.Errorf("open sqlite source %q: %w", cfg.Source.DSN, err)
				}
				defer db.Close()
				r, err := sqlite.Prune(ctx, db)
				if err != nil {
					return err
				}
				deleted, bound, kept, heldBy = r.Deleted, r.Bound, r.Kept, r.HeldBy
			}
			out := map[string]any{"deleted": deleted, "bound": bound, "held_by": heldBy, "pending_kept": kept}
			return a.emit(out, func(w io.Writer) {
				if heldBy == "" {
					fmt.Fprintln(w, "no checkpoint saved yet: nothing pruned")
					return
				}
				fmt.Fprintf(w, "pruned %d change-log rows at or below %d (the checkpoint of %s); kept %d pending\n", deleted, bound, heldBy, kept)
			})
		},
	}
}
