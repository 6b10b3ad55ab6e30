// A small JSON reader and writer. Numbers are kept as the text they were
// written with, so that 1234567890123456789012.5 or 9.99 reach the plugin
// exactly (compare them with compareNumbers in decimal.ts). The reader never
// traps: malformed text gives a ParseResult with an error naming the byte
// offset and what was expected there.

/** The kind of a JSON value. */
export enum Kind {
  Null,
  Bool,
  Number,
  String,
  Array,
  Object,
}

/**
 * Nesting deeper than this is refused by the reader (an error, not a
 * trap). The reader itself does not recurse; the limit keeps the writer and
 * the plugin's own recursive walks within the stack.
 */
export const MAX_DEPTH: i32 = 1000;

/** A JSON value. Build one with the static constructors, read it with the getters. */
export class JSONValue {
  /** What this value is. */
  kind: Kind = Kind.Null;
  /** Bool: the value. */
  bool: bool = false;
  /** String: the decoded text. Number: the number exactly as written. */
  text: string = "";
  /** Array: the items. Object: the member values, in order. */
  items: JSONValue[] | null = null;
  /** Object: the member names, parallel to items. */
  keys: string[] | null = null;

  static null(): JSONValue {
    return new JSONValue();
  }

  static bool(b: bool): JSONValue {
    const v = new JSONValue();
    v.kind = Kind.Bool;
    v.bool = b;
    return v;
  }

  static string(s: string): JSONValue {
    const v = new JSONValue();
    v.kind = Kind.String;
    v.text = s;
    return v;
  }

  /**
   * A number from its JSON text ("9.99", "-1e400"), kept exactly; null if
   * the text is not a JSON number.
   */
  static number(text: string): JSONValue | null {
    if (!isNumberText(text)) return null;
    const v = new JSONValue();
    v.kind = Kind.Number;
    v.text = text;
    return v;
  }

  static integer(n: i64): JSONValue {
    const v = new JSONValue();
    v.kind = Kind.Number;
    v.text = n.toString();
    return v;
  }

  static array(): JSONValue {
    const v = new JSONValue();
    v.kind = Kind.Array;
    v.items = [];
    return v;
  }

  static object(): JSONValue {
    const v = new JSONValue();
    v.kind = Kind.Object;
    v.items = [];
    v.keys = [];
    return v;
  }

  get isNull(): bool { return this.kind == Kind.Null; }
  get isBool(): bool { return this.kind == Kind.Bool; }
  get isNumber(): bool { return this.kind == Kind.Number; }
  get isString(): bool { return this.kind == Kind.String; }
  get isArray(): bool { return this.kind == Kind.Array; }
  get isObject(): bool { return this.kind == Kind.Object; }

  /** Number of items of an array or members of an object; 0 otherwise. */
  get length(): i32 {
    const items = this.items;
    return items == null ? 0 : items.length;
  }

  /**
   * The member named key of an object (the last one if the name repeats,
   * as encoding/json does), or null if absent or this is not an object.
   */
  get(key: string): JSONValue | null {
    const keys = this.keys;
    const items = this.items;
    if (keys == null || items == null) return null;
    for (let i = keys.length - 1; i >= 0; i--) {
      if (unchecked(keys[i]) == key) return unchecked(items[i]);
    }
    return null;
  }

  /** Item i of an array, or null if out of range or this is not an array. */
  at(i: i32): JSONValue | null {
    const items = this.items;
    if (this.kind != Kind.Array || items == null || i < 0 || i >= items.length) return null;
    return unchecked(items[i]);
  }

  /** Member name i of an object ("" out of range). */
  keyAt(i: i32): string {
    const keys = this.keys;
    if (keys == null || i < 0 || i >= keys.length) return "";
    return unchecked(keys[i]);
  }

  /** The text of a string, or null for any other kind. */
  asString(): string | null {
    return this.kind == Kind.String ? this.text : null;
  }

  /** Sets (or replaces) a member of an object; returns this for chaining. */
  set(key: string, value: JSONValue): JSONValue {
    const keys = this.keys;
    const items = this.items;
    if (keys == null || items == null) return this;
    for (let i = 0; i < keys.length; i++) {
      if (unchecked(keys[i]) == key) {
        unchecked((items[i] = value));
        return this;
      }
    }
    keys.push(key);
    items.push(value);
    return this;
  }

