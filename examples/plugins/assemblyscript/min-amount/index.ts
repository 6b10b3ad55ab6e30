// min-amount: an observer filter that keeps events whose after.amount is at
// least config.min. Amounts are compared as decimal text, exactly:
// 9.99 >= 9.99 passes, and 12345678901234567890.5 is not rounded.

import * as observer from "../../../../sdk-guest/assemblyscript/assembly";
import { FilterResult, Input, Manifest, PluginError, compareNumbers } from "../../../../sdk-guest/assemblyscript/assembly";

export function describe(): i32 {
  const m = new Manifest("min-amount", "0.1.0", ["filter"]);
  m.description = "keeps events whose after.amount is at least config.min (exact decimals)";
  return observer.describe(m);
}

function decide(input: Input): FilterResult {
  const cfg = input.config;
  if (cfg == null) {
    return FilterResult.fail(PluginError.badConfig("config is missing: want {\"min\": <number>}, such as {\"min\": 9.99}"));
  }
  const min = cfg.get("min");
  if (min == null) {
    return FilterResult.fail(PluginError.badConfig("config.min is missing: want a number, such as 9.99"));
  }
  if (!min.isNumber) {
    return FilterResult.fail(PluginError.badConfig("config.min is " + min.describeKind() + ", want a number, such as 9.99"));
  }
  const after = input.event.after;
  if (after == null) {
    return FilterResult.drop("no after image (" + input.event.op + "): no amount to compare");
  }
  const amount = after.get("amount");
  if (amount == null) return FilterResult.drop("after.amount is absent");
  if (!amount.isNumber) return FilterResult.drop("after.amount is " + amount.describeKind() + ", not a number");
  if (compareNumbers(amount.text, min.text) >= 0) {
    return FilterResult.pass("after.amount " + amount.text + " >= min " + min.text);
  }
  return FilterResult.drop("after.amount " + amount.text + " < min " + min.text);
}

export function filter(): i32 {
  return observer.filter(decide);
}
