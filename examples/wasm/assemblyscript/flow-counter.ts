// A per-flow packet counter: each IPv4 flow's packets counted in the
// module's map (key: the 13-byte 5-tuple, value: the count as a
// little-endian u64); with `limit N`, a flow's packets after its Nth are dropped.
import { DROP, ERROR, FiveTuple, RULES, Slot, Span, WORDS, counterNamed, counter_add, logText, map_lookup, map_update, service }
  from "../../../wasm/abi/warpcore";
export { warpcore_abi_version, warpcore_buffer, warpcore_init, warpcore_process_batch } from "../../../wasm/abi/warpcore";

let limit: u64 = 0;
let hasLimit = false;
let flows: i32 = -1, overLimit: i32 = -1, mapFull: i32 = -1;
const flow = new FiveTuple();
const key = heap.alloc(16); // 13 bytes used
const value = heap.alloc(8);

function init(config: Span): i32 {
  const rule = new Span(), word = new Span(), number = new Span();
  while (config.take(rule, RULES)) {
    if (!rule.take(word, WORDS)) continue; // a blank rule
    const n = rule.take(number, WORDS) ? number.number(0xffffffff) : -1;
    if (!word.equals("limit") || n < 0 || rule.take(word, WORDS)) {
      logText(ERROR, "flow-counter: the config is empty or `limit N`");
      return 1;
    }
    limit = <u64>n;
    hasLimit = true;
  }
  flows = counterNamed("flows");
  overLimit = counterNamed("over-limit");
  mapFull = counterNamed("map-full");
  return flows < 0 || overLimit < 0 || mapFull < 0 ? 3 : 0;
}

function process(slot: Slot): void {
  if (!flow.of(slot)) return;
  flow.key(key);
  const known = map_lookup(key, 13, value, 8) == 8;
  const count: u64 = (known ? load<u64>(value) : 0) + 1;
  store<u64>(value, count);
  if (map_update(key, 13, value, 8) != 0) counter_add(mapFull, 1);
  else if (!known) counter_add(flows, 1);
  if (hasLimit && count > limit) {
    counter_add(overLimit, 1);
    slot.setVerdict(DROP);
  }
}

service(init, process);
