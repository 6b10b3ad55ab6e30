//! Observer guest SDK for Rust: observer plugins (abi/SPEC.md) over the
//! Extism guest ABI, implemented by hand, with no dependencies beyond `std`.
//!
//! A plugin is a `cdylib` for `wasm32-unknown-unknown` whose exports call
//! this crate:
//!
//! ```ignore
//! use observer::{Error, Filter, Input, Manifest};
//!
//! #[no_mangle]
//! pub extern "C" fn describe() -> i32 {
//!     observer::describe(&Manifest::new("keep-all", "0.1.0").role("filter"))
//! }
//!
//! fn decide(_input: &Input) -> Result<Filter, Error> {
//!     Ok(Filter::pass("always"))
//! }
//!
//! #[no_mangle]
//! pub extern "C" fn filter() -> i32 {
//!     observer::filter(decide)
//! }
//! ```
//!
//! Build (no cargo and no crates registry needed):
//!
//! ```text
//! rustc --edition 2021 --crate-type rlib --crate-name observer --target wasm32-unknown-unknown \
//!       -C opt-level=s -o libobserver.rlib observer.rs
//! rustc --edition 2021 --crate-type cdylib --target wasm32-unknown-unknown -C opt-level=s \
//!       -C strip=symbols --extern observer=libobserver.rlib -o plugin.wasm plugin.rs
//! ```
//!
//! The runners ([`filter`], [`act`]) read the input through the kernel,
//! decode and check it ([`decode_input`]: bad input becomes a `bad_input`
//! error result, never a trap), call the handler and write its result.
//! Numbers in JSON are kept as their text ([`json::Number`]) and compare
//! exactly. Everything but the kernel glue also builds natively, so a
//! plugin's logic can be unit tested with `rustc --test` through
//! [`invoke_filter`] and [`invoke_act`].

#![warn(missing_docs)]

use std::fmt;

pub use json::{Number, Object, Value};

/// The ABI version this SDK speaks.
pub const ABI_VERSION: &str = "1.0";
const ABI_MAJOR: u64 = 1;

/// Error codes the SDK reports, also for plugins to use.
pub mod code {
    /// The input was not valid JSON, or not an ABI v1 input.
    pub const BAD_INPUT: &str = "bad_input";
    /// The plugin's configuration (`Input::config`) is invalid.
    pub const BAD_CONFIG: &str = "bad_config";
    /// The role was called but the plugin has no handler for it.
    pub const NO_HANDLER: &str = "no_handler";
}

// ---------------------------------------------------------------------------
// Errors and results

/// An error result (SPEC §5). A permanent error dead-letters the event at
/// once; a retryable one asks the host to try again later.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    /// A machine-readable reason ("" for none).
    pub code: String,
    /// For humans: what was wrong and where.
    pub message: String,
    /// Whether the host should retry the call later.
    pub retryable: bool,
}

impl Error {
    /// A permanent error: this input can never succeed.
    pub fn new(code: &str, message: impl Into<String>) -> Error {
        Error { code: code.to_string(), message: message.into(), retryable: false }
    }
    /// A transient error: ask the host to retry the call later.
    pub fn retryable(code: &str, message: impl Into<String>) -> Error {
        Error { code: code.to_string(), message: message.into(), retryable: true }
    }
    /// A permanent `bad_config` error.
    pub fn bad_config(message: impl Into<String>) -> Error {
        Error::new(code::BAD_CONFIG, message)
    }
    /// A permanent `bad_input` error.
    pub fn bad_input(message: impl Into<String>) -> Error {
        Error::new(code::BAD_INPUT, message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.code.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.code, self.message)
        }
    }
}

impl std::error::Error for Error {}

/// A filter's decision (SPEC §4.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    /// True keeps the event for this observer; false drops it.
    pub pass: bool,
    /// Why, for dry runs and debugging.
    pub reason: String,
}

impl Filter {
    /// Keep the event.
    pub fn pass(reason: impl Into<String>) -> Filter {
        Filter { pass: true, reason: reason.into() }
    }
    /// Drop the event for this observer: a decision, not an error.
    pub fn drop(reason: impl Into<String>) -> Filter {
        Filter { pass: false, reason: reason.into() }
    }
}

/// Something the host does after the call on the plugin's behalf (SPEC §4.3).
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// An HTTP request, made with retries and an Idempotency-Key.
    Http(Http),
    /// A structured log line.
    Log(Log),
}

impl Effect {
    /// An http effect; add headers and a body with the [`Http`] methods.
    pub fn http(method: &str, url: &str) -> Http {
        Http { method: method.to_string(), url: url.to_string(), headers: Vec::new(), body: None }
    }
    /// A log effect at "debug", "info", "warn" or "error".
    pub fn log(level: &str, message: impl Into<String>) -> Log {
        Log { level: level.to_string(), message: message.into(), fields: Vec::new() }
    }
}

/// The body of an http effect.
#[derive(Clone, Debug, PartialEq)]
pub enum Body {
    /// Sent as is.
    Text(String),
    /// A JSON value, sent as `body_json` with Content-Type: application/json.
    Json(Value),
}

/// An http effect.
#[derive(Clone, Debug, PartialEq)]
pub struct Http {
    /// GET, POST, ...
    pub method: String,
    /// The target; its host must be allowed by the operator.
    pub url: String,
    /// Headers, in order.
    pub headers: Vec<(String, String)>,
    /// The body, if any.
    pub body: Option<Body>,
}

impl Http {
    /// Adds (or replaces) a header.
    pub fn header(mut self, name: &str, value: &str) -> Http {
        match self.headers.iter_mut().find(|(n, _)| n == name) {
            Some(h) => h.1 = value.to_string(),
            None => self.headers.push((name.to_string(), value.to_string())),
        }
        self
    }
    /// Sets the body, sent as is.
    pub fn body(mut self, text: impl Into<String>) -> Http {
        self.body = Some(Body::Text(text.into()));
        self
    }
    /// Sets a JSON body (`body_json`).
    pub fn json(mut self, value: Value) -> Http {
        self.body = Some(Body::Json(value));
        self
    }
}

impl From<Http> for Effect {
    fn from(h: Http) -> Effect {
        Effect::Http(h)
    }
}

/// A log effect.
#[derive(Clone, Debug, PartialEq)]
pub struct Log {
    /// "debug", "info", "warn" or "error".
    pub level: String,
    /// The line.
    pub message: String,
    /// Fields, in order.
    pub fields: Vec<(String, String)>,
}

impl Log {
    /// Adds a field.
    pub fn field(mut self, name: &str, value: &str) -> Log {
        self.fields.push((name.to_string(), value.to_string()));
        self
    }
}

impl From<Log> for Effect {
    fn from(l: Log) -> Effect {
        Effect::Log(l)
    }
}

/// What `describe` reports (SPEC §3).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Manifest {
    /// The plugin's name, in logs and reports.
    pub name: String,
    /// Its version.
    pub version: String,
    /// "filter" and/or "act", each exported under that name.
    pub roles: Vec<String>,
    /// Free text for humans.
    pub description: String,
    /// Effect types the plugin returns; an act plugin must list them.
    pub effects: Vec<String>,
    /// Hosts its http effects target; None leaves the operator's allow-list alone.
    pub http_hosts: Option<Vec<String>>,
    /// Advisory in ABI 1.0: the plugin logs through the host.
    pub log: bool,
    /// Advisory in ABI 1.0: the plugin reads `config_get`.
    pub config: bool,
}

impl Manifest {
    /// A manifest with a name and version; add roles and the rest with the builder methods.
    pub fn new(name: &str, version: &str) -> Manifest {
        Manifest { name: name.to_string(), version: version.to_string(), ..Manifest::default() }
    }
    /// Adds a role ("filter" or "act").
    pub fn role(mut self, role: &str) -> Manifest {
        self.roles.push(role.to_string());
        self
    }
    /// Adds an effect type ("http", "log").
    pub fn effect(mut self, kind: &str) -> Manifest {
        self.effects.push(kind.to_string());
        self
    }
    /// Adds a host that the plugin's http effects target.
    pub fn http_host(mut self, host: &str) -> Manifest {
        self.http_hosts.get_or_insert_with(Vec::new).push(host.to_string());
        self
    }
    /// Sets the description.
    pub fn description(mut self, text: &str) -> Manifest {
        self.description = text.to_string();
        self
    }

