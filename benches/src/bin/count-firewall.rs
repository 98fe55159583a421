//! `count-firewall RULES PACKETS`: compiles RULES firewall rules (the
//! usual `established` rule first, then per-subnet web rules of a few
//! shapes, as a generated ACL looks), then judges PACKETS packets of 64
//! established TCP flows whose rules come last (a list walk's worst case):
//! conntrack lookup and classifier lookup per packet, as the firewall node
//! does. Made to run under `valgrind --tool=callgrind` at two packet
//! counts: `cargo xtask bench` reports the difference per packet at 10,
//! 1000 and 10 000 rules, which should stay flat.
#![forbid(unsafe_code)]

use services::conntrack::{CtState, FiveTuple, FlowPacket, FlowTable, Segment, Timeouts};
use services::firewall::{Classifier, FlowFields, RuleMatch};
use services::wire::tcp::TcpFlags;
use std::hint::black_box;
use std::net::Ipv4Addr;
use std::process::ExitCode;

const FLOWS: u32 = 64;

/// Rule `index` of `count` (0 is `established`): TCP from the subnet
/// 10.(index / 256).(index % 256).0/24 to a server port; every fourth with
/// a source port range, every eighth a UDP rule, so there are a few shapes.
fn rule(index: u32) -> RuleMatch {
    if index == 0 {
        return RuleMatch {
            state: Some(2),
            ..RuleMatch::ANY
        };
    }
    let subnet = 0x0a00_0000 | (index << 8);
    let mut rule = RuleMatch {
        source: (subnet, 24),
        destination: (0xc0a8_0001, 32),
        destination_ports: (443, 443),
        protocol: Some(6),
        ..RuleMatch::ANY
    };
    if index.is_multiple_of(4) {
        rule.source_ports = (1024, 65535);
    }
    if index.is_multiple_of(8) {
        rule.protocol = Some(17);
    }
    rule
}

/// The client of flow `flow`, in the subnet of one of the last TCP rules,
/// after rule 4 (where the last of the 8 shapes begins): so that a lookup
/// probes every shape at every rule count, and only the count differs.
fn client(rules: u32, flow: u32) -> Ipv4Addr {
    let tcp_rules = (5..rules).rev().filter(|index| !index.is_multiple_of(8));
    let count = tcp_rules.clone().count() as u32;
    let index = tcp_rules.clone().nth((flow % count) as usize).unwrap_or(1);
    Ipv4Addr::from_bits(0x0a00_0000 | (index << 8) | 7)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: count-firewall RULES PACKETS";
    let (Some(rules), Some(packets)) = (
        args.first().and_then(|text| text.parse::<u32>().ok()),
        args.get(1).and_then(|text| text.parse::<u64>().ok()),
    ) else {
        eprintln!("{usage}");
        return ExitCode::from(2);
    };
    if !(6..=60_000).contains(&rules) {
        eprintln!("RULES from 6 to 60000\n{usage}");
        return ExitCode::from(2);
    }
    let matches: Vec<RuleMatch> = (0..rules).map(rule).collect();
    let classifier = Classifier::new(&matches, 1);
    let mut table = FlowTable::new(4096, Timeouts::LINUX, 1);
    // The flows, established through the table.
    let flows: Vec<FiveTuple> = (0..FLOWS)
        .map(|flow| FiveTuple {
            source: client(rules, flow),
            destination: Ipv4Addr::new(192, 168, 0, 1),
            source_port: 40_000 + flow as u16,
            destination_port: 443,
            protocol: 6,
        })
        .collect();
    // The opener's ISN is 1000, the answerer's 5000; no payload.
    let packet = |tuple: FiveTuple, flags: TcpFlags| {
        let syn = flags.contains(TcpFlags::SYN);
        let (seq, ack) = match (syn, tuple.destination_port == 443) {
            (true, true) => (1000, 0),
            (true, false) => (5000, 1001),
            (false, true) => (1001, 5001),
            (false, false) => (5001, 1001),
        };
        FlowPacket {
            tuple,
            tcp_flags: flags,
            segment: Segment {
                seq,
                ack,
                window: 64_240,
                len: u32::from(syn),
                window_scale: None,
            },
            quoted: None,
            opens: flags == TcpFlags::SYN,
        }
    };
    for tuple in &flows {
        table.track(&packet(*tuple, TcpFlags::SYN), 0);
        table.track(&packet(tuple.reversed(), TcpFlags(0x12)), 0);
        table.track(&packet(*tuple, TcpFlags::ACK), 0);
    }
    let mut allowed = 0u64;
    for index in 0..packets {
        let tuple = flows[(index % u64::from(FLOWS)) as usize];
        let tracked = table.track(&packet(tuple, TcpFlags::ACK), 1);
        // Judge as a new packet too, so that the lookup walks to the
        // flow's own rule rather than stopping at `established`.
        let state = match tracked.state {
            CtState::Established => 1,
            _ => 3,
        };
        let fields = FlowFields {
            source: tuple.source.to_bits(),
            destination: tuple.destination.to_bits(),
            source_port: tuple.source_port,
            destination_port: tuple.destination_port,
            protocol: tuple.protocol,
            state,
        };
        if black_box(classifier.lookup(black_box(&fields))).is_some_and(|rule| rule > 0) {
            allowed += 1;
        }
    }
    if allowed != packets {
        eprintln!("count-firewall: {allowed} of {packets} packets matched their flow's rule");
        return ExitCode::FAILURE;
    }
    println!(
        "count-firewall: {rules} rules ({} shapes), {packets} packets",
        classifier.shapes()
    );
    ExitCode::SUCCESS
}
