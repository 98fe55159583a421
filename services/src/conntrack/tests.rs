//! Byte-fixture tests of the flow table: both directions, TCP states and
//! their timeouts, window checks, UDP and ICMP flows, related ICMP errors, garbage, and
//! a flood beyond the table's size.

use super::*;
use crate::wire::ipv4::protocol;
use crate::wire::tcp::TcpFlags;
use alloc::vec::Vec;

const CLIENT: [u8; 4] = [10, 0, 1, 2];
const SERVER: [u8; 4] = [10, 0, 2, 2];
const SECOND: u64 = 1_000_000_000;

/// An IPv4 packet (no checksum: the tracker does not verify it).
fn ip(source: [u8; 4], destination: [u8; 4], protocol_number: u8, payload: &[u8]) -> Vec<u8> {
    let mut packet = Vec::from([0x45, 0, 0, 0, 0, 0, 0, 0, 64, protocol_number, 0, 0]);
    let total = (20 + payload.len()) as u16;
    packet[2..4].copy_from_slice(&total.to_be_bytes());
    packet.extend_from_slice(&source);
    packet.extend_from_slice(&destination);
    packet.extend_from_slice(payload);
    packet
}

fn tcp(source: [u8; 4], destination: [u8; 4], ports: (u16, u16), flags: TcpFlags) -> Vec<u8> {
    let mut segment = [0u8; 20];
    segment[0..2].copy_from_slice(&ports.0.to_be_bytes());
    segment[2..4].copy_from_slice(&ports.1.to_be_bytes());
    segment[12] = 5 << 4;
    segment[13] = flags.0;
    ip(source, destination, protocol::TCP, &segment)
}

fn udp(source: [u8; 4], destination: [u8; 4], ports: (u16, u16)) -> Vec<u8> {
    let mut datagram = [0u8; 12];
    datagram[0..2].copy_from_slice(&ports.0.to_be_bytes());
    datagram[2..4].copy_from_slice(&ports.1.to_be_bytes());
    datagram[4..6].copy_from_slice(&12u16.to_be_bytes());
    ip(source, destination, protocol::UDP, &datagram)
}

fn icmp(source: [u8; 4], destination: [u8; 4], msg_type: u8, rest: &[u8]) -> Vec<u8> {
    let mut message = Vec::from([msg_type, 0, 0, 0]);
    message.extend_from_slice(rest);
    ip(source, destination, protocol::ICMP, &message)
}

fn echo(source: [u8; 4], destination: [u8; 4], msg_type: u8, ident: u16) -> Vec<u8> {
    let mut rest = Vec::from(ident.to_be_bytes());
    rest.extend_from_slice(&[0, 1]);
    icmp(source, destination, msg_type, &rest)
}

fn track(table: &mut FlowTable, packet: &[u8], now_ns: u64) -> Tracked {
    table.track(&FlowPacket::parse(packet).expect("parses"), now_ns)
}

fn table(capacity: usize) -> FlowTable {
    FlowTable::new(capacity, Timeouts::LINUX, 7)
}

/// The flow's tuple as `packet` (from the client) names it.
fn tuple_of(packet: &[u8]) -> FiveTuple {
    FlowPacket::parse(packet).expect("parses").tuple
}

/// A three-way handshake from CLIENT's port `ports.0` to SERVER's
/// `ports.1` at `now_ns`; the flow's tuple.
fn handshake(table: &mut FlowTable, ports: (u16, u16), now_ns: u64) -> FiveTuple {
    let back = (ports.1, ports.0);
    track(table, &tcp(CLIENT, SERVER, ports, SYN), now_ns);
    track(table, &tcp(SERVER, CLIENT, back, SYN_ACK), now_ns);
    track(table, &tcp(CLIENT, SERVER, ports, ACK), now_ns);
    tuple_of(&tcp(CLIENT, SERVER, ports, ACK))
}

/// Which end of a test connection sends a segment.
#[derive(Debug, Clone, Copy)]
enum Sender {
    /// CLIENT, the opener: its segments travel the original direction.
    Client,
    /// SERVER: its segments travel the reply direction.
    Server,
}

const SYN: TcpFlags = TcpFlags::SYN;
const SYN_ACK: TcpFlags = TcpFlags(TcpFlags::SYN.0 | TcpFlags::ACK.0);
const ACK: TcpFlags = TcpFlags::ACK;
const FIN_ACK: TcpFlags = TcpFlags(TcpFlags::FIN.0 | TcpFlags::ACK.0);

