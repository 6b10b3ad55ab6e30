package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/fraiseql/observer/abi"
	"github.com/fraiseql/observer/host/config"
	"github.com/fraiseql/observer/host/effect"
	effecthttp "github.com/fraiseql/observer/host/effect/http"
	effectlog "github.com/fraiseql/observer/host/effect/log"
	"github.com/fraiseql/observer/host/engine"
	"github.com/fraiseql/observer/host/pluginhost"
	"github.com/fraiseql/observer/host/resilience"
	"github.com/fraiseql/observer/host/source"
	"github.com/fraiseql/observer/host/source/postgres"
	"github.com/fraiseql/observer/host/source/sqlite"
)

func abiVersion() string { return abi.VersionString }

// loadConfig loads the --config file to run observers; a bad file is a
// usage error.
func (a *app) loadConfig() (*config.Config, error) {
	return a.checkConfig(config.Load(a.configPath))
}

// loadStateConfig loads the --config file for a command that only touches
// the source's durable state: plugins need not be built, secrets not set.
func (a *app) loadStateConfig() (*config.Config, error) {
	return a.checkConfig(config.LoadForState(a.configPath))
}

func (a *app) checkConfig(cfg *config.Config, err error) (*config.Config, error) {
	if err != nil {
		var le *config.LoadError
		if errors.As(err, &le) {
			return nil, usageError{err}
		}
		return nil, usagef("%v", err)
	}
	return cfg, nil
}

// newSource builds the configured source (nothing is opened yet).
func newSource(cfg *config.Config, log *slog.Logger) (source.Source, error) {
	s := cfg.Source
	switch s.Type {
	case config.SourcePostgres:
		schema := s.Schema
		if s.Mode == config.ModeFraiseQL {
			// FraiseQL's log is core.tb_entity_change_log (the reader's
			// default in that mode); source.schema then only says where
			// the observer keeps its own state.
			schema = ""
		}
		return postgres.New(postgres.Config{
			Name:         s.Name,
			DSN:          s.DSN,
			Schema:       schema,
			Channel:      s.Channel,
			PollInterval: s.PollInterval,
			Mode:         s.Mode,
		}, log), nil
	case config.SourceSQLite:
		return sqlite.New(sqlite.Config{
			Name:         s.Name,
			Path:         s.DSN,
			PollInterval: s.PollInterval,
		}, log), nil
	}
	return nil, fmt.Errorf("source.type %q is not supported", s.Type)
}

// newInspector reads the change log of cfg's source through store's
// connections.
func newInspector(cfg *config.Config, store source.Store) (source.Inspector, error) {
	s := cfg.Source
	switch st := store.(type) {
	case *postgres.Store:
		schema := s.Schema
		if s.Mode == config.ModeFraiseQL {
			schema = ""
		}
		return postgres.NewInspector(st.Pool(), postgres.Config{Name: s.Name, DSN: s.DSN, Schema: schema, Mode: s.Mode}, s.Schema)
	case *sqlite.Store:
		return sqlite.NewInspector(st.DB(), s.Name), nil
	}
	return nil, fmt.Errorf("source.type %q has no inspector", s.Type)
}

// openStore opens the durable state store: by default in the watched database.
func openStore(ctx context.Context, cfg *config.Config) (source.Store, error) {
	s := cfg.Source
	switch s.Type {
	case config.SourcePostgres:
		return postgres.OpenStore(ctx, s.DSN, s.Schema)
	case config.SourceSQLite:
		return sqlite.OpenStore(ctx, s.DSN)
	}
	return nil, fmt.Errorf("source.type %q is not supported", s.Type)
}

// plugins is the set of loaded plugins of one config.
type plugins struct {
	host   *pluginhost.Host
	byName map[string]*pluginhost.Plugin
}

func (p *plugins) Close(ctx context.Context) error {
	if p == nil || p.host == nil {
		return nil
	}
	return p.host.Close(ctx)
}

