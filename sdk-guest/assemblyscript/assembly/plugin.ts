// Observer ABI v1 (abi/SPEC.md) on top of the kernel: the input, the
// results, effects, the manifest, and the runners a plugin's exports call.

import { readInput, setOutput } from "./kernel";
import { JSONValue, JSONWriter, Kind, kindName, parseJSONBytes } from "./json";

/** The ABI version this SDK speaks. */
export const ABI_VERSION = "1.0";
const ABI_MAJOR = 1;

/** Error codes the SDK reports, also for plugins to use. */
export namespace Code {
  /** The input was not valid JSON, or not an ABI v1 input. */
  export const BAD_INPUT = "bad_input";
  /** The plugin's configuration (Input.config) is invalid. */
  export const BAD_CONFIG = "bad_config";
  /** The role was called but the plugin has no handler for it. */
  export const NO_HANDLER = "no_handler";
}

/**
 * An error result (SPEC §5). Permanent errors dead-letter the event at once;
 * retryable ones ask the host to try again later.
 */
export class PluginError {
  constructor(public code: string, public message: string, public retryable: bool = false) {}

  /** A permanent error: this input can never succeed. */
  static permanent(code: string, message: string): PluginError {
    return new PluginError(code, message, false);
  }
  /** A transient error: ask the host to retry the call later. */
  static retryable(code: string, message: string): PluginError {
    return new PluginError(code, message, true);
  }
  /** A permanent bad_config error. */
  static badConfig(message: string): PluginError {
    return new PluginError(Code.BAD_CONFIG, message, false);
  }
  /** A permanent bad_input error. */
  static badInput(message: string): PluginError {
    return new PluginError(Code.BAD_INPUT, message, false);
  }
}

/** A filter's decision (SPEC §4.2), or an error. */
export class FilterResult {
  constructor(public pass: bool, public reason: string, public error: PluginError | null = null) {}

  /** Keep the event, with a reason for dry runs and debugging. */
  static pass(reason: string): FilterResult { return new FilterResult(true, reason); }
  /** Drop the event for this observer: a decision, not an error. */
  static drop(reason: string): FilterResult { return new FilterResult(false, reason); }
  /** Fail the call with an error result. */
  static fail(err: PluginError): FilterResult { return new FilterResult(false, "", err); }
}

/** An action's effects (SPEC §4.3), or an error. */
export class ActResult {
  constructor(public effects: Effect[], public error: PluginError | null = null) {}

  /** Effects for the host to execute, in order. */
  static of(effects: Effect[]): ActResult { return new ActResult(effects); }
  /** Nothing to do. */
  static none(): ActResult { return new ActResult([]); }
  /** Fail the call with an error result. */
  static fail(err: PluginError): ActResult { return new ActResult([], err); }
}

/** Something the host does after the call on the plugin's behalf. */
export class Effect {
  constructor(public type: string) {}

  /** An http effect; add headers and a body with the HttpEffect methods. */
  static http(method: string, url: string): HttpEffect { return new HttpEffect(method, url); }
  /** A log effect: a line the host writes after the call ("debug", "info", "warn", "error"). */
  static log(level: string, message: string): LogEffect { return new LogEffect(level, message); }

  /** Writes the effect's JSON. */
  write(w: JSONWriter): void {
    w.beginObject();
    w.key("type");
    w.string(this.type);
    w.endObject();
  }
}

/** An HTTP request for the host to make, with retries and an Idempotency-Key. */
export class HttpEffect extends Effect {
  headerNames: string[] = [];
  headerValues: string[] = [];
  body: string | null = null;
  bodyJSON: JSONValue | null = null;

  constructor(public method: string, public url: string) {
    super("http");
  }

  /** Adds (or replaces) a header. */
  header(name: string, value: string): HttpEffect {
    for (let i = 0; i < this.headerNames.length; i++) {
      if (unchecked(this.headerNames[i]) == name) {
        unchecked((this.headerValues[i] = value));
        return this;
      }
    }
    this.headerNames.push(name);
    this.headerValues.push(value);
    return this;
  }

  /** The body, sent as is. */
  withBody(text: string): HttpEffect {
    this.body = text;
    this.bodyJSON = null;
    return this;
  }

