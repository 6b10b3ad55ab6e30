// Tests of the AssemblyScript SDK: tests/harness.ts and the example plugins
// are compiled from source with the pinned asc and run in node against a
// mock of the Extism kernel (the host's real kernel is exercised by
// `observer plugin test` in make conformance).
//
//   npm test        (from sdk-guest/assemblyscript, after npm ci)

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const sdk = join(here, "..");
const repo = join(sdk, "..", "..");
// AS_RUNTIME=stub npm test shows why the SDK wants the minimal runtime: the
// stub never frees, and the memory test fails.
const asc = join(sdk, "node_modules", ".bin", "asc");
const out = mkdtempSync(join(tmpdir(), "observer-as-sdk-"));

function build(entry, name) {
  const wasm = join(out, name + ".wasm");
  execFileSync(asc, [entry, "-O3z", "--runtime", process.env.AS_RUNTIME ?? "minimal", "--noAssert", "--use", "abort=", "-o", wasm], { stdio: "inherit" });
  return new WebAssembly.Module(readFileSync(wasm));
}

// A mock kernel: blocks in a Map, bytes in a Uint8Array per block. Offsets
// start at 1 (0 means none) and grow; reset() forgets everything.
class Kernel {
  constructor() { this.reset(); }
  reset() {
    this.blocks = new Map();
    this.next = 1n;
    this.input = new Uint8Array(0);
    this.output = null;
    this.error = null;
    this.logs = [];
  }
  alloc(n) {
    if (n === 0n) return 0n;
    const p = this.next;
    this.blocks.set(p, new Uint8Array(Number(n)));
    this.next += n;
    return p;
  }
  find(p) {
    for (const [base, b] of this.blocks) if (p >= base && p < base + BigInt(b.length)) return [b, Number(p - base)];
    throw new Error("kernel access outside any block at " + p);
  }
  text(p) { const b = this.blocks.get(p); return b ? new TextDecoder().decode(b) : ""; }
  imports(config = {}) {
    const k = this;
    const u64 = (bytes, i) => { let v = 0n; for (let j = 7; j >= 0; j--) v = (v << 8n) | BigInt(i + j < bytes.length ? bytes[i + j] : 0); return v; };
    return {
      "extism:host/env": {
        input_length: () => BigInt(k.input.length),
        input_load_u8: (i) => (i < BigInt(k.input.length) ? k.input[Number(i)] : 0),
        input_load_u64: (i) => u64(k.input, Number(i)),
        alloc: (n) => k.alloc(n),
        free: (p) => { k.blocks.delete(p); },
        length: (p) => BigInt(k.blocks.get(p)?.length ?? 0),
        load_u8: (p) => { const [b, i] = k.find(p); return b[i]; },
        load_u64: (p) => { const [b, i] = k.find(p); return u64(b, i); },
        store_u8: (p, v) => { const [b, i] = k.find(p); b[i] = v; },
        store_u64: (p, v) => { const [b, i] = k.find(p); for (let j = 0; j < 8; j++) { b[i + j] = Number(v & 0xffn); v >>= 8n; } },
        output_set: (p, n) => { k.output = new TextDecoder().decode(k.blocks.get(p)?.subarray(0, Number(n)) ?? new Uint8Array(0)); },
        error_set: (p) => { k.error = k.text(p); },
        config_get: (p) => { const v = config[k.text(p)]; return v === undefined ? 0n : k.store(v); },
        get_log_level: () => 1,
        log_trace: (p) => k.logs.push(["trace", k.text(p)]),
        log_debug: (p) => k.logs.push(["debug", k.text(p)]),
        log_info: (p) => k.logs.push(["info", k.text(p)]),
        log_warn: (p) => k.logs.push(["warn", k.text(p)]),
        log_error: (p) => k.logs.push(["error", k.text(p)]),
      },
    };
  }
  store(s) { const b = new TextEncoder().encode(s); const p = this.alloc(BigInt(b.length)); this.blocks.get(p).set(b); return p; }
}