  /** Appends an item to an array; returns this for chaining. */
  push(value: JSONValue): JSONValue {
    const items = this.items;
    if (this.kind == Kind.Array && items != null) items.push(value);
    return this;
  }

  /** The compact JSON text of this value. */
  toJSON(): string {
    const w = new JSONWriter();
    w.value(this);
    return w.toString();
  }

  /** A short name of the kind, for messages: "a string", "a number"... */
  describeKind(): string {
    return kindName(this.kind);
  }
}

/** A short name of a kind, for messages: "null", "a string", "a number"... */
export function kindName(k: Kind): string {
  switch (k) {
    case Kind.Null: return "null";
    case Kind.Bool: return "a boolean";
    case Kind.Number: return "a number";
    case Kind.String: return "a string";
    case Kind.Array: return "an array";
    default: return "an object";
  }
}

/** The outcome of parsing: a value, or an error naming where and what. */
export class ParseResult {
  constructor(public value: JSONValue | null, public error: string) {}
  get ok(): bool { return this.value != null; }
}

/** Parses one JSON text (with nothing but whitespace after it). */
export function parseJSON(text: string): ParseResult {
  const b = String.UTF8.encode(text);
  return parseJSONBytes(b);
}

/** Parses UTF-8 bytes holding one JSON text (with nothing but whitespace after it). */
export function parseJSONBytes(buf: ArrayBuffer): ParseResult {
  const p = new Parser(changetype<usize>(buf), buf.byteLength);
  const v = p.parse();
  return v == null ? new ParseResult(null, p.error) : new ParseResult(v, "");
}

// @ts-ignore: decorator
@inline function isDigit(c: u32): bool { return c - 0x30 < 10; }

// @ts-ignore: decorator
@inline function isWS(c: u32): bool { return c == 0x20 || c == 0x0a || c == 0x0d || c == 0x09; }

function hexVal(c: u32): i32 {
  if (c - 0x30 < 10) return <i32>(c - 0x30);
  const l = c | 0x20;
  if (l - 0x61 < 6) return <i32>(l - 0x61 + 10);
  return -1;
}