  /** A JSON body, sent with Content-Type: application/json. */
  withJSON(value: JSONValue): HttpEffect {
    this.bodyJSON = value;
    this.body = null;
    return this;
  }

  write(w: JSONWriter): void {
    w.beginObject();
    w.key("type");
    w.string("http");
    w.key("http");
    w.beginObject();
    w.key("method");
    w.string(this.method);
    w.key("url");
    w.string(this.url);
    if (this.headerNames.length > 0) {
      w.key("headers");
      w.beginObject();
      for (let i = 0; i < this.headerNames.length; i++) {
        w.key(unchecked(this.headerNames[i]));
        w.string(unchecked(this.headerValues[i]));
      }
      w.endObject();
    }
    const body = this.body;
    const bodyJSON = this.bodyJSON;
    if (body != null) {
      w.key("body");
      w.string(body);
    } else if (bodyJSON != null) {
      w.key("body_json");
      w.value(bodyJSON);
    }
    w.endObject();
    w.endObject();
  }
}

/** A structured log line the host writes after the call. */
export class LogEffect extends Effect {
  fieldNames: string[] = [];
  fieldValues: string[] = [];

  constructor(public level: string, public message: string) {
    super("log");
  }

  /** Adds a field to the line. */
  field(name: string, value: string): LogEffect {
    this.fieldNames.push(name);
    this.fieldValues.push(value);
    return this;
  }

  write(w: JSONWriter): void {
    w.beginObject();
    w.key("type");
    w.string("log");
    w.key("log");
    w.beginObject();
    w.key("level");
    w.string(this.level);
    w.key("message");
    w.string(this.message);
    if (this.fieldNames.length > 0) {
      w.key("fields");
      w.beginObject();
      for (let i = 0; i < this.fieldNames.length; i++) {
        w.key(unchecked(this.fieldNames[i]));
        w.string(unchecked(this.fieldValues[i]));
      }
      w.endObject();
    }
    w.endObject();
    w.endObject();
  }
}

/** What describe reports (SPEC §3). */
export class Manifest {
  /** Free text for humans. */
  description: string = "";
  /** Effect types the plugin returns; an act plugin must list them. */
  effects: string[] = [];
  /** Hosts its http effects target; null (the default) leaves the operator's allow-list alone. */
  httpHosts: string[] | null = null;
  /** Advisory in ABI 1.0: the plugin logs through the host. */
  log: bool = false;
  /** Advisory in ABI 1.0: the plugin reads config_get. */
  config: bool = false;

  /** roles: "filter" and/or "act", each exported under that name. */
  constructor(public name: string, public version: string, public roles: string[]) {}

  toJSON(): string {
    const w = new JSONWriter();
    w.beginObject();
    w.key("abi");
    w.string(ABI_VERSION);
    w.key("name");
    w.string(this.name);
    w.key("version");
    w.string(this.version);
    w.key("roles");
    writeStrings(w, this.roles);
    w.key("capabilities");
    w.beginObject();
    w.key("effects");
    writeStrings(w, this.effects);
    const hosts = this.httpHosts;
    if (hosts != null) {
      w.key("http_hosts");
      writeStrings(w, hosts);
    }
    if (this.log) {
      w.key("log");
      w.bool(true);
    }
    if (this.config) {
      w.key("config");
      w.bool(true);
    }
    w.endObject();
    if (this.description.length > 0) {
      w.key("description");
      w.string(this.description);
    }
    w.endObject();
    return w.toString();
  }
}

function writeStrings(w: JSONWriter, a: string[]): void {
  w.beginArray();
  for (let i = 0; i < a.length; i++) w.string(unchecked(a[i]));
  w.endArray();
}

/** The call's context (SPEC §4.1): who calls, and the host's time. */
export class Context {
  observer: string = "";
  plugin: string = "";
  role: string = "";
  attempt: i64 = 0;
  dryRun: bool = false;
  /** The host's time for this call (RFC 3339): plugins read no clock. */
  now: string = "";
  traceparent: string = "";
  tracestate: string = "";
}