class Guest {
  constructor(module) {
    this.k = new Kernel();
    this.instance = new WebAssembly.Instance(module, this.k.imports());
  }
  call(name, input) {
    this.k.reset();
    this.k.input = typeof input === "string" ? new TextEncoder().encode(input) : input;
    const rc = this.instance.exports[name]();
    assert.equal(rc, 0, `${name} returned ${rc} (error ${this.k.error})`);
    return this.k.output;
  }
  get memoryBytes() { return this.instance.exports.memory.buffer.byteLength; }
}

const harness = new Guest(build(join(here, "harness.ts"), "harness"));

test("JSON round trip keeps numbers exact and normalizes text", () => {
  const cases = [
    ["{}", "{}"],
    [" [ ] ", "[]"],
    ["null", "null"],
    ['{"a": 1, "b": [true, false, null], "c": {"d": "e"}}', '{"a":1,"b":[true,false,null],"c":{"d":"e"}}'],
    ["123456789012345678901234567890.123456789", "123456789012345678901234567890.123456789"],
    ["[1e999999999, -0, 0.10, 1E+2, -1.5e-7]", "[1e999999999,-0,0.10,1E+2,-1.5e-7]"],
    ['"\\u00e9\\u6771\\ud83d\\ude80 \\/ \\" \\\\ \\b\\f\\n\\r\\t"', '"é東🚀 / \\" \\\\ \\b\\f\\n\\r\\t"'],
    ['"Zoë 東京 🚀"', '"Zoë 東京 🚀"'],
    ['"\\u0000\\u001f"', '"\\u0000\\u001f"'],
    ['"\\ud800x"', '"\ufffdx"'], // a lone surrogate becomes U+FFFD, as in encoding/json
    ['"\\udc00\\ud800\\ud800\\udc00"', '"\ufffd\ufffd\u{10000}"'],
    ['{"a": 1, "a": 2}', '{"a":1,"a":2}'],
  ];
  for (const [input, want] of cases) assert.equal(harness.call("roundtrip", input), "ok " + want, input);
});

test("invalid UTF-8 in a string becomes U+FFFD per byte, as in encoding/json", () => {
  const cases = [
    [[0x22, 0x61, 0xff, 0x62, 0x22], '"a\ufffdb"'],
    [[0x22, 0xc0, 0xaf, 0x22], '"\ufffd\ufffd"'], // overlong
    [[0x22, 0xe6, 0x9d, 0x22], '"\ufffd\ufffd"'], // truncated
    [[0x22, 0xed, 0xa0, 0x80, 0x22], '"\ufffd\ufffd\ufffd"'], // an encoded surrogate
    [[0x22, 0xf4, 0x90, 0x80, 0x80, 0x22], '"\ufffd\ufffd\ufffd\ufffd"'], // past U+10FFFF
    [[0x22, 0xf0, 0x9f, 0x9a, 0x80, 0xc3, 0xa9, 0x22], '"🚀é"'],
  ];
  for (const [bytes, want] of cases) assert.equal(harness.call("roundtrip", new Uint8Array(bytes)), "ok " + want, JSON.stringify(bytes));
});

test("a long string full of escapes parses in linear memory", () => {
  const g = new Guest(build(join(here, "harness.ts"), "harness-long"));
  const s = ("ümlaut 東京 🚀 \"quoted\" \\ back\\slash\n\t\u0001").repeat(8000); // ~300 KB of JSON text
  const text = JSON.stringify(s);
  assert.equal(g.call("rewrite", text), text);
  assert.ok(g.memoryBytes <= 16 << 20, `memory grew to ${g.memoryBytes} bytes for a ${text.length}-byte string`);
});

test("malformed JSON is an error naming the byte", () => {
  const cases = [
    ["", "empty JSON input"],
    ["   ", "empty JSON input"],
    ['{"abi": "1.0", "event": {"id": ', "unexpected end of JSON input at byte 31"],
    ["[1, 2,]", "invalid character ']' at byte 6"],
    ["{1: 2}", "invalid character '1' at byte 1, looking for '\"' starting an object key"],
    ['{"a" 1}', "at byte 5, looking for ':'"],
    ["01", "trailing data at byte 1"],
    ["1.", "looking for a digit after the decimal point"],
    ["-", "looking for a digit"],
    ["1e+", "looking for a digit in the exponent"],
    ["tru", "unexpected end of JSON input at byte 3, looking for 'true'"],
    ["nul1", "invalid character '1' at byte 3"],
    ['"a\nb"', "control characters must be escaped"],
    ['"\\x"', "invalid character 'x' at byte 2, looking for an escape character"],
    ['"\\u12g4"', "hexadecimal digit"],
    ['"abc', "in the string starting at byte 0"],
    ["[1] [2]", "trailing data at byte 4"],
    ["{\"a\":1}}", "trailing data at byte 7"],
    ["\u00ff", "invalid character byte 0xc3 at byte 0"],
  ];
  for (const [input, want] of cases) {
    const got = harness.call("roundtrip", input);
    assert.ok(got.startsWith("error ") && got.includes(want), `${JSON.stringify(input)}: got ${got}, want an error containing ${want}`);
  }
});

