package pagila_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fraiseql/observer/examples/pagila/receiver"
	"github.com/fraiseql/observer/examples/pagila/workload"
	"github.com/fraiseql/observer/internal/testenv"
	_ "github.com/jackc/pgx/v5/stdlib"
)

const webhookSecret = "pagila-e2e-secret"

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// observerBinary builds host/cmd/observer once per test process.
func observerBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "observer-e2e-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "observer")
		cmd := exec.Command("go", "build", "-o", binPath, "./host/cmd/observer")
		cmd.Dir = testenv.RepoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build observer: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// pagila is one end-to-end environment: a scratch PostgreSQL database with
// Pagila loaded and captured, a loopback receiver, and a config file.
type pagila struct {
	t       testing.TB
	dsn     string
	db      *sql.DB
	recv    *receiver.Receiver
	cfgPath string
	bin     string
	steps   []workload.Step
}

// maxRental bounds the replay to rentals with id ≤ maxRental and their
// returns and payments, so a test replays a slice of Pagila in seconds.
// The database is a scratch database on the shared server
// (testenv.Postgres); newPagilaAt takes any database instead.
func newPagila(t testing.TB, maxRental int64, extraConfig string) *pagila {
	t.Helper()
	dataDir := pagilaPrerequisites(t)
	return setupPagila(t, dataDir, testenv.Postgres(t), maxRental, extraConfig)
}

// newPagilaAt is newPagila on the empty database at dsn, such as one of a
// private cluster (testenv.StartCluster) that the test may restart.
func newPagilaAt(t testing.TB, dsn string, maxRental int64, extraConfig string) *pagila {
	t.Helper()
	dataDir := pagilaPrerequisites(t)
	return setupPagila(t, dataDir, dsn, maxRental, extraConfig)
}

// pagilaPrerequisites returns the Pagila data directory after checking
// that it and psql are there (testenv.Missing otherwise).
func pagilaPrerequisites(t testing.TB) string {
	t.Helper()
	dataDir, err := workload.DataDir(testenv.RepoRoot(t))
	if err != nil {
		testenv.Missing(t, "Pagila data (../shared/data/pagila)", err)
	}
	if _, err := exec.LookPath("psql"); err != nil {
		testenv.Missing(t, "psql", err)
	}
	return dataDir
}

func setupPagila(t testing.TB, dataDir, dsn string, maxRental int64, extraConfig string) *pagila {
	t.Helper()
	ctx := context.Background()
	var err error
	p := &pagila{t: t, dsn: dsn, bin: observerBinary(t)}
	p.db, err = sql.Open("pgx", p.dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.db.Close() })
	if err := workload.SetupPostgres(ctx, p.db, p.dsn, dataDir); err != nil {
		t.Fatal(err)
	}
	data, err := workload.Load(filepath.Join(dataDir, "pagila-data.sql"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range data.Timeline() {
		if (s.Rental != nil && s.Rental.ID <= maxRental) || (s.Payment != nil && s.Payment.RentalID <= maxRental) {
			p.steps = append(p.steps, s)
		}
	}
	p.recv, err = receiver.Start(receiver.Options{Secret: webhookSecret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.recv.Close() })

	webhook := testenv.GoPlugin(t, "plugins/webhook")
	filter := testenv.GoPlugin(t, "plugins/field-filter")
	dir := t.TempDir()
	p.cfgPath = filepath.Join(dir, "observer.toml")
	cfg := fmt.Sprintf(`
[observer]
concurrency = 8
batch_size = 500
checkpoint_interval = "100ms"
shutdown_timeout = "5s"
log_level = "warn"

[admin]
address = "127.0.0.1:0" # processes run side by side

[source]
type = "postgres"
name = "pagila"
dsn = %q
poll_interval = "200ms"

[runtime]
cache_dir = %q

[plugins.webhook]
path = %q
allow_hosts = [%q]
[plugins.field-filter]
path = %q

[[observers]]
name = "big-payments"
entity = "payment"
operations = ["INSERT"]
condition = "after.amount >= 9.99"
action = { plugin = "webhook", config = { url = "%s/hooks/big-payment", body = '{"event": {{ event.id }}, "payment_id": {{ after.payment_id }}, "amount": {{ after.amount }}, "committed": {{ event.commit_time }}}' } }
retry = { strategy = "exponential", max_attempts = 8, initial_delay = "50ms", max_delay = "1s" }
http = { timeout = "2s", secret_env = "OBSERVER_WEBHOOK_SECRET" }

[[observers]]
name = "rental-returned"
entity = "rental"
operations = ["UPDATE"]
condition = "after.return_date != null"
filters = [{ plugin = "field-filter", config = { field = "return_date", op = "changed" } }]
action = { plugin = "webhook", config = { url = "%s/hooks/rental-returned" } }
retry = { strategy = "exponential", max_attempts = 8, initial_delay = "50ms", max_delay = "1s" }
http = { timeout = "2s", secret_env = "OBSERVER_WEBHOOK_SECRET" }
%s`, p.dsn, filepath.Join(testenv.RepoRoot(t), ".cache", "observer", "wasm"), webhook, p.recv.Addr(), filter,
		p.recv.URL(), p.recv.URL(), extraConfig)
	if err := os.WriteFile(p.cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := p.observer(ctx, "capture", "install", "--table", "payment:payment_id", "--table", "rental", "--table", "customer"); err != nil {
		t.Fatalf("capture install: %v\n%s", err, out)
	}
	return p
}

// observer runs one observer command to completion.
func (p *pagila) observer(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, p.bin, append([]string{"--config", p.cfgPath}, args...)...)
	cmd.Env = append(os.Environ(), "OBSERVER_WEBHOOK_SECRET="+webhookSecret)
	return cmd.CombinedOutput()
}

// process is a running `observer run`.
type process struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	done   chan error
}