/** One committed change (SPEC §4.1). */
export class Event {
  id: string = "";
  /** The position in its source, as JSON number text. */
  position: string = "";
  source: string = "";
  entity: string = "";
  /** "INSERT", "UPDATE" or "DELETE". */
  op: string = "";
  key: string = "";
  /** The row before the change; null on INSERT (and when not captured). */
  before: JSONValue | null = null;
  /** The row after the change; null on DELETE (and when not captured). */
  after: JSONValue | null = null;
  changedFields: string[] = [];
  tenant: string = "";
  commitTime: string = "";
  txid: string = "";
  traceparent: string = "";
  tracestate: string = "";
}

/** A role's input (SPEC §4.1), checked and decoded. */
export class Input {
  abi: string = "";
  context: Context = new Context();
  event: Event = new Event();
  /** This observer's config for the plugin; null when none was configured. */
  config: JSONValue | null = null;
  /** The whole input as JSON, for fields this SDK does not decode. */
  raw: JSONValue = JSONValue.null();

  /**
   * Finds a value by dotted path: "after.amount", "before.address.city",
   * "after.items.0.sku" (arrays by index), "event.id", "context.now",
   * "config.url", or a bare event field ("op", "key", "entity"...). Null if
   * absent; a JSON null is a JSONValue whose isNull is true.
   */
  lookup(path: string): JSONValue | null {
    const parts = path.split(".");
    if (parts.length == 0) return null;
    const ev = this.raw.get("event");
    const head = unchecked(parts[0]);
    let cur: JSONValue | null;
    let i = 1;
    if (head == "after" || head == "before") {
      cur = ev == null ? null : ev.get(head);
    } else if (head == "event") {
      cur = ev;
    } else if (head == "context") {
      cur = this.raw.get("context");
    } else if (head == "config") {
      cur = this.config;
    } else {
      cur = ev;
      i = 0;
    }
    for (; i < parts.length; i++) {
      if (cur == null) return null;
      const part = unchecked(parts[i]);
      if (cur.kind == Kind.Array) {
        const idx = indexOf(part);
        if (idx < 0) return null;
        cur = cur.at(idx);
      } else {
        cur = cur.get(part);
      }
    }
    return cur;
  }
}

// A non-negative array index in decimal, or -1.
function indexOf(s: string): i32 {
  if (s.length == 0 || s.length > 9) return -1;
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return -1;
    n = n * 10 + (c - 0x30);
  }
  return n;
}

/** The outcome of decoding an input: the input, or the error result to return. */
export class Decoded {
  constructor(public input: Input | null, public error: PluginError | null) {}
}

// Reads typed fields of one object, remembering the first type error.
class FieldReader {
  error: string = "";
  constructor(public obj: JSONValue, public where: string) {}

  str(name: string): string {
    const v = this.obj.get(name);
    if (v == null || v.kind == Kind.Null) return "";
    if (v.kind != Kind.String) {
      this.wrong(name, "a string", v);
      return "";
    }
    return v.text;
  }

  // A JSON number's text.
  num(name: string): string {
    const v = this.obj.get(name);
    if (v == null || v.kind == Kind.Null) return "";
    if (v.kind != Kind.Number) {
      this.wrong(name, "a number", v);
      return "";
    }
    return v.text;
  }

  bool(name: string): bool {
    const v = this.obj.get(name);
    if (v == null || v.kind == Kind.Null) return false;
    if (v.kind != Kind.Bool) {
      this.wrong(name, "a boolean", v);
      return false;
    }
    return v.bool;
  }

  // An object or null; anything else is an error.
  image(name: string): JSONValue | null {
    const v = this.obj.get(name);
    if (v == null || v.kind == Kind.Null) return null;
    if (v.kind != Kind.Object) {
      this.wrong(name, "an object or null", v);
      return null;
    }
    return v;
  }

  strings(name: string): string[] {
    const out: string[] = [];
    const v = this.obj.get(name);
    if (v == null || v.kind == Kind.Null) return out;
    if (v.kind != Kind.Array) {
      this.wrong(name, "an array of strings", v);
      return out;
    }
    for (let i = 0; i < v.length; i++) {
      const item = <JSONValue>v.at(i);
      if (item.kind != Kind.String) {
        this.wrong(name + "[" + i.toString() + "]", "a string", item);
        return out;
      }
      out.push(item.text);
    }
    return out;
  }

