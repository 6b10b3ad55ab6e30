package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fraiseql/observer/host/journal"
	"github.com/fraiseql/observer/host/metrics"
)

// DefaultAddress is where the admin server listens unless configured.
const DefaultAddress = "127.0.0.1:9464"

// Backend is the running instance as the admin server sees it. The run
// supervisor implements it over the engine running now. Every method is
// called from HTTP handlers, concurrently.
type Backend interface {
	// Ready says whether the instance serves events now (the engine runs
	// and this instance leads), its state (starting, running, standby,
	// reloading, stopping) and, when not ready, why.
	Ready() (ready bool, state, reason string)
	// Status returns the instance's status.
	Status(ctx context.Context) (metrics.Status, error)
	// Event returns what is known about one event; ErrNotFound when
	// nothing is, *InvalidIDError for an id that is not SOURCE:POSITION.
	Event(ctx context.Context, id string) (journal.Report, error)
	// Reload reloads the configuration. A refused configuration returns a
	// *RefusedError (see Refused); ErrReloadBusy when one is running.
	Reload(ctx context.Context) (ReloadResult, error)
}

// ReloadResult is the answer to a successful reload.
type ReloadResult struct {
	Config  string `json:"config"`
	Message string `json:"message"`
}

// Config configures the server.
type Config struct {
	// Address is host:port; "" means DefaultAddress. Port 0 picks a free
	// port (see Server.Addr).
	Address string
	// Token, when set, is required as a bearer token by every endpoint but
	// /healthz and /readyz. An address that is not loopback requires it.
	Token string
	// Gatherer serves /metrics (a metrics.Metrics' Registry).
	Gatherer prometheus.Gatherer
	// ReloadTimeout bounds one reload; 0 means 2 minutes.
	ReloadTimeout time.Duration
	// RequestTimeout bounds /status and /events; 0 means 10 seconds.
	RequestTimeout time.Duration
	Logger         *slog.Logger
}

// Server is the admin HTTP server. Create it with New.
type Server struct {
	cfg     Config
	backend Backend
	log     *slog.Logger
	token   [sha256.Size]byte
	srv     *http.Server

	mu  sync.Mutex
	ln  net.Listener
	err chan error
}

// Loopback reports whether address (host:port) only accepts connections
// from this machine: a loopback IP or "localhost". An empty host listens
// on every interface and is not loopback.
func Loopback(address string) (bool, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return false, fmt.Errorf("admin address %q: want host:port such as %s: %w", address, DefaultAddress, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return false, fmt.Errorf("admin address %q: port %q is not a number from 0 to 65535", address, port)
	}
	if strings.EqualFold(host, "localhost") {
		return true, nil
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback(), nil
}

// CheckAddress validates address and refuses a non-loopback one without
// a token.
func CheckAddress(address string, haveToken bool) error {
	lo, err := Loopback(address)
	if err != nil {
		return err
	}
	if !lo && !haveToken {
		return fmt.Errorf("admin address %q is not loopback: set a token (admin.token_env or admin.token_file) or bind to 127.0.0.1", address)
	}
	return nil
}

// New validates cfg and builds the server; nothing listens yet.
func New(cfg Config, b Backend) (*Server, error) {
	if b == nil {
		return nil, errors.New("admin: backend is nil")
	}
	if cfg.Address == "" {
		cfg.Address = DefaultAddress
	}
	if err := CheckAddress(cfg.Address, cfg.Token != ""); err != nil {
		return nil, fmt.Errorf("admin: %w", err)
	}
	if cfg.Gatherer == nil {
		return nil, errors.New("admin: metrics gatherer is nil")
	}
	if cfg.ReloadTimeout <= 0 {
		cfg.ReloadTimeout = 2 * time.Minute
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, backend: b, log: cfg.Logger}
	if cfg.Token != "" {
		s.token = sha256.Sum256([]byte(cfg.Token))
	}
	s.cfg.Token = "" // kept only as its hash
	mux := http.NewServeMux()
	metricsHandler := promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
		Timeout:       cfg.RequestTimeout,
	})
	mux.Handle("GET /metrics", s.auth(metricsHandler))
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /status", s.auth(http.HandlerFunc(s.status)))
	mux.Handle("GET /events/{id}", s.auth(http.HandlerFunc(s.event)))
	mux.Handle("POST /reload", s.auth(http.HandlerFunc(s.reload)))
	s.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      cfg.ReloadTimeout + 10*time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug),
	}
	return s, nil
}