test("nesting up to MAX_DEPTH parses, deeper is an error, never a trap", () => {
  const deep = (n) => "[".repeat(n) + "]".repeat(n);
  assert.equal(harness.call("roundtrip", deep(1000)), "ok " + deep(1000));
  assert.match(harness.call("roundtrip", deep(1001)), /^error JSON nested deeper than 1000 levels at byte 1000/);
  assert.match(harness.call("roundtrip", "[".repeat(200000)), /^error JSON nested deeper/);
  const obj = '{"a":'.repeat(999) + "1" + "}".repeat(999);
  assert.equal(harness.call("roundtrip", obj), "ok " + obj);
});

test("compareNumbers is exact", () => {
  const cases = [
    ["9.99", "9.99", 0], ["11.99", "9.99", 1], ["9.98", "9.99", -1], ["11", "11.99", -1],
    ["1.50", "1.5", 0], ["15e-1", "1.5", 0], ["0.15E1", "1.5", 0], ["-0", "0", 0], ["0.000", "-0e5", 0],
    ["-7.5", "-5", -1], ["-5", "-7.5", 1], ["-1", "0", -1], ["0", "1e-400", -1], ["-1e-400", "0", -1],
    ["100", "99.999999999999999999999", 1], ["0.1", "0.09999999999999999999", 1],
    ["12345678901234567890.5", "12345678901234567890.4", 1], // differ past float64 precision
    ["9007199254740993", "9007199254740992", 1],
    ["1e999999999", "1e308", 1], ["-1e999999999", "-1e308", -1], ["1e-999999999", "1e-320", -1],
    ["123456789012345678901234567890123456789.123456789", "1e38", 1],
    ["10", "9", 1], ["0.5", "0.05", 1], ["1000e-3", "1", 0], ["00012", "12", 0],
  ];
  for (const [a, b, want] of cases) assert.equal(harness.call("compare", `${a} ${b}`), String(want), `${a} vs ${b}`);
});

test("JSONWriter escapes every string so that JSON.parse gives it back", () => {
  const strings = ["plain", 'quote " backslash \\ slash /', "\u0000\u0001\u0008\u000b\u000c\u001f\u007f", "\n\r\t",
    "Zoë Ñandú 東京 🚀 \u202e end", "\u2028\u2029", "x".repeat(5000) + "\u0001".repeat(3000), ""];
  for (const s of strings) {
    const got = harness.call("rewrite", JSON.stringify(s));
    assert.equal(JSON.parse(got), s);
    assert.ok(!/[\u0000-\u001f]/.test(got), "raw control character in " + JSON.stringify(got));
  }
  assert.equal(harness.call("rewrite", '"\\u0001\\u0010\\b"'), '"\\u0001\\u0010\\b"');
});

function input(config, event = {}) {
  return JSON.stringify({
    abi: "1.0",
    context: { observer: "o", plugin: "p", role: "filter", attempt: 3, now: "2026-01-01T00:00:00Z" },
    event: { id: "pg:1", position: 1, source: "pg", entity: "public.payment", op: "UPDATE", key: "1", before: null,
      after: { amount: 11.99, items: [{ sku: "a" }, { sku: "b" }], nested: { "x.y": 1 } }, changed_fields: ["amount"], ...event },
    config,
  }).replace('"amount":11.99', '"amount":123456789012345678901.99');
}