  wrong(name: string, want: string, got: JSONValue): void {
    if (this.error.length == 0) {
      this.error = this.where + "." + name + " is " + kindName(got.kind) + ", want " + want;
    }
  }
}

// "1.0" -> 1; -1 if malformed.
function majorOf(v: string): i32 {
  const dot = v.indexOf(".");
  const maj = dot < 0 ? v : v.substring(0, dot);
  if (maj.length == 0 || maj.length > 9) return -1;
  let n = 0;
  for (let i = 0; i < maj.length; i++) {
    const c = maj.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return -1;
    n = n * 10 + (c - 0x30);
  }
  if (dot >= 0) {
    const minor = v.substring(dot + 1);
    if (minor.length == 0) return -1;
    for (let i = 0; i < minor.length; i++) {
      const c = minor.charCodeAt(i);
      if (c < 0x30 || c > 0x39) return -1;
    }
  }
  return n;
}

/**
 * Decodes and checks a role input: one JSON object of ABI major 1 with an
 * event object. Anything else is a bad_input error naming what was wrong.
 */
export function decodeInput(buf: ArrayBuffer): Decoded {
  if (buf.byteLength == 0) {
    return new Decoded(null, PluginError.badInput("input is empty: want an ABI " + ABI_VERSION + " input object"));
  }
  const parsed = parseJSONBytes(buf);
  const root = parsed.value;
  if (root == null) return new Decoded(null, PluginError.badInput("input is not valid JSON: " + parsed.error));
  if (root.kind != Kind.Object) {
    return new Decoded(null, PluginError.badInput("input is " + kindName(root.kind) + ", want an ABI " + ABI_VERSION + " input object"));
  }
  const in_ = new Input();
  in_.raw = root;
  const top = new FieldReader(root, "input");
  in_.abi = top.str("abi");
  if (top.error.length > 0) return new Decoded(null, PluginError.badInput(top.error));
  const major = majorOf(in_.abi);
  if (major < 0) {
    return new Decoded(null, PluginError.badInput("input.abi \"" + in_.abi + "\" is not a \"MAJOR.MINOR\" version"));
  }
  if (major != ABI_MAJOR) {
    return new Decoded(null, PluginError.badInput("input is ABI " + in_.abi + " but this plugin speaks ABI " + ABI_MAJOR.toString() + ".x"));
  }

  const ctx = root.get("context");
  if (ctx != null && ctx.kind == Kind.Object) {
    const r = new FieldReader(ctx, "input.context");
    const c = in_.context;
    c.observer = r.str("observer");
    c.plugin = r.str("plugin");
    c.role = r.str("role");
    const attempt = r.num("attempt");
    c.attempt = attempt.length > 0 && attempt.length < 19 && majorOf(attempt) >= 0 ? I64.parseInt(attempt) : 0;
    c.dryRun = r.bool("dry_run");
    c.now = r.str("now");
    const tr = ctx.get("trace");
    if (tr != null && tr.kind == Kind.Object) {
      const t = new FieldReader(tr, "input.context.trace");
      c.traceparent = t.str("traceparent");
      c.tracestate = t.str("tracestate");
      if (t.error.length > 0) return new Decoded(null, PluginError.badInput(t.error));
    }
    if (r.error.length > 0) return new Decoded(null, PluginError.badInput(r.error));
  } else if (ctx != null && ctx.kind != Kind.Null) {
    return new Decoded(null, PluginError.badInput("input.context is " + kindName(ctx.kind) + ", want an object"));
  }

  const ev = root.get("event");
  if (ev == null || ev.kind == Kind.Null) return new Decoded(null, PluginError.badInput("input has no event"));
  if (ev.kind != Kind.Object) {
    return new Decoded(null, PluginError.badInput("input.event is " + kindName(ev.kind) + ", want an object"));
  }
  const r = new FieldReader(ev, "input.event");
  const e = in_.event;
  e.id = r.str("id");
  e.position = r.num("position");
  e.source = r.str("source");
  e.entity = r.str("entity");
  e.op = r.str("op");
  e.key = r.str("key");
  e.before = r.image("before");
  e.after = r.image("after");
  e.changedFields = r.strings("changed_fields");
  e.tenant = r.str("tenant");
  e.commitTime = r.str("commit_time");
  e.txid = r.str("txid");
  const tr = ev.get("trace");
  if (tr != null && tr.kind == Kind.Object) {
    const t = new FieldReader(tr, "input.event.trace");
    e.traceparent = t.str("traceparent");
    e.tracestate = t.str("tracestate");
    if (t.error.length > 0) return new Decoded(null, PluginError.badInput(t.error));
  }
  if (r.error.length > 0) return new Decoded(null, PluginError.badInput(r.error));

  const cfg = root.get("config");
  in_.config = cfg == null || cfg.kind == Kind.Null ? null : cfg;
  return new Decoded(in_, null);
}