    /// The manifest's JSON.
    pub fn to_json(&self) -> String {
        let mut w = json::Writer::new();
        w.begin_object();
        w.key("abi");
        w.string(ABI_VERSION);
        w.key("name");
        w.string(&self.name);
        w.key("version");
        w.string(&self.version);
        w.key("roles");
        w.strings(&self.roles);
        w.key("capabilities");
        w.begin_object();
        w.key("effects");
        w.strings(&self.effects);
        if let Some(hosts) = &self.http_hosts {
            w.key("http_hosts");
            w.strings(hosts);
        }
        if self.log {
            w.key("log");
            w.bool(true);
        }
        if self.config {
            w.key("config");
            w.bool(true);
        }
        w.end_object();
        if !self.description.is_empty() {
            w.key("description");
            w.string(&self.description);
        }
        w.end_object();
        w.finish()
    }
}

// ---------------------------------------------------------------------------
// The input

/// The call's context (SPEC §4.1).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Context {
    /// The observer this call is for.
    pub observer: String,
    /// The plugin's name in the operator's config.
    pub plugin: String,
    /// "filter" or "act".
    pub role: String,
    /// Counts from 1.
    pub attempt: u64,
    /// True under `observer run --dry-run`.
    pub dry_run: bool,
    /// The host's time for this call (RFC 3339). Plugins read no clock.
    pub now: String,
    /// W3C trace context of the call.
    pub traceparent: String,
    /// W3C trace state of the call.
    pub tracestate: String,
}

/// One committed change (SPEC §4.1).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Event {
    /// Unique per source: "pg:1042".
    pub id: String,
    /// The position in its source.
    pub position: Option<Number>,
    /// The source's name.
    pub source: String,
    /// The table or collection.
    pub entity: String,
    /// "INSERT", "UPDATE" or "DELETE".
    pub op: String,
    /// The row's key.
    pub key: String,
    /// The row before the change; None on INSERT (and when not captured).
    pub before: Option<Value>,
    /// The row after the change; None on DELETE (and when not captured).
    pub after: Option<Value>,
    /// The fields that changed.
    pub changed_fields: Vec<String>,
    /// The tenant, if the source has one.
    pub tenant: String,
    /// When the transaction committed (RFC 3339).
    pub commit_time: String,
    /// The transaction id.
    pub txid: String,
    /// W3C trace context left by the writer.
    pub traceparent: String,
    /// W3C trace state left by the writer.
    pub tracestate: String,
}

/// A role's input, checked and decoded.
#[derive(Clone, Debug, PartialEq)]
pub struct Input {
    /// The input's ABI version ("1.0").
    pub abi: String,
    /// Who calls, and the host's time.
    pub context: Context,
    /// The change.
    pub event: Event,
    /// This observer's config for the plugin; None when none was configured (or null).
    pub config: Option<Value>,
    /// The whole input, for fields this SDK does not decode.
    pub raw: Value,
}

impl Input {
    /// Finds a value by dotted path: `after.amount`, `before.address.city`,
    /// `after.items.0.sku` (arrays by index), `event.id`, `context.now`,
    /// `config.url`, or a bare event field (`op`, `key`, ...). None if
    /// absent; a JSON null is `Some(&Value::Null)`.
    pub fn lookup(&self, path: &str) -> Option<&Value> {
        let mut parts = path.split('.').peekable();
        let head = *parts.peek()?;
        let event = self.raw.get("event");
        let mut cur = match head {
            "after" | "before" | "event" | "context" | "config" => {
                parts.next();
                match head {
                    "event" => event,
                    "context" => self.raw.get("context"),
                    "config" => self.config.as_ref(),
                    _ => event.and_then(|e| e.get(head)),
                }
            }
            _ => event,
        };
        for part in parts {
            cur = match cur? {
                Value::Array(items) => part.parse::<usize>().ok().and_then(|i| items.get(i)),
                v => v.get(part),
            };
        }
        cur
    }
}

// Reads typed fields of one object, naming the field in errors.
struct Fields<'a> {
    obj: &'a Value,
    at: &'a str,
}

impl<'a> Fields<'a> {
    fn field(&self, name: &str) -> Option<&'a Value> {
        match self.obj.get(name) {
            None | Some(Value::Null) => None,
            Some(v) => Some(v),
        }
    }
    fn wrong(&self, name: &str, want: &str, got: &Value) -> Error {
        Error::bad_input(format!("{}.{} is {}, want {}", self.at, name, got.kind_name(), want))
    }
    fn string(&self, name: &str) -> Result<String, Error> {
        match self.field(name) {
            None => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(v) => Err(self.wrong(name, "a string", v)),
        }
    }
    fn number(&self, name: &str) -> Result<Option<Number>, Error> {
        match self.field(name) {
            None => Ok(None),
            Some(Value::Number(n)) => Ok(Some(n.clone())),
            Some(v) => Err(self.wrong(name, "a number", v)),
        }
    }
    fn boolean(&self, name: &str) -> Result<bool, Error> {
        match self.field(name) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(v) => Err(self.wrong(name, "a boolean", v)),
        }
    }
    fn image(&self, name: &str) -> Result<Option<Value>, Error> {
        match self.field(name) {
            None => Ok(None),
            Some(v @ Value::Object(_)) => Ok(Some(v.clone())),
            Some(v) => Err(self.wrong(name, "an object or null", v)),
        }
    }
    fn strings(&self, name: &str) -> Result<Vec<String>, Error> {
        match self.field(name) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) => Ok(s.clone()),
                    v => Err(self.wrong(&format!("{}[{}]", name, i), "a string", v)),
                })
                .collect(),
            Some(v) => Err(self.wrong(name, "an array of strings", v)),
        }
    }
    fn object(&self, name: &str) -> Result<Option<Fields<'a>>, Error> {
        match self.field(name) {
            None => Ok(None),
            Some(v @ Value::Object(_)) => Ok(Some(Fields { obj: v, at: "" })),
            Some(v) => Err(self.wrong(name, "an object", v)),
        }
    }
    fn trace(&self, at: &str) -> Result<(String, String), Error> {
        match self.object("trace")? {
            None => Ok((String::new(), String::new())),
            Some(mut t) => {
                t.at = at;
                Ok((t.string("traceparent")?, t.string("tracestate")?))
            }
        }
    }
}

// "1.0" -> Some(1); None if not "MAJOR.MINOR" (or "MAJOR").
fn major_of(v: &str) -> Option<u64> {
    let (major, minor) = match v.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (v, None),
    };
    let digits = |s: &str| !s.is_empty() && s.len() <= 9 && s.bytes().all(|c| c.is_ascii_digit());
    if !digits(major) || !minor.map_or(true, digits) {
        return None;
    }
    major.parse().ok()
}

/// Decodes and checks a role input: one JSON object of ABI major 1 with an
/// event object. Anything else is a `bad_input` error naming what was wrong.
pub fn decode_input(bytes: &[u8]) -> Result<Input, Error> {
    if bytes.iter().all(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r')) {
        return Err(Error::bad_input(format!("input is empty: want an ABI {} input object", ABI_VERSION)));
    }
    let raw = json::parse(bytes).map_err(|e| Error::bad_input(format!("input is not valid JSON: {}", e)))?;
    if !matches!(raw, Value::Object(_)) {
        return Err(Error::bad_input(format!("input is {}, want an ABI {} input object", raw.kind_name(), ABI_VERSION)));
    }
    let top = Fields { obj: &raw, at: "input" };
    let abi = top.string("abi")?;
    match major_of(&abi) {
        None => return Err(Error::bad_input(format!("input.abi \"{}\" is not a \"MAJOR.MINOR\" version", abi))),
        Some(m) if m != ABI_MAJOR => {
            return Err(Error::bad_input(format!("input is ABI {} but this plugin speaks ABI {}.x", abi, ABI_MAJOR)))
        }
        Some(_) => {}
    }

    let mut context = Context::default();
    if let Some(mut c) = top.object("context")? {
        c.at = "input.context";
        context.observer = c.string("observer")?;
        context.plugin = c.string("plugin")?;
        context.role = c.string("role")?;
        context.attempt = c.number("attempt")?.and_then(|n| n.to_u64()).unwrap_or(0);
        context.dry_run = c.boolean("dry_run")?;
        context.now = c.string("now")?;
        let (tp, ts) = c.trace("input.context.trace")?;
        context.traceparent = tp;
        context.tracestate = ts;
    }

    let e = match top.field("event") {
        None => return Err(Error::bad_input("input has no event")),
        Some(v @ Value::Object(_)) => Fields { obj: v, at: "input.event" },
        Some(v) => return Err(top.wrong("event", "an object", v)),
    };
    let (traceparent, tracestate) = e.trace("input.event.trace")?;
    let event = Event {
        id: e.string("id")?,
        position: e.number("position")?,
        source: e.string("source")?,
        entity: e.string("entity")?,
        op: e.string("op")?,
        key: e.string("key")?,
        before: e.image("before")?,
        after: e.image("after")?,
        changed_fields: e.strings("changed_fields")?,
        tenant: e.string("tenant")?,
        commit_time: e.string("commit_time")?,
        txid: e.string("txid")?,
        traceparent,
        tracestate,
    };
    let config = top.field("config").cloned();
    Ok(Input { abi, context, event, config, raw })
}