/** Whether s is a JSON number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
export function isNumberText(s: string): bool {
  const n = s.length;
  let i = 0;
  if (i < n && s.charCodeAt(i) == 0x2d) i++;
  if (i >= n) return false;
  if (s.charCodeAt(i) == 0x30) {
    i++;
  } else if (isDigit(s.charCodeAt(i)) ) {
    while (i < n && isDigit(s.charCodeAt(i))) i++;
  } else return false;
  if (i < n && s.charCodeAt(i) == 0x2e) {
    i++;
    if (i >= n || !isDigit(s.charCodeAt(i))) return false;
    while (i < n && isDigit(s.charCodeAt(i))) i++;
  }
  if (i < n && (s.charCodeAt(i) | 0x20) == 0x65) {
    i++;
    if (i < n && (s.charCodeAt(i) == 0x2b || s.charCodeAt(i) == 0x2d)) i++;
    if (i >= n || !isDigit(s.charCodeAt(i))) return false;
    while (i < n && isDigit(s.charCodeAt(i))) i++;
  }
  return i == n;
}

function describeByte(c: u32): string {
  if (c >= 0x20 && c < 0x7f) return "'" + String.fromCharCode(c) + "'";
  return "byte 0x" + (c < 16 ? "0" : "") + c.toString(16);
}

class Parser {
  pos: i32 = 0;
  error: string = "";

  constructor(public ptr: usize, public len: i32) {}

  // @ts-ignore: decorator
  @inline peek(): u32 { return <u32>load<u8>(this.ptr + <usize>this.pos); }

  fail(what: string): JSONValue | null {
    if (this.pos >= this.len) {
      this.error = "unexpected end of JSON input at byte " + this.pos.toString() + ", looking for " + what;
    } else {
      this.error = "invalid character " + describeByte(this.peek()) + " at byte " + this.pos.toString() + ", looking for " + what;
    }
    return null;
  }

  skipWS(): void {
    while (this.pos < this.len && isWS(this.peek())) this.pos++;
  }

  parse(): JSONValue | null {
    this.skipWS();
    if (this.pos >= this.len) {
      this.error = "empty JSON input";
      return null;
    }
    const v = this.value();
    if (v == null) return null;
    this.skipWS();
    if (this.pos < this.len) {
      this.error = "trailing data at byte " + this.pos.toString() + " after the JSON value";
      return null;
    }
    return v;
  }

  // Parses one value without recursion: open containers wait on a stack.
  value(): JSONValue | null {
    const stack: JSONValue[] = [];
    for (;;) {
      this.skipWS();
      if (this.pos >= this.len) return this.fail("a value");
      const c = this.peek();
      let v: JSONValue | null = null;
      if (c == 0x7b || c == 0x5b) { // { [
        if (stack.length >= MAX_DEPTH) {
          this.error = "JSON nested deeper than " + MAX_DEPTH.toString() + " levels at byte " + this.pos.toString();
          return null;
        }
        this.pos++;
        const container = c == 0x7b ? JSONValue.object() : JSONValue.array();
        this.skipWS();
        if (this.pos < this.len && this.peek() == (c == 0x7b ? <u32>0x7d : <u32>0x5d)) {
          this.pos++;
          v = container; // empty: complete at once
        } else {
          stack.push(container);
          if (c == 0x7b && !this.memberKey(container)) return null;
          continue; // parse the first item
        }
      } else {
        v = this.scalar(c);
        if (v == null) return null;
      }
      // v is complete: attach it to its container, then close as many
      // containers as end here.
      for (;;) {
        if (stack.length == 0) return v;
        const parent = unchecked(stack[stack.length - 1]);
        (<JSONValue[]>parent.items).push(<JSONValue>v);
        this.skipWS();
        if (this.pos >= this.len) return this.fail(parent.kind == Kind.Object ? "',' or '}'" : "',' or ']'");
        const d = this.peek();
        if (d == 0x2c) { // ,
          this.pos++;
          if (parent.kind == Kind.Object && !this.memberKey(parent)) return null;
          break; // parse the next item
        }
        if ((parent.kind == Kind.Object && d == 0x7d) || (parent.kind == Kind.Array && d == 0x5d)) {
          this.pos++;
          v = stack.pop();
          continue;
        }
        return this.fail(parent.kind == Kind.Object ? "',' or '}' after an object member" : "',' or ']' after an array item");
      }
    }
    return null; // not reached: the loop returns
  }

  // Reads `"key" :` into obj's keys; false (with the error set) if malformed.
  memberKey(obj: JSONValue): bool {
    this.skipWS();
    if (this.pos >= this.len || this.peek() != 0x22) {
      this.fail("'\"' starting an object key");
      return false;
    }
    const k = this.str();
    if (k == null) return false;
    this.skipWS();
    if (this.pos >= this.len || this.peek() != 0x3a) {
      this.fail("':' after an object key");
      return false;
    }
    this.pos++;
    (<string[]>obj.keys).push(k);
    return true;
  }

  scalar(c: u32): JSONValue | null {
    if (c == 0x22) {
      const s = this.str();
      return s == null ? null : JSONValue.string(s);
    }
    if (c == 0x2d || isDigit(c)) return this.num();
    if (c == 0x74) return this.literal("true", JSONValue.bool(true));
    if (c == 0x66) return this.literal("false", JSONValue.bool(false));
    if (c == 0x6e) return this.literal("null", JSONValue.null());
    return this.fail("a value");
  }

  literal(word: string, v: JSONValue): JSONValue | null {
    const n = word.length;
    for (let i = 0; i < n; i++) {
      if (this.pos >= this.len || this.peek() != <u32>word.charCodeAt(i)) return this.fail("'" + word + "'");
      this.pos++;
    }
    return v;
  }

  num(): JSONValue | null {
    const start = this.pos;
    if (this.peek() == 0x2d) this.pos++;
    if (this.pos >= this.len) return this.fail("a digit");
    let c = this.peek();
    if (c == 0x30) {
      this.pos++;
    } else if (isDigit(c)) {
      while (this.pos < this.len && isDigit(this.peek())) this.pos++;
    } else return this.fail("a digit");
    if (this.pos < this.len && this.peek() == 0x2e) {
      this.pos++;
      if (this.pos >= this.len || !isDigit(this.peek())) return this.fail("a digit after the decimal point");
      while (this.pos < this.len && isDigit(this.peek())) this.pos++;
    }
    if (this.pos < this.len && (this.peek() | 0x20) == 0x65) {
      this.pos++;
      if (this.pos < this.len && (this.peek() == 0x2b || this.peek() == 0x2d)) this.pos++;
      if (this.pos >= this.len || !isDigit(this.peek())) return this.fail("a digit in the exponent");
      while (this.pos < this.len && isDigit(this.peek())) this.pos++;
    }
    const v = new JSONValue();
    v.kind = Kind.Number;
    v.text = String.UTF8.decodeUnsafe(this.ptr + <usize>start, <usize>(this.pos - start));
    return v;
  }

  // Reads a string starting at the opening quote into the scratch buffer of
  // UTF-16 units, then copies it out once: appending pieces to a string
  // would copy the whole string per escape, and nothing is freed during a
  // call. Invalid UTF-8 and lone surrogate escapes become U+FFFD, as in
  // encoding/json.
  str(): string | null {
    const open = this.pos;
    this.pos++; // "
    this.units = 0;
    let run = this.pos;
    for (;;) {
      if (this.pos >= this.len) {
        this.error = "unexpected end of JSON input in the string starting at byte " + open.toString();
        return null;
      }
      const c = this.peek();
      if (c == 0x22) {
        this.utf8(run, this.pos);
        this.pos++;
        return String.UTF16.decodeUnsafe(changetype<usize>(this.sb), <usize>this.units << 1);
      }
      if (c < 0x20) {
        this.fail("a string character (control characters must be escaped)");
        return null;
      }
      if (c != 0x5c) {
        this.pos++;
        continue;
      }
      this.utf8(run, this.pos);
      this.pos++; // backslash
      if (this.pos >= this.len) {
        this.fail("an escape character");
        return null;
      }
      const e = this.peek();
      this.pos++;
      this.reserve(2);
      switch (e) {
        case 0x22: this.unit(0x22); break;
        case 0x5c: this.unit(0x5c); break;
        case 0x2f: this.unit(0x2f); break;
        case 0x62: this.unit(0x08); break;
        case 0x66: this.unit(0x0c); break;
        case 0x6e: this.unit(0x0a); break;
        case 0x72: this.unit(0x0d); break;
        case 0x74: this.unit(0x09); break;
        case 0x75: {
          const u = this.hex4();
          if (u < 0) return null;
          if (u >= 0xd800 && u < 0xdc00) {
            // a high surrogate: a low one must follow for a pair
            if (this.pos + 6 <= this.len && load<u8>(this.ptr + <usize>this.pos) == 0x5c && load<u8>(this.ptr + <usize>this.pos + 1) == 0x75) {
              const save = this.pos;
              this.pos += 2;
              const lo = this.hex4();
              if (lo < 0) return null;
              if (lo >= 0xdc00 && lo < 0xe000) {
                this.unit(<u32>u);
                this.unit(<u32>lo);
                break;
              }
              this.pos = save; // not a pair: the next escape stands alone
            }
            this.unit(0xfffd);
          } else if (u >= 0xdc00 && u < 0xe000) {
            this.unit(0xfffd);
          } else {
            this.unit(<u32>u);
          }
          break;
        }
        default:
          this.pos--;
          this.fail("an escape character (one of \" \\ / b f n r t u)");
          return null;
      }
      run = this.pos;
    }
    return null; // not reached: the loop returns
  }

  // The scratch buffer: this.units UTF-16 units in this.sb.
  sb: ArrayBuffer = new ArrayBuffer(128);
  units: i32 = 0;

  reserve(n: i32): void {
    const need = (this.units + n) << 1;
    if (need <= this.sb.byteLength) return;
    let c = this.sb.byteLength << 1;
    while (c < need) c <<= 1;
    const nb = new ArrayBuffer(c);
    memory.copy(changetype<usize>(nb), changetype<usize>(this.sb), <usize>this.units << 1);
    this.sb = nb;
  }

  // @ts-ignore: decorator
  @inline unit(u: u32): void {
    store<u16>(changetype<usize>(this.sb) + (<usize>this.units << 1), <u16>u);
    this.units++;
  }

  // Appends bytes [from, to) decoded from UTF-8; each byte of an invalid
  // sequence becomes U+FFFD.
  utf8(from: i32, to: i32): void {
    this.reserve(to - from); // never more units than bytes
    const p = this.ptr;
    let i = from;
    while (i < to) {
      const b0 = <u32>load<u8>(p + <usize>i);
      if (b0 < 0x80) {
        this.unit(b0);
        i++;
        continue;
      }
      let need = 0;
      let cp: u32 = 0;
      let lo: u32 = 0x80, hi: u32 = 0xbf;
      if (b0 >= 0xc2 && b0 <= 0xdf) { need = 1; cp = b0 & 0x1f; }
      else if (b0 >= 0xe0 && b0 <= 0xef) {
        need = 2; cp = b0 & 0x0f;
        if (b0 == 0xe0) lo = 0xa0; // no overlong forms
        if (b0 == 0xed) hi = 0x9f; // no surrogates
      } else if (b0 >= 0xf0 && b0 <= 0xf4) {
        need = 3; cp = b0 & 0x07;
        if (b0 == 0xf0) lo = 0x90;
        if (b0 == 0xf4) hi = 0x8f; // nothing past U+10FFFF
      }
      let ok = need > 0 && i + need < to;
      for (let k = 1; ok && k <= need; k++) {
        const b = <u32>load<u8>(p + <usize>(i + k));
        if (b < lo || b > hi) ok = false;
        lo = 0x80; hi = 0xbf;
        cp = (cp << 6) | (b & 0x3f);
      }
      if (!ok) {
        this.unit(0xfffd);
        i++;
        continue;
      }
      if (cp >= 0x10000) {
        cp -= 0x10000;
        this.unit(0xd800 + (cp >> 10));
        this.unit(0xdc00 + (cp & 0x3ff));
      } else {
        this.unit(cp);
      }
      i += need + 1;
    }
  }

  hex4(): i32 {
    let u = 0;
    for (let i = 0; i < 4; i++) {
      if (this.pos >= this.len) {
        this.fail("a hexadecimal digit in a \\u escape");
        return -1;
      }
      const h = hexVal(this.peek());
      if (h < 0) {
        this.fail("a hexadecimal digit in a \\u escape");
        return -1;
      }
      u = (u << 4) | h;
      this.pos++;
    }
    return u;
  }
}

/**
 * Writes compact JSON as UTF-8 bytes. Commas are placed for you: call key()
 * before each member of an object and value methods for the rest.
 *
 *   const w = new JSONWriter();
 *   w.beginObject(); w.key("event"); w.string(id); w.endObject();
 *   w.toString(); // {"event":"pg:1042"}
 */
