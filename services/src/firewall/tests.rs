//! The classifier against a linear scan of the same rules, port ranges as
//! blocks, spec tables, and the node in a graph: allowed, established
//! replies, dropped, rejected with RST and with ICMP port unreachable.

use super::*;
use crate::conntrack::{FlowTable, Timeouts};
use crate::icmp_error::ErrorLimiter;
use crate::route::{LocalAddresses, RoutingTable};
use crate::wire::tcp::TcpFlags;
use crate::wire::{IcmpPacket, Ipv4Packet, TcpPacket};
use alloc::boxed::Box;
use alloc::vec::Vec;
use dataplane::{ExecutorBuilder, Ipv4Cidr, LoopbackNic, MacAddr, Mempool, Target};

/// A small deterministic generator (xorshift64*).
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn matches(rule: &RuleMatch, fields: &FlowFields) -> bool {
    let prefix = |(value, len): (u32, u8), address: u32| {
        let mask = if len == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(len))
        };
        (value ^ address) & mask == 0
    };
    let ports = |(low, high): (u16, u16), port: u16| low <= port && port <= high;
    prefix(rule.source, fields.source)
        && prefix(rule.destination, fields.destination)
        && ports(rule.source_ports, fields.source_port)
        && ports(rule.destination_ports, fields.destination_port)
        && rule
            .protocol
            .is_none_or(|protocol| protocol == fields.protocol)
        && rule.state.is_none_or(|state| state == fields.state)
}

fn random_rule(random: &mut Random) -> RuleMatch {
    let mut rule = RuleMatch::ANY;
    // Few distinct values so that random packets hit rules often.
    let address =
        |random: &mut Random| 0x0a00_0000 | (random.below(4) << 8) as u32 | random.below(4) as u32;
    if random.below(2) == 0 {
        rule.source = (address(random), [8, 24, 30, 32][random.below(4) as usize]);
    }
    if random.below(2) == 0 {
        rule.destination = (address(random), [16, 24, 32][random.below(3) as usize]);
    }
    if random.below(3) == 0 {
        let low = random.below(100) as u16;
        rule.destination_ports = (low, low + random.below(40) as u16);
    }
    if random.below(4) == 0 {
        let port = random.below(100) as u16;
        rule.source_ports = (port, port);
    }
    if random.below(2) == 0 {
        rule.protocol = Some([6, 17, 1][random.below(3) as usize]);
    }
    if random.below(3) == 0 {
        rule.state = Some(1 + random.below(3) as u8);
    }
    rule
}

#[test]
fn the_classifier_agrees_with_a_linear_scan() {
    let mut random = Random(0x9e37_79b9_7f4a_7c15);
    for round in 0..20 {
        let rules: Vec<RuleMatch> = (0..1 + round * 10)
            .map(|_| random_rule(&mut random))
            .collect();
        let classifier = Classifier::new(&rules, round as u64);
        for _ in 0..2000 {
            let fields = FlowFields {
                source: 0x0a00_0000 | (random.below(4) << 8) as u32 | random.below(4) as u32,
                destination: 0x0a00_0000 | (random.below(4) << 8) as u32 | random.below(4) as u32,
                source_port: random.below(110) as u16,
                destination_port: random.below(150) as u16,
                protocol: [6, 17, 1][random.below(3) as usize],
                state: 1 + random.below(3) as u8,
            };
            let expected = rules
                .iter()
                .position(|rule| matches(rule, &fields))
                .map(|i| i as u32);
            assert_eq!(
                classifier.lookup(&fields),
                expected,
                "round {round}, {fields:?}"
            );
        }
    }
}

#[test]
fn thousands_of_rules_of_one_shape_make_one_table() {
    let rules: Vec<RuleMatch> = (0..10_000u32)
        .map(|index| RuleMatch {
            source: (0x0a00_0000 | (index << 8), 24),
            destination_ports: (80, 80),
            protocol: Some(6),
            ..RuleMatch::ANY
        })
        .collect();
    let classifier = Classifier::new(&rules, 1);
    assert_eq!(classifier.shapes(), 1);
    let fields = FlowFields {
        source: 0x0a00_0000 | (9_999 << 8) | 7,
        destination_port: 80,
        protocol: 6,
        ..FlowFields::default()
    };
    assert_eq!(classifier.lookup(&fields), Some(9_999));
    assert_eq!(
        classifier.lookup(&FlowFields {
            destination_port: 81,
            ..fields
        }),
        None
    );
}

