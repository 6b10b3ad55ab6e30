package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/fraiseql/observer/abi"
	"github.com/fraiseql/observer/host/condition"
	"github.com/fraiseql/observer/host/resilience"
)

// Defaults.
const (
	DefaultGroup              = "default"
	DefaultConcurrency        = 8
	DefaultBatchSize          = 500
	DefaultMaxInFlight        = 5000
	DefaultCheckpointInterval = 500 * time.Millisecond
	DefaultShutdownTimeout    = 10 * time.Second
	DefaultSourceName         = "main"
	DefaultSchema             = "observer"
	DefaultChannel            = "observer_events"
	DefaultPollPostgres       = time.Second
	DefaultPollSQLite         = 200 * time.Millisecond
	DefaultCacheDir           = ".cache/observer/wasm"
	DefaultDedupRetention     = 7 * 24 * time.Hour
	DefaultMemoryLimit        = 64 << 20
	DefaultPluginTimeout      = 2 * time.Second
	DefaultMaxOutput          = 1 << 20
	DefaultHTTPTimeout        = 10 * time.Second
)

// nameRE is what names that end up in ids, keys and logs may look like.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

const nameRule = "letters, digits, '_', '.', '-', starting with a letter or digit, at most 128"

// decoder walks the generic TOML tree, collecting every error.
type decoder struct {
	file string
	dir  string
	env  func(string) (string, bool)
	errs []*KeyError
	// stateOnly skips the checks only running observers needs (LoadForState).
	stateOnly bool
}

func (d *decoder) errorf(key, observer, format string, a ...any) {
	d.errs = append(d.errs, &KeyError{File: d.file, Key: key, Observer: observer, Msg: fmt.Sprintf(format, a...)})
}

// table is one TOML table being read. Every accessor marks its key known;
// done reports the keys nobody asked for.
type table struct {
	d        *decoder
	path     string
	observer string
	m        map[string]any
	known    []string
}

func (d *decoder) table(path, observer string, m map[string]any) *table {
	return &table{d: d, path: path, observer: observer, m: m}
}

func (t *table) key(k string) string {
	if t.path == "" {
		return k
	}
	return t.path + "." + tomlKey(k)
}

// tomlKey quotes a key that is not bare in TOML.
func tomlKey(k string) string {
	for _, r := range k {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return strconv.Quote(k)
		}
	}
	if k == "" {
		return `""`
	}
	return k
}

func (t *table) errorf(k, format string, a ...any) {
	t.d.errorf(t.key(k), t.observer, format, a...)
}

func (t *table) get(k string) (any, bool) {
	t.known = append(t.known, k)
	v, ok := t.m[k]
	return v, ok
}

func (t *table) done() {
	var unknown []string
	for k := range t.m {
		if !slices.Contains(t.known, k) {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(unknown)
	known := slices.Clone(t.known)
	slices.Sort(known)
	known = slices.Compact(known)
	for _, k := range unknown {
		t.errorf(k, "unknown key; known keys here: %s", strings.Join(known, ", "))
	}
}

// describe names a TOML value's type and shows it, for "got …".
func describe(v any) string {
	switch x := v.(type) {
	case string:
		return fmt.Sprintf("string %q", x)
	case int64:
		return fmt.Sprintf("integer %d", x)
	case float64:
		return fmt.Sprintf("float %v", x)
	case bool:
		return fmt.Sprintf("boolean %v", x)
	case []any, []map[string]any:
		return "an array"
	case map[string]any:
		return "a table"
	case time.Time:
		return fmt.Sprintf("datetime %v", x)
	}
	return fmt.Sprintf("%T", v)
}

func (t *table) str(k, def string) string {
	v, ok := t.get(k)
	if !ok {
		return def
	}
	s, isStr := v.(string)
	if !isStr {
		t.errorf(k, "got %s, want a string", describe(v))
		return def
	}
	return s
}

// required is str that reports an absent or empty value.
func (t *table) required(k, what string) string {
	v, ok := t.get(k)
	if !ok {
		t.errorf(k, "missing, want %s", what)
		return ""
	}
	s, isStr := v.(string)
	if !isStr {
		t.errorf(k, "got %s, want %s", describe(v), what)
		return ""
	}
	if strings.TrimSpace(s) == "" {
		t.errorf(k, "is empty, want %s", what)
	}
	return s
}

func (t *table) oneOf(k, def string, allowed ...string) string {
	s := t.str(k, def)
	if _, ok := t.m[k]; ok {
		if _, isStr := t.m[k].(string); !isStr {
			return def
		}
	}
	if low := strings.ToLower(strings.TrimSpace(s)); slices.Contains(allowed, low) {
		return low
	}
	if !slices.Contains(allowed, s) {
		t.errorf(k, "got %q, want one of %s", s, quoteList(allowed))
		return def
	}
	return s
}

func quoteList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = strconv.Quote(x)
	}
	return strings.Join(q, ", ")
}

