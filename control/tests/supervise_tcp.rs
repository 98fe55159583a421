//! Supervision inside the `tcp` node and of the stack's own stages, on a
//! core built from a spec: the test-only `faulty-tcp` panics on a marked
//! request; its connection is reset, its port refuses connections while it
//! waits out its backoff, the other app's connection lives on, and it is
//! rebuilt from its spec. Every stage of the stack (eth, arp, ipv4,
//! ipv4-out, icmp, udp, tcp) is rebuilt by its factory into a working one.

mod support;

use control::{CoreLinks, Spec};
use dataplane::ServiceState;
use dataplane::supervise::CATCH_UNWIND;
use services::Registry;
use services::faulty_tcp::FaultyTcpKind;
use services::wire::tcp::TcpFlags;
use support::segments::{PEER_ISN, Peer, Segment};
use support::{Harness, OUR_IP, OURS, PEER, PEER_IP, advance_clock, udp_frame};

const SPEC: &str = "[[interface]]\nname = \"eth0\"\ndriver = \"loopback\"\nmac = \"02:00:00:00:00:01\"\naddress = \"10.0.0.2/24\"\n\
    [[service]]\nkind = \"tcp-echo\"\nport = 7\n\
    [[service]]\nkind = \"faulty-tcp\"\nport = 9\n\
    [[service]]\nkind = \"udp-echo\"\nport = 7\n\
    [supervision]\ninitial_backoff_ms = 50\n";

fn peer() -> Peer {
    let mut registry = Registry::with_builtin();
    registry.register_tcp::<FaultyTcpKind>().unwrap();
    let spec = Spec::parse(SPEC, &registry).unwrap();
    let mut links = CoreLinks::new();
    links.insert_shared(CATCH_UNWIND);
    Peer::with_harness(Harness::on_core(&spec, 0, links), 40_000, 9)
}

/// One connection's numbers, so that one peer can hold several.
#[derive(Clone, Copy)]
struct Numbers {
    port: u16,
    our_port: u16,
    sequence: u32,
    acknowledgment: u32,
}

/// Makes `peer` speak for `numbers`, and returns the numbers it had.
fn switch(peer: &mut Peer, numbers: Numbers) -> Numbers {
    let before = Numbers {
        port: peer.port,
        our_port: peer.our_port,
        sequence: peer.sequence,
        acknowledgment: peer.acknowledgment,
    };
    peer.port = numbers.port;
    peer.our_port = numbers.our_port;
    peer.sequence = numbers.sequence;
    peer.acknowledgment = numbers.acknowledgment;
    before
}

fn fresh(port: u16, our_port: u16) -> Numbers {
    Numbers {
        port,
        our_port,
        sequence: PEER_ISN,
        acknowledgment: 0,
    }
}

fn payloads(segments: &[Segment]) -> Vec<u8> {
    segments
        .iter()
        .flat_map(|segment| segment.payload.clone())
        .collect()
}

fn is_reset(segments: &[Segment]) -> bool {
    segments
        .iter()
        .any(|segment| segment.flags.contains(TcpFlags::RST))
}

