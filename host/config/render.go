package config

import (
	"encoding/json"
	"log/slog"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/fraiseql/observer/host/resilience"
)

// Redacted stands in for a secret in any rendering of a Config.
const Redacted = "REDACTED"

// RedactDSN hides the password in a connection string: the userinfo
// password and password-like query parameters of a URL DSN, or the value
// of password= in a key=value DSN. Other parts stay, for debugging.
func RedactDSN(dsn string) string {
	if strings.Contains(dsn, "://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "<unparsable DSN, " + Redacted + ">"
		}
		if u.User != nil {
			if _, has := u.User.Password(); has {
				u.User = url.UserPassword(u.User.Username(), Redacted)
			}
		}
		if u.RawQuery != "" {
			q := u.Query()
			for k := range q {
				if isSecretParam(k) {
					q.Set(k, Redacted)
				}
			}
			u.RawQuery = q.Encode()
		}
		return u.String()
	}
	return kvPasswordRE.ReplaceAllString(dsn, "${1}"+Redacted)
}

var kvPasswordRE = regexp.MustCompile(`(?i)(\b(?:password|sslpassword)\s*=\s*)('(?:[^'\\]|\\.)*'|\S*)`)

func isSecretParam(k string) bool {
	k = strings.ToLower(k)
	return strings.Contains(k, "password") || strings.Contains(k, "secret") || strings.Contains(k, "token") || k == "_auth"
}

// The JSON views below fix field names and order, render durations and
// sizes as in the file, and leave secrets out.

type settingsView struct {
	Group              string `json:"group"`
	Concurrency        int    `json:"concurrency"`
	BatchSize          int    `json:"batch_size"`
	MaxInFlight        int    `json:"max_in_flight"`
	CheckpointInterval string `json:"checkpoint_interval"`
	ShutdownTimeout    string `json:"shutdown_timeout"`
	LogLevel           string `json:"log_level"`
	LogFormat          string `json:"log_format"`
	Dedup              bool   `json:"dedup"`
	DedupRetention     string `json:"dedup_retention"`
}

type sourceView struct {
	Type         string `json:"type"`
	Name         string `json:"name"`
	DSN          string `json:"dsn"`
	DSNFrom      string `json:"dsn_from"`
	Schema       string `json:"schema"`
	Channel      string `json:"channel"`
	PollInterval string `json:"poll_interval"`
	Mode         string `json:"mode"`
}

type pluginView struct {
	Path         string          `json:"path"`
	MemoryLimit  string          `json:"memory_limit"`
	Timeout      string          `json:"timeout"`
	MaxOutput    string          `json:"max_output"`
	MaxInstances int             `json:"max_instances"`
	AllowHosts   []string        `json:"allow_hosts"`
	AllowPrivate bool            `json:"allow_private"`
	Config       json.RawMessage `json:"config,omitempty"`
}

type stepView struct {
	Plugin string          `json:"plugin"`
	Config json.RawMessage `json:"config,omitempty"`
}

type retryView struct {
	Strategy     string `json:"strategy"`
	MaxAttempts  int    `json:"max_attempts"`
	InitialDelay string `json:"initial_delay"`
	MaxDelay     string `json:"max_delay"`
	Jitter       bool   `json:"jitter"`
}

type httpView struct {
	Timeout    string `json:"timeout"`
	Secret     string `json:"secret,omitempty"`
	SecretFrom string `json:"secret_from,omitempty"`
}

type breakerView struct {
	Enabled        bool    `json:"enabled"`
	FailureRatio   float64 `json:"failure_ratio,omitempty"`
	Window         string  `json:"window,omitempty"`
	MinRequests    int     `json:"min_requests,omitempty"`
	OpenTimeout    string  `json:"open_timeout,omitempty"`
	HalfOpenProbes int     `json:"half_open_probes,omitempty"`
}

func breakerOf(b resilience.BreakerConfig) breakerView {
	if !b.Enabled {
		return breakerView{}
	}
	return breakerView{true, b.FailureRatio, dur(b.Window), b.MinRequests, dur(b.OpenTimeout), b.HalfOpenProbes}
}

type observerView struct {
	Name       string      `json:"name"`
	Entity     string      `json:"entity"`
	Operations []string    `json:"operations"`
	Condition  string      `json:"condition,omitempty"`
	Filters    []stepView  `json:"filters"`
	Action     stepView    `json:"action"`
	Retry      retryView   `json:"retry"`
	HTTP       httpView    `json:"http"`
	Breaker    breakerView `json:"breaker"`
}

