//! Supervision of nodes linked to other cores, on two cores built from one
//! spec with their cross-core links (`control::core_links`): a rebuilt
//! `tcp` stack, its `kv` shard, and an `arp` that shares its cache take
//! the failed one's ends of the rings (the other core keeps its own), so
//! that kv requests for the other core's keys, TCP segments that arrive
//! on the wrong core, and ARP bindings learnt on the other core still
//! cross after the rebuild.

mod support;

use control::Spec;
use dataplane::ServiceState;
use dataplane::supervise::CATCH_UNWIND;
use services::Registry;
use services::wire::tcp::TcpFlags;
use support::segments::{Peer, Segment};
use support::{Harness, OUR_IP, OURS, PEER, PEER_IP, advance_clock, arp_frame, udp_frame};

const SPEC: &str = "[[interface]]\nname = \"eth0\"\ndriver = \"loopback\"\nmac = \"02:00:00:00:00:01\"\naddress = \"10.0.0.2/24\"\n\
    [[service]]\nkind = \"kv\"\nport = 11211\n\
    [[service]]\nkind = \"tcp-echo\"\nport = 7\n\
    [[service]]\nkind = \"udp-echo\"\nport = 7\n";

/// Cores 0 and 1 of `SPEC`, linked, with panics caught.
fn two_cores() -> (Harness, Harness) {
    let spec = Spec::parse(SPEC, &Registry::with_builtin()).unwrap();
    let mut links = control::core_links(&spec, 2);
    let mut second = links.pop().unwrap();
    let mut first = links.pop().unwrap();
    second.insert_shared(CATCH_UNWIND);
    first.insert_shared(CATCH_UNWIND);
    let second = Harness::on_core(&spec, 1, second);
    let first = Harness::on_core(&spec, 0, first);
    (first, second)
}

/// Rebuilds the node named `name` of `harness` now, checks it counts one
/// restart and runs, and lets it tick (a rebuilt ARP announces itself).
fn restart(harness: &mut Harness, name: &str) {
    let counters = harness.counters();
    let node = counters
        .nodes
        .iter()
        .position(|node| node.name == name)
        .unwrap();
    assert!(harness.executor.restart_node(node), "{name}");
    assert_eq!(counters.nodes[node].supervision.restarts.get(), 1, "{name}");
    assert_eq!(
        counters.nodes[node].supervision.state(),
        ServiceState::Running,
        "{name}"
    );
    advance_clock(2_000_000);
    harness.executor.poll_once();
    while harness.take(0).is_some() {}
}

fn payloads(segments: &[Segment]) -> Vec<u8> {
    segments
        .iter()
        .flat_map(|segment| segment.payload.clone())
        .collect()
}

/// A key of `SPEC`'s kv that shard `shard` (of two) owns.
fn key_of(shard: usize) -> String {
    (0..)
        .map(|n| format!("key{n}"))
        .find(|key| services::kv::hash::shard_of(key.as_bytes(), 2) == shard)
        .unwrap()
}

/// Sends `request` to kv on core 0 and runs both cores (a bounded number
/// of rounds) until `expected` came back; returns what came back.
fn ask(peer: &mut Peer, other: &mut Harness, request: &[u8], expected: &[u8]) -> Vec<u8> {
    let mut answer = payloads(&peer.send(TcpFlags::PSH | TcpFlags::ACK, request));
    for _ in 0..8 {
        if answer.len() >= expected.len() {
            break;
        }
        advance_clock(2_000_000);
        other.executor.poll_once();
        peer.harness.executor.poll_once();
        answer.extend(payloads(&peer.transmitted()));
    }
    peer.acknowledgment = peer.acknowledgment.wrapping_add(answer.len() as u32);
    peer.send(TcpFlags::ACK, b"");
    answer
}