// loadPlugins compiles and checks every plugin an observer uses. Plugins
// nobody uses are not loaded.
func loadPlugins(ctx context.Context, cfg *config.Config, log *slog.Logger) (*plugins, error) {
	used := map[string]bool{}
	for _, o := range cfg.Observers {
		used[o.Action.Plugin] = true
		for _, f := range o.Filters {
			used[f.Plugin] = true
		}
	}
	h, err := pluginhost.New(ctx, pluginhost.Config{CacheDir: cfg.Runtime.CacheDir, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("start plugin host: %w", err)
	}
	p := &plugins{host: h, byName: map[string]*pluginhost.Plugin{}}
	for name, pc := range cfg.Plugins {
		if !used[name] {
			continue
		}
		log.Info("loading plugin", "plugin", name, "path", pc.Path)
		spec := pluginhost.Spec{
			Name: name,
			Path: pc.Path,
			Limits: pluginhost.Limits{
				MemoryBytes:    uint64(pc.MemoryLimit),
				Timeout:        pc.Timeout,
				MaxOutputBytes: int(pc.MaxOutput),
				MaxInstances:   pc.MaxInstances,
			},
			Config: flattenConfig(pc.Config),
		}
		pl, err := h.Load(ctx, spec)
		if err != nil {
			_ = h.Close(ctx)
			return nil, fmt.Errorf("plugins.%s: %w", name, err)
		}
		p.byName[name] = pl
	}
	return p, nil
}

// flattenConfig turns a plugin's default config into config_get's string
// map: strings as they are, anything else as JSON.
func flattenConfig(raw json.RawMessage) map[string]string {
	if len(raw) == 0 {
		return nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		var s string
		if json.Unmarshal(v, &s) == nil {
			out[k] = s
		} else {
			out[k] = string(v)
		}
	}
	return out
}

// engineObservers turns the config's observers into the engine's, checking
// that each plugin has the role it is used for.
func engineObservers(cfg *config.Config, p *plugins, dryRun bool) ([]engine.Observer, error) {
	var out []engine.Observer
	for i := range cfg.Observers {
		o := &cfg.Observers[i]
		eo := engine.Observer{
			Name:       o.Name,
			Entity:     o.Entity,
			Operations: o.Operations,
			Retry:      o.Retry,
			Effect:     cfg.EffectPolicy(o),
			DryRun:     dryRun,
		}
		if o.Condition != nil {
			eo.Condition = o.Condition
		}
		for j, f := range o.Filters {
			pl := p.byName[f.Plugin]
			if m := pl.Manifest(); !m.HasRole(abi.RoleFilter) {
				return nil, usagef("%s: observers[%d].filters[%d]: plugin %q (%s) does not declare the %q role (it declares %v)",
					cfg.Path, i, j, f.Plugin, pl.Path(), abi.RoleFilter, pl.Manifest().Roles)
			}
			eo.Filters = append(eo.Filters, engine.Step{Plugin: pl, Config: f.Config})
		}
		pl := p.byName[o.Action.Plugin]
		if m := pl.Manifest(); !m.HasRole(abi.RoleAct) {
			return nil, usagef("%s: observers[%d].action: plugin %q (%s) does not declare the %q role (it declares %v)",
				cfg.Path, i, o.Action.Plugin, pl.Path(), abi.RoleAct, pl.Manifest().Roles)
		}
		eo.Effect.AllowedHosts = effect.GrantHosts(eo.Effect.AllowedHosts, pl.Manifest().Capabilities.HTTPHosts)
		eo.Action = engine.ActStep{Plugin: pl, Config: o.Action.Config}
		out = append(out, eo)
	}
	return out, nil
}

// executors are the effect executors by effect type. breakers holds the
// circuit breakers of the HTTP endpoints (nil: none); the registry lives
// in the process, not the stack, so a reload keeps every breaker's state.
func executors(log *slog.Logger, breakers *resilience.Breakers) map[string]effect.Executor {
	return map[string]effect.Executor{
		abi.EffectHTTP: effecthttp.New(effecthttp.Options{UserAgent: "observer/" + version, Logger: log, Breakers: breakers}),
		abi.EffectLog:  effectlog.New(log),
	}
}

// stack is everything `run` wires together.
type stack struct {
	cfg     *config.Config
	log     *slog.Logger
	src     source.Source
	store   source.Store
	plugins *plugins
	engine  *engine.Engine
	// inspect reads the change log beside the engine (lag, debug-event).
	inspect source.Inspector
}

// buildOptions are what a command adds to the config when it builds a stack.
type buildOptions struct {
	Hooks engine.Hooks
	// DryRun runs the plugins but only logs the effects.
	DryRun bool
	// Replay runs units that dedup records say finished.
	Replay bool
	// Breakers are the circuit breakers of the effect endpoints; nil
	// sends every request.
	Breakers *resilience.Breakers
}

// Close releases what build opened, in reverse order.
func (s *stack) Close(ctx context.Context) {
	if s.plugins != nil {
		_ = s.plugins.Close(ctx)
	}
	if s.store != nil {
		_ = s.store.Close()
	}
	if s.src != nil {
		_ = s.src.Close()
	}
}

// build wires a runnable engine from cfg. On error everything opened so far
// is closed.
func build(ctx context.Context, cfg *config.Config, log *slog.Logger, opts buildOptions) (_ *stack, err error) {
	s := &stack{cfg: cfg, log: log}
	defer func() {
		if err != nil {
			s.Close(context.WithoutCancel(ctx))
		}
	}()
	if s.plugins, err = loadPlugins(ctx, cfg, log); err != nil {
		return nil, err
	}
	obs, err := engineObservers(cfg, s.plugins, opts.DryRun)
	if err != nil {
		return nil, err
	}
	store, err := openStore(ctx, cfg)
	if err != nil {
		// Not assigned on failure: a typed nil in the interface would be
		// closed by s.Close.
		return nil, fmt.Errorf("open state store for source %q: %w", cfg.Source.Name, err)
	}
	s.store = store
	if st, ok := store.(*sqlite.Store); ok {
		if tables, err := st.CapturedTables(ctx); err == nil && len(tables) == 0 {
			log.Warn("no table is captured in this database: no events will arrive until `observer capture install --table T`",
				"source", cfg.Source.Name, "dsn", cfg.Source.DSN)
		}
	}
	if s.src, err = newSource(cfg, log); err != nil {
		return nil, err
	}
	if s.inspect, err = newInspector(cfg, s.store); err != nil {
		return nil, err
	}
	st := cfg.Observer
	var dedup source.DedupStore
	if st.Dedup {
		dedup, _ = s.store.(source.DedupStore)
	}
	s.engine, err = engine.New(engine.Config{
		Group:              st.Group,
		Concurrency:        st.Concurrency,
		BatchSize:          st.BatchSize,
		MaxInFlight:        st.MaxInFlight,
		CheckpointInterval: st.CheckpointInterval,
		ShutdownTimeout:    st.ShutdownTimeout,
		Observers:          obs,
		Hooks:              opts.Hooks,
		Dedup:              dedup,
		DedupRetention:     st.DedupRetention,
		Replay:             opts.Replay,
	}, s.src, s.store, executors(log, opts.Breakers), log)
	if err != nil {
		return nil, fmt.Errorf("configure engine: %w", err)
	}
	return s, nil
}