export class JSONWriter {
  private buf: ArrayBuffer;
  private n: i32 = 0;
  private needComma: bool = false;

  constructor(capacity: i32 = 256) {
    this.buf = new ArrayBuffer(capacity < 16 ? 16 : capacity);
  }

  /** Where the bytes are (valid until the next write). */
  get dataStart(): usize { return changetype<usize>(this.buf); }
  /** How many bytes have been written. */
  get byteLength(): i32 { return this.n; }

  private reserve(extra: i32): void {
    const need = this.n + extra;
    const cap = this.buf.byteLength;
    if (need <= cap) return;
    let c = cap << 1;
    while (c < need) c <<= 1;
    const nb = new ArrayBuffer(c);
    memory.copy(changetype<usize>(nb), changetype<usize>(this.buf), <usize>this.n);
    this.buf = nb;
  }

  // @ts-ignore: decorator
  @inline private put(c: u32): void {
    store<u8>(changetype<usize>(this.buf) + <usize>this.n, <u8>c);
    this.n++;
  }

  private sep(): void {
    if (this.needComma) {
      this.reserve(1);
      this.put(0x2c);
    }
  }

  /** Appends ASCII text as is (callers pass JSON tokens). */
  private ascii(s: string): void {
    const n = s.length;
    this.reserve(n);
    for (let i = 0; i < n; i++) this.put(<u32>s.charCodeAt(i));
  }

