// Package metrics turns the engine's hooks and scrape-time look-ups into
// Prometheus metrics on a private registry, and keeps the rolling windows
// behind `observer status` (exact p50/p95/p99 per stage, throughput).
//
// # Lifecycle
//
// One *Metrics lives for the whole process; engines come and go (a reload
// rebuilds the engine). The run supervisor does, in order:
//
//	m := metrics.New(metrics.Options{Version: version})
//	// for every engine it builds:
//	eng := engine.New(engine.Config{..., Hooks: m.Hooks()}, ...)  // or Hooks joined with others
//	m.SetTarget(metrics.Target{Source: name, Group: group, Engine: eng, Inspector: insp})
//	m.SetLeader(true)                       // while this instance leads
//	eng.Run(ctx)
//	// on reload: m.Reloaded(err) for every attempt, SetTarget for the new engine
//
// Counters fed by hooks (events finished, units, plugin calls, effects,
// retries, dead letters, stage latencies) never reset across engines. The
// counter of events read and the gauges (in flight, checkpoint, lag,
// dead-letter queue size, breaker state) are read from the current Target
// when Prometheus scrapes; SetTarget folds the previous engine's read count
// into a base so observer_events_read_total stays monotonic. Call
// SetTarget after the previous engine's Run returned (reads the old engine
// makes after the switch are not counted).
//
// Scrape-time look-ups that touch the database (Inspector.Head for lag,
// Inspector.DeadCount for the dead-letter queue) are cached for
// Options.CacheTTL and bounded by Options.InspectTimeout, so a scrape every
// few seconds costs at most one query of each kind per TTL whatever the
// number of scrapers.
//
// # Hot path
//
// Hooks are called by the engine's workers for every event, unit, plugin
// call and effect. Each resolves its label children once per distinct label
// set (a sync.Map keyed by observer, plugin and role, …) and afterwards
// costs atomic adds and a histogram observation; BenchmarkHooks measures
// the cost of one event's worth of hooks. Label values are bounded by
// configuration: source, observer, plugin, role, stage, effect type,
// outcome and breaker endpoint — never an event id, key or URL.
//
// Everything here is safe for concurrent use. The package has no global
// state: every Metrics has its own registry, so tests and engines can run
// side by side.
package metrics