func (t *table) integer(k string, def, lo, hi int) int {
	v, ok := t.get(k)
	if !ok {
		return def
	}
	n, isInt := v.(int64)
	if !isInt {
		t.errorf(k, "got %s, want an integer from %d to %d", describe(v), lo, hi)
		return def
	}
	if n < int64(lo) || n > int64(hi) {
		t.errorf(k, "got %d, want an integer from %d to %d", n, lo, hi)
		return def
	}
	return int(n)
}

func (t *table) boolean(k string, def bool) bool {
	v, ok := t.get(k)
	if !ok {
		return def
	}
	b, isBool := v.(bool)
	if !isBool {
		t.errorf(k, "got %s, want true or false", describe(v))
		return def
	}
	return b
}

// ratio reads a number in (0, 1]: a float, or the integer 1.
func (t *table) ratio(k string, def float64) float64 {
	v, ok := t.get(k)
	if !ok {
		return def
	}
	var f float64
	switch x := v.(type) {
	case float64:
		f = x
	case int64:
		f = float64(x)
	default:
		t.errorf(k, "got %s, want a number greater than 0 and at most 1, such as 0.5", describe(v))
		return def
	}
	if !(f > 0 && f <= 1) {
		t.errorf(k, "got %v, want a number greater than 0 and at most 1, such as 0.5", f)
		return def
	}
	return f
}

// duration reads a Go duration string ("500ms", "2s", "1m30s") > 0.
func (t *table) duration(k string, def time.Duration) time.Duration {
	v, ok := t.get(k)
	if !ok {
		return def
	}
	s, isStr := v.(string)
	if !isStr {
		t.errorf(k, "got %s, want a duration string such as \"500ms\" or \"2s\"", describe(v))
		return def
	}
	dur, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		t.errorf(k, "got %q, want a duration such as \"500ms\", \"2s\" or \"1m30s\" (units ns, us, ms, s, m, h)", s)
		return def
	}
	if dur <= 0 {
		t.errorf(k, "got %q, want a positive duration", s)
		return def
	}
	return dur
}

// size reads a byte size: an integer, or a string "16MiB", "1MB", "512".
func (t *table) size(k string, def, lo, hi int64) int64 {
	v, ok := t.get(k)
	if !ok {
		return def
	}
	var n int64
	switch x := v.(type) {
	case int64:
		n = x
	case string:
		var err error
		if n, err = ParseSize(x); err != nil {
			t.errorf(k, "%v", err)
			return def
		}
	default:
		t.errorf(k, "got %s, want a size such as \"64MiB\", \"1MB\" or a number of bytes", describe(v))
		return def
	}
	if n < lo || n > hi {
		t.errorf(k, "got %s, want from %s to %s", FormatSize(n), FormatSize(lo), FormatSize(hi))
		return def
	}
	return n
}

var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"kb": 1e3, "mb": 1e6, "gb": 1e9,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30,
}

// ParseSize parses "16MiB", "1MB", "512KiB", "100", "100B" (units are
// case-insensitive; KB, MB, GB are powers of 1000 and KiB, MiB, GiB of
// 1024).
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	unit, ok := sizeUnits[strings.ToLower(strings.TrimSpace(t[i:]))]
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if i == 0 || !ok || err != nil {
		return 0, fmt.Errorf("got %q, want a size such as \"64MiB\", \"1MB\", \"512KiB\" or a number of bytes", s)
	}
	if n > math.MaxInt64/unit {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return n * unit, nil
}

