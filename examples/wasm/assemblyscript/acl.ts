// A 5-tuple ACL firewall: the first rule matching a packet decides (no
// match: pass), and counter `rule-<n>` counts the packets rule n matched.
import { DROP, ERROR, FiveTuple, Prefix, RULES, Slot, Span, WORDS, counterNamed, counter_add, logText, service }
  from "../../../wasm/abi/warpcore";
export { warpcore_abi_version, warpcore_buffer, warpcore_init, warpcore_process_batch } from "../../../wasm/abi/warpcore";

const MAX_RULES = 16;

class Rule {
  drop: bool = false;
  protocol: i32 = -1; // -1: any
  source: Prefix = new Prefix();
  sourcePort: i32 = -1;
  destination: Prefix = new Prefix();
  destinationPort: i32 = -1;
  counter: i32 = -1;

  /** `drop|pass PROTO SRC SPORT DST DPORT`. */
  parse(text: Span): bool {
    const word = new Span();
    if (!text.take(word, WORDS)) return false;
    this.drop = word.equals("drop");
    if (!this.drop && !word.equals("pass")) return false;
    if (!text.take(word, WORDS) || (this.protocol = word.protocol()) < -1) return false;
    if (!text.take(word, WORDS) || !this.source.parse(word)) return false;
    if (!text.take(word, WORDS) || (this.sourcePort = word.port()) < -1) return false;
    if (!text.take(word, WORDS) || !this.destination.parse(word)) return false;
    if (!text.take(word, WORDS) || (this.destinationPort = word.port()) < -1) return false;
    return !text.take(word, WORDS);
  }

  matches(flow: FiveTuple): bool {
    return (this.protocol < 0 || this.protocol == <i32>flow.protocol) &&
      (flow.source & this.source.mask) == this.source.address &&
      (flow.destination & this.destination.mask) == this.destination.address &&
      (this.sourcePort < 0 || this.sourcePort == <i32>flow.sourcePort) &&
      (this.destinationPort < 0 || this.destinationPort == <i32>flow.destinationPort);
  }
}

const rules = new Array<Rule>();
const flow = new FiveTuple();

function init(config: Span): i32 {
  const line = new Span(), probe = new Span(), word = new Span();
  while (config.take(line, RULES)) {
    probe.start = line.start; probe.len = line.len;
    if (!probe.take(word, WORDS)) continue; // a blank rule
    if (rules.length == MAX_RULES) return 2;
    const rule = new Rule();
    if ((rule.counter = counterNamed("rule-" + rules.length.toString())) < 0) return 3;
    if (!rule.parse(line)) {
      logText(ERROR, "acl: a rule is not `drop|pass PROTO SRC SPORT DST DPORT`");
      return 1;
    }
    rules.push(rule);
  }
  return 0;
}

function process(slot: Slot): void {
  if (!flow.of(slot)) return;
  for (let i = 0; i < rules.length; i++) {
    const rule = unchecked(rules[i]);
    if (rule.matches(flow)) {
      counter_add(rule.counter, 1);
      if (rule.drop) slot.setVerdict(DROP);
      return;
    }
  }
}

service(init, process);