// Start binds the address and serves in the background until Shutdown.
// It returns once the address is bound, or the bind error.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.cfg.Address)
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("admin: listen on %s: the address is in use (another observer on this machine? give each instance its own [admin] address or run --admin ADDR, or disable it): %w", s.cfg.Address, err)
	}
	if err != nil {
		return fmt.Errorf("admin: listen on %s: %w", s.cfg.Address, err)
	}
	done := make(chan error, 1)
	s.mu.Lock()
	s.ln = ln
	s.err = done
	s.mu.Unlock()
	go func() {
		err := s.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		done <- err
	}()
	s.log.Info("admin server listening", "address", ln.Addr().String(), "token_required", s.token != [sha256.Size]byte{})
	return nil
}

// Addr is the bound address ("" before Start).
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Shutdown stops accepting connections and waits for running requests
// until ctx ends, then closes them. Calling it again returns nil at once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	serveErr := s.err
	s.err = nil // a second Shutdown has nothing to wait for
	s.mu.Unlock()
	if serveErr == nil {
		return nil
	}
	err := s.srv.Shutdown(ctx)
	if err != nil {
		_ = s.srv.Close()
	}
	if e := <-serveErr; e != nil && err == nil {
		err = e
	}
	if err != nil {
		return fmt.Errorf("admin: shutdown: %w", err)
	}
	return nil
}

// auth requires the bearer token when one is configured.
func (s *Server) auth(next http.Handler) http.Handler {
	if s.token == [sha256.Size]byte{} {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		sum := sha256.Sum256([]byte(strings.TrimSpace(got)))
		// Compare hashes: constant time whatever the lengths.
		if !ok || subtle.ConstantTimeCompare(sum[:], s.token[:]) != 1 {
			s.log.Warn("admin: request without a valid token refused", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
			w.Header().Set("WWW-Authenticate", `Bearer realm="observer"`)
			writeError(w, http.StatusUnauthorized, errors.New("missing or wrong bearer token (Authorization: Bearer …; see admin.token_env / admin.token_file)"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// Readiness is the body of /readyz.
type Readiness struct {
	Ready  bool   `json:"ready"`
	State  string `json:"state"`
	Reason string `json:"reason,omitempty"`
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	ok, state, reason := s.backend.Ready()
	code := http.StatusOK
	if !ok {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, Readiness{Ready: ok, State: state, Reason: reason})
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	st, err := s.backend.Status(ctx)
	if err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) event(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := CheckEventID(id); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	rep, err := s.backend.Event(ctx, id)
	if err != nil {
		if err == ErrNotFound { //nolint:errorlint // only the bare answer; a wrapped one says why itself
			err = fmt.Errorf("event %s: %w: not in the journal of recent events, and the source has no row at that position (never written, rolled back or pruned)", id, err)
		}
		writeError(w, statusOf(err), err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

// CheckEventID checks that id is SOURCE:POSITION.
func CheckEventID(id string) error {
	_, _, err := ParseEventID(id)
	return err
}

// ParseEventID splits "SOURCE:POSITION".
func ParseEventID(id string) (src string, pos uint64, err error) {
	i := strings.LastIndexByte(id, ':')
	if i <= 0 {
		return "", 0, &InvalidIDError{ID: id}
	}
	pos, perr := strconv.ParseUint(id[i+1:], 10, 64)
	if perr != nil || pos == 0 {
		return "", 0, &InvalidIDError{ID: id}
	}
	return id[:i], pos, nil
}

func (s *Server) reload(w http.ResponseWriter, r *http.Request) {
	// The reload runs to its end even if the client goes away: stopping it
	// halfway would leave the instance between two configurations.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), s.cfg.ReloadTimeout)
	defer cancel()
	s.log.Info("admin: reload requested", "remote", r.RemoteAddr)
	res, err := s.backend.Reload(ctx)
	if err != nil {
		s.log.Warn("admin: reload failed", "error", err.Error())
		writeError(w, statusOf(err), err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}
