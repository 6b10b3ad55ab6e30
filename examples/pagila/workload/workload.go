// Package workload turns the Pagila sample data into a realistic stream of
// database writes: rentals taken (INSERT rental), rentals returned (UPDATE
// rental SET return_date) and payments made (INSERT payment), replayed in
// time order against PostgreSQL or SQLite.
//
// Pagila's rentals are dated 2005 and its payments 2020, so a replay in
// time order writes every rental and return first, then the payments. Each
// payment refers to a rental that exists by then, so foreign keys hold.
package workload

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Customer is one Pagila customer row (the columns the demo uses).
type Customer struct {
	ID        int64
	StoreID   int64
	FirstName string
	LastName  string
	Email     string
	AddressID int64
	Active    bool
	Created   string
}

// Rental is one Pagila rental row.
type Rental struct {
	ID          int64
	RentalDate  time.Time
	InventoryID int64
	CustomerID  int64
	ReturnDate  *time.Time
	StaffID     int64
}

// Payment is one Pagila payment row. Amount keeps Pagila's exact decimal text.
type Payment struct {
	ID          int64
	CustomerID  int64
	StaffID     int64
	RentalID    int64
	Amount      string
	PaymentDate time.Time
}

// Data is what Load reads from pagila-data.sql.
type Data struct {
	Customers []Customer
	Rentals   []Rental
	Payments  []Payment
}

// Kind is the kind of write a Step makes.
type Kind int

const (
	RentalTaken Kind = iota
	RentalReturned
	PaymentMade
)

func (k Kind) String() string {
	switch k {
	case RentalTaken:
		return "rental taken"
	case RentalReturned:
		return "rental returned"
	case PaymentMade:
		return "payment made"
	}
	return "unknown"
}

// Step is one write of the replay.
type Step struct {
	Kind    Kind
	At      time.Time
	Rental  *Rental
	Payment *Payment
}