#[test]
fn port_ranges_become_aligned_blocks() {
    assert_eq!(port_blocks(0, u16::MAX), [(0, 0)]);
    assert_eq!(port_blocks(80, 80), [(80, 0xffff)]);
    assert_eq!(port_blocks(1024, 65535).len(), 6);
    assert_eq!(port_blocks(1, 65534).len(), 30);
    for (low, high) in [(3, 17), (1, 65534), (1000, 2000), (65535, 65535)] {
        let blocks = port_blocks(low, high);
        for port in 0..=u16::MAX {
            let inside = blocks
                .iter()
                .filter(|(value, mask)| port & mask == *value)
                .count();
            assert_eq!(
                inside,
                usize::from(low <= port && port <= high),
                "{low}-{high}: {port}"
            );
        }
    }
}

#[test]
fn spec_tables_parse_and_mistakes_are_named() {
    let config: FirewallConfig = toml::from_str(
        r#"
        default = "reject"
        capacity = 1024
        [[rules]]
        action = "allow"
        state = "established"
        [[rules]]
        action = "drop"
        protocol = "udp"
        source = "10.0.1.0/24"
        destination = "10.0.2.2"
        source_port = 53
        destination_port = "1024-65535"
        "#,
    )
    .unwrap();
    assert_eq!(config.default, Action::Reject);
    assert_eq!(config.rules.len(), 2);
    let rule = config.rules[1].to_match();
    assert_eq!(rule.source, (0x0a00_0100, 24));
    assert_eq!(rule.destination, (0x0a00_0202, 32));
    assert_eq!(
        (rule.source_ports, rule.destination_ports),
        ((53, 53), (1024, 65535))
    );
    assert_eq!(
        (rule.protocol, config.rules[0].to_match().state),
        (Some(17), Some(2))
    );
    for (bad, says) in [
        ("default = \"maybe\"", "unknown variant"),
        (
            "default = \"drop\"\n[[rules]]\naction = \"allow\"\nsource = \"10.0.0.0/33\"",
            "IPv4 prefix",
        ),
        (
            "default = \"drop\"\n[[rules]]\naction = \"allow\"\ndestination_port = \"9-1\"",
            "range",
        ),
        (
            "default = \"drop\"\n[[rules]]\naction = \"allow\"\ndestination_port = 70000",
            "port",
        ),
        (
            "default = \"drop\"\n[[rules]]\naction = \"allow\"\nprotocol = \"sctp\"",
            "tcp, udp, icmp",
        ),
        (
            "default = \"drop\"\n[[rules]]\naction = \"allow\"\nport = 1",
            "unknown field",
        ),
    ] {
        let error = toml::from_str::<FirewallConfig>(bad)
            .unwrap_err()
            .to_string();
        assert!(error.contains(says), "{bad}: {error}");
    }
}

const CLIENT: [u8; 4] = [10, 0, 1, 2];
const SERVER: [u8; 4] = [10, 0, 2, 2];

fn ip_packet(
    pool: &Mempool,
    source: [u8; 4],
    destination: [u8; 4],
    protocol: u8,
    payload: &[u8],
) -> dataplane::Packet {
    let mut packet = pool.alloc().unwrap();
    let bytes = packet.append(20 + payload.len()).unwrap();
    bytes[20..].copy_from_slice(payload);
    let mut ip = Ipv4Packet::new_unchecked(&mut bytes[..]);
    ip.emit_header(
        source.into(),
        destination.into(),
        protocol,
        payload.len() as u16,
        64,
    );
    packet
}