#[test]
fn a_panicking_tcp_app_is_reset_refused_and_rebuilt_while_the_other_app_serves() {
    let mut peer = peer();
    peer.connect();
    assert_eq!(
        payloads(&peer.send(TcpFlags::PSH | TcpFlags::ACK, b"hello\n")),
        b"hello\n"
    );
    // A connection to the other app of the core.
    let faulty = switch(&mut peer, fresh(40_001, 7));
    peer.connect();
    assert_eq!(
        payloads(&peer.send(TcpFlags::PSH | TcpFlags::ACK, b"one")),
        b"one"
    );
    // The marked request: its connection is reset, the stack goes on.
    let echo = switch(&mut peer, faulty);
    let replies = peer.send(TcpFlags::PSH | TcpFlags::ACK, b"PANIC\n");
    assert!(is_reset(&replies), "{replies:?}");
    assert!(payloads(&replies).is_empty(), "{replies:?}");
    assert_eq!(peer.event("connections-reset-app-failed"), 1);
    let counters = peer.harness.counters();
    let app = counters
        .parts
        .iter()
        .find(|part| part.name == "faulty-tcp")
        .unwrap();
    assert_eq!(app.supervision.state(), ServiceState::Backoff);
    assert_eq!(app.supervision.panics.get(), 1);
    let tcp = counters
        .nodes
        .iter()
        .find(|node| node.name == "tcp")
        .unwrap();
    assert_eq!(
        tcp.supervision.failures(),
        0,
        "the stack itself never failed"
    );
    // The other app's connection lives on.
    switch(&mut peer, echo);
    let echoed = payloads(&peer.send(TcpFlags::PSH | TcpFlags::ACK, b"two"));
    assert!(echoed.ends_with(b"two"), "{echoed:?}");
    // Everything echoed acknowledged, so that nothing is retransmitted.
    peer.acknowledgment = peer.acknowledgment.wrapping_add(6);
    peer.send(TcpFlags::ACK, b"");
    // While it backs off, its port refuses connections.
    switch(&mut peer, fresh(40_002, 9));
    let header = peer.header(TcpFlags::SYN, support::segments::syn_options(1));
    let replies = peer.exchange(&header, b"");
    assert!(is_reset(&replies), "{replies:?}");
    assert_eq!(peer.drops("app-down"), 1);
    assert_eq!(
        app.supervision.dropped.get(),
        2,
        "the marked call and the SYN"
    );
    // After the backoff it is rebuilt and answers.
    advance_clock(50_000_000);
    switch(&mut peer, fresh(40_003, 9));
    peer.connect();
    assert_eq!(
        payloads(&peer.send(TcpFlags::PSH | TcpFlags::ACK, b"back\n")),
        b"back\n"
    );
    assert_eq!(app.supervision.state(), ServiceState::Running);
    assert_eq!(app.supervision.restarts.get(), 1);
}

/// Sends a datagram to udp-echo; true when it came back.
fn udp_echoed(harness: &mut Harness) -> bool {
    let frame = udp_frame((OURS, PEER), (PEER_IP, OUR_IP), (40_000, 7), 64, b"ping");
    harness.exchange(0, &frame).is_some()
}

#[test]
fn every_stage_of_the_stack_is_rebuilt_into_a_working_one() {
    let mut peer = peer();
    let stages = ["eth", "arp", "ipv4", "ipv4-out", "icmp", "udp", "tcp"];
    let names: Vec<&str> = peer
        .harness
        .counters()
        .nodes
        .iter()
        .map(|node| node.name)
        .collect();
    for (round, stage) in stages.into_iter().enumerate() {
        let node = names.iter().position(|name| *name == stage).unwrap();
        assert!(peer.harness.executor.restart_node(node), "{stage}");
        // The rebuilt node ticks first: a rebuilt ARP announces itself.
        peer.harness.executor.poll_once();
        while peer.harness.take(0).is_some() {}
        // A rebuilt ARP has lost its cache: the peer is learnt again.
        peer.harness.learn((PEER, PEER_IP));
        assert!(udp_echoed(&mut peer.harness), "udp-echo after {stage}");
        switch(&mut peer, fresh(41_000 + round as u16, 7));
        peer.connect();
        assert_eq!(
            payloads(&peer.send(TcpFlags::PSH | TcpFlags::ACK, b"hi")),
            b"hi",
            "tcp-echo after {stage}"
        );
        let counters = peer.harness.counters();
        assert_eq!(
            counters.nodes[node].supervision.restarts.get(),
            1,
            "{stage}"
        );
    }
    // The apps of the rebuilt stack count on in the counters the graph
    // exports: a marked request still shows.
    switch(&mut peer, fresh(42_000, 9));
    peer.connect();
    assert!(is_reset(
        &peer.send(TcpFlags::PSH | TcpFlags::ACK, b"PANIC\n")
    ));
    let counters = peer.harness.counters();
    let app = counters
        .parts
        .iter()
        .find(|part| part.name == "faulty-tcp")
        .unwrap();
    assert_eq!(app.supervision.panics.get(), 1);
    assert_eq!(app.supervision.state(), ServiceState::Backoff);
}
