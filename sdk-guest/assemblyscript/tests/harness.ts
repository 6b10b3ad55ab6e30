// A test module for the SDK: each export reads the input through the
// kernel imports and writes what the SDK made of it. tests/sdk.test.mjs
// drives it with a mock kernel.

import * as observer from "../assembly";
import { FilterResult, Input, JSONWriter, PluginError, compareNumbers, parseJSONBytes } from "../assembly";
import { readInput, setOutput } from "../assembly/kernel";

function out(s: string): i32 {
  const b = String.UTF8.encode(s);
  const rc = setOutput(changetype<usize>(b), <usize>b.byteLength);
  __collect();
  return rc;
}

/** Parses the input and writes "ok " + its compact JSON, or "error " + the message. */
export function roundtrip(): i32 {
  const r = parseJSONBytes(readInput());
  const v = r.value;
  return out(v == null ? "error " + r.error : "ok " + v.toJSON());
}

/** The input is two JSON numbers separated by a space: writes compareNumbers of them. */
export function compare(): i32 {
  const s = String.UTF8.decode(readInput());
  const sp = s.indexOf(" ");
  return out(compareNumbers(s.substring(0, sp), s.substring(sp + 1)).toString());
}

/** The input is a JSON string: writes it back through JSONWriter.string. */
export function rewrite(): i32 {
  const r = parseJSONBytes(readInput());
  const v = r.value;
  if (v == null || !v.isString) return out("error " + r.error);
  const w = new JSONWriter(16);
  w.string(v.text);
  return out(w.toString());
}

// A filter whose reason is the JSON of input.lookup(config.path) ("absent"
// when not found), and which fails with config.fail as a retryable error.
function probe(input: Input): FilterResult {
  const cfg = input.config;
  if (cfg == null) return FilterResult.fail(PluginError.badConfig("no config"));
  const fail = cfg.get("fail");
  if (fail != null && fail.isString) return FilterResult.fail(PluginError.retryable("later", fail.text));
  const path = cfg.get("path");
  if (path == null || !path.isString) return FilterResult.fail(PluginError.badConfig("no config.path"));
  const v = input.lookup(path.text);
  const ev = input.event;
  const extra = " op=" + ev.op + " attempt=" + input.context.attempt.toString() + " changed=" + ev.changedFields.join(",");
  return FilterResult.pass((v == null ? "absent" : v.toJSON()) + extra);
}

export function filter(): i32 {
  return observer.filter(probe);
}
