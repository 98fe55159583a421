//! A per-flow packet counter: each IPv4 flow's packets counted in the
//! module's map (key: the 13-byte 5-tuple, value: the count as a
//! little-endian u64); with `limit N`, a flow's packets after its Nth are dropped.
#![no_std]

use warpcore_wasm_guest::{Counter, Level, Service, Slot, Verdict, config, log, map};

struct FlowCounter {
    limit: Option<u64>,
    flows: Counter,
    over_limit: Counter,
    map_full: Counter,
}

impl Service for FlowCounter {
    fn init(text: &[u8]) -> Result<Self, i32> {
        let mut limit = None;
        for rule in config::rules(text) {
            let mut words = config::words(rule);
            match (
                words.next(),
                words.next().and_then(|n| config::number(n, u32::MAX)),
                words.next(),
            ) {
                (Some(b"limit"), Some(n), None) => limit = Some(u64::from(n)),
                _ => {
                    log(
                        Level::Error,
                        "flow-counter: the config is empty or `limit N`",
                    );
                    return Err(1);
                }
            }
        }
        let register = |name: &[u8]| Counter::register(name).ok_or(3);
        Ok(FlowCounter {
            limit,
            flows: register(b"flows")?,
            over_limit: register(b"over-limit")?,
            map_full: register(b"map-full")?,
        })
    }

    fn process(&mut self, slot: &mut Slot) {
        let Some(flow) = slot.five_tuple() else {
            return;
        };
        let key = flow.key();
        let mut value = [0u8; 8];
        let known = map::lookup(&key, &mut value) == Some(value.len());
        let count = if known {
            u64::from_le_bytes(value) + 1
        } else {
            1
        };
        match map::update(&key, &count.to_le_bytes()) {
            Ok(()) if !known => self.flows.increment(),
            Ok(()) => {}
            Err(_) => self.map_full.increment(),
        }
        if self.limit.is_some_and(|limit| count > limit) {
            self.over_limit.increment();
            slot.set_verdict(Verdict::Drop);
        }
    }
}

warpcore_wasm_guest::service!(FlowCounter);
