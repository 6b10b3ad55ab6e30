package workload

import (
	"testing"
)

func TestLoadPagila(t *testing.T) {
	dir, err := DataDir(".")
	if err != nil {
		t.Fatal(err)
	}
	d, err := Load(dir + "/pagila-data.sql")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(d.Customers), 599; got != want {
		t.Errorf("customers = %d, want %d", got, want)
	}
	if got, want := len(d.Rentals), 16044; got != want {
		t.Errorf("rentals = %d, want %d", got, want)
	}
	if got, want := len(d.Payments), 16049; got != want {
		t.Errorf("payments = %d, want %d", got, want)
	}
	returned := 0
	for _, r := range d.Rentals {
		if r.ReturnDate != nil {
			returned++
		}
	}
	steps := d.Timeline()
	if got, want := len(steps), len(d.Rentals)+returned+len(d.Payments); got != want {
		t.Fatalf("timeline has %d steps, want %d", got, want)
	}
	for i := 1; i < len(steps); i++ {
		if steps[i].At.Before(steps[i-1].At) {
			t.Fatalf("step %d at %v is before step %d at %v", i, steps[i].At, i-1, steps[i-1].At)
		}
	}
	// A return never precedes its rental.
	taken := map[int64]bool{}
	for _, s := range steps {
		switch s.Kind {
		case RentalTaken:
			taken[s.Rental.ID] = true
		case RentalReturned:
			if !taken[s.Rental.ID] {
				t.Fatalf("rental %d returned before taken", s.Rental.ID)
			}
		case PaymentMade:
			if !taken[s.Payment.RentalID] {
				t.Fatalf("payment %d for rental %d before the rental", s.Payment.ID, s.Payment.RentalID)
			}
		}
	}
}

func TestBind(t *testing.T) {
	cases := []struct{ in, pg, lite string }{
		{"SELECT $1, $2", "SELECT $1, $2", "SELECT ?, ?"},
		{"UPDATE t SET a = $12 WHERE b = $3", "UPDATE t SET a = $12 WHERE b = $3", "UPDATE t SET a = ? WHERE b = ?"},
	}
	for _, c := range cases {
		if got := Postgres.bind(c.in); got != c.pg {
			t.Errorf("Postgres.bind(%q) = %q", c.in, got)
		}
		if got := SQLite.bind(c.in); got != c.lite {
			t.Errorf("SQLite.bind(%q) = %q", c.in, got)
		}
	}
}