// FormatSize renders n bytes in the largest unit dividing it, binary
// units first.
func FormatSize(n int64) string {
	for _, u := range []struct {
		s string
		v int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"GB", 1e9}, {"MB", 1e6}, {"kB", 1e3}} {
		if n != 0 && n%u.v == 0 {
			return strconv.FormatInt(n/u.v, 10) + u.s
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}

func (t *table) strings(k string) []string {
	v, ok := t.get(k)
	if !ok {
		return nil
	}
	arr, isArr := v.([]any)
	if !isArr {
		t.errorf(k, "got %s, want an array of strings", describe(v))
		return nil
	}
	out := make([]string, 0, len(arr))
	for i, x := range arr {
		s, isStr := x.(string)
		if !isStr {
			t.d.errorf(fmt.Sprintf("%s[%d]", t.key(k), i), t.observer, "got %s, want a string", describe(x))
			continue
		}
		out = append(out, s)
	}
	return out
}

// sub returns the table at k, or nil if absent or not a table.
func (t *table) sub(k string) *table {
	v, ok := t.get(k)
	if !ok {
		return nil
	}
	m, isMap := v.(map[string]any)
	if !isMap {
		t.errorf(k, "got %s, want a table", describe(v))
		return nil
	}
	return t.d.table(t.key(k), t.observer, m)
}

// tableList returns the array of tables at k ([[k]] or k = [{…}, …]).
func (t *table) tableList(k string) []*table {
	v, ok := t.get(k)
	if !ok {
		return nil
	}
	var ms []map[string]any
	switch x := v.(type) {
	case []map[string]any:
		ms = x
	case []any:
		for i, e := range x {
			m, isMap := e.(map[string]any)
			if !isMap {
				t.d.errorf(fmt.Sprintf("%s[%d]", t.key(k), i), "", "got %s, want a table", describe(e))
				continue
			}
			ms = append(ms, m)
		}
	default:
		t.errorf(k, "got %s, want an array of tables ([[%s]])", describe(v), k)
		return nil
	}
	out := make([]*table, len(ms))
	for i, m := range ms {
		out[i] = t.d.table(fmt.Sprintf("%s[%d]", t.key(k), i), "", m)
	}
	return out
}

// decode is parse → default → validate over the whole document.
func (d *decoder) decode(data []byte) *Config {
	var doc map[string]any
	if _, err := toml.Decode(string(data), &doc); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			d.errs = append(d.errs, &KeyError{File: d.file, Line: pe.Position.Line, Col: pe.Position.Col,
				Msg: "TOML syntax: " + pe.Message})
		} else {
			d.errs = append(d.errs, &KeyError{File: d.file, Msg: "TOML: " + err.Error()})
		}
		return nil
	}
	root := d.table("", "", doc)
	cfg := &Config{Plugins: map[string]Plugin{}}

	st := root.sub("observer")
	if st == nil {
		st = d.table("observer", "", nil)
	}
	cfg.Observer = d.settings(st)

	if src := root.sub("source"); src != nil {
		cfg.Source = d.source(src)
	} else if _, ok := doc["source"]; !ok {
		d.errorf("source", "", "missing, want a [source] table with type (\"sqlite\" or \"postgres\") and dsn")
	}

	rt := root.sub("runtime")
	if rt == nil {
		rt = d.table("runtime", "", nil)
	}
	cfg.Runtime.CacheDir = d.resolve(rt.str("cache_dir", DefaultCacheDir))
	rt.done()

	at := root.sub("admin")
	if at == nil {
		at = d.table("admin", "", nil)
	}
	cfg.Admin = d.adminSettings(at)

	ft := root.sub("failover")
	if ft == nil {
		ft = d.table("failover", "", nil)
	}
	cfg.Failover = d.failoverSettings(ft)

	pluginDefaults := map[string]map[string]any{}
	if ps := root.sub("plugins"); ps != nil {
		for _, name := range slices.Sorted(maps.Keys(ps.m)) {
			pt := ps.sub(name)
			if pt == nil {
				continue
			}
			p, defaults := d.plugin(name, pt)
			cfg.Plugins[name] = p
			pluginDefaults[name] = defaults
		}
	}

	seen := map[string]int{}
	for i, ot := range root.tableList("observers") {
		o := d.observer(ot, cfg.Plugins, pluginDefaults)
		if o.Name != "" {
			if j, dup := seen[o.Name]; dup {
				d.errorf(fmt.Sprintf("observers[%d].name", i), "", "observer name %q is already used by observers[%d]; names must be unique", o.Name, j)
			} else {
				seen[o.Name] = i
			}
		}
		cfg.Observers = append(cfg.Observers, o)
	}
	root.done()
	return cfg
}