#[test]
fn a_tcp_handshake_and_close_walk_the_states_both_ways() {
    let mut table = table(64);
    let out = (40000, 80);
    let back = (80, 40000);
    let tuple = tuple_of(&tcp(CLIENT, SERVER, out, SYN));
    use CtState::{Established, New};
    use Sender::{Client, Server};
    let steps = [
        (Client, SYN, New, TcpState::SynSent),
        (Server, SYN_ACK, Established, TcpState::SynRecv),
        (Client, ACK, Established, TcpState::Established),
        (Server, ACK, Established, TcpState::Established),
        (Client, FIN_ACK, Established, TcpState::FinWait),
        (Server, ACK, Established, TcpState::CloseWait),
        (Server, FIN_ACK, Established, TcpState::LastAck),
        (Client, ACK, Established, TcpState::TimeWait),
    ];
    for (index, (sender, flags, state, tcp_state)) in steps.into_iter().enumerate() {
        let (packet, direction) = match sender {
            Client => (tcp(CLIENT, SERVER, out, flags), Direction::Original),
            Server => (tcp(SERVER, CLIENT, back, flags), Direction::Reply),
        };
        let tracked = track(&mut table, &packet, SECOND);
        assert_eq!(
            (tracked.state, tracked.direction),
            (state, direction),
            "step {index}"
        );
        assert_eq!(
            table.tcp_state(&tuple, SECOND),
            Some(tcp_state),
            "step {index}"
        );
        assert_eq!(table.tcp_state(&tuple.reversed(), SECOND), Some(tcp_state));
    }
    assert_eq!(table.len(), 1);
    // TIME-WAIT lasts 120 s (Linux): gone after.
    assert!(table.tcp_state(&tuple, 120 * SECOND).is_some());
    assert!(table.tcp_state(&tuple, 122 * SECOND).is_none());
    let stats = table.take_stats();
    assert_eq!((stats.created, stats.invalid), (1, 0));
}

#[test]
fn tcp_timeouts_follow_linux_defaults_per_state() {
    let mut table = table(64);
    let syn = tcp(CLIENT, SERVER, (1, 2), SYN);
    let tuple = tuple_of(&syn);
    track(&mut table, &syn, 0);
    assert!(table.tcp_state(&tuple, 119 * SECOND).is_some());
    assert!(
        table.tcp_state(&tuple, 121 * SECOND).is_none(),
        "SYN-SENT: 120 s"
    );
    assert_eq!(handshake(&mut table, (1, 2), 200 * SECOND), tuple);
    let day = 86_400 * SECOND;
    assert_eq!(
        table.tcp_state(&tuple, 200 * SECOND + 4 * day),
        Some(TcpState::Established)
    );
    assert!(
        table
            .tcp_state(&tuple, 200 * SECOND + 5 * day + SECOND)
            .is_none(),
        "5 days"
    );
    // A RST closes: CLOSE lasts 10 s.
    let at = 300 * SECOND;
    track(&mut table, &syn, at);
    track(&mut table, &tcp(SERVER, CLIENT, (2, 1), TcpFlags::RST), at);
    assert_eq!(
        table.tcp_state(&tuple, at + 9 * SECOND),
        Some(TcpState::Close)
    );
    assert!(table.tcp_state(&tuple, at + 11 * SECOND).is_none());
}

#[test]
fn segments_that_fit_no_connection_are_invalid() {
    let mut table = table(64);
    // Mid-stream: no flow is picked up.
    for flags in [ACK, SYN_ACK, FIN_ACK, TcpFlags::RST] {
        let tracked = track(&mut table, &tcp(CLIENT, SERVER, (5, 80), flags), SECOND);
        assert_eq!(tracked.state, CtState::Invalid, "{flags:?}");
    }
    assert!(table.is_empty());
    track(&mut table, &tcp(CLIENT, SERVER, (5, 80), SYN), SECOND);
    // The opener cannot answer its own SYN; data before the SYN-ACK.
    for (packet, what) in [
        (
            tcp(CLIENT, SERVER, (5, 80), SYN_ACK),
            "SYN-ACK from the opener",
        ),
        (tcp(CLIENT, SERVER, (5, 80), ACK), "ACK before the SYN-ACK"),
        (
            tcp(SERVER, CLIENT, (80, 5), ACK),
            "reply ACK before the SYN-ACK",
        ),
    ] {
        assert_eq!(
            track(&mut table, &packet, SECOND).state,
            CtState::Invalid,
            "{what}"
        );
    }
    assert_eq!(table.take_stats().invalid, 7);
}

