//! A header rewriter: `dscp D` marks every IPv4 packet's DSCP (ECN kept;
//! the host redoes the IPv4 checksum), `port FROM TO` remaps a TCP/UDP
//! destination port with the transport checksum updated incrementally.
#![no_std]

use warpcore_wasm_guest::slot::{be16, protocol, set_be16};
use warpcore_wasm_guest::{Counter, Level, Service, Slot, checksum, config, log};

const MAX_REMAPS: usize = 8;

struct Rewriter {
    dscp: Option<u8>,
    remaps: [Option<(u16, u16)>; MAX_REMAPS],
    marked: Counter,
    remapped: Counter,
}

impl Service for Rewriter {
    fn init(text: &[u8]) -> Result<Self, i32> {
        let (mut dscp, mut remaps, mut count) = (None, [None; MAX_REMAPS], 0);
        for rule in config::rules(text) {
            let words: [Option<&[u8]>; 4] = {
                let mut iterator = config::words(rule);
                core::array::from_fn(|_| iterator.next())
            };
            let port = |word: Option<&[u8]>| {
                word.and_then(|w| config::number(w, 65535))
                    .map(|p| p as u16)
            };
            match words {
                [Some(b"dscp"), Some(value), None, None] => {
                    dscp = Some(config::number(value, 63).ok_or(1)? as u8)
                }
                [Some(b"port"), from, to, None] if count < MAX_REMAPS => {
                    remaps[count] = Some((port(from).ok_or(1)?, port(to).ok_or(1)?));
                    count += 1;
                }
                _ => {
                    log(
                        Level::Error,
                        "rewriter: rules are `dscp D` and at most 8 `port FROM TO`",
                    );
                    return Err(1);
                }
            }
        }
        let marked = Counter::register(b"dscp-marked").ok_or(3)?;
        let remapped = Counter::register(b"port-remapped").ok_or(3)?;
        Ok(Rewriter {
            dscp,
            remaps,
            marked,
            remapped,
        })
    }

    fn process(&mut self, slot: &mut Slot) {
        let Some(flow) = slot.five_tuple() else {
            return;
        };
        let Some(l3) = slot.l3() else { return };
        if let Some(dscp) = self.dscp {
            let tos = slot.bytes()[l3 + 1];
            if tos >> 2 != dscp {
                slot.bytes_mut()[l3 + 1] = (dscp << 2) | (tos & 0b11);
                self.marked.increment();
            }
        }
        let (Some(l4), Some(&(from, to))) = (slot.l4(), self.remap(flow.destination_port)) else {
            return;
        };
        let checksum_at = match flow.protocol {
            protocol::UDP => l4 + 6,
            protocol::TCP => l4 + 16,
            _ => return,
        };
        if checksum_at + 2 > slot.bytes().len() {
            return;
        }
        let bytes = slot.bytes_mut();
        let old = be16(bytes, checksum_at);
        let new = match flow.protocol {
            protocol::UDP => checksum::update16_udp(old, from, to),
            _ => checksum::update16(old, from, to),
        };
        set_be16(bytes, l4 + 2, to);
        set_be16(bytes, checksum_at, new);
        self.remapped.increment();
    }
}

impl Rewriter {
    fn remap(&self, port: u16) -> Option<&(u16, u16)> {
        self.remaps
            .iter()
            .map_while(Option::as_ref)
            .find(|(from, to)| *from == port && from != to)
    }
}

warpcore_wasm_guest::service!(Rewriter);