// ---------------------------------------------------------------------------
// Results as JSON, and the runners

fn write_error(w: &mut json::Writer, e: &Error) {
    w.key("error");
    w.begin_object();
    w.key("message");
    w.string(&e.message);
    if !e.code.is_empty() {
        w.key("code");
        w.string(&e.code);
    }
    w.key("retryable");
    w.bool(e.retryable);
    w.end_object();
}

/// The JSON of a filter result.
pub fn filter_result_json(res: &Result<Filter, Error>) -> String {
    let mut w = json::Writer::new();
    w.begin_object();
    w.key("abi");
    w.string(ABI_VERSION);
    match res {
        Ok(f) => {
            w.key("pass");
            w.bool(f.pass);
            if !f.reason.is_empty() {
                w.key("reason");
                w.string(&f.reason);
            }
        }
        Err(e) => write_error(&mut w, e),
    }
    w.end_object();
    w.finish()
}

fn write_fields(w: &mut json::Writer, name: &str, fields: &[(String, String)]) {
    if fields.is_empty() {
        return;
    }
    w.key(name);
    w.begin_object();
    for (k, v) in fields {
        w.key(k);
        w.string(v);
    }
    w.end_object();
}

/// The JSON of an act result.
pub fn act_result_json(res: &Result<Vec<Effect>, Error>) -> String {
    let mut w = json::Writer::new();
    w.begin_object();
    w.key("abi");
    w.string(ABI_VERSION);
    match res {
        Ok(effects) => {
            w.key("effects");
            w.begin_array();
            for e in effects {
                w.begin_object();
                match e {
                    Effect::Http(h) => {
                        w.key("type");
                        w.string("http");
                        w.key("http");
                        w.begin_object();
                        w.key("method");
                        w.string(&h.method);
                        w.key("url");
                        w.string(&h.url);
                        write_fields(&mut w, "headers", &h.headers);
                        match &h.body {
                            Some(Body::Text(t)) => {
                                w.key("body");
                                w.string(t);
                            }
                            Some(Body::Json(v)) => {
                                w.key("body_json");
                                w.value(v);
                            }
                            None => {}
                        }
                        w.end_object();
                    }
                    Effect::Log(l) => {
                        w.key("type");
                        w.string("log");
                        w.key("log");
                        w.begin_object();
                        w.key("level");
                        w.string(&l.level);
                        w.key("message");
                        w.string(&l.message);
                        write_fields(&mut w, "fields", &l.fields);
                        w.end_object();
                    }
                }
                w.end_object();
            }
            w.end_array();
        }
        Err(e) => write_error(&mut w, e),
    }
    w.end_object();
    w.finish()
}

/// Runs a filter handler on an input, as the `filter` export does, and
/// returns the result's JSON. Use it to unit test a plugin natively.
pub fn invoke_filter<F>(input: &[u8], handler: F) -> String
where
    F: FnOnce(&Input) -> Result<Filter, Error>,
{
    filter_result_json(&decode_input(input).and_then(|i| handler(&i)))
}

/// Runs an act handler on an input, as the `act` export does, and returns
/// the result's JSON. Use it to unit test a plugin natively.
pub fn invoke_act<F>(input: &[u8], handler: F) -> String
where
    F: FnOnce(&Input) -> Result<Vec<Effect>, Error>,
{
    act_result_json(&decode_input(input).and_then(|i| handler(&i)))
}

/// The body of the `describe` export.
pub fn describe(m: &Manifest) -> i32 {
    kernel::set_output(m.to_json().as_bytes())
}

/// The body of the `filter` export: reads and checks the input, calls
/// handler with it, writes its result. Bad input becomes a `bad_input`
/// error result without calling handler.
pub fn filter<F>(handler: F) -> i32
where
    F: FnOnce(&Input) -> Result<Filter, Error>,
{
    kernel::set_output(invoke_filter(&kernel::read_input(), handler).as_bytes())
}

/// The body of the `act` export: reads and checks the input, calls handler
/// with it, writes its effects. Bad input becomes a `bad_input` error
/// result without calling handler.
pub fn act<F>(handler: F) -> i32
where
    F: FnOnce(&Input) -> Result<Vec<Effect>, Error>,
{
    kernel::set_output(invoke_act(&kernel::read_input(), handler).as_bytes())
}

// ---------------------------------------------------------------------------
// Host functions

/// Log levels, as the host numbers them (`get_log_level`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// The most verbose.
    Trace = 0,
    /// Debugging detail.
    Debug = 1,
    /// The default.
    Info = 2,
    /// Something odd.
    Warn = 3,
    /// Something failed.
    Error = 4,
}

/// Whether the host would keep a line at level: check it before building an
/// expensive message.
pub fn log_enabled(level: Level) -> bool {
    level as i32 >= kernel::log_level()
}

/// Writes one line through the host's logger now, attributed to the plugin.
/// Lines below the host's level never cross into the host. (An
/// [`Effect::log`] is a line the host writes after the call instead.)
pub fn log(level: Level, message: &str) {
    if log_enabled(level) {
        kernel::log(level, message);
    }
}

/// The operator's value for key in the plugin's host-side config
/// (`config_get`), or None.
pub fn config_get(key: &str) -> Option<String> {
    kernel::config_get(key)
}

// ---------------------------------------------------------------------------
// The Extism kernel (abi/SPEC.md §1.1)

#[cfg(target_arch = "wasm32")]
mod kernel {
    // Kernel pointers are u64 offsets into the host's kernel memory, a
    // separate address space from this module's memory: bytes cross with
    // load/store calls, eight at a time.
    #[link(wasm_import_module = "extism:host/env")]
    extern "C" {
        fn input_length() -> u64;
        fn input_load_u8(offset: u64) -> u32;
        fn input_load_u64(offset: u64) -> u64;
        fn alloc(n: u64) -> u64;
        fn free(p: u64);
        fn length(p: u64) -> u64;
        fn load_u8(p: u64) -> u32;
        fn load_u64(p: u64) -> u64;
        fn store_u8(p: u64, v: u32);
        fn store_u64(p: u64, v: u64);
        fn output_set(p: u64, n: u64);
        fn error_set(p: u64);
        #[link_name = "config_get"]
        fn config_get_import(key: u64) -> u64;
        fn get_log_level() -> i32;
        fn log_trace(p: u64);
        fn log_debug(p: u64);
        fn log_info(p: u64);
        fn log_warn(p: u64);
        fn log_error(p: u64);
    }

    // Reads n bytes with the two loaders (8 at a time, then the tail).
    fn read(n: u64, u64_at: impl Fn(u64) -> u64, u8_at: impl Fn(u64) -> u32) -> Vec<u8> {
        let mut b = Vec::with_capacity(n as usize);
        let mut i = 0;
        while i + 8 <= n {
            b.extend_from_slice(&u64_at(i).to_le_bytes());
            i += 8;
        }
        while i < n {
            b.push(u8_at(i) as u8);
            i += 1;
        }
        b
    }