func (d *decoder) settings(t *table) Settings {
	s := Settings{
		Group:              t.str("group", DefaultGroup),
		Concurrency:        t.integer("concurrency", DefaultConcurrency, 1, 4096),
		BatchSize:          t.integer("batch_size", DefaultBatchSize, 1, 100000),
		MaxInFlight:        t.integer("max_in_flight", DefaultMaxInFlight, 1, 10000000),
		CheckpointInterval: t.duration("checkpoint_interval", DefaultCheckpointInterval),
		ShutdownTimeout:    t.duration("shutdown_timeout", DefaultShutdownTimeout),
		Dedup:              t.boolean("dedup", true),
		DedupRetention:     t.duration("dedup_retention", DefaultDedupRetention),
	}
	if !nameRE.MatchString(s.Group) {
		t.errorf("group", "got %q, want a name: %s", s.Group, nameRule)
	}
	switch t.oneOf("log_level", "info", "debug", "info", "warn", "error") {
	case "debug":
		s.LogLevel = slog.LevelDebug
	case "warn":
		s.LogLevel = slog.LevelWarn
	case "error":
		s.LogLevel = slog.LevelError
	default:
		s.LogLevel = slog.LevelInfo
	}
	s.LogFormat = t.oneOf("log_format", "text", "text", "json")
	if s.MaxInFlight < s.BatchSize {
		t.errorf("max_in_flight", "got %d, want at least batch_size (%d)", s.MaxInFlight, s.BatchSize)
	}
	t.done()
	return s
}

func (d *decoder) source(t *table) Source {
	s := Source{}
	if _, ok := t.m["type"]; !ok {
		t.errorf("type", "missing, want \"sqlite\" or \"postgres\"")
		t.get("type")
	} else {
		s.Type = t.oneOf("type", "", SourceSQLite, SourcePostgres)
	}
	s.Name = t.str("name", DefaultSourceName)
	if !nameRE.MatchString(s.Name) {
		t.errorf("name", "got %q, want a name: %s (it is part of every event id)", s.Name, nameRule)
	}
	dsn := t.str("dsn", "")
	dsnEnv := t.str("dsn_env", "")
	s.DSN, s.DSNFrom = dsn, "dsn"
	envSet := false
	if dsnEnv != "" {
		if v, ok := d.env(dsnEnv); ok && v != "" {
			s.DSN, s.DSNFrom, envSet = v, "dsn_env:"+dsnEnv, true
		}
	}
	if v, ok := d.env(EnvSourceDSN); ok && v != "" {
		s.DSN, s.DSNFrom, envSet = v, "env:"+EnvSourceDSN, true
	}
	_, dsnPresent := t.m["dsn"]
	if !envSet && strings.TrimSpace(dsn) == "" && (!dsnPresent || dsn != "" || isString(t.m["dsn"])) {
		switch {
		case dsnEnv != "":
			t.errorf("dsn_env", "environment variable %s is not set (or empty) and source.dsn is empty; set one of them or %s", dsnEnv, EnvSourceDSN)
		default:
			t.errorf("dsn", "missing, want a connection string (postgres) or a database file path (sqlite); or set dsn_env or %s", EnvSourceDSN)
		}
	}
	s.Schema = t.str("schema", DefaultSchema)
	s.Channel = t.str("channel", DefaultChannel)
	for _, k := range []string{"schema", "channel"} {
		v := s.Schema
		if k == "channel" {
			v = s.Channel
		}
		if !sqlIdentRE.MatchString(v) {
			t.errorf(k, "got %q, want an SQL identifier (letters, digits, '_', not starting with a digit, at most 63)", v)
		}
	}
	def := DefaultPollPostgres
	if s.Type == SourceSQLite {
		def = DefaultPollSQLite
	}
	s.PollInterval = t.duration("poll_interval", def)
	s.Mode = t.oneOf("mode", ModeNative, ModeNative, ModeFraiseQL)
	if s.Mode == ModeFraiseQL && s.Type == SourceSQLite {
		t.errorf("mode", "\"fraiseql\" reads FraiseQL's change log in PostgreSQL, want \"native\" for a sqlite source")
	}
	if s.Type == SourceSQLite && s.DSN != "" && !strings.HasPrefix(s.DSN, "file:") && s.DSN != ":memory:" {
		s.DSN = d.resolve(s.DSN)
	}
	t.done()
	return s
}

