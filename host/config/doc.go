// Package config turns observer.toml into a validated *Config.
//
// Lifecycle: Load (or Parse) runs parse → defaults → environment overrides
// → validate, once, before anything starts. Every problem in the file is
// collected and reported together (a *LoadError, one line per problem),
// each line naming the file, the key path (observers[1].retry.max_attempts)
// and what was expected; TOML syntax errors keep the parser's line and
// column. Unknown keys are errors at every depth, so a typo stops the load
// rather than silently falling back to a default. Nothing is opened or
// started here: the CLI wires sources, plugins and the engine from the
// returned Config, and no package imports config back.
//
// The file is decoded into a generic TOML tree and walked by hand rather
// than unmarshalled into tagged structs: that is what lets an error name
// observers[1].retry.max_attempts (toml.MetaData.Undecoded would say
// observers.retry.max_attempts) and report a wrong type and an unknown key
// in the same run instead of stopping at the first.
//
// Durations are strings ("500ms", "2s", "1m30s"); sizes are "64MiB",
// "1MB", "512KiB" or a number of bytes. Relative paths (plugin files, a
// sqlite database file, the cache dir, secret files) are resolved against
// the config file's directory, so the daemon can be started from anywhere.
//
// Environment: OBSERVER_SOURCE_DSN, when set, overrides source.dsn and
// source.dsn_env. Secrets belong in http.secret_env or http.secret_file
// (an inline http.secret works but lives in the file); the loaded config
// keeps them for use and never prints them: String, LogValue and
// MarshalJSON redact http secrets and the DSN's password. Plugin config
// tables are passed to plugins as they are and are not redacted, so keep
// secrets out of them.
//
// # observer.toml
//
// Every key, with its default (keep this example in sync: a test parses
// it):
//
//	[observer]
//	group = "default"              # checkpoint group: observers sharing one cursor
//	concurrency = 8                # events handled at once (different keys)
//	batch_size = 500               # events read per batch
//	max_in_flight = 5000           # events read but not finished; ≥ batch_size
//	checkpoint_interval = "500ms"  # how often the watermark is saved
//	shutdown_timeout = "10s"       # how long a stop waits for work in flight
//	log_level = "info"             # debug | info | warn | error
//	log_format = "text"            # text | json
//
//	[source]
//	type = "sqlite"                # sqlite | postgres (required)
//	name = "main"                  # part of every event id; keep it stable
//	dsn = "demo.db"                # required: a file path or file: URI (sqlite),
//	                               # a postgres:// URL or key=value string (postgres)
//	# dsn_env = "DATABASE_URL"     # take the DSN from this variable when it is set
//	schema = "observer"            # postgres: schema of the change-log tables
//	channel = "observer_events"    # postgres: NOTIFY channel
//	poll_interval = "200ms"        # default 200ms for sqlite, 1s for postgres
//	mode = "native"                # native | fraiseql (postgres: read FraiseQL's
//	                               # core.tb_entity_change_log)
//
//	[runtime]
//	cache_dir = ".cache/observer/wasm"  # compiled-module cache
//
//	[admin]
//	enabled = true                 # the admin HTTP server (metrics, status, reload)
//	address = "127.0.0.1:9464"     # "" disables; not loopback → a token is required
//	# token_env = "OBSERVER_ADMIN_TOKEN"  # bearer token from this variable,
//	# token_file = "admin.token"          # or from this file (one of them)
//	journal_size = 10000           # recent events debug-event explains; 0: none
//
//	[failover]
//	enabled = true                 # elect one leader per source and group
//	poll_interval = "1s"           # how often a standby tries to lead
//	check_interval = "1s"          # postgres: leader checks it still holds the lock
//	lease_ttl = "10s"              # sqlite: lease length, renewed every third
//
//	[plugins.webhook]
//	path = "plugins/webhook.wasm"  # required; must exist
//	memory_limit = "64MiB"         # guest memory cap
//	timeout = "2s"                 # per call
//	max_output = "1MiB"            # per call
//	max_instances = 0              # pooled instances; 0 = the plugin host's default
//	allow_hosts = ["127.0.0.1:9000"]  # hosts its http effects may reach: "host", "host:port",
//	                               # an IP, a CIDR ("10.0.0.0/8") or "*" (any public host)
//	allow_private = false          # true: may connect to private/loopback/link-local addresses
//	                               # (without it, only those named by IP or CIDR entries above)
//	config = { method = "POST" }   # default config, merged under each step's
//
//	[plugins.field-filter]
//	path = "plugins/field-filter.wasm"
//
//	[[observers]]
//	name = "big-payments"          # required, unique
//	entity = "payment"             # required: the table
//	operations = ["INSERT", "UPDATE"]  # default all three; case-insensitive
//	condition = "after.amount >= 9.99 && !has_field('deleted_at')"  # see host/condition
//	filters = [
//	  "field-filter",              # a plugin name, or a step with its config:
//	  { plugin = "field-filter", config = { field = "status", equals = "paid" } },
//	]
//	action = { plugin = "webhook", config = { url = "http://127.0.0.1:9000/hook" } }  # required
//	retry = { strategy = "exponential", max_attempts = 5, initial_delay = "200ms", max_delay = "30s", jitter = true }
//	http = { timeout = "10s", secret_env = "WEBHOOK_SECRET" }  # or secret_file = "…", or secret = "…"
//	breaker = { enabled = true, failure_ratio = 0.5, window = "30s", min_requests = 10, open_timeout = "30s", half_open_probes = 1 }
//
// A step's effective plugin config is the plugin's config table with the
// step's config laid over it (top-level keys of the step win), as JSON.
// retry strategies are exponential, linear and fixed (see host/resilience).
// breaker is the circuit breaker of each endpoint (scheme://host:port) the
// observer's http effects reach; its keys default as shown.
package config
