//! A 5-tuple ACL firewall: the first rule matching a packet decides (no
//! match: pass), and counter `rule-<n>` counts the packets rule n matched.
#![no_std]

use warpcore_wasm_guest::{Counter, FiveTuple, Level, Service, Slot, Verdict, config, log};

const MAX_RULES: usize = 16;

#[derive(Clone, Copy)]
struct Rule {
    drop: bool,
    protocol: Option<u8>,
    source: (u32, u32),
    source_port: Option<u16>,
    destination: (u32, u32),
    destination_port: Option<u16>,
    counter: Counter,
}

impl Rule {
    /// `drop|pass PROTO SRC SPORT DST DPORT`.
    fn parse(words: &mut dyn Iterator<Item = &[u8]>, counter: Counter) -> Option<Rule> {
        let drop = match words.next()? {
            b"drop" => true,
            b"pass" => false,
            _ => return None,
        };
        let rule = Rule {
            drop,
            protocol: config::protocol(words.next()?)?,
            source: config::prefix(words.next()?)?,
            source_port: config::port(words.next()?)?,
            destination: config::prefix(words.next()?)?,
            destination_port: config::port(words.next()?)?,
            counter,
        };
        words.next().is_none().then_some(rule)
    }

    fn matches(&self, flow: &FiveTuple) -> bool {
        self.protocol
            .is_none_or(|protocol| protocol == flow.protocol)
            && flow.source & self.source.1 == self.source.0
            && flow.destination & self.destination.1 == self.destination.0
            && self.source_port.is_none_or(|port| port == flow.source_port)
            && self
                .destination_port
                .is_none_or(|port| port == flow.destination_port)
    }
}

struct Acl {
    rules: [Option<Rule>; MAX_RULES],
}

impl Service for Acl {
    fn init(text: &[u8]) -> Result<Self, i32> {
        let mut rules = [None; MAX_RULES];
        for (index, rule) in config::rules(text).enumerate() {
            let slot = rules.get_mut(index).ok_or(2)?;
            let counter = Counter::register_numbered(b"rule-", index as u32).ok_or(3)?;
            *slot = Some(
                Rule::parse(&mut config::words(rule), counter).ok_or_else(|| {
                    log(
                        Level::Error,
                        "acl: a rule is not `drop|pass PROTO SRC SPORT DST DPORT`",
                    );
                    1
                })?,
            );
        }
        Ok(Acl { rules })
    }

    fn process(&mut self, slot: &mut Slot) {
        let Some(flow) = slot.five_tuple() else {
            return;
        };
        if let Some(rule) = self
            .rules
            .iter()
            .map_while(Option::as_ref)
            .find(|rule| rule.matches(&flow))
        {
            rule.counter.increment();
            if rule.drop {
                slot.set_verdict(Verdict::Drop);
            }
        }
    }
}

warpcore_wasm_guest::service!(Acl);