func isString(v any) bool { _, ok := v.(string); return ok }

var sqlIdentRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// resolve anchors a relative path at the config's directory.
func (d *decoder) resolve(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(d.dir, p)
}

var pluginNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

func (d *decoder) plugin(name string, t *table) (Plugin, map[string]any) {
	p := Plugin{Name: name}
	if !pluginNameRE.MatchString(name) {
		d.errorf(t.path, "", "plugin name %q is not valid, want letters, digits, '_' or '-', at most 64", name)
	}
	if raw := t.required("path", "the path of the plugin's .wasm file"); strings.TrimSpace(raw) != "" {
		p.Path = d.resolve(raw)
		switch fi, err := os.Stat(p.Path); {
		case d.stateOnly:
		case err != nil:
			t.errorf("path", "plugin file %s not found (paths are relative to the config file's directory %s)", p.Path, d.dir)
		case !fi.Mode().IsRegular():
			t.errorf("path", "%s is not a regular file", p.Path)
		}
	}
	p.MemoryLimit = t.size("memory_limit", DefaultMemoryLimit, 1<<20, 4<<30)
	p.Timeout = t.duration("timeout", DefaultPluginTimeout)
	p.MaxOutput = t.size("max_output", DefaultMaxOutput, 1, 1<<30)
	p.MaxInstances = t.integer("max_instances", 0, 0, 4096)
	p.AllowHosts = t.strings("allow_hosts")
	for i, h := range p.AllowHosts {
		if msg := checkHost(h); msg != "" {
			d.errorf(fmt.Sprintf("%s[%d]", t.key("allow_hosts"), i), "", "%s", msg)
		}
	}
	p.AllowPrivate = t.boolean("allow_private", false)
	var defaults map[string]any
	if ct := t.sub("config"); ct != nil {
		defaults = ct.m
		p.Config = d.toJSON(t.key("config"), "", defaults)
	}
	t.done()
	return p, defaults
}

// checkHost validates an allow_hosts entry: "*", "host", "host:port" or
// a CIDR range.
func checkHost(h string) string {
	if h == "*" {
		return ""
	}
	if strings.Contains(h, "/") && !strings.Contains(h, "//") {
		pfx, err := netip.ParsePrefix(h)
		switch {
		case err != nil:
			return fmt.Sprintf("got %q, want a CIDR range such as \"10.0.0.0/8\" or \"fd00::/8\" (no port): %v", h, err)
		case pfx != pfx.Masked():
			return fmt.Sprintf("got %q: the range has host bits set, want %q", h, pfx.Masked())
		}
		return ""
	}
	if h == "" || strings.Contains(h, "/") || strings.ContainsAny(h, " \t@?#") {
		return fmt.Sprintf("got %q, want a host (\"api.example.com\"), host:port (\"127.0.0.1:9000\"), a CIDR range (\"10.0.0.0/8\") or \"*\", not a URL", h)
	}
	host, port := h, ""
	if strings.HasPrefix(h, "[") {
		end := strings.IndexByte(h, ']')
		if end < 0 {
			return fmt.Sprintf("got %q: unclosed '[' in IPv6 address", h)
		}
		host, port = h[1:end], strings.TrimPrefix(h[end+1:], ":")
	} else if strings.Count(h, ":") == 1 {
		host, port, _ = strings.Cut(h, ":")
	}
	if host == "" {
		return fmt.Sprintf("got %q, want a host name before the port", h)
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Sprintf("got %q: port %q is not a number from 1 to 65535", h, port)
		}
	}
	return ""
}

