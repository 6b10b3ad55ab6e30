package cli

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/fraiseql/observer/examples/pagila/receiver"
	"github.com/fraiseql/observer/examples/pagila/workload"
	"github.com/fraiseql/observer/host/config"
	"github.com/fraiseql/observer/host/engine"
	"github.com/fraiseql/observer/host/source/postgres"
	"github.com/fraiseql/observer/host/source/sqlite"
	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx" for the workload
	"github.com/spf13/cobra"
)

// demoTables are the Pagila tables the demo captures, with their key
// columns (Pagila's payment is partitioned and has no primary key of its own).
var demoTables = []struct {
	name string
	keys []string
}{{"payment", []string{"payment_id"}}, {"rental", nil}, {"customer", nil}}

// demoSecretEnv is the variable the default observer.toml reads its
// webhook signing secret from.
const demoSecretEnv = "OBSERVER_WEBHOOK_SECRET"

// demoSummary is what `observer demo` reports at the end.
type demoSummary struct {
	Source             string        `json:"source"`
	Writes             int           `json:"writes"`
	EventsRead         uint64        `json:"events_read"`
	EventsMatched      uint64        `json:"events_matched"`
	Filtered           uint64        `json:"filtered"`
	EffectsOK          uint64        `json:"effects_ok"`
	Retries            uint64        `json:"retries"`
	DeadLettered       uint64        `json:"dead_lettered"`
	Delivered          int           `json:"delivered"`
	DistinctDelivered  int           `json:"distinct_delivered"`
	ExpectedDeliveries int           `json:"expected_deliveries"`
	BigPayments        int           `json:"sql_payments_9_99_or_more"`
	RentalsReturned    int           `json:"sql_rentals_returned"`
	Elapsed            time.Duration `json:"elapsed_ns"`
}