function writeError(w: JSONWriter, err: PluginError): void {
  w.key("error");
  w.beginObject();
  w.key("message");
  w.string(err.message);
  if (err.code.length > 0) {
    w.key("code");
    w.string(err.code);
  }
  w.key("retryable");
  w.bool(err.retryable);
  w.endObject();
}

/** The JSON of a filter result. */
export function filterResultJSON(res: FilterResult): JSONWriter {
  const w = new JSONWriter();
  w.beginObject();
  w.key("abi");
  w.string(ABI_VERSION);
  const err = res.error;
  if (err != null) {
    writeError(w, err);
  } else {
    w.key("pass");
    w.bool(res.pass);
    if (res.reason.length > 0) {
      w.key("reason");
      w.string(res.reason);
    }
  }
  w.endObject();
  return w;
}

/** The JSON of an act result. */
export function actResultJSON(res: ActResult): JSONWriter {
  const w = new JSONWriter();
  w.beginObject();
  w.key("abi");
  w.string(ABI_VERSION);
  const err = res.error;
  if (err != null) {
    writeError(w, err);
  } else {
    w.key("effects");
    w.beginArray();
    for (let i = 0; i < res.effects.length; i++) unchecked(res.effects[i]).write(w);
    w.endArray();
  }
  w.endObject();
  return w;
}

/** Runs a filter handler on an input (what the filter export does, minus the kernel). */
export function invokeFilter(input: ArrayBuffer, handler: (input: Input) => FilterResult): JSONWriter {
  const d = decodeInput(input);
  const err = d.error;
  if (err != null) return filterResultJSON(FilterResult.fail(err));
  return filterResultJSON(handler(<Input>d.input));
}

/** Runs an act handler on an input (what the act export does, minus the kernel). */
export function invokeAct(input: ArrayBuffer, handler: (input: Input) => ActResult): JSONWriter {
  const d = decodeInput(input);
  const err = d.error;
  if (err != null) return actResultJSON(ActResult.fail(err));
  return actResultJSON(handler(<Input>d.input));
}

// Sets the output and frees this call's garbage. With the minimal runtime
// nothing is collected unless asked, and an instance serves many calls.
function finish(w: JSONWriter): i32 {
  const rc = setOutput(w.dataStart, <usize>w.byteLength);
  __collect();
  return rc;
}

/**
 * The body of the describe export:
 *
 *   export function describe(): i32 {
 *     return observer.describe(new Manifest("min-amount", "0.1.0", ["filter"]));
 *   }
 */
export function describe(m: Manifest): i32 {
  const b = String.UTF8.encode(m.toJSON());
  const rc = setOutput(changetype<usize>(b), <usize>b.byteLength);
  __collect();
  return rc;
}

/**
 * The body of the filter export: reads and checks the input, calls handler
 * with it, writes its result. Bad input becomes a bad_input error result
 * without calling handler.
 *
 *   export function filter(): i32 { return observer.filter(decide); }
 */
export function filter(handler: (input: Input) => FilterResult): i32 {
  return finish(invokeFilter(readInput(), handler));
}

/**
 * The body of the act export: reads and checks the input, calls handler
 * with it, writes its effects. Bad input becomes a bad_input error result
 * without calling handler.
 *
 *   export function act(): i32 { return observer.act(notify); }
 */
export function act(handler: (input: Input) => ActResult): i32 {
  return finish(invokeAct(readInput(), handler));
}