func (d *decoder) toJSON(key, observer string, m map[string]any) json.RawMessage {
	b, err := json.Marshal(m)
	if err != nil {
		d.errorf(key, observer, "cannot be represented as JSON: %v", err)
		return nil
	}
	return b
}

var allOps = []abi.Operation{abi.OpInsert, abi.OpUpdate, abi.OpDelete}

func (d *decoder) observer(t *table, plugins map[string]Plugin, defaults map[string]map[string]any) Observer {
	o := Observer{}
	// The name first, so that every later error can mention it.
	o.Name = t.required("name", "a unique observer name")
	if o.Name != "" {
		if !nameRE.MatchString(o.Name) {
			t.errorf("name", "got %q, want a name: %s", o.Name, nameRule)
		}
		t.observer = o.Name
	}
	o.Entity = t.required("entity", "the entity (table) to observe")

	if v, ok := t.get("operations"); ok {
		arr, isArr := v.([]any)
		switch {
		case !isArr:
			t.errorf("operations", "got %s, want an array such as [\"INSERT\", \"UPDATE\"]", describe(v))
		case len(arr) == 0:
			t.errorf("operations", "is empty, want some of INSERT, UPDATE, DELETE (or leave it out for all)")
		}
		for i, x := range arr {
			s, isStr := x.(string)
			op := abi.Operation(strings.ToUpper(strings.TrimSpace(s)))
			if !isStr || !op.Valid() {
				d.errorf(fmt.Sprintf("%s[%d]", t.key("operations"), i), o.Name, "got %s, want \"INSERT\", \"UPDATE\" or \"DELETE\"", describe(x))
				continue
			}
			if !slices.Contains(o.Operations, op) {
				o.Operations = append(o.Operations, op)
			}
		}
	} else {
		o.Operations = slices.Clone(allOps)
	}

	if src := t.str("condition", ""); strings.TrimSpace(src) != "" {
		e, err := condition.Parse(src)
		if err != nil {
			t.errorf("condition", "%v", err)
		} else {
			o.Condition = e
		}
	}

	if v, ok := t.get("filters"); ok {
		arr, isArr := v.([]any)
		if ms, isMaps := v.([]map[string]any); isMaps {
			for _, m := range ms {
				arr = append(arr, m)
			}
			isArr = true
		}
		if !isArr {
			t.errorf("filters", "got %s, want an array of plugin names or {plugin = \"…\", config = {…}} tables", describe(v))
		}
		for i, f := range arr {
			if s, ok := d.step(fmt.Sprintf("%s[%d]", t.key("filters"), i), o.Name, f, plugins, defaults); ok {
				o.Filters = append(o.Filters, s)
			}
		}
	}

	if v, ok := t.get("action"); !ok {
		t.errorf("action", "missing, want {plugin = \"…\", config = {…}} naming the plugin that acts")
	} else if s, ok := d.step(t.key("action"), o.Name, v, plugins, defaults); ok {
		o.Action = s
	}

	o.Retry = resilience.DefaultPolicy()
	if rt := t.sub("retry"); rt != nil {
		o.Retry.Strategy = resilience.Strategy(rt.oneOf("strategy", string(o.Retry.Strategy),
			string(resilience.Exponential), string(resilience.Linear), string(resilience.Fixed)))
		o.Retry.MaxAttempts = rt.integer("max_attempts", o.Retry.MaxAttempts, 1, resilience.MaxAttemptsLimit)
		o.Retry.InitialDelay = rt.duration("initial_delay", o.Retry.InitialDelay)
		o.Retry.MaxDelay = rt.duration("max_delay", o.Retry.MaxDelay)
		o.Retry.Jitter = rt.boolean("jitter", o.Retry.Jitter)
		if o.Retry.InitialDelay > o.Retry.MaxDelay {
			rt.errorf("initial_delay", "%s is greater than max_delay %s", o.Retry.InitialDelay, o.Retry.MaxDelay)
		}
		rt.done()
	}

	o.Breaker = resilience.DefaultBreakerConfig()
	if bt := t.sub("breaker"); bt != nil {
		b := &o.Breaker
		b.Enabled = bt.boolean("enabled", b.Enabled)
		b.FailureRatio = bt.ratio("failure_ratio", b.FailureRatio)
		b.Window = bt.duration("window", b.Window)
		b.MinRequests = bt.integer("min_requests", b.MinRequests, 1, resilience.MaxBreakerMinRequests)
		b.OpenTimeout = bt.duration("open_timeout", b.OpenTimeout)
		b.HalfOpenProbes = bt.integer("half_open_probes", b.HalfOpenProbes, 1, resilience.MaxHalfOpenProbes)
		if _, set := bt.m["window"]; set && b.Window < resilience.MinBreakerWindow {
			bt.errorf("window", "got %q, want at least %s", b.Window, resilience.MinBreakerWindow)
			b.Window = resilience.DefaultBreakerConfig().Window
		}
		bt.done()
	}

	o.HTTP.Timeout = DefaultHTTPTimeout
	if ht := t.sub("http"); ht != nil {
		o.HTTP.Timeout = ht.duration("timeout", DefaultHTTPTimeout)
		d.secret(ht, &o.HTTP)
		ht.done()
	}
	t.done()
	return o
}