  beginObject(): void { this.sep(); this.reserve(1); this.put(0x7b); this.needComma = false; }
  endObject(): void { this.reserve(1); this.put(0x7d); this.needComma = true; }
  beginArray(): void { this.sep(); this.reserve(1); this.put(0x5b); this.needComma = false; }
  endArray(): void { this.reserve(1); this.put(0x5d); this.needComma = true; }

  /** Writes an object member's name and the colon. */
  key(k: string): void {
    this.sep();
    this.quoted(k);
    this.reserve(1);
    this.put(0x3a);
    this.needComma = false;
  }

  string(s: string): void { this.sep(); this.quoted(s); this.needComma = true; }
  bool(b: bool): void { this.sep(); this.ascii(b ? "true" : "false"); this.needComma = true; }
  null(): void { this.sep(); this.ascii("null"); this.needComma = true; }
  integer(n: i64): void { this.sep(); this.ascii(n.toString()); this.needComma = true; }

  /**
   * Writes a number given as JSON number text, exactly. Text that is not
   * a JSON number is written as a string instead, so the output stays
   * valid JSON.
   */
  number(text: string): void {
    if (!isNumberText(text)) {
      this.string(text);
      return;
    }
    this.sep();
    this.ascii(text);
    this.needComma = true;
  }

