//! Byte fixtures through each translation, with every checksum verified
//! by a plain RFC 1071 loop written here (not the incremental code under
//! test); ICMP errors with their quote; the node in a graph: masquerade,
//! forwarded ports, hairpin, echo, errors, no mapping, exhaustion, a full
//! table; ports chosen so that replies land on the choosing core.

use super::translate::{rewrite, rewrite_error};
use super::*;
use crate::claim::{LocalClaim, claimed};
use crate::conntrack::{FiveTuple, FlowTable, Timeouts, owner_core};
use crate::route::RoutingTable;
use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;
use core::net::Ipv4Addr;
use dataplane::{ExecutorBuilder, Ipv4Cidr, LoopbackNic, MacAddr, Mempool, PortId, Target};

const INSIDE: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 2);
const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 2);
const ROUTER: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 254);
const NAT: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 1);

/// RFC 1071's checksum, the obvious way.
fn reference(data: &[u8]) -> u16 {
    let mut sum = 0u32;
    for pair in data.chunks(2) {
        sum += u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn pseudo(ip: &[u8], length: usize) -> Vec<u8> {
    let mut bytes = ip[12..20].to_vec();
    bytes.extend_from_slice(&[0, ip[9]]);
    bytes.extend_from_slice(&(length as u16).to_be_bytes());
    bytes
}

/// An IPv4 packet around `transport` with every checksum filled by
/// [`reference`] (a UDP checksum of 0 stays 0 when `udp_checksum` is off).
fn packet(source: Ipv4Addr, destination: Ipv4Addr, protocol: u8, transport: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0u8; 20];
    bytes[0] = 0x45;
    bytes[2..4].copy_from_slice(&((20 + transport.len()) as u16).to_be_bytes());
    bytes[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
    bytes[8] = 64;
    bytes[9] = protocol;
    bytes[12..16].copy_from_slice(&source.octets());
    bytes[16..20].copy_from_slice(&destination.octets());
    let header = reference(&bytes);
    bytes[10..12].copy_from_slice(&header.to_be_bytes());
    bytes.extend_from_slice(transport);
    let at = match protocol {
        6 => Some(16),
        17 => Some(6),
        _ => None,
    };
    match at {
        Some(at) => {
            let mut covered = pseudo(&bytes, transport.len());
            covered.extend_from_slice(transport);
            let checksum = reference(&covered);
            bytes[20 + at..22 + at].copy_from_slice(&checksum.to_be_bytes());
        }
        None => {
            let checksum = reference(transport);
            bytes[22..24].copy_from_slice(&checksum.to_be_bytes());
        }
    }
    bytes
}

fn tcp(from: (Ipv4Addr, u16), to: (Ipv4Addr, u16), flags: u8, payload: &[u8]) -> Vec<u8> {
    tcp_at(from, to, flags, 1000, payload)
}

/// A TCP segment at sequence number `seq` (acknowledging 0).
fn tcp_at(
    from: (Ipv4Addr, u16),
    to: (Ipv4Addr, u16),
    flags: u8,
    seq: u32,
    payload: &[u8],
) -> Vec<u8> {
    let mut segment = vec![0u8; 20];
    segment[0..2].copy_from_slice(&from.1.to_be_bytes());
    segment[2..4].copy_from_slice(&to.1.to_be_bytes());
    segment[4..8].copy_from_slice(&seq.to_be_bytes());
    segment[12] = 5 << 4;
    segment[13] = flags;
    segment[14..16].copy_from_slice(&64240u16.to_be_bytes());
    segment.extend_from_slice(payload);
    packet(from.0, to.0, 6, &segment)
}

fn udp(from: (Ipv4Addr, u16), to: (Ipv4Addr, u16), payload: &[u8]) -> Vec<u8> {
    let mut datagram = vec![0u8; 8];
    datagram[0..2].copy_from_slice(&from.1.to_be_bytes());
    datagram[2..4].copy_from_slice(&to.1.to_be_bytes());
    datagram[4..6].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    datagram.extend_from_slice(payload);
    packet(from.0, to.0, 17, &datagram)
}

fn echo(from: Ipv4Addr, to: Ipv4Addr, msg_type: u8, ident: u16) -> Vec<u8> {
    let mut message = vec![msg_type, 0, 0, 0];
    message.extend_from_slice(&ident.to_be_bytes());
    message.extend_from_slice(&[0, 7, b'p', b'i', b'n', b'g', b'!']);
    packet(from, to, 1, &message)
}

fn icmp_error(from: Ipv4Addr, to: Ipv4Addr, code: u8, quoted: &[u8]) -> Vec<u8> {
    let mut message = vec![3, code, 0, 0, 0, 0, 0, 0];
    message.extend_from_slice(quoted);
    packet(from, to, 1, &message)
}

/// Checks every checksum of `ip` with [`reference`]; `quote` the length of
/// the ICMP error's quote to check too (its transport checksum when the
/// whole datagram is quoted).
fn verify(ip: &[u8]) {
    assert_eq!(reference(&ip[..20]), 0, "IPv4 header checksum");
    let transport = &ip[20..];
    match ip[9] {
        6 | 17 => {
            if ip[9] == 17 && transport[6..8] == [0, 0] {
                return;
            }
            let mut covered = pseudo(ip, transport.len());
            covered.extend_from_slice(transport);
            assert_eq!(reference(&covered), 0, "transport checksum");
        }
        1 => {
            assert_eq!(reference(transport), 0, "ICMP checksum");
            if matches!(transport[0], 3 | 11) {
                let quote = &transport[8..];
                assert_eq!(reference(&quote[..20]), 0, "quoted IPv4 header checksum");
                let total = usize::from(u16::from_be_bytes([quote[2], quote[3]]));
                if quote.len() >= total {
                    verify(&quote[..total]);
                }
            }
        }
        _ => {}
    }
}

fn tuple_of(ip: &[u8]) -> FiveTuple {
    crate::conntrack::FlowPacket::parse(ip).unwrap().tuple
}

fn tuple(from: (Ipv4Addr, u16), to: (Ipv4Addr, u16), protocol: u8) -> FiveTuple {
    FiveTuple {
        source: from.0,
        destination: to.0,
        source_port: from.1,
        destination_port: to.1,
        protocol,
    }
}

#[test]
fn reference_checksums_hold_for_the_fixtures() {
    verify(&tcp((INSIDE, 40000), (SERVER, 80), 0x02, b"hello"));
    verify(&udp((INSIDE, 5000), (SERVER, 53), b"abc"));
    verify(&echo(INSIDE, SERVER, 8, 77));
}

#[test]
fn tcp_source_and_udp_destination_rewrites_keep_every_checksum() {
    // Odd payload lengths: the last byte is padded in the sum.
    let mut segment = tcp((INSIDE, 40000), (SERVER, 80), 0x18, b"hello");
    let to = tuple((NAT, 20001), (SERVER, 80), 6);
    rewrite(&mut segment, &to, false).unwrap();
    verify(&segment);
    assert_eq!(tuple_of(&segment), to);
    assert_eq!(&segment[40..], b"hello");

    let mut datagram = udp((SERVER, 53), (NAT, 20002), b"answer");
    let to = tuple((SERVER, 53), (INSIDE, 5000), 17);
    rewrite(&mut datagram, &to, false).unwrap();
    verify(&datagram);
    assert_eq!(tuple_of(&datagram), to);
}

#[test]
fn a_udp_datagram_without_checksum_keeps_none() {
    let mut datagram = udp((INSIDE, 5000), (SERVER, 53), b"x");
    datagram[26..28].copy_from_slice(&[0, 0]);
    rewrite(&mut datagram, &tuple((NAT, 20003), (SERVER, 53), 17), false).unwrap();
    assert_eq!(&datagram[26..28], &[0, 0]);
    verify(&datagram);
}

#[test]
fn an_echo_identifier_rewrite_keeps_the_icmp_checksum() {
    let mut request = echo(INSIDE, SERVER, 8, 77);
    rewrite(
        &mut request,
        &tuple((NAT, 20004), (SERVER, 20004), 1),
        false,
    )
    .unwrap();
    verify(&request);
    assert_eq!(u16::from_be_bytes([request[24], request[25]]), 20004);
    assert_eq!(&request[20..21], &[8]);
}

#[test]
fn an_icmp_error_is_translated_with_its_quote() {
    // The router says port unreachable about a datagram we sent
    // masqueraded; the whole datagram is quoted.
    let sent = udp((NAT, 20005), (SERVER, 53), b"query");
    let mut error = icmp_error(ROUTER, NAT, 3, &sent);
    verify(&error);
    let inside = tuple((INSIDE, 5000), (SERVER, 53), 17);
    rewrite_error(&mut error, ROUTER, INSIDE, &inside).unwrap();
    verify(&error);
    assert_eq!(tuple_of(&error).destination, INSIDE);
    let quote = &error[28..];
    assert_eq!(tuple_of(quote), inside);

    // Cut short after 8 bytes of TCP: the quoted TCP checksum is not
    // there, the ports are, and the error's checksum still holds.
    let sent = tcp((NAT, 20006), (SERVER, 80), 0x02, b"");
    let mut error = icmp_error(ROUTER, NAT, 1, &sent[..28]);
    let inside = tuple((INSIDE, 40000), (SERVER, 80), 6);
    rewrite_error(&mut error, ROUTER, INSIDE, &inside).unwrap();
    verify(&error);
    let quote = &error[28..];
    assert_eq!(&quote[12..16], &INSIDE.octets());
    assert_eq!(u16::from_be_bytes([quote[20], quote[21]]), 40000);

    // A quote too short for ports is refused, untouched.
    let mut short = icmp_error(ROUTER, NAT, 1, &sent[..24]);
    let before = short.clone();
    assert!(rewrite_error(&mut short, ROUTER, INSIDE, &inside).is_err());
    assert_eq!(&short[28..], &before[28..]);
}

#[test]
fn claims_take_replies_and_forwarded_ports_but_not_our_own_traffic() {
    let claims = [LocalClaim {
        address: NAT,
        ports: (20000, 20009),
        extra: vec![(6, 8080)],
    }];
    for (packet, expected, what) in [
        (
            tcp((SERVER, 80), (NAT, 20001), 0x12, b""),
            true,
            "reply to a masquerade port",
        ),
        (
            tcp((SERVER, 80), (NAT, 8080), 0x02, b""),
            true,
            "forwarded port",
        ),
        (
            udp((SERVER, 80), (NAT, 8080), b""),
            false,
            "forwarded port is tcp only",
        ),
        (
            tcp((SERVER, 80), (NAT, 80), 0x02, b""),
            false,
            "management port",
        ),
        (
            echo(SERVER, NAT, 0, 20003),
            true,
            "echo reply to a masquerade identifier",
        ),
        (echo(SERVER, NAT, 8, 20003), false, "echo request to us"),
        (
            icmp_error(ROUTER, NAT, 3, &udp((NAT, 20002), (SERVER, 53), b"")),
            true,
            "error about a masqueraded datagram",
        ),
        (
            icmp_error(ROUTER, NAT, 3, &udp((NAT, 33000), (SERVER, 53), b"")),
            false,
            "error about our own datagram",
        ),
        (
            tcp((SERVER, 80), (ROUTER, 20001), 0x12, b""),
            false,
            "another address",
        ),
    ] {
        assert_eq!(claimed(&claims, &packet), expected, "{what}");
    }
}

/// A NAT between 10.0.1.0/24 (eth0, inside) and 10.0.2.0/24 (eth1,
/// outside, us at 10.0.2.1) in a graph on one loopback port.
struct Harness {
    executor: dataplane::Executor,
    port: PortId,
}

fn settings(ports: (u16, u16), forwards: Vec<Forward>, hairpin: bool) -> NatSettings {
    NatSettings {
        outside: 1,
        address: NAT,
        inside: vec![Ipv4Cidr::new([10, 0, 1, 0].into(), 24).unwrap()],
        ports,
        hairpin,
        forwards,
    }
}

impl Harness {
    fn new(settings: NatSettings, capacity: usize) -> Self {
        let addresses = [
            Ipv4Cidr::new([10, 0, 1, 1].into(), 24).unwrap(),
            Ipv4Cidr::new([10, 0, 2, 1].into(), 24).unwrap(),
        ];
        let nat = Nat::new(
            FlowTable::new(capacity, Timeouts::LINUX, 3),
            capacity,
            settings,
            RoutingTable::new(&addresses, &[]),
            5,
        );
        let mut builder = ExecutorBuilder::new();
        builder.pool(Mempool::with_heap(64, 2048).unwrap());
        let port = builder.add_port(Box::new(LoopbackNic::new(MacAddr::default(), 64)));
        let node = builder.add_node(Box::new(nat));
        builder.route_rx(port, node).unwrap();
        builder.connect(node, "pass", Target::Port(port)).unwrap();
        Self {
            executor: builder.build().unwrap(),
            port,
        }
    }

    /// Sends `bytes` through; what came out, if anything.
    fn send(&mut self, bytes: &[u8]) -> Option<Vec<u8>> {
        let mut packet = self.executor.pool().unwrap().alloc().unwrap();
        packet.append(bytes.len()).unwrap().copy_from_slice(bytes);
        let nic = self.executor.nic_as::<LoopbackNic>(self.port).unwrap();
        nic.inject(packet).unwrap();
        self.executor.poll_once();
        let nic = self.executor.nic_as::<LoopbackNic>(self.port).unwrap();
        let sent = nic
            .take_transmitted()
            .map(|packet| packet.payload().to_vec());
        assert!(nic.take_transmitted().is_none());
        if let Some(sent) = &sent {
            verify(sent);
        }
        sent
    }

    fn event(&self, name: &str) -> u64 {
        self.executor.counters().nodes[0].event_named(name).unwrap()
    }

    fn drops(&self, reason: &str) -> u64 {
        self.executor.counters().nodes[0]
            .drops_named(reason)
            .unwrap()
    }
}

#[test]
fn masquerade_translates_both_ways_and_drops_what_has_no_mapping() {
    let mut nat = Harness::new(settings((20000, 20099), vec![], false), 64);
    let syn = nat
        .send(&tcp((INSIDE, 40000), (SERVER, 80), 0x02, b""))
        .unwrap();
    let out = tuple_of(&syn);
    assert_eq!(
        (out.source, out.destination, out.destination_port),
        (NAT, SERVER, 80)
    );
    assert!((20000..=20099).contains(&out.source_port));
    let reply = nat
        .send(&tcp((SERVER, 80), (NAT, out.source_port), 0x12, b""))
        .unwrap();
    assert_eq!(tuple_of(&reply), tuple((SERVER, 80), (INSIDE, 40000), 6));
    let ack = nat
        .send(&tcp((INSIDE, 40000), (SERVER, 80), 0x10, b"GET /"))
        .unwrap();
    assert_eq!(tuple_of(&ack), out, "the flow keeps its port");
    assert_eq!(&ack[40..], b"GET /");

    // From the outside, nothing without a binding gets in.
    let other = if out.source_port == 20000 {
        20001
    } else {
        20000
    };
    assert!(
        nat.send(&tcp((SERVER, 80), (NAT, other), 0x12, b""))
            .is_none()
    );
    assert!(
        nat.send(&tcp((SERVER, 80), (INSIDE, 40000), 0x02, b""))
            .is_none()
    );
    assert!(nat.send(&udp((SERVER, 53), (NAT, other), b"x")).is_none());
    assert_eq!(nat.drops("no-mapping"), 3);
    // A mid-stream segment from the inside opens nothing.
    assert!(
        nat.send(&tcp((INSIDE, 40001), (SERVER, 80), 0x10, b""))
            .is_none()
    );
    assert_eq!(nat.drops("invalid"), 1);
    // Out of the flow's window: data far past what the server may send,
    // a RST guessed there: invalid, and the flow goes on.
    let to_us = (NAT, out.source_port);
    for flags in [0x10, 0x04] {
        let beyond = tcp_at((SERVER, 80), to_us, flags, 90_000_000, b"x");
        assert!(nat.send(&beyond).is_none());
    }
    assert_eq!(nat.drops("invalid"), 3);
    assert!(nat.send(&tcp((SERVER, 80), to_us, 0x10, b"ok")).is_some());
    // Between inside hosts: routed as it is.
    let local = tcp((INSIDE, 40000), ([10, 0, 1, 3].into(), 22), 0x02, b"");
    assert_eq!(nat.send(&local).unwrap(), local);
    assert_eq!(nat.event("untranslated"), 1);
    assert_eq!(nat.event("masqueraded-flows"), 1);
    assert_eq!(nat.event("translated"), 4);
    assert_eq!(nat.event("flows-created"), 1);
}

#[test]
fn echo_and_icmp_errors_are_translated_back_to_the_inside_host() {
    let mut nat = Harness::new(settings((20000, 20099), vec![], false), 64);
    let request = nat.send(&echo(INSIDE, SERVER, 8, 77)).unwrap();
    let ident = u16::from_be_bytes([request[24], request[25]]);
    assert_eq!(tuple_of(&request).source, NAT);
    assert!((20000..=20099).contains(&ident));
    let reply = nat.send(&echo(SERVER, NAT, 0, ident)).unwrap();
    assert_eq!(tuple_of(&reply), tuple((SERVER, 77), (INSIDE, 77), 1));

    // A datagram out, port unreachable back from the server, quoting it.
    let sent = nat
        .send(&udp((INSIDE, 5000), (SERVER, 9), b"knock"))
        .unwrap();
    let error = nat.send(&icmp_error(SERVER, NAT, 3, &sent)).unwrap();
    assert_eq!(tuple_of(&error).destination, INSIDE);
    assert_eq!(tuple_of(&error).source, SERVER);
    assert_eq!(
        tuple_of(&error[28..]),
        tuple((INSIDE, 5000), (SERVER, 9), 17),
        "the quote is the datagram as the inside host sent it"
    );
    // An error about nothing we sent is dropped.
    let stranger = udp((NAT, 20098), (SERVER, 9), b"");
    assert!(nat.send(&icmp_error(ROUTER, NAT, 3, &stranger)).is_none());
    assert_eq!(nat.event("errors-translated"), 1);
    assert_eq!(nat.drops("no-mapping"), 1);
    // An error quoting garbage (no IPv4 header, or one cut before its
    // ports) is malformed, whoever it claims to be about.
    let mut cut = sent.clone();
    cut.truncate(24);
    for quote in [&[0x99u8; 28][..], &cut[..]] {
        assert!(nat.send(&icmp_error(SERVER, NAT, 3, quote)).is_none());
    }
    assert_eq!(nat.drops("malformed"), 2);
    assert_eq!(nat.event("errors-translated"), 1);
}

#[test]
fn an_error_from_the_inside_host_reaches_the_outside_from_our_address() {
    let mut nat = Harness::new(settings((20000, 20099), vec![], false), 64);
    let sent = nat.send(&udp((INSIDE, 5000), (SERVER, 53), b"q")).unwrap();
    let port = tuple_of(&sent).source_port;
    let answer = nat.send(&udp((SERVER, 53), (NAT, port), b"a")).unwrap();
    // The inside host's socket is gone: it answers port unreachable.
    let error = nat.send(&icmp_error(INSIDE, SERVER, 3, &answer)).unwrap();
    assert_eq!(
        (tuple_of(&error).source, tuple_of(&error).destination),
        (NAT, SERVER)
    );
    assert_eq!(tuple_of(&error[28..]), tuple((SERVER, 53), (NAT, port), 17));
}

#[test]
fn a_forwarded_port_reaches_the_inside_server_and_hairpin_is_optional() {
    let web = Forward {
        protocol: 6,
        port: 8080,
        to: ([10, 0, 1, 3].into(), 80),
    };
    let server = ([10, 0, 1, 3].into(), 80);
    let mut nat = Harness::new(settings((20000, 20099), vec![web], false), 64);
    let syn = nat
        .send(&tcp((SERVER, 5555), (NAT, 8080), 0x02, b""))
        .unwrap();
    assert_eq!(tuple_of(&syn), tuple((SERVER, 5555), server, 6));
    let reply = nat.send(&tcp(server, (SERVER, 5555), 0x12, b"")).unwrap();
    assert_eq!(tuple_of(&reply), tuple((NAT, 8080), (SERVER, 5555), 6));
    // Without hairpin, the inside cannot use the outside address.
    assert!(
        nat.send(&tcp((INSIDE, 40000), (NAT, 8080), 0x02, b""))
            .is_none()
    );
    assert_eq!(nat.event("forwarded-flows"), 1);
    assert_eq!(nat.drops("no-mapping"), 1);

    let mut nat = Harness::new(settings((20000, 20099), vec![web], true), 64);
    let syn = nat
        .send(&tcp((INSIDE, 40000), (NAT, 8080), 0x02, b""))
        .unwrap();
    let out = tuple_of(&syn);
    assert_eq!(
        (out.source, (out.destination, out.destination_port)),
        (NAT, server)
    );
    let reply = nat
        .send(&tcp(server, (NAT, out.source_port), 0x12, b""))
        .unwrap();
    assert_eq!(tuple_of(&reply), tuple((NAT, 8080), (INSIDE, 40000), 6));
    assert_eq!(nat.event("hairpin-flows"), 1);
}

#[test]
fn port_exhaustion_and_a_full_table_are_counted() {
    let mut nat = Harness::new(settings((20000, 20001), vec![], false), 64);
    for source_port in [5000, 5001] {
        assert!(
            nat.send(&udp((INSIDE, source_port), (SERVER, 53), b""))
                .is_some()
        );
    }
    assert!(nat.send(&udp((INSIDE, 5002), (SERVER, 53), b"")).is_none());
    assert_eq!(nat.drops("ports-exhausted"), 1);
    // Another destination has ports of its own.
    assert!(nat.send(&udp((INSIDE, 5002), (SERVER, 54), b"")).is_some());

    let mut nat = Harness::new(settings((20000, 29999), vec![], false), 2);
    for source_port in 5000..5010 {
        nat.send(&udp((INSIDE, source_port), (SERVER, 53), b""));
    }
    assert_eq!(nat.event("masqueraded-flows"), 2);
    assert_eq!(nat.drops("table-full"), 8);
}

#[test]
fn masquerade_ports_make_replies_land_on_the_choosing_core() {
    let (cores, seed) = (3, 11);
    let mut bindings: Vec<Bindings> = (0..cores)
        .map(|core| Bindings::new(256, core as u64))
        .collect();
    for source_port in 40000..40200 {
        let original = tuple((INSIDE, source_port), (SERVER, 443), 6);
        let core = owner_core(&original, cores, seed);
        let slot = bindings[core]
            .insert_masquerade(original, (SERVER, 443), NAT, (1024, 32767), |reply| {
                owner_core(reply, cores, seed) == core
            })
            .unwrap();
        let binding = bindings[core].get(slot).unwrap();
        assert_eq!(
            owner_core(&binding.translated.reversed(), cores, seed),
            core
        );
        assert_eq!(
            bindings[core]
                .find(&binding.translated.reversed())
                .unwrap()
                .2,
            Way::Reply
        );
    }
}

#[test]
fn spec_tables_parse_and_bad_ones_say_why() {
    let config: NatConfig = toml::from_str(
        r#"
        outside = "eth1"
        inside = ["10.0.1.0/24"]
        ports = "20000-29999"
        [[forward]]
        protocol = "tcp"
        port = 8080
        to = "10.0.1.2:80"
        "#,
    )
    .unwrap();
    assert_eq!(config.ports.0, 20000);
    assert_eq!(config.forward[0].to.port(), 80);
    assert!(!config.hairpin);
    for (bad, says) in [
        ("outside = \"eth1\"\nports = \"9-1\"", "range"),
        (
            "outside = \"eth1\"\n[[forward]]\nprotocol = \"tcp\"\nport = 1\nto = \"10.0.1.2\"",
            "socket address",
        ),
        ("outside = \"eth1\"\nmasquerade = true", "unknown field"),
    ] {
        let error = toml::from_str::<NatConfig>(bad).unwrap_err().to_string();
        assert!(error.contains(says), "{bad}: {error}");
    }
}