type configView struct {
	Path      string                `json:"path"`
	Observer  settingsView          `json:"observer"`
	Source    sourceView            `json:"source"`
	Runtime   map[string]string     `json:"runtime"`
	Plugins   map[string]pluginView `json:"plugins"`
	Observers []observerView        `json:"observers"`
	Admin     adminView             `json:"admin"`
	Failover  failoverView          `json:"failover"`
}

func dur(d time.Duration) string { return d.String() }

func (s Source) view() sourceView {
	dsn := RedactDSN(s.DSN)
	if s.Type == SourceSQLite {
		dsn = s.DSN
	}
	return sourceView{s.Type, s.Name, dsn, s.DSNFrom, s.Schema, s.Channel, dur(s.PollInterval), s.Mode}
}

func (h HTTP) view() httpView {
	v := httpView{Timeout: dur(h.Timeout), SecretFrom: h.SecretFrom}
	if h.Secret != "" {
		v.Secret = Redacted
	}
	return v
}

func (c *Config) view() configView {
	v := configView{
		Path: c.Path,
		Observer: settingsView{c.Observer.Group, c.Observer.Concurrency, c.Observer.BatchSize, c.Observer.MaxInFlight,
			dur(c.Observer.CheckpointInterval), dur(c.Observer.ShutdownTimeout), strings.ToLower(c.Observer.LogLevel.String()), c.Observer.LogFormat,
			c.Observer.Dedup, dur(c.Observer.DedupRetention)},
		Source:    c.Source.view(),
		Runtime:   map[string]string{"cache_dir": c.Runtime.CacheDir},
		Plugins:   map[string]pluginView{},
		Observers: []observerView{},
		Admin:     c.Admin.view(),
		Failover:  c.Failover.view(),
	}
	for _, name := range slices.Sorted(maps.Keys(c.Plugins)) {
		p := c.Plugins[name]
		hosts := p.AllowHosts
		if hosts == nil {
			hosts = []string{}
		}
		v.Plugins[name] = pluginView{p.Path, FormatSize(p.MemoryLimit), dur(p.Timeout), FormatSize(p.MaxOutput), p.MaxInstances, hosts, p.AllowPrivate, p.Config}
	}
	for _, o := range c.Observers {
		ov := observerView{
			Name: o.Name, Entity: o.Entity, Condition: o.Condition.String(),
			Filters: []stepView{}, Action: stepView{o.Action.Plugin, o.Action.Config},
			Retry:   retryView{string(o.Retry.Strategy), o.Retry.MaxAttempts, dur(o.Retry.InitialDelay), dur(o.Retry.MaxDelay), o.Retry.Jitter},
			HTTP:    o.HTTP.view(),
			Breaker: breakerOf(o.Breaker),
		}
		for _, op := range o.Operations {
			ov.Operations = append(ov.Operations, string(op))
		}
		for _, f := range o.Filters {
			ov.Filters = append(ov.Filters, stepView{f.Plugin, f.Config})
		}
		v.Observers = append(v.Observers, ov)
	}
	return v
}

// MarshalJSON renders the resolved config with secrets redacted.
func (c *Config) MarshalJSON() ([]byte, error) { return json.Marshal(c.view()) }

// String renders the resolved config as indented JSON, secrets redacted.
func (c *Config) String() string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(c.view()); err != nil {
		return "<config: " + err.Error() + ">"
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// LogValue summarises the config for a log line, secrets redacted.
func (c *Config) LogValue() slog.Value {
	names := make([]string, len(c.Observers))
	for i, o := range c.Observers {
		names[i] = o.Name
	}
	return slog.GroupValue(
		slog.String("path", c.Path),
		slog.String("source", c.Source.Type+" "+c.Source.Name),
		slog.String("dsn", c.Source.view().DSN),
		slog.String("group", c.Observer.Group),
		slog.Any("plugins", slices.Sorted(maps.Keys(c.Plugins))),
		slog.Any("observers", names),
	)
}

// String renders s with the DSN's password redacted.
func (s Source) String() string {
	b, _ := json.Marshal(s.view())
	return string(b)
}

// String renders h with the secret redacted.
func (h HTTP) String() string {
	b, _ := json.Marshal(h.view())
	return string(b)
}

// LogValue renders h with the secret redacted.
func (h HTTP) LogValue() slog.Value { return slog.StringValue(h.String()) }

// LogValue renders s with the DSN's password redacted.
func (s Source) LogValue() slog.Value { return slog.StringValue(s.String()) }
