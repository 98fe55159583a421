// A header rewriter: `dscp D` marks every IPv4 packet's DSCP (ECN kept;
// the host redoes the IPv4 checksum), `port FROM TO` remaps a TCP/UDP
// destination port with the transport checksum updated incrementally.
import { ERROR, FiveTuple, RULES, Slot, Span, TCP, UDP, WORDS, checksumUpdate16, checksumUpdate16Udp, counterNamed,
  counter_add, logText, service } from "../../../wasm/abi/warpcore";
export { warpcore_abi_version, warpcore_buffer, warpcore_init, warpcore_process_batch } from "../../../wasm/abi/warpcore";

const MAX_REMAPS = 8;
let dscp: i32 = -1; // -1: no marking
const remapFrom = new StaticArray<u16>(MAX_REMAPS), remapTo = new StaticArray<u16>(MAX_REMAPS);
let remapCount = 0;
let marked: i32 = -1, remapped: i32 = -1;
const flow = new FiveTuple();

function init(config: Span): i32 {
  const rule = new Span(), word = new Span(), first = new Span(), second = new Span();
  while (config.take(rule, RULES)) {
    if (!rule.take(word, WORDS)) continue; // a blank rule
    const haveFirst = rule.take(first, WORDS), haveSecond = rule.take(second, WORDS);
    if (rule.take(new Span(), WORDS)) return 1; // a fourth word
    const value = haveFirst ? first.number(63) : -1;
    const from = haveFirst ? first.number(65535) : -1, to = haveSecond ? second.number(65535) : -1;
    if (word.equals("dscp") && !haveSecond && value >= 0) {
      dscp = <i32>value;
    } else if (word.equals("port") && remapCount < MAX_REMAPS && from >= 0 && to >= 0) {
      remapFrom[remapCount] = <u16>from;
      remapTo[remapCount++] = <u16>to;
    } else {
      logText(ERROR, "rewriter: rules are `dscp D` and at most 8 `port FROM TO`");
      return 1;
    }
  }
  marked = counterNamed("dscp-marked");
  remapped = counterNamed("port-remapped");
  return marked < 0 || remapped < 0 ? 3 : 0;
}

function process(slot: Slot): void {
  if (!flow.of(slot)) return;
  const l3 = slot.l3(), l4 = slot.l4();
  const tos = slot.byte(l3 + 1);
  if (dscp >= 0 && <i32>(tos >> 2) != dscp) {
    slot.setByte(l3 + 1, <u8>((dscp << 2) | (tos & 3)));
    counter_add(marked, 1);
  }
  if (l4 < 0 || (flow.protocol != UDP && flow.protocol != TCP)) return;
  const checksumAt = l4 + (flow.protocol == UDP ? 6 : 16);
  if (checksumAt + 2 > slot.len) return;
  for (let i = 0; i < remapCount; i++) {
    const from = unchecked(remapFrom[i]), to = unchecked(remapTo[i]);
    if (from != flow.destinationPort || from == to) continue;
    const old = slot.be16(checksumAt);
    slot.setBe16(l4 + 2, to);
    slot.setBe16(checksumAt, flow.protocol == UDP ? checksumUpdate16Udp(old, from, to) : checksumUpdate16(old, from, to));
    counter_add(remapped, 1);
    return;
  }
}

service(init, process);