// Load parses the COPY blocks of Pagila's data dump.
func Load(path string) (*Data, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open pagila data: %w", err)
	}
	defer f.Close()
	d := &Data{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	var table string
	lineNo := 0
	for sc.Scan() {
		lineNo++
		line := sc.Text()
		if table == "" {
			if strings.HasPrefix(line, "COPY ") {
				name := strings.Fields(line)[1]
				table = strings.TrimPrefix(name, "public.")
			}
			continue
		}
		if line == `\.` {
			table = ""
			continue
		}
		cols := splitCopy(line)
		var err error
		switch table {
		case "customer":
			err = d.addCustomer(cols)
		case "rental":
			err = d.addRental(cols)
		case "payment":
			err = d.addPayment(cols)
		}
		if err != nil {
			return nil, fmt.Errorf("%s:%d: table %s: %w", path, lineNo, table, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(d.Rentals) == 0 || len(d.Payments) == 0 {
		return nil, fmt.Errorf("%s: no rental or payment rows found (is it Pagila's data dump?)", path)
	}
	return d, nil
}

// splitCopy splits one line of COPY text format into fields; \N is NULL,
// returned as the literal `\N`.
func splitCopy(line string) []string {
	parts := strings.Split(line, "\t")
	for i, p := range parts {
		if p == `\N` || !strings.Contains(p, `\`) {
			continue
		}
		r := strings.NewReplacer(`\t`, "\t", `\n`, "\n", `\r`, "\r", `\\`, `\`)
		parts[i] = r.Replace(p)
	}
	return parts
}

const pagilaTime = "2006-01-02 15:04:05.999999"

func parseTime(s string) (time.Time, error) {
	if i := strings.IndexAny(s, "+"); i > 0 {
		s = s[:i]
	}
	return time.ParseInLocation(pagilaTime, s, time.UTC)
}

func atoi(s string) (int64, error) { return strconv.ParseInt(s, 10, 64) }

func need(cols []string, n int) error {
	if len(cols) < n {
		return fmt.Errorf("want %d columns, got %d", n, len(cols))
	}
	return nil
}

func (d *Data) addCustomer(c []string) error {
	if err := need(c, 10); err != nil {
		return err
	}
	var cu Customer
	var err error
	if cu.ID, err = atoi(c[0]); err != nil {
		return err
	}
	if cu.StoreID, err = atoi(c[1]); err != nil {
		return err
	}
	cu.FirstName, cu.LastName, cu.Email = c[2], c[3], c[4]
	if cu.AddressID, err = atoi(c[5]); err != nil {
		return err
	}
	cu.Active = c[6] == "t"
	cu.Created = c[7]
	d.Customers = append(d.Customers, cu)
	return nil
}

func (d *Data) addRental(c []string) error {
	if err := need(c, 6); err != nil {
		return err
	}
	var r Rental
	var err error
	if r.ID, err = atoi(c[0]); err != nil {
		return err
	}
	if r.RentalDate, err = parseTime(c[1]); err != nil {
		return err
	}
	if r.InventoryID, err = atoi(c[2]); err != nil {
		return err
	}
	if r.CustomerID, err = atoi(c[3]); err != nil {
		return err
	}
	if c[4] != `\N` {
		t, err := parseTime(c[4])
		if err != nil {
			return err
		}
		r.ReturnDate = &t
	}
	if r.StaffID, err = atoi(c[5]); err != nil {
		return err
	}
	d.Rentals = append(d.Rentals, r)
	return nil
}

func (d *Data) addPayment(c []string) error {
	if err := need(c, 6); err != nil {
		return err
	}
	var p Payment
	var err error
	if p.ID, err = atoi(c[0]); err != nil {
		return err
	}
	if p.CustomerID, err = atoi(c[1]); err != nil {
		return err
	}
	if p.StaffID, err = atoi(c[2]); err != nil {
		return err
	}
	if p.RentalID, err = atoi(c[3]); err != nil {
		return err
	}
	p.Amount = c[4]
	if p.PaymentDate, err = parseTime(c[5]); err != nil {
		return err
	}
	d.Payments = append(d.Payments, p)
	return nil
}

// Timeline orders every rental, return and payment by its timestamp.
// Ties keep a fixed order (taken, returned, paid; then by id) so the
// replay is the same every time.
func (d *Data) Timeline() []Step {
	steps := make([]Step, 0, 2*len(d.Rentals)+len(d.Payments))
	for i := range d.Rentals {
		r := &d.Rentals[i]
		steps = append(steps, Step{Kind: RentalTaken, At: r.RentalDate, Rental: r})
		if r.ReturnDate != nil {
			steps = append(steps, Step{Kind: RentalReturned, At: *r.ReturnDate, Rental: r})
		}
	}
	for i := range d.Payments {
		p := &d.Payments[i]
		steps = append(steps, Step{Kind: PaymentMade, At: p.PaymentDate, Payment: p})
	}
	sort.SliceStable(steps, func(i, j int) bool {
		a, b := steps[i], steps[j]
		if !a.At.Equal(b.At) {
			return a.At.Before(b.At)
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		return a.id() < b.id()
	})
	return steps
}

func (s Step) id() int64 {
	if s.Rental != nil {
		return s.Rental.ID
	}
	return s.Payment.ID
}

// Dialect is the SQL flavour of the target database.
type Dialect int

const (
	Postgres Dialect = iota
	SQLite
)

// bind rewrites $n placeholders for SQLite, which takes ?.
func (dl Dialect) bind(q string) string {
	if dl == Postgres {
		return q
	}
	var b strings.Builder
	for i := 0; i < len(q); i++ {
		if q[i] == '$' {
			b.WriteByte('?')
			for i+1 < len(q) && q[i+1] >= '0' && q[i+1] <= '9' {
				i++
			}
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

// ReplayOptions tune Replay.
type ReplayOptions struct {
	// StepsPerTx groups writes into transactions (default 20).
	StepsPerTx int
	// Pause between transactions (0 = as fast as the database allows).
	Pause time.Duration
	// Progress, if set, is called after each transaction with the number of
	// steps applied so far.
	Progress func(done int)
}

// Replay applies steps to db in order. It stops at the first error, which
// names the step.
func Replay(ctx context.Context, db *sql.DB, dl Dialect, steps []Step, opt ReplayOptions) error {
	if opt.StepsPerTx <= 0 {
		opt.StepsPerTx = 20
	}
	insRental := dl.bind(`INSERT INTO rental (rental_id, rental_date, inventory_id, customer_id, return_date, staff_id) VALUES ($1, $2, $3, $4, NULL, $5)`)
	retRental := dl.bind(`UPDATE rental SET return_date = $1 WHERE rental_id = $2`)
	insPayment := dl.bind(`INSERT INTO payment (payment_id, customer_id, staff_id, rental_id, amount, payment_date) VALUES ($1, $2, $3, $4, $5, $6)`)
	ts := func(t time.Time) any {
		if dl == SQLite {
			return t.UTC().Format("2006-01-02 15:04:05.999999")
		}
		return t
	}
	for start := 0; start < len(steps); start += opt.StepsPerTx {
		end := min(start+opt.StepsPerTx, len(steps))
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("replay step %d: begin: %w", start, err)
		}
		for i := start; i < end; i++ {
			s := steps[i]
			switch s.Kind {
			case RentalTaken:
				r := s.Rental
				_, err = tx.ExecContext(ctx, insRental, r.ID, ts(r.RentalDate), r.InventoryID, r.CustomerID, r.StaffID)
			case RentalReturned:
				_, err = tx.ExecContext(ctx, retRental, ts(*s.Rental.ReturnDate), s.Rental.ID)
			case PaymentMade:
				p := s.Payment
				_, err = tx.ExecContext(ctx, insPayment, p.ID, p.CustomerID, p.StaffID, p.RentalID, p.Amount, ts(p.PaymentDate))
			}
			if err != nil {
				_ = tx.Rollback()
				return fmt.Errorf("replay step %d (%s %d): %w", i, s.Kind, s.id(), err)
			}
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("replay steps %d-%d: commit: %w", start, end-1, err)
		}
		if opt.Progress != nil {
			opt.Progress(end)
		}
		if opt.Pause > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(opt.Pause):
			}
		}
	}
	return nil
}
