// Observer guest SDK for AssemblyScript: observer plugins (abi/SPEC.md)
// over the Extism guest ABI, implemented by hand.
//
//   import * as observer from "@fraiseql/observer-sdk/assembly";
//   import { FilterResult, Input, Manifest } from "@fraiseql/observer-sdk/assembly";
//
//   export function describe(): i32 {
//     return observer.describe(new Manifest("keep-all", "0.1.0", ["filter"]));
//   }
//   function decide(input: Input): FilterResult { return FilterResult.pass("always"); }
//   export function filter(): i32 { return observer.filter(decide); }
//
// Build with the minimal runtime, which the SDK collects after every call:
//   asc plugin.ts -O3 --runtime minimal --noAssert --use abort= -o plugin.wasm

export {
  ABI_VERSION,
  Code,
  PluginError,
  FilterResult,
  ActResult,
  Effect,
  HttpEffect,
  LogEffect,
  Manifest,
  Context,
  Event,
  Input,
  Decoded,
  decodeInput,
  filterResultJSON,
  actResultJSON,
  invokeFilter,
  invokeAct,
  describe,
  filter,
  act,
} from "./plugin";
export { JSONValue, JSONWriter, Kind, kindName, MAX_DEPTH, ParseResult, parseJSON, parseJSONBytes, isNumberText } from "./json";
export { compareNumbers } from "./decimal";
export { LogLevel, log, logEnabled, configGet } from "./kernel";