fn segment(
    pool: &Mempool,
    from: ([u8; 4], u16),
    to: ([u8; 4], u16),
    flags: TcpFlags,
) -> dataplane::Packet {
    let mut bytes = [0u8; 20];
    bytes[0..2].copy_from_slice(&from.1.to_be_bytes());
    bytes[2..4].copy_from_slice(&to.1.to_be_bytes());
    bytes[4..8].copy_from_slice(&1000u32.to_be_bytes());
    bytes[12] = 5 << 4;
    bytes[13] = flags.0;
    ip_packet(pool, from.0, to.0, 6, &bytes)
}

fn datagram(pool: &Mempool, from: ([u8; 4], u16), to: ([u8; 4], u16)) -> dataplane::Packet {
    let mut bytes = [0u8; 8];
    bytes[0..2].copy_from_slice(&from.1.to_be_bytes());
    bytes[2..4].copy_from_slice(&to.1.to_be_bytes());
    bytes[4..6].copy_from_slice(&8u16.to_be_bytes());
    ip_packet(pool, from.0, to.0, 17, &bytes)
}

#[test]
fn the_node_allows_tracks_drops_and_rejects() {
    let config: FirewallConfig = toml::from_str(
        r#"
        default = "drop"
        [[rules]]
        action = "allow"
        state = "established"
        [[rules]]
        action = "allow"
        protocol = "tcp"
        destination = "10.0.2.0/24"
        destination_port = 80
        [[rules]]
        action = "reject"
        protocol = "tcp"
        destination_port = 22
        [[rules]]
        action = "reject"
        protocol = "udp"
        "#,
    )
    .unwrap();
    let addresses = [
        Ipv4Cidr::new([10, 0, 1, 1].into(), 24).unwrap(),
        Ipv4Cidr::new([10, 0, 2, 1].into(), 24).unwrap(),
    ];
    let matches: Vec<_> = config.rules.iter().map(RuleConfig::to_match).collect();
    let firewall = Firewall::new(
        FlowTable::new(64, Timeouts::LINUX, 3),
        Classifier::new(&matches, 3),
        config.rules.iter().map(|rule| rule.action).collect(),
        config.default,
        (
            LocalAddresses::new(addresses.to_vec()),
            RoutingTable::new(&addresses, &[]),
            ErrorLimiter::new(),
        ),
    );
    let pool = Mempool::with_heap(32, 64).unwrap();
    let mut nic = LoopbackNic::new(MacAddr::default(), 16);
    let syn = TcpFlags::SYN;
    let syn_ack = TcpFlags(TcpFlags::SYN.0 | TcpFlags::ACK.0);
    for packet in [
        segment(&pool, (CLIENT, 40000), (SERVER, 80), syn), // allowed, new
        segment(&pool, (SERVER, 80), (CLIENT, 40000), syn_ack), // established reply
        segment(&pool, (SERVER, 80), (CLIENT, 40001), syn_ack), // invalid: dropped
        segment(&pool, (CLIENT, 40002), (SERVER, 443), syn), // default drop
        segment(&pool, (CLIENT, 40003), (SERVER, 22), syn), // reject: RST
        datagram(&pool, (CLIENT, 5000), (SERVER, 9)),       // reject: ICMP
    ] {
        nic.inject(packet).unwrap();
    }
    let mut builder = ExecutorBuilder::new();
    builder.pool(pool);
    let port = builder.add_port(Box::new(nic));
    let errors = builder.add_port(Box::new(LoopbackNic::new(MacAddr::default(), 16)));
    let node = builder.add_node(Box::new(firewall));
    builder.route_rx(port, node).unwrap();
    builder.connect(node, "pass", Target::Port(port)).unwrap();
    builder
        .connect(node, "errors", Target::Port(errors))
        .unwrap();
    let mut executor = builder.build().unwrap();
    assert_eq!(executor.poll_once(), 6);
    let counters = executor.counters().clone();
    let firewall = &counters.nodes[0];
    assert_eq!(firewall.event_named("allowed"), Some(2));
    assert_eq!(firewall.event_named("rule-0"), Some(1));
    assert_eq!(firewall.event_named("rule-1"), Some(1));
    assert_eq!(firewall.event_named("rule-2"), Some(1));
    assert_eq!(firewall.event_named("rule-3"), Some(1));
    assert_eq!(firewall.event_named("default-policy"), Some(2));
    assert_eq!(
        firewall.event_named("flows-created"),
        Some(1),
        "denied flows are forgotten"
    );
    assert_eq!(firewall.drops_named("denied"), Some(2));
    assert_eq!(firewall.drops_named("rejected"), Some(2));
    assert_eq!(firewall.event_named("resets-sent"), Some(1));

    let passed = executor.nic_as::<LoopbackNic>(port).unwrap();
    let first = passed.take_transmitted().unwrap();
    let second = passed.take_transmitted().unwrap();
    assert!(passed.take_transmitted().is_none());
    let ports = |packet: &dataplane::Packet| {
        let ip = Ipv4Packet::new_checked(packet.payload()).unwrap();
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        (tcp.source_port(), tcp.destination_port())
    };
    assert_eq!((ports(&first), ports(&second)), ((40000, 80), (80, 40000)));

    let sent = executor.nic_as::<LoopbackNic>(errors).unwrap();
    let reset = sent.take_transmitted().unwrap();
    let ip = Ipv4Packet::new_checked(reset.payload()).unwrap();
    assert_eq!(
        (ip.source(), ip.destination()),
        (SERVER.into(), CLIENT.into())
    );
    let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
    assert!(tcp.verify_checksum(ip.source(), ip.destination()));
    assert_eq!((tcp.source_port(), tcp.destination_port()), (22, 40003));
    assert_eq!(tcp.flags(), TcpFlags(TcpFlags::RST.0 | TcpFlags::ACK.0));
    assert_eq!(tcp.acknowledgment_number(), 1001, "acknowledges the SYN");
    let error = sent.take_transmitted().unwrap();
    let ip = Ipv4Packet::new_checked(error.payload()).unwrap();
    assert_eq!(
        (ip.source(), ip.destination()),
        ([10, 0, 1, 1].into(), CLIENT.into())
    );
    let icmp = IcmpPacket::new_checked(ip.payload()).unwrap();
    assert_eq!((icmp.msg_type(), icmp.code()), (3, 3));
    assert!(sent.take_transmitted().is_none());
}

