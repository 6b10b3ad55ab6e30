package workload

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// DataDir finds Pagila's files: $PAGILA_DIR, else shared/data/pagila
// beside or above dir (the repository root's parent holds shared/).
func DataDir(dir string) (string, error) {
	if d := os.Getenv("PAGILA_DIR"); d != "" {
		return d, nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := abs; ; d = filepath.Dir(d) {
		for _, c := range []string{filepath.Join(d, "shared", "data", "pagila"), filepath.Join(d, "data", "pagila")} {
			if _, err := os.Stat(filepath.Join(c, "pagila-data.sql")); err == nil {
				return c, nil
			}
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("pagila data not found above %s: set PAGILA_DIR to the folder holding pagila-schema.sql and pagila-data.sql", abs)
		}
	}
}

// SetupPostgres loads Pagila's schema and data into the (scratch) database
// at dsn with psql, then empties rental and payment so that Replay can
// write them again as a workload. Customers, films and inventory stay.
func SetupPostgres(ctx context.Context, db *sql.DB, dsn, dataDir string) error {
	for _, f := range []string{"pagila-schema.sql", "pagila-data.sql"} {
		cmd := exec.CommandContext(ctx, "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-f", filepath.Join(dataDir, f))
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("load %s with psql: %v\n%s", f, err, tail(string(out), 2000))
		}
	}
	if _, err := db.ExecContext(ctx, `TRUNCATE payment, rental`); err != nil {
		return fmt.Errorf("empty rental and payment: %w", err)
	}
	return nil
}

// SQLiteSchema creates the three Pagila tables the workload writes, in
// SQLite's dialect. Other Pagila tables are left out: the demo does not
// need them, and foreign keys to them would only slow the writes.
const SQLiteSchema = `
CREATE TABLE IF NOT EXISTS customer (
  customer_id INTEGER PRIMARY KEY,
  store_id    INTEGER NOT NULL,
  first_name  TEXT NOT NULL,
  last_name   TEXT NOT NULL,
  email       TEXT,
  address_id  INTEGER NOT NULL,
  activebool  BOOLEAN NOT NULL DEFAULT 1,
  create_date TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS rental (
  rental_id    INTEGER PRIMARY KEY,
  rental_date  TEXT NOT NULL,
  inventory_id INTEGER NOT NULL,
  customer_id  INTEGER NOT NULL REFERENCES customer(customer_id),
  return_date  TEXT,
  staff_id     INTEGER NOT NULL,
  last_update  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);
CREATE TABLE IF NOT EXISTS payment (
  payment_id   INTEGER PRIMARY KEY,
  customer_id  INTEGER NOT NULL REFERENCES customer(customer_id),
  staff_id     INTEGER NOT NULL,
  rental_id    INTEGER NOT NULL REFERENCES rental(rental_id),
  amount       NUMERIC NOT NULL,
  payment_date TEXT NOT NULL
);`

// SetupSQLite creates the tables and loads the customers, emptying rental
// and payment.
func SetupSQLite(ctx context.Context, db *sql.DB, d *Data) error {
	if _, err := db.ExecContext(ctx, SQLiteSchema); err != nil {
		return fmt.Errorf("create demo tables: %w", err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, q := range []string{`DELETE FROM payment`, `DELETE FROM rental`} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("empty demo tables: %w", err)
		}
	}
	stmt, err := tx.PrepareContext(ctx, `INSERT OR REPLACE INTO customer (customer_id, store_id, first_name, last_name, email, address_id, activebool, create_date) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, c := range d.Customers {
		if _, err := stmt.ExecContext(ctx, c.ID, c.StoreID, c.FirstName, c.LastName, c.Email, c.AddressID, c.Active, c.Created); err != nil {
			return fmt.Errorf("load customer %d: %w", c.ID, err)
		}
	}
	return tx.Commit()
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