test("the input is decoded and lookup finds paths", () => {
  const cases = [
    ["after.amount", "123456789012345678901.99"],
    ["after.items.1.sku", '"b"'],
    ["after.items.2.sku", "absent"],
    ["after.items.x", "absent"],
    ["before.amount", "absent"],
    ["event.id", '"pg:1"'],
    ["entity", '"public.payment"'],
    ["context.now", '"2026-01-01T00:00:00Z"'],
    ["config.path", '"config.path"'],
    ["after", '{"amount":123456789012345678901.99,"items":[{"sku":"a"},{"sku":"b"}],"nested":{"x.y":1}}'],
  ];
  for (const [path, want] of cases) {
    const got = JSON.parse(harness.call("filter", input({ path })));
    assert.deepEqual(got, { abi: "1.0", pass: true, reason: `${want} op=UPDATE attempt=3 changed=amount` }, path);
  }
});

test("bad input is a bad_input error result naming what was wrong", () => {
  const cases = [
    ["", "input is empty"],
    ["[1, 2, 3]", "input is an array, want an ABI 1.0 input object"],
    ['{"abi": "2.0", "event": {}}', "input is ABI 2.0 but this plugin speaks ABI 1.x"],
    ['{"abi": "one", "event": {}}', 'input.abi "one" is not a "MAJOR.MINOR" version'],
    ['{"event": {}}', 'input.abi "" is not a "MAJOR.MINOR" version'],
    ['{"abi": 1, "event": {}}', "input.abi is a number, want a string"],
    ['{"abi": "1.0"}', "input has no event"],
    ['{"abi": "1.0", "event": null}', "input has no event"],
    ['{"abi": "1.0", "event": "x"}', "input.event is a string, want an object"],
    ['{"abi": "1.0", "event": {"id": 7}}', "input.event.id is a number, want a string"],
    ['{"abi": "1.0", "event": {"after": [1]}}', "input.event.after is an array, want an object or null"],
    ['{"abi": "1.0", "event": {"changed_fields": [1]}}', "input.event.changed_fields[0] is a number, want a string"],
    ['{"abi": "1.0", "context": [], "event": {}}', "input.context is an array, want an object"],
    ['{"abi": "1.0", "event": {"id": ', "input is not valid JSON: unexpected end of JSON input at byte 31"],
  ];
  for (const [raw, want] of cases) {
    const got = JSON.parse(harness.call("filter", raw));
    assert.equal(got.abi, "1.0");
    assert.equal(got.error?.code, "bad_input", raw);
    assert.ok(got.error.message.includes(want), `${raw}: got ${got.error.message}, want ${want}`);
    assert.equal(got.error.retryable, false);
    assert.equal(got.pass, undefined);
  }
  // a newer minor and unknown fields are fine
  const ok = JSON.parse(harness.call("filter", '{"abi": "1.7", "future": {"x": 1}, "event": {"op": "INSERT"}, "config": {"path": "op"}}'));
  assert.equal(ok.pass, true);
  assert.equal(ok.reason, '"INSERT" op=INSERT attempt=0 changed=');
});

test("a plugin's error result carries code, message and retryable", () => {
  const got = JSON.parse(harness.call("filter", input({ fail: "lookup not ready \"yet\"" })));
  assert.deepEqual(got, { abi: "1.0", error: { message: 'lookup not ready "yet"', code: "later", retryable: true } });
});

test("examples: an instance serves many calls without its memory growing", () => {
  const cases = [
    ["min-amount", "filter", input({ min: 9.99 })],
    ["notify", "act", input({ url: "https://hooks.example.com/n" })],
  ];
  for (const [name, role, raw] of cases) {
    const g = new Guest(build(join(repo, "examples", "plugins", "assemblyscript", name, "index.ts"), name));
    const first = g.call(role, raw);
    for (let i = 0; i < 200; i++) g.call(role, raw);
    const settled = g.memoryBytes;
    for (let i = 0; i < 2000; i++) assert.equal(g.call(role, raw), first);
    assert.equal(g.memoryBytes, settled, `${name}: linear memory grew from ${settled} to ${g.memoryBytes} bytes over 2000 calls`);
    const manifest = JSON.parse(g.call("describe", ""));
    assert.equal(manifest.abi, "1.0");
    assert.equal(manifest.name, name);
  }
});
