//! Fuzzes connection tracking: a sequence of IPv4 packets (separated by
//! `WCFZ`, the first two bytes of each advancing the clock by seconds)
//! through `FlowPacket::parse` and a small `FlowTable` (eviction and
//! expiry happen), then the same packets through a firewall's classifier.
//! Invariants: the table never holds more than its capacity, a packet
//! that created a flow finds it again in the same direction, and parsing
//! never panics on garbage (ICMP errors quoting anything included).
#![forbid(unsafe_code)]
#![no_main]

use libfuzzer_sys::fuzz_target;
use services::conntrack::{CtState, Direction, FlowPacket, FlowTable, Timeouts};
use services::firewall::{Classifier, FlowFields, RuleMatch};

fuzz_target!(|data: &[u8]| {
    let mut table = FlowTable::new(16, Timeouts::LINUX, 5);
    let rules = [
        RuleMatch { state: Some(2), ..RuleMatch::ANY },
        RuleMatch { protocol: Some(6), destination_ports: (80, 443), ..RuleMatch::ANY },
        RuleMatch { source: (0x0a00_0000, 8), protocol: Some(17), ..RuleMatch::ANY },
    ];
    let classifier = Classifier::new(&rules, 5);
    let mut now_ns = 0u64;
    let mut rest = data;
    while !rest.is_empty() {
        let end = rest.windows(4).position(|window| window == b"WCFZ").unwrap_or(rest.len());
        let (piece, after) = rest.split_at(end);
        rest = after.get(4..).unwrap_or(&[]);
        let [high, low, packet @ ..] = piece else {
            continue;
        };
        now_ns += u64::from(u16::from_be_bytes([*high, *low])) * 1_000_000_000;
        let Ok(flow) = FlowPacket::parse(packet) else {
            continue;
        };
        let tracked = table.track(&flow, now_ns);
        assert!(table.len() <= table.capacity());
        if tracked.created {
            assert_eq!(tracked.state, CtState::New);
            assert!(flow.quoted.is_none());
            let again = FlowPacket { opens: false, ..flow };
            let second = table.track(&again, now_ns);
            if flow.tuple.protocol != 6 {
                assert_eq!(second.direction, Direction::Original);
                assert_eq!(second.state, CtState::New);
            }
        }
        let fields = FlowFields {
            source: flow.tuple.source.to_bits(),
            destination: flow.tuple.destination.to_bits(),
            source_port: flow.tuple.source_port,
            destination_port: flow.tuple.destination_port,
            protocol: flow.tuple.protocol,
            state: 1,
        };
        let _ = classifier.lookup(&fields);
    }
    table.sweep(now_ns + 1_000_000_000_000_000, table.capacity());
    assert!(table.is_empty());
});
