package config

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/fraiseql/observer/abi"
	"github.com/fraiseql/observer/host/condition"
	"github.com/fraiseql/observer/host/effect"
	"github.com/fraiseql/observer/host/resilience"
)

// EnvSourceDSN, when set and not empty, overrides source.dsn and
// source.dsn_env, so a deployment can point the same file at another
// database without editing it.
const EnvSourceDSN = "OBSERVER_SOURCE_DSN"

// Config is a loaded, defaulted and validated observer.toml. Build it with
// Load or Parse only: they guarantee every field below is valid.
//
// Secrets (the source DSN's password, http secrets) are kept in the struct
// for use, but String, LogValue and MarshalJSON redact them.
type Config struct {
	// Path is the file the config came from; Dir its directory, against
	// which relative paths in the file were resolved.
	Path      string
	Dir       string
	Observer  Settings
	Source    Source
	Runtime   Runtime
	Plugins   map[string]Plugin
	Observers []Observer
	Admin     Admin
	Failover  Failover
}

// Settings is the [observer] table: the daemon as a whole.
type Settings struct {
	// Group names the checkpoint: observers in one group share a cursor.
	Group              string
	Concurrency        int
	BatchSize          int
	MaxInFlight        int
	CheckpointInterval time.Duration
	ShutdownTimeout    time.Duration
	LogLevel           slog.Level
	// LogFormat is "text" or "json".
	LogFormat string
	// Dedup records finished units so that events delivered again after
	// a crash do not repeat their effects; DedupRetention is how long the
	// records are kept.
	Dedup          bool
	DedupRetention time.Duration
}

// Source types and modes.
const (
	SourceSQLite   = "sqlite"
	SourcePostgres = "postgres"
	ModeNative     = "native"
	ModeFraiseQL   = "fraiseql"
)

// Source is the [source] table: the watched database.
type Source struct {
	// Type is "sqlite" or "postgres".
	Type string
	// Name is part of every event id, so it must stay the same for the
	// life of the checkpoints.
	Name string
	// DSN is the effective connection string (after OBSERVER_SOURCE_DSN
	// and dsn_env); for sqlite a relative file path is resolved against the
	// config's directory.
	DSN string
	// DSNFrom says where DSN came from: "dsn", "dsn_env:VAR" or
	// "env:OBSERVER_SOURCE_DSN".
	DSNFrom      string
	Schema       string
	Channel      string
	PollInterval time.Duration
	// Mode is "native" or "fraiseql" (PostgreSQL only).
	Mode string
}

// Runtime is the [runtime] table: the WebAssembly runtime.
type Runtime struct {
	// CacheDir holds compiled modules, resolved against the config's
	// directory.
	CacheDir string
}

// Plugin is one [plugins.NAME] table.
type Plugin struct {
	Name string
	// Path is the .wasm file, resolved against the config's directory; it
	// existed when the config was loaded.
	Path         string
	MemoryLimit  int64
	Timeout      time.Duration
	MaxOutput    int64
	MaxInstances int // 0: the plugin host's default
	// AllowHosts lists the hosts this plugin's http effects may reach.
	AllowHosts []string
	// AllowPrivate lets its http effects connect to non-public addresses
	// (loopback, RFC 1918 …) whatever the host resolves to; without it only
	// the private addresses named by IP or CIDR entries of AllowHosts.
	AllowPrivate bool
	// Config is the plugin's default config, a JSON object (nil if none).
	Config json.RawMessage
}

// Step is one use of a plugin by an observer.
type Step struct {
	Plugin string
	// Config is the effective config: the plugin's default config merged
	// with the step's (top-level keys of the step win), as a JSON object,
	// or nil when neither has any.
	Config json.RawMessage
}

// HTTP is an observer's settings for its http effects.
type HTTP struct {
	Timeout time.Duration
	// Secret signs request bodies; "" sends no signature. Never printed.
	Secret string
	// SecretFrom says where Secret came from: "secret", "secret_env:VAR"
	// or "secret_file:PATH"; "" when there is none.
	SecretFrom string
}

// Observer is one [[observers]] entry.
type Observer struct {
	Name   string
	Entity string
	// Operations is never empty; the default is all three.
	Operations []abi.Operation
	// Condition is nil when the observer has none (every event matches).
	Condition *condition.Expr
	Filters   []Step
	Action    Step
	Retry     resilience.Policy
	HTTP      HTTP
	// Breaker is the circuit breaker config of each endpoint this
	// observer's http effects reach (Enabled false: none).
	Breaker resilience.BreakerConfig
}

// Matches reports whether op is one of o's operations.
func (o *Observer) Matches(op abi.Operation) bool {
	for _, x := range o.Operations {
		if x == op {
			return true
		}
	}
	return false
}

// EffectPolicy is what o's effects may do: the action plugin's allowed
// hosts and private-address allowance, o's signing secret, timeout and
// circuit breaker.
func (c *Config) EffectPolicy(o *Observer) effect.Policy {
	p := c.Plugins[o.Action.Plugin]
	return effect.Policy{
		AllowedHosts: p.AllowHosts,
		AllowPrivate: p.AllowPrivate,
		Secret:       o.HTTP.Secret,
		Timeout:      o.HTTP.Timeout,
		Breaker:      o.Breaker,
	}
}

// Load reads and parses the file at path. See Parse.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	return Parse(path, data)
}

// LoadForState reads the file at path like Load, but for commands that
// only touch the source's durable state (capture install, dlq list): it
// still rejects every syntax, key and value error, but does not require
// what only running the observers needs — plugin files on disk and
// http secrets from the environment or files. A config loaded this way
// has no secrets and must not be used to run observers.
func LoadForState(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	dir := filepath.Dir(path)
	d := &decoder{file: path, dir: dir, env: os.LookupEnv, stateOnly: true}
	return d.finish(path, dir, d.decode(data))
}

// Parse parses data as observer.toml, applies defaults and environment
// overrides, and validates everything. path names the file in errors and
// anchors relative paths (plugin files, the sqlite file, the cache dir).
//
// On failure the error lists every problem found, one per line, each
// naming the file, the key path and what was expected; it is a *LoadError.
func Parse(path string, data []byte) (*Config, error) {
	return parse(path, data, os.LookupEnv)
}

func parse(path string, data []byte, env func(string) (string, bool)) (*Config, error) {
	dir := filepath.Dir(path)
	d := &decoder{file: path, dir: dir, env: env}
	return d.finish(path, dir, d.decode(data))
}

func (d *decoder) finish(path, dir string, cfg *Config) (*Config, error) {
	if len(d.errs) > 0 {
		return nil, &LoadError{File: path, Errs: d.errs}
	}
	cfg.Path, cfg.Dir = path, dir
	return cfg, nil
}