// secret resolves http.secret / secret_env / secret_file; at most one may
// be set. The value never appears in an error.
func (d *decoder) secret(t *table, h *HTTP) {
	inline := t.str("secret", "")
	envName := t.str("secret_env", "")
	file := t.str("secret_file", "")
	n := 0
	for _, s := range []string{inline, envName, file} {
		if s != "" {
			n++
		}
	}
	if n > 1 {
		t.errorf("secret", "set only one of secret, secret_env and secret_file")
		return
	}
	if d.stateOnly {
		return
	}
	switch {
	case envName != "":
		v, ok := d.env(envName)
		if !ok || v == "" {
			t.errorf("secret_env", "environment variable %s is not set or empty", envName)
			return
		}
		h.Secret, h.SecretFrom = v, "secret_env:"+envName
	case file != "":
		p := d.resolve(file)
		b, err := os.ReadFile(p)
		if err != nil {
			t.errorf("secret_file", "cannot read %s: %v", p, errors.Unwrap(err))
			return
		}
		v := strings.TrimRight(string(b), "\r\n")
		if strings.TrimSpace(v) == "" {
			t.errorf("secret_file", "%s is empty", p)
			return
		}
		h.Secret, h.SecretFrom = v, "secret_file:"+p
	case inline != "":
		h.Secret, h.SecretFrom = inline, "secret"
	}
}

// step reads a filter or action: "plugin-name" or {plugin, config}.
func (d *decoder) step(key, observer string, v any, plugins map[string]Plugin, defaults map[string]map[string]any) (Step, bool) {
	var s Step
	var cfg map[string]any
	switch x := v.(type) {
	case string:
		s.Plugin = x
	case map[string]any:
		t := d.table(key, observer, x)
		s.Plugin = t.required("plugin", "the name of a plugin defined under [plugins]")
		if ct := t.sub("config"); ct != nil {
			cfg = ct.m
		}
		t.done()
		if s.Plugin == "" {
			return s, false
		}
		key += ".plugin"
	default:
		d.errorf(key, observer, "got %s, want a plugin name or {plugin = \"…\", config = {…}}", describe(v))
		return s, false
	}
	if _, ok := plugins[s.Plugin]; !ok {
		known := "none are defined"
		if len(plugins) > 0 {
			known = "defined: " + strings.Join(slices.Sorted(maps.Keys(plugins)), ", ")
		}
		d.errorf(key, observer, "unknown plugin %q (%s); define it as [plugins.%s]", s.Plugin, known, tomlKey(s.Plugin))
		return s, false
	}
	merged := maps.Clone(defaults[s.Plugin])
	if merged == nil && cfg != nil {
		merged = map[string]any{}
	}
	maps.Copy(merged, cfg)
	if merged != nil {
		s.Config = d.toJSON(key, observer, merged)
	}
	return s, true
}