func (a *app) demoCommand() *cobra.Command {
	var writes int
	var listen string
	var pause time.Duration
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the main job end to end on the Pagila workload (what `make run` does)",
		Long: `demo prepares a fresh demo database (SQLite by default: the file named by
source.dsn is replaced; on PostgreSQL, Pagila is loaded if absent and its rental and
payment tables are emptied), installs capture on payment, rental and customer,
starts a loopback receiver on --listen that plays the world, runs the observers of
the config, and replays Pagila's rentals, returns and payments in time order while a
progress line shows events flowing through the WASM plugins to effects. It ends
when every write has been processed, and checks that the receiver got exactly what
the observers should have sent.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// The default config signs webhooks with a secret from the
			// environment; the demo supplies one when none is set, so it
			// runs as it is. `observer run` never does this.
			if os.Getenv(demoSecretEnv) == "" {
				_ = os.Setenv(demoSecretEnv, "demo-secret-not-for-production")
			}
			cfg, err := a.loadConfig()
			if err != nil {
				return err
			}
			return a.demo(cmd.Context(), cfg, writes, listen, pause)
		},
	}
	cmd.Flags().IntVar(&writes, "writes", 0, "how many Pagila writes to replay, in time order (0: all 47,954)")
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8787", "address of the demo receiver (the observers' webhook URLs point here)")
	cmd.Flags().DurationVar(&pause, "pause", 0, "pause between workload transactions (slows the replay down to watch it)")
	return cmd
}

func (a *app) demo(ctx context.Context, cfg *config.Config, writes int, listen string, pause time.Duration) error {
	log := a.logger("warn", cfg.Observer.LogFormat)
	out := a.stderr
	start := time.Now()

	// The demo replaces the database: not under a running observer.
	if holder, leading := runningLeader(ctx, cfg); leading {
		return usagef("an observer (%s) is running on %s (source %q): the demo would replace its database under it; stop it first, or give the demo another source.dsn",
			holder, redactDSN(cfg), cfg.Source.Name)
	}
	dataDir, err := workload.DataDir(cfg.Dir)
	if err != nil {
		return usageError{err}
	}
	data, err := workload.Load(filepath.Join(dataDir, "pagila-data.sql"))
	if err != nil {
		return err
	}
	steps := data.Timeline()
	if writes > 0 && writes < len(steps) {
		steps = steps[:writes]
	}

	fmt.Fprintf(out, "demo: preparing a %s demo database (%s)\n", cfg.Source.Type, redactDSN(cfg))
	db, dialect, err := prepareDemoDB(ctx, cfg, data, dataDir)
	if err != nil {
		return err
	}
	defer db.Close()

	recv, err := receiver.Start(receiver.Options{Addr: listen, Secret: demoSecret(cfg)})
	if err != nil {
		return fmt.Errorf("demo receiver: %w (use --listen, and point the observers' URLs there)", err)
	}
	defer recv.Close()
	fmt.Fprintf(out, "demo: receiver listening on %s\n", recv.URL())

	var finished atomic.Int64
	hooks := engine.Hooks{EventFinished: func(engine.EventFinished) { finished.Add(1) }}
	buildStart := time.Now()
	s, err := build(ctx, cfg, log, buildOptions{Hooks: hooks})
	if err != nil {
		return err
	}
	defer s.Close(context.WithoutCancel(ctx))
	fmt.Fprintf(out, "demo: %d observers, plugins compiled and checked in %s\n", len(cfg.Observers), time.Since(buildStart).Round(time.Millisecond))

	runCtx, stopEngine := context.WithCancel(ctx)
	defer stopEngine()
	engineDone := make(chan error, 1)
	go func() { engineDone <- s.engine.Run(runCtx) }()

	// Replay the workload while printing progress once a second.
	var replayed atomic.Int64
	replayDone := make(chan error, 1)
	go func() {
		replayDone <- workload.Replay(runCtx, db, dialect, steps, workload.ReplayOptions{
			StepsPerTx: 100, Pause: max(pause, time.Millisecond),
			Progress: func(n int) { replayed.Store(int64(n)) },
		})
	}()
	fmt.Fprintf(out, "demo: replaying %d Pagila writes (rentals taken and returned, payments) in time order\n", len(steps))
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	// Wait for the replay, then for the engine to finish every write's event.
	for caughtUp := false; !caughtUp; {
		select {
		case err := <-replayDone:
			if err != nil {
				return fmt.Errorf("workload: %w", err)
			}
			replayDone = nil // replay finished; keep waiting for the engine
		case err := <-engineDone:
			if err == nil {
				err = errors.New("stopped before the workload was processed")
			}
			return fmt.Errorf("engine: %w", err)
		case <-tick.C:
			a.demoProgress(out, s.engine.Stats(), int(replayed.Load()), len(steps), recv.Stats())
		case <-ctx.Done():
			return ctx.Err()
		}
		caughtUp = replayDone == nil && finished.Load() >= int64(len(steps)) && s.engine.Stats().InFlight == 0
	}
	a.demoProgress(out, s.engine.Stats(), int(replayed.Load()), len(steps), recv.Stats())
	stopEngine()
	if err := <-engineDone; err != nil {
		return fmt.Errorf("engine: %w", err)
	}

	st := s.engine.Stats()
	rs := recv.Stats()
	sum := demoSummary{
		Source: cfg.Source.Type, Writes: len(steps), EventsRead: st.EventsRead, EventsMatched: st.EventsMatched,
		Filtered: st.Filtered, EffectsOK: st.EffectsOK, Retries: st.Retries, DeadLettered: st.DeadLettered,
		Delivered: rs.Deliveries, DistinctDelivered: rs.Distinct, Elapsed: time.Since(start),
	}
	sum.BigPayments, sum.RentalsReturned, err = demoCounts(ctx, db)
	if err != nil {
		return err
	}
	// Each matched and not-filtered (event, observer) pair sends one webhook.
	sum.ExpectedDeliveries = int(st.EffectsOK)
	return a.emit(sum, func(w io.Writer) {
		fmt.Fprintf(w, "\ndemo finished in %s\n", sum.Elapsed.Round(time.Millisecond))
		fmt.Fprintf(w, "  writes replayed:            %d\n", sum.Writes)
		fmt.Fprintf(w, "  events captured and read:   %d\n", sum.EventsRead)
		fmt.Fprintf(w, "  events matched an observer: %d (filtered out by a WASM filter: %d)\n", sum.EventsMatched, sum.Filtered)
		fmt.Fprintf(w, "  effects executed:           %d (retries %d, dead-lettered %d)\n", sum.EffectsOK, sum.Retries, sum.DeadLettered)
		fmt.Fprintf(w, "  webhooks received:          %d (%d distinct idempotency keys)\n", sum.Delivered, sum.DistinctDelivered)
		fmt.Fprintf(w, "  SQL: payments >= 9.99:      %d\n", sum.BigPayments)
		fmt.Fprintf(w, "  SQL: rentals returned:      %d\n", sum.RentalsReturned)
		if want := sum.BigPayments + sum.RentalsReturned; sum.DistinctDelivered == want && sum.Delivered == want {
			fmt.Fprintf(w, "  every expected webhook arrived exactly once (%d = %d + %d)\n", want, sum.BigPayments, sum.RentalsReturned)
		} else {
			fmt.Fprintf(w, "  the receiver's count differs from SQL's %d + %d (expected with a changed observer.toml)\n", sum.BigPayments, sum.RentalsReturned)
		}
		fmt.Fprintf(w, "Next: look at the dead-letter queue (bin/observer dlq list), edit observer.toml, or point [source] at PostgreSQL (README).\n")
	})
}

func (a *app) demoProgress(w io.Writer, st engine.Stats, replayed, total int, rs receiver.Stats) {
	fmt.Fprintf(w, "progress: writes %d/%d · events read %d · matched %d · filtered %d · webhooks delivered %d · retries %d · dead-lettered %d · in flight %d · checkpoint %d\n",
		replayed, total, st.EventsRead, st.EventsMatched, st.Filtered, rs.Distinct, st.Retries, st.DeadLettered, st.InFlight, st.CheckpointThrough)
}

// demoSecret is the signing secret the observers use, if they all share
// one, so the receiver can verify signatures.
func demoSecret(cfg *config.Config) string {
	secret := ""
	for i := range cfg.Observers {
		s := cfg.Observers[i].HTTP.Secret
		if s == "" {
			continue
		}
		if secret != "" && secret != s {
			return ""
		}
		secret = s
	}
	return secret
}

func redactDSN(cfg *config.Config) string {
	if cfg.Source.Type == config.SourceSQLite {
		return cfg.Source.DSN
	}
	if c, err := pgx.ParseConfig(cfg.Source.DSN); err == nil {
		return fmt.Sprintf("postgres://%s@%s:%d/%s", c.User, c.Host, c.Port, c.Database)
	}
	return "postgres"
}

// prepareDemoDB creates the demo tables and installs capture.
func prepareDemoDB(ctx context.Context, cfg *config.Config, data *workload.Data, dataDir string) (*sql.DB, workload.Dialect, error) {
	switch cfg.Source.Type {
	case config.SourceSQLite:
		path := cfg.Source.DSN
		for _, suffix := range []string{"", "-wal", "-shm"} {
			if err := os.Remove(path + suffix); err != nil && !os.IsNotExist(err) {
				return nil, 0, fmt.Errorf("remove old demo database %s: %w", path+suffix, err)
			}
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, 0, fmt.Errorf("create demo directory: %w", err)
		}
		db, err := sqlite.Open(ctx, path)
		if err != nil {
			return nil, 0, err
		}
		if err := workload.SetupSQLite(ctx, db, data); err != nil {
			db.Close()
			return nil, 0, err
		}
		var opts sqlite.InstallOptions
		for _, t := range demoTables {
			opts.Tables = append(opts.Tables, sqlite.TableSpec{Name: t.name, KeyColumns: t.keys})
		}
		if err := sqlite.Install(ctx, db, opts); err != nil {
			db.Close()
			return nil, 0, fmt.Errorf("install capture: %w", err)
		}
		return db, workload.SQLite, nil
	case config.SourcePostgres:
		db, err := sql.Open("pgx", cfg.Source.DSN)
		if err != nil {
			return nil, 0, err
		}
		var exists bool
		if err := db.QueryRowContext(ctx, `SELECT to_regclass('public.rental') IS NOT NULL`).Scan(&exists); err != nil {
			db.Close()
			return nil, 0, fmt.Errorf("connect to %s: %w", redactDSN(cfg), err)
		}
		if !exists {
			if err := workload.SetupPostgres(ctx, db, cfg.Source.DSN, dataDir); err != nil {
				db.Close()
				return nil, 0, err
			}
		} else if _, err := db.ExecContext(ctx, `TRUNCATE payment, rental`); err != nil {
			db.Close()
			return nil, 0, fmt.Errorf("empty rental and payment: %w", err)
		}
		conn, err := pgx.Connect(ctx, cfg.Source.DSN)
		if err != nil {
			db.Close()
			return nil, 0, err
		}
		defer conn.Close(ctx)
		opts := postgres.InstallOptions{Schema: cfg.Source.Schema, Channel: cfg.Source.Channel}
		for _, t := range demoTables {
			opts.Tables = append(opts.Tables, postgres.TableSpec{Name: t.name, KeyColumns: t.keys})
		}
		if err := postgres.Install(ctx, conn, opts); err != nil {
			db.Close()
			return nil, 0, fmt.Errorf("install capture: %w", err)
		}
		return db, workload.Postgres, nil
	}
	return nil, 0, fmt.Errorf("source.type %q is not supported by the demo", cfg.Source.Type)
}

func demoCounts(ctx context.Context, db *sql.DB) (big, returned int, err error) {
	if err = db.QueryRowContext(ctx, `SELECT count(*) FROM payment WHERE amount >= 9.99`).Scan(&big); err != nil {
		return 0, 0, fmt.Errorf("count payments: %w", err)
	}
	if err = db.QueryRowContext(ctx, `SELECT count(*) FROM rental WHERE return_date IS NOT NULL`).Scan(&returned); err != nil {
		return 0, 0, fmt.Errorf("count returned rentals: %w", err)
	}
	return big, returned, nil
}
