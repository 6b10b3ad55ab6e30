// notify: an observer action that posts {"event","entity","op"} of each
// event to config.url as one http effect. The host sends it, with retries
// and an Idempotency-Key; the plugin does no I/O.

import * as observer from "../../../../sdk-guest/assemblyscript/assembly";
import { ActResult, Effect, Input, JSONWriter, Manifest, PluginError } from "../../../../sdk-guest/assemblyscript/assembly";

export function describe(): i32 {
  const m = new Manifest("notify", "0.1.0", ["act"]);
  m.description = "posts the event id, entity and op to config.url";
  m.effects = ["http"];
  return observer.describe(m);
}

function notify(input: Input): ActResult {
  const cfg = input.config;
  if (cfg == null) {
    return ActResult.fail(PluginError.badConfig("config is missing: want {\"url\": \"https://...\"}"));
  }
  const url = cfg.get("url");
  if (url == null) return ActResult.fail(PluginError.badConfig("config.url is missing: want a URL string"));
  if (!url.isString || url.text.length == 0) {
    return ActResult.fail(PluginError.badConfig("config.url is " + (url.isString ? "empty" : url.describeKind()) + ", want a URL string"));
  }
  const ev = input.event;
  const body = new JSONWriter();
  body.beginObject();
  body.key("event");
  body.string(ev.id);
  body.key("entity");
  body.string(ev.entity);
  body.key("op");
  body.string(ev.op);
  body.endObject();
  return ActResult.of([
    Effect.http("POST", url.text).header("content-type", "application/json").withBody(body.toString()),
  ]);
}

export function act(): i32 {
  return observer.act(notify);
}