func (p *pagila) start() *process {
	p.t.Helper()
	cmd := exec.Command(p.bin, "--config", p.cfgPath, "run", "--progress", "0")
	cmd.Env = append(os.Environ(), "OBSERVER_WEBHOOK_SECRET="+webhookSecret)
	var buf bytes.Buffer
	cmd.Stderr = &syncWriter{w: &buf}
	cmd.Stdout = cmd.Stderr
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	pr := &process{cmd: cmd, stderr: &buf, done: make(chan error, 1)}
	go func() { pr.done <- cmd.Wait() }()
	p.t.Cleanup(func() { pr.kill() })
	return pr
}

func (pr *process) kill() {
	if pr.cmd.ProcessState == nil {
		_ = pr.cmd.Process.Signal(syscall.SIGKILL)
		select {
		case <-pr.done:
		case <-time.After(10 * time.Second):
		}
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (pr *process) stop(t testing.TB) {
	t.Helper()
	if err := pr.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-pr.done:
		if err != nil {
			t.Fatalf("observer exited with %v after SIGTERM:\n%s", err, pr.stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("observer did not stop within 30s of SIGTERM:\n%s", pr.stderr.String())
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

// expected holds what the receiver must get, from SQL.
type expected struct {
	payments map[string]string // payment_id → amount, for amount >= 9.99
	returns  map[string]bool   // rental_id of every returned rental
}

func (e expected) total() int { return len(e.payments) + len(e.returns) }

func (p *pagila) expected(ctx context.Context) expected {
	p.t.Helper()
	e := expected{payments: map[string]string{}, returns: map[string]bool{}}
	rows, err := p.db.QueryContext(ctx, `SELECT payment_id::text, amount::text FROM payment WHERE amount >= 9.99`)
	if err != nil {
		p.t.Fatal(err)
	}
	for rows.Next() {
		var id, amount string
		if err := rows.Scan(&id, &amount); err != nil {
			p.t.Fatal(err)
		}
		e.payments[id] = amount
	}
	rows.Close()
	rows, err = p.db.QueryContext(ctx, `SELECT rental_id::text FROM rental WHERE return_date IS NOT NULL`)
	if err != nil {
		p.t.Fatal(err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			p.t.Fatal(err)
		}
		e.returns[id] = true
	}
	rows.Close()
	return e
}

// verify checks every delivery against the expected set: each expected
// event arrived, nothing unexpected arrived, bodies are right, and the
// idempotency key of each delivery is the one its event and observer give.
// It returns the number of duplicate deliveries.
func (p *pagila) verify(e expected) (duplicates int) {
	p.t.Helper()
	seenPayments := map[string]int{}
	seenReturns := map[string]int{}
	bodyByKey := map[string]string{}
	for _, d := range p.recv.Deliveries() {
		if prev, ok := bodyByKey[d.IdempotencyKey]; ok {
			if prev != string(d.Body) {
				p.t.Errorf("idempotency key %s delivered with two different bodies:\n%s\n%s", d.IdempotencyKey, prev, d.Body)
			}
		}
		bodyByKey[d.IdempotencyKey] = string(d.Body)
		switch d.Path {
		case "/hooks/big-payment":
			var b struct {
				Event     string          `json:"event"`
				PaymentID json.Number     `json:"payment_id"`
				Amount    json.Number     `json:"amount"`
				Committed string          `json:"committed"`
				Extra     json.RawMessage `json:"-"`
			}
			if err := json.Unmarshal(d.Body, &b); err != nil {
				p.t.Fatalf("big-payment body %s: %v", d.Body, err)
			}
			want, ok := e.payments[b.PaymentID.String()]
			if !ok {
				p.t.Errorf("unexpected big-payment delivery for payment %s: %s", b.PaymentID, d.Body)
				continue
			}
			if !sameDecimal(want, b.Amount.String()) {
				p.t.Errorf("payment %s: amount %s in body, %s in the database", b.PaymentID, b.Amount, want)
			}
			if b.Event != d.EventID {
				p.t.Errorf("payment %s: body event %q, header event %q", b.PaymentID, b.Event, d.EventID)
			}
			checkKey(p.t, d, "big-payments")
			seenPayments[b.PaymentID.String()]++
		case "/hooks/rental-returned":
			var ev struct {
				ID     string         `json:"id"`
				Entity string         `json:"entity"`
				Op     string         `json:"op"`
				Key    string         `json:"key"`
				After  map[string]any `json:"after"`
			}
			if err := json.Unmarshal(d.Body, &ev); err != nil {
				p.t.Fatalf("rental-returned body %s: %v", d.Body, err)
			}
			if ev.Entity != "rental" || ev.Op != "UPDATE" || ev.After["return_date"] == nil {
				p.t.Errorf("rental-returned delivery is not a return: %s", d.Body)
			}
			if !e.returns[ev.Key] {
				p.t.Errorf("unexpected rental-returned delivery for rental %s", ev.Key)
			}
			if ev.ID != d.EventID {
				p.t.Errorf("rental %s: body id %q, header event %q", ev.Key, ev.ID, d.EventID)
			}
			checkKey(p.t, d, "rental-returned")
			seenReturns[ev.Key]++
		default:
			p.t.Errorf("delivery to unexpected path %s", d.Path)
		}
	}
	missing := 0
	for id := range e.payments {
		if seenPayments[id] == 0 {
			missing++
		}
		duplicates += max(0, seenPayments[id]-1)
	}
	for id := range e.returns {
		if seenReturns[id] == 0 {
			missing++
		}
		duplicates += max(0, seenReturns[id]-1)
	}
	if missing > 0 {
		p.t.Errorf("%d of %d expected events never reached the receiver", missing, e.total())
	}
	return duplicates
}

func checkKey(t testing.TB, d receiver.Delivery, observer string) {
	t.Helper()
	if want := idempotencyKey(d.EventID, observer, 0); d.IdempotencyKey != want {
		t.Errorf("event %s: Idempotency-Key %q, want %q", d.EventID, d.IdempotencyKey, want)
	}
}

// sameDecimal compares two decimal texts ("9.99" and "9.990").
func sameDecimal(a, b string) bool {
	trim := func(s string) string {
		if strings.Contains(s, ".") {
			s = strings.TrimRight(s, "0")
			s = strings.TrimSuffix(s, ".")
		}
		return s
	}
	return trim(a) == trim(b)
}

// replay writes the steps, returning when done.
func (p *pagila) replay(ctx context.Context, steps []workload.Step) error {
	return workload.Replay(ctx, p.db, workload.Postgres, steps, workload.ReplayOptions{StepsPerTx: 20})
}

// wait blocks until the receiver has n distinct deliveries.
func (p *pagila) wait(n int, timeout time.Duration, pr *process) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if pr != nil {
		// Stop waiting as soon as the observer exits on its own.
		go func() {
			select {
			case err := <-pr.done:
				pr.done <- err
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	if err := p.recv.WaitFor(ctx, n); err != nil {
		out := ""
		if pr != nil {
			out = pr.stderr.String()
		}
		p.t.Fatalf("%v\nobserver output:\n%s", err, tailString(out, 4000))
	}
}

func tailString(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func sortedKeys[M ~map[string]V, V any](m M) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// setMaxInFlight rewrites observer.max_in_flight in the config.
func (p *pagila) setMaxInFlight(t testing.TB, n int) {
	t.Helper()
	b, err := os.ReadFile(p.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), "batch_size = 500\n", fmt.Sprintf("batch_size = %d\nmax_in_flight = %d\n", n/2, n), 1)
	if err := os.WriteFile(p.cfgPath, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// replayPaced replays all steps with a pause between transactions, so that
// kills land in the middle of the workload.
func (p *pagila) replayPaced(ctx context.Context, pause time.Duration) error {
	return workload.Replay(ctx, p.db, workload.Postgres, p.steps, workload.ReplayOptions{StepsPerTx: 20, Pause: pause})
}

// replayStepsPaced replays steps (a part of p.steps) with a pause between
// transactions.
func (p *pagila) replayStepsPaced(ctx context.Context, steps []workload.Step, pause time.Duration) error {
	return workload.Replay(ctx, p.db, workload.Postgres, steps, workload.ReplayOptions{StepsPerTx: 20, Pause: pause})
}

// exited reports, without waiting, whether the process has ended (by
// itself or killed) and its exit error.
func (pr *process) exited() (bool, error) {
	select {
	case err := <-pr.done:
		pr.done <- err
		return true, err
	default:
		return false, nil
	}
}