/// A TCP segment at `seq`, acknowledging `ack`, advertising `window`,
/// carrying `payload` bytes; a SYN may offer window scale `scale`.
fn tcp_at(
    (source, destination): ([u8; 4], [u8; 4]),
    ports: (u16, u16),
    flags: TcpFlags,
    (seq, ack): (u32, u32),
    window: u16,
    payload: usize,
    scale: Option<u8>,
) -> Vec<u8> {
    let options: &[u8] = match scale {
        Some(shift) => &[1, 3, 3, shift],
        None => &[],
    };
    let mut segment = Vec::from([0u8; 20]);
    segment[0..2].copy_from_slice(&ports.0.to_be_bytes());
    segment[2..4].copy_from_slice(&ports.1.to_be_bytes());
    segment[4..8].copy_from_slice(&seq.to_be_bytes());
    segment[8..12].copy_from_slice(&ack.to_be_bytes());
    segment[12] = ((20 + options.len() as u8) / 4) << 4;
    segment[13] = flags.0;
    segment[14..16].copy_from_slice(&window.to_be_bytes());
    segment.extend_from_slice(options);
    segment.resize(segment.len() + payload, b'x');
    ip(source, destination, protocol::TCP, &segment)
}

#[test]
fn segments_outside_the_window_are_invalid_and_change_nothing() {
    let mut table = table(64);
    let (out, back) = ((40000, 443), (443, 40000));
    let (up, down) = ((CLIENT, SERVER), (SERVER, CLIENT));
    let tuple = tuple_of(&tcp(CLIENT, SERVER, out, SYN));
    let state = |table: &FlowTable| table.tcp_state(&tuple, SECOND);
    // Client ISN 1000, server ISN 9000, both offer window scale 7.
    let handshake = [
        tcp_at(up, out, SYN, (1000, 0), 64240, 0, Some(7)),
        tcp_at(down, back, SYN_ACK, (9000, 1001), 65160, 0, Some(7)),
        tcp_at(up, out, ACK, (1001, 9001), 502, 0, None),
        tcp_at(up, out, ACK, (1001, 9001), 502, 1000, None),
        // The server acknowledges with a window of 2000 << 7 = 256 000.
        tcp_at(down, back, ACK, (9001, 2001), 2000, 0, None),
        // Out of order but within that scaled window (unscaled, 2000
        // bytes, it would not be).
        tcp_at(up, out, ACK, (202_001, 9001), 502, 100, None),
    ];
    for packet in &handshake {
        assert_ne!(track(&mut table, packet, SECOND).state, CtState::Invalid);
    }
    assert_eq!(state(&table), Some(TcpState::Established));
    table.take_stats();
    let outside = [
        (
            tcp_at(up, out, ACK, (10_002_001, 9001), 502, 100, None),
            "data beyond the receiver's window",
        ),
        (
            tcp_at(
                up,
                out,
                ACK,
                (2001u32.wrapping_sub(400_000), 9001),
                502,
                1000,
                None,
            ),
            "data a window behind what was sent",
        ),
        (
            tcp_at(down, back, ACK, (9001, 302_001), 2000, 0, None),
            "an acknowledgment of data never sent",
        ),
        (
            tcp_at(
                down,
                back,
                ACK,
                (9001, 2001u32.wrapping_sub(300_000)),
                2000,
                0,
                None,
            ),
            "an acknowledgment lagging more than a window",
        ),
        (
            tcp_at(down, back, TcpFlags::RST, (5_009_001, 0), 0, 0, None),
            "a RST guessed outside the window",
        ),
        (
            tcp_at(up, out, FIN_ACK, (90_000_000, 9001), 502, 0, None),
            "a FIN outside the window",
        ),
    ];
    for (packet, what) in &outside {
        assert_eq!(
            track(&mut table, packet, SECOND).state,
            CtState::Invalid,
            "{what}"
        );
        assert_eq!(state(&table), Some(TcpState::Established), "{what}");
    }
    assert_eq!(table.take_stats().invalid, outside.len() as u64);
    // The connection goes on; a RST in the window closes it.
    let data = tcp_at(down, back, ACK, (9001, 202_101), 2000, 500, None);
    assert_eq!(track(&mut table, &data, SECOND).state, CtState::Established);
    let reset = tcp_at(up, out, TcpFlags::RST, (202_101, 0), 0, 0, None);
    assert_eq!(
        track(&mut table, &reset, SECOND).state,
        CtState::Established
    );
    assert_eq!(state(&table), Some(TcpState::Close));
}