    pub fn read_input() -> Vec<u8> {
        // SAFETY (all blocks below): the imports take and return plain
        // integers; the host checks every offset.
        let n = unsafe { input_length() };
        if n > 0x3fff_ffff {
            return Vec::new(); // cannot be real: reported as empty input, not a trap
        }
        read(n, |i| unsafe { input_load_u64(i) }, |i| unsafe { input_load_u8(i) })
    }

    // Copies b into a new kernel block: 0 if empty or refused.
    fn store(b: &[u8]) -> u64 {
        if b.is_empty() {
            return 0;
        }
        let p = unsafe { alloc(b.len() as u64) };
        if p == 0 {
            return 0;
        }
        let mut chunks = b.chunks_exact(8);
        let mut off = p;
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            unsafe { store_u64(off, u64::from_le_bytes(w)) };
            off += 8;
        }
        for &c in chunks.remainder() {
            unsafe { store_u8(off, c as u32) };
            off += 1;
        }
        p
    }

    pub fn set_output(b: &[u8]) -> i32 {
        let p = store(b);
        if p == 0 && !b.is_empty() {
            let e = store(b"observer sdk: the host refused to allocate the output");
            if e != 0 {
                unsafe { error_set(e) };
            }
            return 1;
        }
        unsafe { output_set(p, b.len() as u64) };
        0
    }

    pub fn config_get(key: &str) -> Option<String> {
        let k = store(key.as_bytes());
        if k == 0 {
            return None;
        }
        let v = unsafe { config_get_import(k) };
        unsafe { free(k) };
        if v == 0 {
            return None;
        }
        let n = unsafe { length(v) };
        let b = read(n, |i| unsafe { load_u64(v + i) }, |i| unsafe { load_u8(v + i) });
        unsafe { free(v) };
        Some(String::from_utf8_lossy(&b).into_owned())
    }

    pub fn log_level() -> i32 {
        unsafe { get_log_level() }
    }

    pub fn log(level: super::Level, message: &str) {
        let p = store(message.as_bytes());
        if p == 0 {
            return;
        }
        use super::Level::*;
        unsafe {
            match level {
                Trace => log_trace(p),
                Debug => log_debug(p),
                Info => log_info(p),
                Warn => log_warn(p),
                Error => log_error(p),
            }
        }
    }
}

// Outside WebAssembly (native unit tests) there is no host: no input, no
// config, logging off.
#[cfg(not(target_arch = "wasm32"))]
mod kernel {
    pub fn read_input() -> Vec<u8> {
        Vec::new()
    }
    pub fn set_output(_: &[u8]) -> i32 {
        0
    }
    pub fn config_get(_: &str) -> Option<String> {
        None
    }
    pub fn log_level() -> i32 {
        i32::MAX
    }
    pub fn log(_: super::Level, _: &str) {}
}

// ---------------------------------------------------------------------------
// JSON

/// A small JSON reader and writer that keeps numbers as their text.
///
/// The reader does not recurse and never panics on any input: malformed
/// text is a [`ParseError`] naming the byte offset and what was expected
/// there. Nesting deeper than [`MAX_DEPTH`] is refused, which keeps
/// recursive walks of the result (dropping it, writing it) within the stack.
pub mod json {
    use std::cmp::Ordering;
    use std::fmt;

    /// Nesting deeper than this is a parse error.
    pub const MAX_DEPTH: usize = 1000;

    /// A JSON value.
    #[derive(Clone, Debug, PartialEq)]
    pub enum Value {
        /// null
        Null,
        /// true or false
        Bool(bool),
        /// A number, kept as its text.
        Number(Number),
        /// A string.
        String(String),
        /// An array.
        Array(Vec<Value>),
        /// An object, members in order.
        Object(Object),
    }

