package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/fraiseql/observer/host/config"
	"github.com/fraiseql/observer/host/metrics"
)

// EnvAdminToken, when set, is the bearer token the admin commands (status,
// debug-event, reload) send, over the config's admin.token_env/token_file.
const EnvAdminToken = "OBSERVER_ADMIN_TOKEN"

// adminClient talks to a running instance's admin server.
type adminClient struct {
	base  string // http://host:port
	addr  string // host:port, for messages
	token string
	http  *http.Client
}

// adminClient resolves the admin address (--admin, else the config's
// [admin] address) and token (OBSERVER_ADMIN_TOKEN, else the config's).
func (a *app) adminClient(flagAddr string) (*adminClient, error) {
	c := &adminClient{http: &http.Client{Timeout: 3 * time.Minute}}
	// Only [admin] is read: the rest of the file may be mid-edit (and a
	// reload is how the running instance is told to refuse it).
	adm, cfgErr := config.LoadAdmin(a.configPath)
	addr := flagAddr
	if addr == "" {
		if cfgErr != nil {
			return nil, usagef("no --admin address given and the config's [admin] table cannot be read: %v", cfgErr)
		}
		if !adm.Enabled {
			return nil, usagef("%s: the admin server is disabled ([admin] enabled = false or address = \"\"); enable it or pass --admin HOST:PORT", a.configPath)
		}
		addr = adm.Address
	}
	if cfgErr == nil {
		c.token = adm.Token
	}
	if v := strings.TrimSpace(os.Getenv(EnvAdminToken)); v != "" {
		c.token = v
	}
	base, hostport, err := adminBase(addr)
	if err != nil {
		return nil, usagef("--admin: %v", err)
	}
	c.base, c.addr = base, hostport
	return c, nil
}