  /** Writes a JSON value. */
  value(v: JSONValue): void {
    switch (v.kind) {
      case Kind.Null: this.null(); break;
      case Kind.Bool: this.bool(v.bool); break;
      case Kind.Number: this.number(v.text); break;
      case Kind.String: this.string(v.text); break;
      case Kind.Array: {
        this.beginArray();
        const items = v.items;
        if (items != null) for (let i = 0; i < items.length; i++) this.value(unchecked(items[i]));
        this.endArray();
        break;
      }
      default: {
        this.beginObject();
        const items = v.items;
        const keys = v.keys;
        if (items != null && keys != null) {
          for (let i = 0; i < items.length && i < keys.length; i++) {
            this.key(unchecked(keys[i]));
            this.value(unchecked(items[i]));
          }
        }
        this.endObject();
      }
    }
  }

  // Writes s as a quoted JSON string, UTF-8 encoded: quote, backslash and
  // control characters escaped; a lone surrogate becomes U+FFFD.
  private quoted(s: string): void {
    const n = s.length;
    this.reserve(1);
    this.put(0x22);
    for (let i = 0; i < n; i++) {
      // 6 bytes: the longest a UTF-16 unit can take (\u00XX)
      this.reserve(6);
      let c = <u32>s.charCodeAt(i);
      if (c < 0x80) {
        if (c == 0x22 || c == 0x5c) {
          this.put(0x5c);
          this.put(c);
        } else if (c < 0x20) {
          this.put(0x5c);
          if (c == 0x0a) this.put(0x6e);
          else if (c == 0x0d) this.put(0x72);
          else if (c == 0x09) this.put(0x74);
          else if (c == 0x08) this.put(0x62);
          else if (c == 0x0c) this.put(0x66);
          else {
            this.put(0x75); this.put(0x30); this.put(0x30);
            this.put(c < 0x10 ? 0x30 : 0x31);
            const d = c & 0xf;
            this.put(d < 10 ? 0x30 + d : 0x61 + d - 10);
          }
        } else {
          this.put(c);
        }
        continue;
      }
      // non-ASCII: at most 3 bytes per UTF-16 unit (a pair: 4 bytes for 2)
      if (c < 0x800) {
        this.put(0xc0 | (c >> 6));
        this.put(0x80 | (c & 0x3f));
        continue;
      }
      if (c >= 0xd800 && c < 0xe000) {
        if (c < 0xdc00 && i + 1 < n) {
          const d = <u32>s.charCodeAt(i + 1);
          if (d >= 0xdc00 && d < 0xe000) {
            const cp = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
            this.put(0xf0 | (cp >> 18));
            this.put(0x80 | ((cp >> 12) & 0x3f));
            this.put(0x80 | ((cp >> 6) & 0x3f));
            this.put(0x80 | (cp & 0x3f));
            i++;
            continue;
          }
        }
        c = 0xfffd;
      }
      this.put(0xe0 | (c >> 12));
      this.put(0x80 | ((c >> 6) & 0x3f));
      this.put(0x80 | (c & 0x3f));
    }
    this.reserve(1);
    this.put(0x22);
  }

  /** The JSON text written so far. */
  toString(): string {
    return String.UTF8.decodeUnsafe(changetype<usize>(this.buf), <usize>this.n);
  }
}