    impl Value {
        /// The member named key of an object (the last one if the name
        /// repeats, as encoding/json does); None if absent or not an object.
        pub fn get(&self, key: &str) -> Option<&Value> {
            match self {
                Value::Object(o) => o.get(key),
                _ => None,
            }
        }
        /// Item i of an array; None if out of range or not an array.
        pub fn at(&self, i: usize) -> Option<&Value> {
            match self {
                Value::Array(a) => a.get(i),
                _ => None,
            }
        }
        /// The text of a string.
        pub fn as_str(&self) -> Option<&str> {
            match self {
                Value::String(s) => Some(s),
                _ => None,
            }
        }
        /// A number.
        pub fn as_number(&self) -> Option<&Number> {
            match self {
                Value::Number(n) => Some(n),
                _ => None,
            }
        }
        /// A boolean.
        pub fn as_bool(&self) -> Option<bool> {
            match self {
                Value::Bool(b) => Some(*b),
                _ => None,
            }
        }
        /// An object's members.
        pub fn as_object(&self) -> Option<&Object> {
            match self {
                Value::Object(o) => Some(o),
                _ => None,
            }
        }
        /// An array's items.
        pub fn as_array(&self) -> Option<&[Value]> {
            match self {
                Value::Array(a) => Some(a),
                _ => None,
            }
        }
        /// Whether this is null.
        pub fn is_null(&self) -> bool {
            matches!(self, Value::Null)
        }
        /// A short name of the kind, for messages: "a string", "a number"...
        pub fn kind_name(&self) -> &'static str {
            match self {
                Value::Null => "null",
                Value::Bool(_) => "a boolean",
                Value::Number(_) => "a number",
                Value::String(_) => "a string",
                Value::Array(_) => "an array",
                Value::Object(_) => "an object",
            }
        }
        /// The compact JSON text.
        pub fn to_json(&self) -> String {
            let mut w = Writer::new();
            w.value(self);
            w.finish()
        }
    }

    impl From<&str> for Value {
        fn from(s: &str) -> Value {
            Value::String(s.to_string())
        }
    }
    impl From<String> for Value {
        fn from(s: String) -> Value {
            Value::String(s)
        }
    }
    impl From<bool> for Value {
        fn from(b: bool) -> Value {
            Value::Bool(b)
        }
    }
    impl From<i64> for Value {
        fn from(n: i64) -> Value {
            Value::Number(Number(n.to_string()))
        }
    }
    impl From<Number> for Value {
        fn from(n: Number) -> Value {
            Value::Number(n)
        }
    }
    impl From<Object> for Value {
        fn from(o: Object) -> Value {
            Value::Object(o)
        }
    }
    impl From<Vec<Value>> for Value {
        fn from(a: Vec<Value>) -> Value {
            Value::Array(a)
        }
    }

    impl fmt::Display for Value {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(&self.to_json())
        }
    }

    /// An object's members, in order (repeated names are kept; lookups see the last).
    #[derive(Clone, Debug, Default, PartialEq)]
    pub struct Object(pub Vec<(String, Value)>);

    impl Object {
        /// An empty object.
        pub fn new() -> Object {
            Object(Vec::new())
        }
        /// The value of the last member named key.
        pub fn get(&self, key: &str) -> Option<&Value> {
            self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v)
        }
        /// Sets (or replaces) a member; returns self for chaining.
        pub fn with(mut self, key: &str, value: impl Into<Value>) -> Object {
            self.insert(key, value);
            self
        }
        /// Sets (or replaces) a member.
        pub fn insert(&mut self, key: &str, value: impl Into<Value>) {
            let value = value.into();
            match self.0.iter_mut().rev().find(|(k, _)| k == key) {
                Some(m) => m.1 = value,
                None => self.0.push((key.to_string(), value)),
            }
        }
        /// The members, in order.
        pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
            self.0.iter().map(|(k, v)| (k.as_str(), v))
        }
        /// The number of members.
        pub fn len(&self) -> usize {
            self.0.len()
        }
        /// Whether there are none.
        pub fn is_empty(&self) -> bool {
            self.0.is_empty()
        }
    }

    /// A JSON number, kept exactly as written (`9.99`, `1e999999999`,
    /// `123456789012345678901234567890.5`).
    ///
    /// Equality and order are numeric and exact: `1.50 == 1.5 == 15e-1`,
    /// `-0 == 0`, and `12345678901234567890.5 > 12345678901234567890.4`
    /// although no f64 tells them apart. Exponents beyond about ±9×10^18
    /// saturate; everything else is exact.
    #[derive(Clone, Debug)]
    pub struct Number(String);

    impl Number {
        /// A number from JSON number text; None if it is not one.
        pub fn parse(text: &str) -> Option<Number> {
            if is_number(text.as_bytes()) {
                Some(Number(text.to_string()))
            } else {
                None
            }
        }
        /// The text, exactly as written.
        pub fn as_str(&self) -> &str {
            &self.0
        }
        /// The nearest f64 (infinite beyond its range).
        pub fn to_f64(&self) -> f64 {
            self.0.parse().unwrap_or(f64::NAN)
        }
        /// The value as an i64, if it is an integer in range written without
        /// fraction or exponent.
        pub fn to_i64(&self) -> Option<i64> {
            self.0.parse().ok()
        }
        /// The value as a u64, under the same conditions.
        pub fn to_u64(&self) -> Option<u64> {
            self.0.parse().ok()
        }
    }

    impl fmt::Display for Number {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(&self.0)
        }
    }

    impl PartialEq for Number {
        fn eq(&self, other: &Number) -> bool {
            self.cmp(other) == Ordering::Equal
        }
    }
    impl Eq for Number {}
    impl PartialOrd for Number {
        fn partial_cmp(&self, other: &Number) -> Option<Ordering> {
            Some(self.cmp(other))
        }
    }
    impl Ord for Number {
        fn cmp(&self, other: &Number) -> Ordering {
            compare_numbers(&self.0, &other.0)
        }
    }

    // sign × 0.DIGITS × 10^exp, DIGITS without leading or trailing zeros
    // (empty for zero).
    struct Decimal<'a> {
        neg: bool,
        digits: Vec<&'a u8>,
        exp: i64,
    }

    fn normalize(s: &str) -> Decimal<'_> {
        let b = s.as_bytes();
        let mut i = 0;
        let neg = b.first() == Some(&b'-');
        if neg {
            i += 1;
        }
        let int_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let int = &b[int_start..i];
        let mut frac: &[u8] = &[];
        if i < b.len() && b[i] == b'.' {
            i += 1;
            let fs = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            frac = &b[fs..i];
        }
        let mut e: i64 = 0;
        if i < b.len() && (b[i] | 0x20) == b'e' {
            i += 1;
            let eneg = b.get(i) == Some(&b'-');
            if matches!(b.get(i), Some(b'+') | Some(b'-')) {
                i += 1;
            }
            while i < b.len() && b[i].is_ascii_digit() {
                e = e.saturating_mul(10).saturating_add((b[i] - b'0') as i64);
                i += 1;
            }
            if eneg {
                e = -e;
            }
        }
        let all: Vec<&u8> = int.iter().chain(frac.iter()).collect();
        let lead = all.iter().take_while(|c| ***c == b'0').count();
        let end = all.len() - all.iter().rev().take_while(|c| ***c == b'0').count();
        if end <= lead {
            return Decimal { neg, digits: Vec::new(), exp: 0 };
        }
        let exp = (int.len() as i64).saturating_sub(lead as i64).saturating_add(e);
        Decimal { neg, digits: all[lead..end].to_vec(), exp }
    }

    /// Compares two JSON number texts exactly (see [`Number`]). Both should
    /// be JSON numbers; other text compares by its digits without panicking.
    pub fn compare_numbers(a: &str, b: &str) -> Ordering {
        let (x, y) = (normalize(a), normalize(b));
        let sign = |d: &Decimal| if d.digits.is_empty() { 0 } else if d.neg { -1 } else { 1 };
        let (sx, sy) = (sign(&x), sign(&y));
        if sx != sy || sx == 0 {
            return sx.cmp(&sy);
        }
        let mag = x.exp.cmp(&y.exp).then_with(|| x.digits.cmp(&y.digits));
        if sx < 0 {
            mag.reverse()
        } else {
            mag
        }
    }

    fn is_number(b: &[u8]) -> bool {
        let mut p = Parser { b, pos: 0 };
        p.number_end().is_ok() && p.pos == b.len()
    }

    /// Why a JSON text could not be parsed.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct ParseError {
        /// The byte offset where it went wrong.
        pub offset: usize,
        /// What was wrong there.
        pub message: String,
    }

    impl fmt::Display for ParseError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(&self.message)
        }
    }

    impl std::error::Error for ParseError {}

    /// Parses one JSON text (with nothing but whitespace after it).
    pub fn parse(text: &[u8]) -> Result<Value, ParseError> {
        let mut p = Parser { b: text, pos: 0 };
        p.skip_ws();
        if p.pos >= text.len() {
            return Err(ParseError { offset: p.pos, message: "empty JSON input".to_string() });
        }
        let v = p.value()?;
        p.skip_ws();
        if p.pos < text.len() {
            return Err(ParseError { offset: p.pos, message: format!("trailing data at byte {} after the JSON value", p.pos) });
        }
        Ok(v)
    }

    struct Parser<'a> {
        b: &'a [u8],
        pos: usize,
    }

    // An open container: an array, or an object with its pending key.
    enum Open {
        Array(Vec<Value>),
        Object(Object, String),
    }

    impl<'a> Parser<'a> {
        fn peek(&self) -> Option<u8> {
            self.b.get(self.pos).copied()
        }

        fn fail<T>(&self, what: &str) -> Result<T, ParseError> {
            let message = match self.peek() {
                None => format!("unexpected end of JSON input at byte {}, looking for {}", self.pos, what),
                Some(c) if (0x20..0x7f).contains(&c) => {
                    format!("invalid character '{}' at byte {}, looking for {}", c as char, self.pos, what)
                }
                Some(c) => format!("invalid character byte 0x{:02x} at byte {}, looking for {}", c, self.pos, what),
            };
            Err(ParseError { offset: self.pos, message })
        }

        fn skip_ws(&mut self) {
            while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
                self.pos += 1;
            }
        }

        // Parses one value without recursion: open containers wait on a stack.
        fn value(&mut self) -> Result<Value, ParseError> {
            let mut stack: Vec<Open> = Vec::new();
            loop {
                self.skip_ws();
                let c = match self.peek() {
                    None => return self.fail("a value"),
                    Some(c) => c,
                };
                let mut v = if c == b'{' || c == b'[' {
                    if stack.len() >= MAX_DEPTH {
                        return Err(ParseError {
                            offset: self.pos,
                            message: format!("JSON nested deeper than {} levels at byte {}", MAX_DEPTH, self.pos),
                        });
                    }
                    self.pos += 1;
                    self.skip_ws();
                    let close = if c == b'{' { b'}' } else { b']' };
                    if self.peek() == Some(close) {
                        self.pos += 1;
                        if c == b'{' {
                            Value::Object(Object::new())
                        } else {
                            Value::Array(Vec::new())
                        }
                    } else {
                        if c == b'{' {
                            let k = self.member_key()?;
                            stack.push(Open::Object(Object::new(), k));
                        } else {
                            stack.push(Open::Array(Vec::new()));
                        }
                        continue; // parse the first item
                    }
                } else {
                    self.scalar(c)?
                };
                // v is complete: attach it, then close what ends here.
                loop {
                    let top = match stack.last_mut() {
                        None => return Ok(v),
                        Some(t) => t,
                    };
                    let is_obj = match top {
                        Open::Array(items) => {
                            items.push(v);
                            false
                        }
                        Open::Object(o, k) => {
                            o.0.push((std::mem::take(k), v));
                            true
                        }
                    };
                    self.skip_ws();
                    match self.peek() {
                        Some(b',') => {
                            self.pos += 1;
                            if is_obj {
                                let k = self.member_key()?;
                                if let Some(Open::Object(_, pending)) = stack.last_mut() {
                                    *pending = k;
                                }
                            }
                            break; // parse the next item
                        }
                        Some(b'}') if is_obj => {
                            self.pos += 1;
                            v = match stack.pop() {
                                Some(Open::Object(o, _)) => Value::Object(o),
                                _ => Value::Null, // not reached
                            };
                        }
                        Some(b']') if !is_obj => {
                            self.pos += 1;
                            v = match stack.pop() {
                                Some(Open::Array(a)) => Value::Array(a),
                                _ => Value::Null, // not reached
                            };
                        }
                        None => return self.fail(if is_obj { "',' or '}'" } else { "',' or ']'" }),
                        Some(_) => {
                            return self.fail(if is_obj {
                                "',' or '}' after an object member"
                            } else {
                                "',' or ']' after an array item"
                            })
                        }
                    }
                }
            }
        }

        // Reads `"key" :`.
        fn member_key(&mut self) -> Result<String, ParseError> {
            self.skip_ws();
            if self.peek() != Some(b'"') {
                return self.fail("'\"' starting an object key");
            }
            let k = self.string()?;
            self.skip_ws();
            if self.peek() != Some(b':') {
                return self.fail("':' after an object key");
            }
            self.pos += 1;
            Ok(k)
        }

        fn scalar(&mut self, c: u8) -> Result<Value, ParseError> {
            match c {
                b'"' => Ok(Value::String(self.string()?)),
                b'-' | b'0'..=b'9' => {
                    let start = self.pos;
                    self.number_end()?;
                    // only ASCII digits, signs, '.', 'e' were accepted
                    let text = String::from_utf8_lossy(&self.b[start..self.pos]).into_owned();
                    Ok(Value::Number(Number(text)))
                }
                b't' => self.literal("true", Value::Bool(true)),
                b'f' => self.literal("false", Value::Bool(false)),
                b'n' => self.literal("null", Value::Null),
                _ => self.fail("a value"),
            }
        }

        fn literal(&mut self, word: &str, v: Value) -> Result<Value, ParseError> {
            for &w in word.as_bytes() {
                if self.peek() != Some(w) {
                    return self.fail(&format!("'{}'", word));
                }
                self.pos += 1;
            }
            Ok(v)
        }

        fn digits(&mut self) {
            while matches!(self.peek(), Some(b'0'..=b'9')) {
                self.pos += 1;
            }
        }

        // Advances over -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
        fn number_end(&mut self) -> Result<(), ParseError> {
            if self.peek() == Some(b'-') {
                self.pos += 1;
            }
            match self.peek() {
                Some(b'0') => self.pos += 1,
                Some(b'1'..=b'9') => self.digits(),
                _ => return self.fail("a digit"),
            }
            if self.peek() == Some(b'.') {
                self.pos += 1;
                if !matches!(self.peek(), Some(b'0'..=b'9')) {
                    return self.fail("a digit after the decimal point");
                }
                self.digits();
            }
            if matches!(self.peek(), Some(b'e' | b'E')) {
                self.pos += 1;
                if matches!(self.peek(), Some(b'+' | b'-')) {
                    self.pos += 1;
                }
                if !matches!(self.peek(), Some(b'0'..=b'9')) {
                    return self.fail("a digit in the exponent");
                }
                self.digits();
            }
            Ok(())
        }

        // Reads a string starting at its opening quote. Invalid UTF-8 and
        // lone surrogate escapes become U+FFFD, as in encoding/json.
        fn string(&mut self) -> Result<String, ParseError> {
            let open = self.pos;
            self.pos += 1;
            let mut out = String::new();
            let mut run = self.pos;
            loop {
                let c = match self.peek() {
                    None => {
                        return Err(ParseError {
                            offset: self.pos,
                            message: format!("unexpected end of JSON input in the string starting at byte {}", open),
                        })
                    }
                    Some(c) => c,
                };
                if c == b'"' {
                    out.push_str(&String::from_utf8_lossy(&self.b[run..self.pos]));
                    self.pos += 1;
                    return Ok(out);
                }
                if c < 0x20 {
                    return self.fail("a string character (control characters must be escaped)");
                }
                if c != b'\\' {
                    self.pos += 1;
                    continue;
                }
                out.push_str(&String::from_utf8_lossy(&self.b[run..self.pos]));
                self.pos += 1;
                let e = match self.peek() {
                    None => return self.fail("an escape character"),
                    Some(e) => e,
                };
                self.pos += 1;
                match e {
                    b'"' => out.push('"'),
                    b'\\' => out.push('\\'),
                    b'/' => out.push('/'),
                    b'b' => out.push('\u{8}'),
                    b'f' => out.push('\u{c}'),
                    b'n' => out.push('\n'),
                    b'r' => out.push('\r'),
                    b't' => out.push('\t'),
                    b'u' => {
                        let u = self.hex4()?;
                        let ch = if (0xd800..0xdc00).contains(&u) {
                            // a high surrogate: a low one must follow for a pair
                            let save = self.pos;
                            let mut pair = None;
                            if self.b.get(self.pos..self.pos + 2) == Some(b"\\u") {
                                self.pos += 2;
                                let lo = self.hex4()?;
                                if (0xdc00..0xe000).contains(&lo) {
                                    pair = char::from_u32(0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00));
                                } else {
                                    self.pos = save; // the next escape stands alone
                                }
                            }
                            pair.unwrap_or('\u{fffd}')
                        } else {
                            char::from_u32(u).unwrap_or('\u{fffd}')
                        };
                        out.push(ch);
                    }
                    _ => {
                        self.pos -= 1;
                        return self.fail("an escape character (one of \" \\ / b f n r t u)");
                    }
                }
                run = self.pos;
            }
        }

        fn hex4(&mut self) -> Result<u32, ParseError> {
            let mut u = 0;
            for _ in 0..4 {
                let d = match self.peek() {
                    Some(c @ b'0'..=b'9') => c - b'0',
                    Some(c @ b'a'..=b'f') => c - b'a' + 10,
                    Some(c @ b'A'..=b'F') => c - b'A' + 10,
                    _ => return self.fail("a hexadecimal digit in a \\u escape"),
                };
                u = (u << 4) | d as u32;
                self.pos += 1;
            }
            Ok(u)
        }
    }

    /// Writes compact JSON. Commas are placed for you: call [`Writer::key`]
    /// before each member of an object and value methods for the rest.
    ///
    /// ```ignore
    /// let mut w = Writer::new();
    /// w.begin_object();
    /// w.key("event");
    /// w.string("pg:1042");
    /// w.end_object();
    /// assert_eq!(w.finish(), r#"{"event":"pg:1042"}"#);
    /// ```
    #[derive(Default)]
    pub struct Writer {
        buf: String,
        need_comma: bool,
    }

    impl Writer {
        /// An empty writer.
        pub fn new() -> Writer {
            Writer::default()
        }
        fn sep(&mut self) {
            if self.need_comma {
                self.buf.push(',');
            }
        }
        /// `{`
        pub fn begin_object(&mut self) {
            self.sep();
            self.buf.push('{');
            self.need_comma = false;
        }
        /// `}`
        pub fn end_object(&mut self) {
            self.buf.push('}');
            self.need_comma = true;
        }
        /// `[`
        pub fn begin_array(&mut self) {
            self.sep();
            self.buf.push('[');
            self.need_comma = false;
        }
        /// `]`
        pub fn end_array(&mut self) {
            self.buf.push(']');
            self.need_comma = true;
        }
        /// A member's name and the colon.
        pub fn key(&mut self, k: &str) {
            self.sep();
            quote(&mut self.buf, k);
            self.buf.push(':');
            self.need_comma = false;
        }
        /// A string.
        pub fn string(&mut self, s: &str) {
            self.sep();
            quote(&mut self.buf, s);
            self.need_comma = true;
        }
        /// An array of strings.
        pub fn strings(&mut self, a: &[String]) {
            self.begin_array();
            for s in a {
                self.string(s);
            }
            self.end_array();
        }
        /// true or false.
        pub fn bool(&mut self, b: bool) {
            self.sep();
            self.buf.push_str(if b { "true" } else { "false" });
            self.need_comma = true;
        }
        /// null.
        pub fn null(&mut self) {
            self.sep();
            self.buf.push_str("null");
            self.need_comma = true;
        }
        /// A number, exactly as its text.
        pub fn number(&mut self, n: &Number) {
            self.sep();
            self.buf.push_str(n.as_str());
            self.need_comma = true;
        }
        /// An integer.
        pub fn integer(&mut self, n: i64) {
            self.sep();
            self.buf.push_str(&n.to_string());
            self.need_comma = true;
        }
        /// Any value.
        pub fn value(&mut self, v: &Value) {
            match v {
                Value::Null => self.null(),
                Value::Bool(b) => self.bool(*b),
                Value::Number(n) => self.number(n),
                Value::String(s) => self.string(s),
                Value::Array(a) => {
                    self.begin_array();
                    for item in a {
                        self.value(item);
                    }
                    self.end_array();
                }
                Value::Object(o) => {
                    self.begin_object();
                    for (k, item) in &o.0 {
                        self.key(k);
                        self.value(item);
                    }
                    self.end_object();
                }
            }
        }
        /// The JSON text.
        pub fn finish(self) -> String {
            self.buf
        }
    }

    /// Appends s as a quoted JSON string: quote, backslash and every control
    /// character escaped (Rust strings are valid UTF-8, so the rest is
    /// copied as is).
    pub fn quote(out: &mut String, s: &str) {
        out.push('"');
        let b = s.as_bytes();
        let mut run = 0;
        for (i, &c) in b.iter().enumerate() {
            let esc: &str = match c {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0x08 => "\\b",
                0x0c => "\\f",
                0..=0x1f => "",
                _ => continue,
            };
            out.push_str(&s[run..i]); // i is at an ASCII byte: a char boundary
            if esc.is_empty() {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push_str("\\u00");
                out.push(HEX[(c >> 4) as usize] as char);
                out.push(HEX[(c & 15) as usize] as char);
            } else {
                out.push_str(esc);
            }
            run = i + 1;
        }
        out.push_str(&s[run..]);
        out.push('"');
    }
}