#[test]
fn udp_flows_are_new_until_answered_then_live_longer() {
    let mut table = table(64);
    let request = udp(CLIENT, SERVER, (5353, 53));
    let answer = udp(SERVER, CLIENT, (53, 5353));
    assert_eq!(track(&mut table, &request, 0).state, CtState::New);
    assert_eq!(track(&mut table, &request, SECOND).state, CtState::New);
    let tracked = track(&mut table, &answer, SECOND);
    assert_eq!(
        (tracked.state, tracked.direction),
        (CtState::Established, Direction::Reply)
    );
    // Unanswered flows live 30 s, answered ones 120 s.
    let lonely = udp(CLIENT, SERVER, (5354, 53));
    track(&mut table, &lonely, SECOND);
    let later = 40 * SECOND;
    assert_eq!(
        track(&mut table, &answer, later).state,
        CtState::Established
    );
    assert_eq!(
        track(&mut table, &lonely, later).state,
        CtState::New,
        "a new flow again"
    );
    assert_eq!(table.take_stats().created, 3);
}

#[test]
fn echo_replies_need_a_request_and_errors_relate_to_flows() {
    let mut table = table(64);
    let reply = echo(SERVER, CLIENT, 0, 77);
    assert_eq!(track(&mut table, &reply, 0).state, CtState::Invalid);
    assert_eq!(
        track(&mut table, &echo(CLIENT, SERVER, 8, 77), 0).state,
        CtState::New
    );
    assert_eq!(track(&mut table, &reply, 0).state, CtState::Established);
    assert_eq!(
        track(&mut table, &echo(SERVER, CLIENT, 0, 78), 0).state,
        CtState::Invalid
    );

    // Port unreachable about a tracked UDP datagram: related, travelling
    // back to the client.
    let datagram = udp(CLIENT, SERVER, (4000, 9));
    track(&mut table, &datagram, 0);
    let mut quote = Vec::from([0u8; 4]);
    quote.extend_from_slice(&datagram[..28]);
    let error = icmp(SERVER, CLIENT, 3, &quote);
    let tracked = track(&mut table, &error, 0);
    assert_eq!(
        (tracked.state, tracked.direction),
        (CtState::Related, Direction::Reply)
    );
    // About an untracked one: invalid.
    let other = udp(CLIENT, SERVER, (4001, 9));
    let mut quote = Vec::from([0u8; 4]);
    quote.extend_from_slice(&other[..28]);
    assert_eq!(
        track(&mut table, &icmp(SERVER, CLIENT, 3, &quote), 0).state,
        CtState::Invalid
    );
}

#[test]
fn garbage_is_refused_by_the_parser_not_the_table() {
    let short_quote = icmp(SERVER, CLIENT, 3, &[0, 0, 0, 0, 0x45, 0, 0]);
    let bad_version = icmp(
        SERVER,
        CLIENT,
        3,
        &[
            0, 0, 0, 0, 0x65, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0, 0,
        ],
    );
    let mut short_tcp = tcp(CLIENT, SERVER, (1, 2), SYN);
    short_tcp.truncate(30);
    short_tcp[2..4].copy_from_slice(&30u16.to_be_bytes());
    let mut fragment = udp(CLIENT, SERVER, (1, 2));
    fragment[7] = 1;
    for (packet, error) in [
        (Vec::new(), ParseError::Ip),
        (Vec::from([0x45u8; 19]), ParseError::Ip),
        (short_quote, ParseError::Quote),
        (bad_version, ParseError::Quote),
        (short_tcp, ParseError::Transport),
        (fragment, ParseError::Fragment),
    ] {
        assert_eq!(FlowPacket::parse(&packet), Err(error));
    }
}