#[test]
fn kv_answers_for_the_other_cores_keys_after_both_stacks_are_rebuilt() {
    let (first, mut second) = two_cores();
    let mut peer = Peer::with_harness(first, 40_000, 11211);
    // Both cores' stacks, and the kv shard in each, rebuilt.
    restart(&mut second, "tcp");
    restart(&mut peer.harness, "tcp");
    peer.harness.learn((PEER, PEER_IP));
    peer.connect();
    let remote = key_of(1);
    let local = key_of(0);
    for key in [&remote, &local] {
        let set = format!("set {key} 0 0 5\r\nhello\r\n");
        assert_eq!(
            ask(&mut peer, &mut second, set.as_bytes(), b"STORED\r\n"),
            b"STORED\r\n",
            "{key}"
        );
        let get = format!("get {key}\r\n");
        let expected = format!("VALUE {key} 0 5\r\nhello\r\nEND\r\n");
        assert_eq!(
            String::from_utf8(ask(
                &mut peer,
                &mut second,
                get.as_bytes(),
                expected.as_bytes()
            ))
            .unwrap(),
            expected,
            "{key}"
        );
    }
    // The remote key is in core 1's shard: rebuilding core 1's stack
    // again empties that shard (a cache's semantics), not core 0's.
    restart_again(&mut second, "tcp");
    let get = format!("get {remote}\r\n");
    assert_eq!(
        ask(&mut peer, &mut second, get.as_bytes(), b"END\r\n"),
        b"END\r\n"
    );
    let get = format!("get {local}\r\n");
    let expected = format!("VALUE {local} 0 5\r\nhello\r\nEND\r\n");
    assert_eq!(
        String::from_utf8(ask(
            &mut peer,
            &mut second,
            get.as_bytes(),
            expected.as_bytes()
        ))
        .unwrap(),
        expected
    );
}

/// [`restart`] for a node restarted before.
fn restart_again(harness: &mut Harness, name: &str) {
    let counters = harness.counters();
    let node = counters
        .nodes
        .iter()
        .position(|node| node.name == name)
        .unwrap();
    let before = counters.nodes[node].supervision.restarts.get();
    assert!(harness.executor.restart_node(node), "{name}");
    assert_eq!(
        counters.nodes[node].supervision.restarts.get(),
        before + 1,
        "{name}"
    );
    advance_clock(2_000_000);
    harness.executor.poll_once();
    while harness.take(0).is_some() {}
}

#[test]
fn a_rebuilt_stack_still_takes_its_segments_from_the_other_core() {
    let (first, second) = two_cores();
    let mut peer = Peer::with_harness(first, 40_000, 7);
    let mut stray = Peer::with_harness(second, 40_000, 7);
    restart(&mut stray.harness, "tcp");
    restart(&mut peer.harness, "tcp");
    peer.harness.learn((PEER, PEER_IP));
    stray.harness.learn((PEER, PEER_IP));
    peer.connect();
    assert_eq!(peer.event("connections-accepted"), 1);
    // The same connection's next segment, steered to core 1: passed to
    // core 0 through the rebuilt stacks' rings, not reset.
    stray.sequence = peer.sequence;
    stray.acknowledgment = peer.acknowledgment;
    stray.timestamp = peer.timestamp;
    let replies = stray.send(TcpFlags::ACK | TcpFlags::PSH, b"astray");
    assert!(replies.is_empty(), "no RST: {replies:?}");
    assert_eq!(stray.event("segments-handed-off"), 1);
    assert_eq!(stray.event("resets-sent"), 0);
    advance_clock(2_000_000);
    peer.harness.executor.poll_once();
    let echoed = peer.transmitted();
    assert_eq!(echoed.len(), 1, "{echoed:?}");
    assert_eq!(echoed[0].payload, b"astray");
    assert_eq!(peer.event("segments-handed-in"), 1);
}

#[test]
fn a_rebuilt_arp_still_shares_what_it_learns_with_the_other_core() {
    let (mut first, mut second) = two_cores();
    restart(&mut first, "arp");
    restart(&mut second, "arp");
    assert!(arp_of(&first).has_relay() && arp_of(&second).has_relay());
    // A reply reaches core 1 (an answer to core 0's request that the NIC
    // steered there): core 1 learns it and passes it to core 0.
    let reply = arp_frame(2, (PEER, PEER_IP), (OURS, OUR_IP), OURS);
    second.inject(0, &reply);
    second.executor.poll_once();
    advance_clock(2_000_000);
    first.executor.poll_once();
    while first.take(0).is_some() {}
    // Core 0 knows the peer without asking who it is.
    for (harness, core) in [(&first, 0), (&second, 1)] {
        let arp = arp_of(harness);
        assert_eq!(
            arp.cache().lookup(PEER_IP, support::clock()),
            Some(PEER),
            "core {core}"
        );
    }
    // And core 0's answers still go out.
    let datagram = udp_frame((OURS, PEER), (PEER_IP, OUR_IP), (40_000, 7), 64, b"ping");
    let answer = first.exchange(0, &datagram).expect("an answer");
    assert!(answer.ends_with(b"ping"));
}

/// The `arp` node of `harness`.
fn arp_of(harness: &Harness) -> &services::arp::Arp {
    let node = harness
        .counters()
        .nodes
        .iter()
        .position(|node| node.name == "arp")
        .unwrap();
    harness
        .executor
        .node_as::<services::arp::Arp>(node)
        .unwrap()
}