/// A TCP segment at `seq` acknowledging `ack`, window 64 240.
fn segment_at(
    pool: &Mempool,
    from: ([u8; 4], u16),
    to: ([u8; 4], u16),
    flags: TcpFlags,
    (seq, ack): (u32, u32),
) -> dataplane::Packet {
    let mut bytes = [0u8; 20];
    bytes[0..2].copy_from_slice(&from.1.to_be_bytes());
    bytes[2..4].copy_from_slice(&to.1.to_be_bytes());
    bytes[4..8].copy_from_slice(&seq.to_be_bytes());
    bytes[8..12].copy_from_slice(&ack.to_be_bytes());
    bytes[12] = 5 << 4;
    bytes[13] = flags.0;
    bytes[14..16].copy_from_slice(&64_240u16.to_be_bytes());
    ip_packet(pool, from.0, to.0, 6, &bytes)
}

#[test]
fn hostile_traffic_is_dropped_and_counted_and_the_connection_lives_on() {
    let config: FirewallConfig = toml::from_str(
        r#"
        default = "drop"
        [[rules]]
        action = "allow"
        state = "established"
        [[rules]]
        action = "allow"
        protocol = "tcp"
        destination_port = 80
        state = "new"
        "#,
    )
    .unwrap();
    let addresses = [Ipv4Cidr::new([10, 0, 1, 1].into(), 24).unwrap()];
    let matches: Vec<_> = config.rules.iter().map(RuleConfig::to_match).collect();
    let firewall = Firewall::new(
        FlowTable::new(64, Timeouts::LINUX, 3),
        Classifier::new(&matches, 3),
        config.rules.iter().map(|rule| rule.action).collect(),
        config.default,
        (
            LocalAddresses::new(addresses.to_vec()),
            RoutingTable::new(&addresses, &[]),
            ErrorLimiter::new(),
        ),
    );
    let mut builder = ExecutorBuilder::new();
    builder.pool(Mempool::with_heap(64, 64).unwrap());
    let port = builder.add_port(Box::new(LoopbackNic::new(MacAddr::default(), 32)));
    let errors = builder.add_port(Box::new(LoopbackNic::new(MacAddr::default(), 32)));
    let node = builder.add_node(Box::new(firewall));
    builder.route_rx(port, node).unwrap();
    builder.connect(node, "pass", Target::Port(port)).unwrap();
    builder
        .connect(node, "errors", Target::Port(errors))
        .unwrap();
    let mut executor = builder.build().unwrap();
    // Injects what `make` builds from the pool, polls, returns how many
    // packets passed.
    let mut run = |make: &dyn Fn(&Mempool) -> Vec<dataplane::Packet>| {
        let packets = make(executor.pool().unwrap());
        let nic = executor.nic_as::<LoopbackNic>(port).unwrap();
        for packet in packets {
            nic.inject(packet).unwrap();
        }
        executor.poll_once();
        let nic = executor.nic_as::<LoopbackNic>(port).unwrap();
        let mut passed = 0;
        while nic.take_transmitted().is_some() {
            passed += 1;
        }
        (passed, executor.counters().clone())
    };
    let (up, down) = ((CLIENT, 40000), (SERVER, 80));
    let ack = TcpFlags::ACK;
    // A connection: client ISN 1000, server ISN 5000.
    let (passed, _) = run(&|pool| {
        Vec::from([
            segment_at(pool, up, down, TcpFlags::SYN, (1000, 0)),
            segment_at(pool, down, up, TcpFlags(0x12), (5000, 1001)),
            segment_at(pool, up, down, ack, (1001, 5001)),
        ])
    });
    assert_eq!(passed, 3);
    // No flow, out of the window, ICMP errors quoting garbage or nothing
    // tracked: all dropped, the connection untouched.
    let (passed, counters) = run(&|pool| {
        let mut garbage_quote = Vec::from([3u8, 3, 0, 0, 0, 0, 0, 0]);
        garbage_quote.extend_from_slice(&[0x99; 30]);
        let mut untracked_quote = Vec::from([3u8, 3, 0, 0, 0, 0, 0, 0]);
        let quoted = segment_at(pool, (CLIENT, 41000), down, ack, (1, 1));
        untracked_quote.extend_from_slice(&quoted.payload()[..28]);
        Vec::from([
            segment_at(pool, (CLIENT, 40999), down, ack, (1001, 5001)),
            segment_at(pool, up, down, ack, (90_000_000, 5001)),
            segment_at(pool, down, up, TcpFlags::RST, (70_000_000, 0)),
            segment_at(pool, down, up, ack, (5001, 900_000)),
            ip_packet(pool, SERVER, CLIENT, 1, &garbage_quote),
            ip_packet(pool, SERVER, CLIENT, 1, &untracked_quote),
        ])
    });
    let firewall = &counters.nodes[0];
    assert_eq!(passed, 0);
    assert_eq!(firewall.drops_named("denied"), Some(5));
    assert_eq!(firewall.drops_named("malformed"), Some(1));
    // A SYN flood four times the table: the unestablished flows evict one
    // another (counted), the established one stays.
    let mut admitted = 0;
    for round in 0..8u8 {
        let (passed, _) = run(&|pool| {
            (0..32u8)
                .map(|host| {
                    segment_at(
                        pool,
                        ([192, 0, round, host], 1024),
                        down,
                        TcpFlags::SYN,
                        (7, 0),
                    )
                })
                .collect()
        });
        admitted += passed;
    }
    let (passed, counters) = run(&|pool| {
        Vec::from([
            segment_at(pool, up, down, ack, (1001, 5001)),
            segment_at(pool, down, up, ack, (5001, 1001)),
        ])
    });
    assert_eq!(passed, 2, "the connection outlived the flood");
    let firewall = &counters.nodes[0];
    let evicted = firewall.event_named("flows-evicted").unwrap();
    let full = firewall.drops_named("table-full").unwrap();
    assert!(evicted > 0, "evicted {evicted}");
    assert_eq!(
        admitted + full,
        8 * 32,
        "admitted {admitted}, table-full {full}"
    );
    assert_eq!(firewall.event_named("flows-created"), Some(1 + admitted));
}