#[test]
fn a_flood_of_new_flows_evicts_unestablished_ones_and_spares_established() {
    let mut table = table(64);
    let capacity = table.capacity();
    // Established flows fill half the table.
    let mut established = Vec::new();
    for port in 0..(capacity / 2) as u16 {
        established.push(handshake(&mut table, (10_000 + port, 80), 0));
    }
    // A SYN flood twenty times the table.
    let (mut refused, mut admitted) = (0, 0);
    for port in 0..(capacity * 20) as u32 {
        let source = [192, 0, (port >> 8) as u8, port as u8];
        match track(&mut table, &tcp(source, SERVER, (1024, 80), SYN), SECOND).state {
            CtState::New => admitted += 1,
            CtState::Full => refused += 1,
            other => panic!("{other:?}"),
        }
    }
    let stats = table.take_stats();
    assert_eq!(stats.created, admitted + capacity as u64 / 2);
    assert_eq!(stats.full, refused);
    assert!(stats.evicted > 0 && stats.evicted <= admitted);
    assert!(table.len() <= capacity);
    for tuple in &established {
        assert_eq!(table.tcp_state(tuple, SECOND), Some(TcpState::Established));
    }
}

#[test]
fn the_sweep_frees_expired_flows() {
    // Room for ten flows whatever buckets they hash to.
    let mut table = table(128);
    for port in 0..10 {
        track(&mut table, &udp(CLIENT, SERVER, (port, 53)), 0);
    }
    assert_eq!(table.len(), 10);
    table.sweep(10 * SECOND, table.capacity());
    assert_eq!(table.len(), 10, "not expired yet");
    table.sweep(31 * SECOND, table.capacity());
    assert_eq!(table.len(), 0);
    assert_eq!(table.take_stats().expired, 10);
}

/// A tracker on each of two cores with steering between them, each in a
/// graph on one loopback port (its `pass` back out of the port); the
/// seed of their owner hash.
fn steered_pair() -> (Vec<(dataplane::Executor, dataplane::PortId)>, u64) {
    use dataplane::{ExecutorBuilder, LoopbackNic, MacAddr, Mempool, Target};
    let steerings: Vec<FlowSteering> = link_steering(2)
        .into_iter()
        .map(|end| FlowSteering::new(*end.downcast::<SteerEnd>().unwrap(), None))
        .collect();
    let seed = steerings[0].seed();
    let cores = steerings
        .into_iter()
        .map(|steering| {
            let node = Conntrack::new(table(64), true).with_steering(steering);
            let mut builder = ExecutorBuilder::new();
            builder.pool(Mempool::with_heap(16, 2048).unwrap());
            let nic = LoopbackNic::new(MacAddr::default(), 16);
            let port = builder.add_port(alloc::boxed::Box::new(nic));
            let node = builder.add_node(alloc::boxed::Box::new(node));
            builder.route_rx(port, node).unwrap();
            builder.connect(node, "pass", Target::Port(port)).unwrap();
            (builder.build().unwrap(), port)
        })
        .collect();
    (cores, seed)
}

#[test]
fn two_cores_track_each_flow_on_its_owner() {
    let (mut cores, seed) = steered_pair();
    // A flow the second core owns, arriving at the first.
    let ports = (40000..)
        .map(|port| (port, 80))
        .find(|&ports| owner_core(&tuple_of(&tcp(CLIENT, SERVER, ports, SYN)), 2, seed) == 1)
        .unwrap();
    let syn = tcp(CLIENT, SERVER, ports, SYN);
    let (executor, port) = &mut cores[0];
    let mut packet = executor.pool().unwrap().alloc().unwrap();
    packet.append(syn.len()).unwrap().copy_from_slice(&syn);
    let nic = executor.nic_as::<dataplane::LoopbackNic>(*port).unwrap();
    nic.inject(packet).unwrap();
    executor.poll_once();
    let nic = executor.nic_as::<dataplane::LoopbackNic>(*port).unwrap();
    assert!(nic.take_transmitted().is_none(), "kept for its owner");
    let event = |executor: &dataplane::Executor, name: &str| {
        executor.counters().nodes[0].event_named(name).unwrap()
    };
    assert_eq!(event(executor, "handed-off"), 1);
    assert_eq!(event(executor, "flows-created"), 0);
    // The owner tracks it when it takes it in, and passes it on.
    let (owner, owner_port) = &mut cores[1];
    owner.poll_once();
    assert_eq!(event(owner, "handed-in"), 1);
    assert_eq!(event(owner, "flows-created"), 1);
    let nic = owner.nic_as::<dataplane::LoopbackNic>(*owner_port).unwrap();
    let passed = nic.take_transmitted().expect("passed by its owner");
    assert_eq!(passed.payload(), &syn[..]);
}