// ---------------------------------------------------------------------------
// Tests: rustc --edition 2021 --test observer.rs -o observer-test && ./observer-test

#[cfg(test)]
mod tests {
    use super::json::{self, compare_numbers, Number, Object, Value, Writer};
    use super::*;
    use std::cmp::Ordering;

    fn roundtrip(input: &str) -> Result<String, String> {
        json::parse(input.as_bytes()).map(|v| v.to_json()).map_err(|e| e.message)
    }

    #[test]
    fn json_round_trip_keeps_numbers_exact() {
        let cases = [
            ("{}", "{}"),
            (" [ ] ", "[]"),
            ("null", "null"),
            (r#"{"a": 1, "b": [true, false, null], "c": {"d": "e"}}"#, r#"{"a":1,"b":[true,false,null],"c":{"d":"e"}}"#),
            ("123456789012345678901234567890.123456789", "123456789012345678901234567890.123456789"),
            ("[1e999999999, -0, 0.10, 1E+2, -1.5e-7]", "[1e999999999,-0,0.10,1E+2,-1.5e-7]"),
            (r#""\u00e9\u6771\ud83d\ude80 \/ \" \\ \b\f\n\r\t""#, "\"é東🚀 / \\\" \\\\ \\b\\f\\n\\r\\t\""),
            ("\"Zoë 東京 🚀\"", "\"Zoë 東京 🚀\""),
            (r#""\u0000\u001f""#, r#""\u0000\u001f""#),
            (r#""\ud800x""#, "\"\u{fffd}x\""),
            (r#""\udc00\ud800\ud800\udc00""#, "\"\u{fffd}\u{fffd}\u{10000}\""),
            (r#"{"a": 1, "a": 2}"#, r#"{"a":1,"a":2}"#),
        ];
        for (input, want) in cases {
            assert_eq!(roundtrip(input), Ok(want.to_string()), "{}", input);
        }
        // invalid UTF-8 inside a string becomes U+FFFD
        assert_eq!(json::parse(b"\"a\xffb\"").map(|v| v.to_json()), Ok("\"a\u{fffd}b\"".to_string()));
        // the last repeated name wins
        assert_eq!(json::parse(br#"{"a": 1, "a": 2}"#).unwrap().get("a").and_then(|v| v.as_number()).map(|n| n.as_str().to_string()), Some("2".to_string()));
    }

    #[test]
    fn malformed_json_is_an_error_naming_the_byte() {
        let cases = [
            ("", "empty JSON input"),
            ("   ", "empty JSON input"),
            (r#"{"abi": "1.0", "event": {"id": "#, "unexpected end of JSON input at byte 31"),
            ("[1, 2,]", "invalid character ']' at byte 6"),
            ("{1: 2}", "invalid character '1' at byte 1, looking for '\"' starting an object key"),
            (r#"{"a" 1}"#, "at byte 5, looking for ':'"),
            ("01", "trailing data at byte 1"),
            ("1.", "looking for a digit after the decimal point"),
            ("-", "looking for a digit"),
            ("1e+", "looking for a digit in the exponent"),
            ("tru", "unexpected end of JSON input at byte 3, looking for 'true'"),
            ("nul1", "invalid character '1' at byte 3"),
            ("\"a\nb\"", "control characters must be escaped"),
            (r#""\x""#, "invalid character 'x' at byte 2, looking for an escape character"),
            (r#""\u12g4""#, "hexadecimal digit"),
            ("\"abc", "in the string starting at byte 0"),
            ("[1] [2]", "trailing data at byte 4"),
            ("{\"a\":1}}", "trailing data at byte 7"),
            ("\u{ff}", "invalid character byte 0xc3 at byte 0"),
        ];
        for (input, want) in cases {
            match roundtrip(input) {
                Err(e) => assert!(e.contains(want), "{:?}: got {}, want {}", input, e, want),
                Ok(v) => panic!("{:?}: parsed as {}, want an error containing {}", input, v, want),
            }
        }
    }

    #[test]
    fn nesting_up_to_max_depth_parses_deeper_is_an_error() {
        let deep = |n: usize| "[".repeat(n) + &"]".repeat(n);
        assert_eq!(roundtrip(&deep(1000)), Ok(deep(1000)));
        let err = roundtrip(&deep(1001)).unwrap_err();
        assert!(err.starts_with("JSON nested deeper than 1000 levels at byte 1000"), "{}", err);
        assert!(roundtrip(&"[".repeat(200_000)).unwrap_err().starts_with("JSON nested deeper"));
        let obj = r#"{"a":"#.repeat(999) + "1" + &"}".repeat(999);
        assert_eq!(roundtrip(&obj), Ok(obj.clone()));
    }

    #[test]
    fn numbers_compare_exactly() {
        use Ordering::*;
        let cases = [
            ("9.99", "9.99", Equal), ("11.99", "9.99", Greater), ("9.98", "9.99", Less), ("11", "11.99", Less),
            ("1.50", "1.5", Equal), ("15e-1", "1.5", Equal), ("0.15E1", "1.5", Equal), ("-0", "0", Equal), ("0.000", "-0e5", Equal),
            ("-7.5", "-5", Less), ("-5", "-7.5", Greater), ("-1", "0", Less), ("0", "1e-400", Less), ("-1e-400", "0", Less),
            ("100", "99.999999999999999999999", Greater), ("0.1", "0.09999999999999999999", Greater),
            ("12345678901234567890.5", "12345678901234567890.4", Greater),
            ("9007199254740993", "9007199254740992", Greater),
            ("1e999999999", "1e308", Greater), ("-1e999999999", "-1e308", Less), ("1e-999999999", "1e-320", Less),
            ("123456789012345678901234567890123456789.123456789", "1e38", Greater),
            ("10", "9", Greater), ("0.5", "0.05", Greater), ("1000e-3", "1", Equal),
            ("1e99999999999999999999999", "1e308", Greater), // a saturated exponent is still huge
        ];
        for (a, b, want) in cases {
            assert_eq!(compare_numbers(a, b), want, "{} vs {}", a, b);
            assert_eq!(compare_numbers(b, a), want.reverse(), "{} vs {}", b, a);
            let (x, y) = (Number::parse(a).unwrap(), Number::parse(b).unwrap());
            assert_eq!(x.cmp(&y), want);
            assert_eq!(x == y, want == Equal);
        }
        for bad in ["", "-", "1.", ".5", "01", "1e", "+1", "1 ", "0x10", "NaN"] {
            assert!(Number::parse(bad).is_none(), "{:?} accepted", bad);
        }
        assert_eq!(Number::parse("-12").and_then(|n| n.to_i64()), Some(-12));
        assert_eq!(Number::parse("1.5").and_then(|n| n.to_i64()), None);
    }

    #[test]
    fn writer_escapes_every_control_character() {
        let s: String = (0u8..0x20).map(|c| c as char).chain("\"\\/ é🚀\u{7f}\u{2028}".chars()).collect();
        let mut w = Writer::new();
        w.string(&s);
        let out = w.finish();
        assert!(!out.bytes().any(|c| c < 0x20), "raw control character in {}", out);
        assert!(out.starts_with(r#""\u0000\u0001"#) && out.contains(r#"\b\t\n\u000b\f\r"#) && out.contains(r#"\"\\/ é🚀"#), "{}", out);
        assert_eq!(json::parse(out.as_bytes()).unwrap(), Value::String(s));
        let v = Value::Object(Object::new().with("n", Number::parse("1.10").unwrap()).with("a", Value::Array(vec![Value::Null, true.into(), 7i64.into()])));
        assert_eq!(v.to_json(), r#"{"n":1.10,"a":[null,true,7]}"#);
    }

    fn input(config: &str) -> String {
        format!(
            r#"{{"abi":"1.0","context":{{"observer":"o","plugin":"p","role":"filter","attempt":3,"now":"2026-01-01T00:00:00Z","trace":{{"traceparent":"00-a-b-01"}}}},"event":{{"id":"pg:1","position":1,"source":"pg","entity":"public.payment","op":"UPDATE","key":"1","before":null,"after":{{"amount":123456789012345678901.99,"items":[{{"sku":"a"}},{{"sku":"b"}}]}},"changed_fields":["amount"]}},"config":{}}}"#,
            config
        )
    }

    #[test]
    fn input_is_decoded_and_lookup_finds_paths() {
        let raw = input(r#"{"url": "u"}"#);
        let i = decode_input(raw.as_bytes()).unwrap();
        assert_eq!((i.context.attempt, i.context.now.as_str(), i.context.traceparent.as_str()), (3, "2026-01-01T00:00:00Z", "00-a-b-01"));
        assert_eq!((i.event.id.as_str(), i.event.op.as_str(), i.event.changed_fields.clone()), ("pg:1", "UPDATE", vec!["amount".to_string()]));
        assert_eq!(i.event.position.as_ref().map(|n| n.as_str()), Some("1"));
        assert!(i.event.before.is_none());
        let cases = [
            ("after.amount", Some("123456789012345678901.99")),
            ("after.items.1.sku", Some(r#""b""#)),
            ("after.items.2.sku", None),
            ("after.items.x", None),
            ("before.amount", None),
            ("event.id", Some(r#""pg:1""#)),
            ("entity", Some(r#""public.payment""#)),
            ("context.now", Some(r#""2026-01-01T00:00:00Z""#)),
            ("config.url", Some(r#""u""#)),
            ("event.before", Some("null")),
        ];
        for (path, want) in cases {
            assert_eq!(i.lookup(path).map(|v| v.to_json()), want.map(String::from), "{}", path);
        }
        let none = decode_input(br#"{"abi":"1.7","future":{"x":1},"event":{"op":"INSERT"},"config":null}"#).unwrap();
        assert!(none.config.is_none());
        assert_eq!(none.context, Context::default());
    }

    #[test]
    fn bad_input_is_a_bad_input_error_naming_what_was_wrong() {
        let cases = [
            ("", "input is empty"),
            ("[1, 2, 3]", "input is an array, want an ABI 1.0 input object"),
            (r#"{"abi": "2.0", "event": {}}"#, "input is ABI 2.0 but this plugin speaks ABI 1.x"),
            (r#"{"abi": "one", "event": {}}"#, r#"input.abi "one" is not a "MAJOR.MINOR" version"#),
            (r#"{"event": {}}"#, r#"input.abi "" is not a "MAJOR.MINOR" version"#),
            (r#"{"abi": 1, "event": {}}"#, "input.abi is a number, want a string"),
            (r#"{"abi": "1.0"}"#, "input has no event"),
            (r#"{"abi": "1.0", "event": null}"#, "input has no event"),
            (r#"{"abi": "1.0", "event": "x"}"#, "input.event is a string, want an object"),
            (r#"{"abi": "1.0", "event": {"id": 7}}"#, "input.event.id is a number, want a string"),
            (r#"{"abi": "1.0", "event": {"after": [1]}}"#, "input.event.after is an array, want an object or null"),
            (r#"{"abi": "1.0", "event": {"changed_fields": [1]}}"#, "input.event.changed_fields[0] is a number, want a string"),
            (r#"{"abi": "1.0", "context": [], "event": {}}"#, "input.context is an array, want an object"),
            (r#"{"abi": "1.0", "event": {"trace": {"traceparent": 1}}}"#, "input.event.trace.traceparent is a number, want a string"),
            (r#"{"abi": "1.0", "event": {"id": "#, "input is not valid JSON: unexpected end of JSON input at byte 31"),
        ];
        for (raw, want) in cases {
            let got = invoke_filter(raw.as_bytes(), |_| panic!("handler called on bad input {}", raw));
            let v = json::parse(got.as_bytes()).unwrap();
            assert_eq!(v.get("abi").and_then(|a| a.as_str()), Some("1.0"));
            let e = v.get("error").unwrap_or_else(|| panic!("{}: no error in {}", raw, got));
            assert_eq!(e.get("code").and_then(|c| c.as_str()), Some("bad_input"), "{}", raw);
            let msg = e.get("message").and_then(|m| m.as_str()).unwrap_or("");
            assert!(msg.contains(want), "{}: got {}, want {}", raw, msg, want);
            assert_eq!(e.get("retryable").and_then(|r| r.as_bool()), Some(false));
            assert!(v.get("pass").is_none());
        }
    }

    #[test]
    fn results_and_effects_as_json() {
        let raw = input("{}");
        assert_eq!(invoke_filter(raw.as_bytes(), |_| Ok(Filter::drop("no"))), r#"{"abi":"1.0","pass":false,"reason":"no"}"#);
        assert_eq!(
            invoke_filter(raw.as_bytes(), |_| Err(Error::retryable("later", "lookup not \"ready\""))),
            r#"{"abi":"1.0","error":{"message":"lookup not \"ready\"","code":"later","retryable":true}}"#
        );
        let got = invoke_act(raw.as_bytes(), |i| {
            Ok(vec![
                Effect::http("POST", "https://h/x").header("a", "1").header("a", "2").json(i.lookup("after").cloned().unwrap_or(Value::Null)).into(),
                Effect::log("warn", "odd\n").field("k", "v").into(),
            ])
        });
        assert_eq!(
            got,
            r#"{"abi":"1.0","effects":[{"type":"http","http":{"method":"POST","url":"https://h/x","headers":{"a":"2"},"body_json":{"amount":123456789012345678901.99,"items":[{"sku":"a"},{"sku":"b"}]}}},{"type":"log","log":{"level":"warn","message":"odd\n","fields":{"k":"v"}}}]}"#
        );
        assert_eq!(invoke_act(raw.as_bytes(), |_| Ok(vec![])), r#"{"abi":"1.0","effects":[]}"#);
        let m = Manifest::new("n", "1").role("act").effect("http").http_host("h.example").description("d");
        assert_eq!(
            m.to_json(),
            r#"{"abi":"1.0","name":"n","version":"1","roles":["act"],"capabilities":{"effects":["http"],"http_hosts":["h.example"]},"description":"d"}"#
        );
    }

    // A cheap fuzz: mutations of a real input (bytes flipped, dropped,
    // repeated, truncated) never panic the reader or the decoder, and
    // whatever parses writes back to JSON that parses to the same value.
    #[test]
    fn mutated_inputs_never_panic() {
        let seed = input(r#"{"min": 9.99, "s": "\u00e9\ud83d\ude80\n"}"#).into_bytes();
        let alphabet = b"{}[]\",:\\-+.eE0123456789 truefalsn\x00\xff\xc3";
        let mut state: u64 = 0x9e3779b97f4a7c15;
        let mut next = move |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        for _ in 0..20_000 {
            let mut b = seed.clone();
            for _ in 0..1 + next(4) {
                let at = next(b.len());
                match next(4) {
                    0 => b[at] = alphabet[next(alphabet.len())],
                    1 => {
                        b.remove(at);
                    }
                    2 => {
                        let end = (at + next(16)).min(b.len());
                        let piece = b[at..end].to_vec();
                        b.splice(at..at, piece);
                    }
                    _ => b.truncate(at),
                }
                if b.is_empty() {
                    break;
                }
            }
            if let Ok(v) = json::parse(&b) {
                assert_eq!(json::parse(v.to_json().as_bytes()).as_ref(), Ok(&v));
            }
            let _ = invoke_filter(&b, |i| Ok(Filter::pass(i.lookup("after.amount").map(|v| v.to_json()).unwrap_or_default())));
        }
    }
}