// adminBase turns "host:port" or "http://host:port" into a base URL. A
// server bound to every interface (0.0.0.0, ::, empty host) is reached on
// loopback.
func adminBase(addr string) (base, hostport string, err error) {
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", "", fmt.Errorf("admin address %q: want HOST:PORT or http://HOST:PORT", addr)
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		return "", "", fmt.Errorf("admin address %q: want HOST:PORT: %w", addr, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	hostport = net.JoinHostPort(host, port)
	return u.Scheme + "://" + hostport + strings.TrimSuffix(u.Path, "/"), hostport, nil
}

// do sends one request and returns the body of a 2xx answer, or an error
// that says what went wrong in the operator's terms.
func (c *adminClient) do(ctx context.Context, method, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, nil)
	if err != nil {
		return nil, fmt.Errorf("admin request %s %s: %w", method, path, err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("no observer is running at %s (is `observer run` running? is [admin] enabled?)", c.addr)
		}
		return nil, fmt.Errorf("admin server at %s: %w", c.addr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("admin server at %s: reading the answer: %w", c.addr, err)
	}
	if resp.StatusCode/100 == 2 {
		return body, nil
	}
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(body, &e) // the admin server's errors are {"error": "..."}
	msg := e.Error
	if resp.StatusCode == http.StatusUnauthorized {
		if c.token == "" {
			return nil, fmt.Errorf("the admin server at %s requires a token: set %s, or admin.token_env / admin.token_file in the config", c.addr, EnvAdminToken)
		}
		return nil, fmt.Errorf("the admin server at %s refused the token (it differs from the running instance's)", c.addr)
	}
	if msg == "" {
		// Not an answer of the observer's admin server (a proxy, another
		// program on the port): say what came back.
		what := strings.TrimSpace(string(body))
		if what == "" {
			what = "an empty body"
		}
		msg = fmt.Sprintf("%s %s answered %s with %s (is this an observer's admin address?)", method, c.base+path, resp.Status, oneLine(what, 120))
	}
	return nil, &adminStatusError{code: resp.StatusCode, msg: msg}
}

// adminStatusError is a non-2xx answer with the server's message.
type adminStatusError struct {
	code int
	msg  string
}

func (e *adminStatusError) Error() string { return e.msg }

// emitRaw prints a JSON answer under --format json (as the server sent
// it, re-indented) and returns true; false means render text.
func (a *app) emitRaw(body []byte) (bool, error) {
	if a.format != "json" {
		return false, nil
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, body, "", "  "); err != nil {
		return true, fmt.Errorf("admin answer is not JSON: %w", err)
	}
	buf.WriteByte('\n')
	_, err := a.stdout.Write(buf.Bytes())
	return true, err
}

func (a *app) statusCommand() *cobra.Command {
	var addr string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show a running observer's sources, lag, throughput, observers, breakers and stage latencies",
		Long: `status asks a running ` + "`observer run`" + ` (its admin server, [admin] address in the
config, or --admin) for its state: each source's checkpoint and lag behind the
head (events and seconds), the dead-letter queue's size, throughput, every
observer's counters, circuit breakers, and the latency of each pipeline stage
(capture → route → plugin → effect) as p50/p95/p99 over the latest samples, with
the slowest stage marked.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.adminClient(addr)
			if err != nil {
				return err
			}
			body, err := c.do(cmd.Context(), http.MethodGet, "/status")
			if err != nil {
				return err
			}
			if done, err := a.emitRaw(body); done {
				return err
			}
			var st metrics.Status
			if err := json.Unmarshal(body, &st); err != nil {
				return fmt.Errorf("admin server at %s: /status is not a status document: %w", c.addr, err)
			}
			writeStatus(a.stdout, &st)
			return nil
		},
	}
	cmd.Flags().StringVar(&addr, "admin", "", "admin address of the running observer (default: the config's [admin] address)")
	return cmd
}

// fmtMS renders milliseconds with a unit that keeps 2–3 significant digits.
func fmtMS(ms float64) string {
	d := time.Duration(ms * float64(time.Millisecond))
	switch {
	case ms == 0:
		return "0"
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", ms*1000)
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2fms", ms)
	case d < time.Second:
		return fmt.Sprintf("%.0fms", ms)
	case d < time.Minute:
		return fmt.Sprintf("%.2fs", ms/1000)
	}
	return d.Round(time.Second).String()
}

func writeStatus(w io.Writer, st *metrics.Status) {
	ready := "ready"
	if !st.Ready {
		ready = "not ready: " + st.Reason
	}
	role := "not leading"
	switch {
	case st.Leader:
		role = "leader"
	case st.State == phaseStandby:
		role = "standby"
	}
	fmt.Fprintf(w, "observer %s · %s (%s) · %s · up %s", st.Version, st.State, ready, role,
		time.Duration(st.UptimeSeconds*float64(time.Second)).Round(time.Second))
	if st.Config != "" {
		fmt.Fprintf(w, " · %s", st.Config)
	}
	fmt.Fprintln(w)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w)
	fmt.Fprintln(tw, "SOURCE\tTYPE\tGROUP\tCHECKPOINT\tHEAD\tLAG EVENTS\tLAG\tIN FLIGHT\tREAD\tFINISHED\tDLQ")
	if len(st.Sources) == 0 {
		fmt.Fprintln(tw, "(no engine running)")
	}
	for _, s := range st.Sources {
		cp := fmt.Sprint(s.Checkpoint)
		if s.CheckpointPending > 0 {
			cp += fmt.Sprintf(" (+%d pending)", s.CheckpointPending)
		}
		head, lagN, lag := fmt.Sprint(s.Head), fmt.Sprint(s.LagEvents), fmtMS(s.LagSeconds*1000)
		if s.HeadError != "" {
			head, lagN, lag = "?", "?", "?"
		}
		dlq := fmt.Sprint(s.DeadLetters)
		if s.DeadLettersError != "" {
			dlq = "?"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n", s.Name, s.Type, s.Group, cp, head, lagN, lag,
			s.InFlight, s.EventsRead, s.EventsFinished, dlq)
	}
	tw.Flush()
	for _, s := range st.Sources {
		if s.HeadError != "" {
			fmt.Fprintf(w, "  %s: lag unknown: %s\n", s.Name, s.HeadError)
		}
		if s.DeadLettersError != "" && s.DeadLettersError != s.HeadError {
			fmt.Fprintf(w, "  %s: dead-letter count unknown: %s\n", s.Name, s.DeadLettersError)
		}
	}

	fmt.Fprintf(w, "\nthroughput: %.1f events/s (last %.0fs) · %.1f events/s (last minute)\n",
		st.Throughput.EventsPerSecond, st.Throughput.WindowSeconds, st.Throughput.EventsPerSecond1m)

	fmt.Fprintln(w)
	fmt.Fprintln(tw, "OBSERVER\tENTITY\tIN FLIGHT\tDONE\tFILTERED\tDEAD-LETTERED\tRETRIES\tDEDUPLICATED")
	if len(st.Observers) == 0 {
		fmt.Fprintln(tw, "(none)")
	}
	for _, o := range st.Observers {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\n", o.Name, o.Entity, o.InFlight, o.Done, o.Filtered, o.DeadLettered, o.Retries, o.Deduplicated)
	}
	tw.Flush()

	fmt.Fprintln(w)
	if len(st.Breakers) == 0 {
		fmt.Fprintln(w, "circuit breakers: none yet (one per observer and endpoint, created on first use)")
	} else {
		fmt.Fprintln(tw, "BREAKER ENDPOINT\tOBSERVER\tSTATE\tREQUESTS\tFAILURES\tOPENS\tREJECTED\tRETRY IN")
		for _, b := range st.Breakers {
			retry := ""
			if b.RetryIn > 0 {
				retry = b.RetryIn.Round(time.Millisecond).String()
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\n", b.Endpoint, b.Observer, b.State, b.Requests, b.Failures, b.Opens, b.Rejected, retry)
		}
		tw.Flush()
	}

	fmt.Fprintln(w)
	slowest, worst := "", 0.0
	for _, s := range st.Stages {
		if s.Stage != metrics.StageTotal && s.Samples > 0 && s.P95MS > worst {
			slowest, worst = s.Stage, s.P95MS
		}
	}
	fmt.Fprintln(tw, "STAGE\tSAMPLES\tP50\tP95\tP99\tMAX\t")
	for _, s := range st.Stages {
		mark := ""
		if s.Stage == slowest {
			mark = "◀ slowest (p95)"
		}
		if s.Samples == 0 {
			fmt.Fprintf(tw, "%s\t0\t-\t-\t-\t-\t%s\n", s.Stage, mark)
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\n", s.Stage, s.Samples, fmtMS(s.P50MS), fmtMS(s.P95MS), fmtMS(s.P99MS), fmtMS(s.MaxMS), mark)
	}
	tw.Flush()
}
