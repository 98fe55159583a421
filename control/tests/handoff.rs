//! A TCP app one core serves alone (as the management plane is served),
//! on two cores: the segments the NIC steers to the other core are handed
//! over through a ring, wake the serving core from its sleep, and are
//! answered from the serving core's own queue; everything else on the
//! other core stays there.

mod support;

use core::net::SocketAddrV4;
use dataplane::{Doorbell, Idle, WakeCause};
use services::registry::PlatformListener;
use services::tcp::{Hosted, TcpEcho, link_handoff};
use services::wire::tcp::TcpFlags;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use support::segments::{Peer, Segment, syn_options};
use support::*;

/// The pipeline tests' interface with a TCP echo on 7 (so that the other
/// core has a TCP stack of its own).
const TCP_SPEC: &str = "[[interface]]\nname = \"eth0\"\ndriver = \"loopback\"\nmac = \"02:00:00:00:00:01\"\naddress = \"10.0.0.2/24\"\n\
    [[service]]\nkind = \"tcp-echo\"\nport = 7\n";

/// The port the platform's app listens on, on core 0 only.
const PORT: u16 = 8080;

/// Two cores of `spec`, each with a doorbell that counts its rings, and an
/// echo app on `PORT` served by core 0 alone with the handoff rings that
/// `management::attach` makes. Returns core 1's peer, core 0 (learnt the
/// peer) and core 0's doorbell count.
fn two_cores(spec: &str) -> (Peer, Harness, Arc<AtomicUsize>) {
    let spec = control::Spec::parse(spec, &services::Registry::with_builtin()).unwrap();
    let mut links = control::core_links(&spec, 2);
    links[0].insert_shared(PlatformListener {
        port: PORT,
        listener: Box::new(Hosted::new("echo-8080", TcpEcho)),
    });
    let listen = SocketAddrV4::new(OUR_IP, PORT);
    for (core, sender, receiver) in link_handoff(2, 0, listen) {
        links[core].insert_shared(sender);
        links[0].insert_shared(receiver);
    }
    let mut rings = Vec::new();
    for core_links in &mut links {
        let count = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&count);
        core_links.insert_shared(Arc::new(Doorbell::new(move || {
            // Ordering: Relaxed: read on this thread after the ringing call.
            counter.fetch_add(1, Ordering::Relaxed);
        })));
        rings.push(count);
    }
    let second_links = links.pop().unwrap();
    let first_links = links.pop().unwrap();
    let second = Harness::on_core(&spec, 1, second_links);
    let mut first = Harness::on_core(&spec, 0, first_links);
    let peer = Peer::with_harness(second, 40000, PORT);
    first.learn((PEER, PEER_IP));
    (peer, first, rings.swap_remove(0))
}

/// Every segment core `harness` transmitted since the last look.
fn sent_by(harness: &mut Harness) -> Vec<Segment> {
    core::iter::from_fn(|| harness.take(0))
        .map(|frame| Segment::parse(&frame))
        .collect()
}

/// Core 0 sleeps (it has nothing to do); returns once it would.
fn asleep(core: &mut Harness) {
    assert!(
        matches!(core.executor.prepare_sleep(), Idle::Sleep { .. }),
        "core 0 found work"
    );
}

/// Core 0 woken by its doorbell, one poll, and what it sent.
fn woken_by_doorbell(core: &mut Harness) -> Vec<Segment> {
    core.executor.finish_sleep(WakeCause::Doorbell);
    core.executor.poll_once();
    sent_by(core)
}

#[test]
fn a_connection_steered_to_the_other_core_is_served_by_the_owner() {
    let (mut peer, mut first, first_rings) = two_cores(TCP_SPEC);
    asleep(&mut first);
    let header = peer.header(TcpFlags::SYN, syn_options(peer.timestamp));
    peer.sequence = peer.sequence.wrapping_add(1);
    assert!(
        peer.exchange(&header, b"").is_empty(),
        "core 1 answered the SYN itself"
    );
    let second = peer.harness.counters();
    assert_eq!(second.node_events("tcp-handoff", "handed-over"), 1);
    assert_eq!(first_rings.load(Ordering::Relaxed), 1, "core 0 was rung");

    let replies = woken_by_doorbell(&mut first);
    assert_eq!(replies.len(), 1, "{replies:?}");
    let syn_ack = &replies[0];
    assert_eq!(syn_ack.flags, TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!(
        (syn_ack.source_port, syn_ack.destination_port),
        (PORT, 40000)
    );
    peer.acknowledgment = syn_ack.sequence.wrapping_add(1);
    peer.echo = syn_ack.timestamp();

    asleep(&mut first);
    assert!(peer.send(TcpFlags::ACK, b"").is_empty());
    assert!(
        peer.send(TcpFlags::PSH | TcpFlags::ACK, b"hello")
            .is_empty()
    );
    assert_eq!(first_rings.load(Ordering::Relaxed), 2, "rung once more");
    let echoed: Vec<u8> = woken_by_doorbell(&mut first)
        .into_iter()
        .flat_map(|segment| segment.payload)
        .collect();
    assert_eq!(echoed, b"hello");
    assert_eq!(second.node_events("tcp-handoff", "handed-over"), 3);
    let first_counters = first.counters();
    assert_eq!(first_counters.node_events("tcp", "connections-accepted"), 1);
    assert_eq!(first_counters.idle.wakeups_by_doorbell.get(), 2);
    // Core 1's own stack never saw them.
    assert_eq!(second.node_events("tcp", "connections-accepted"), 0);
    assert_eq!(second.node_drops("tcp", "port-closed"), 0);
    assert_eq!(second.node_drops("tcp", "wrong-core"), 0);

    // Its own port stays on core 1.
    let mut own = Peer::with_harness(peer.harness, 40001, 7);
    let syn_ack = own.syn();
    assert_eq!(syn_ack.source_port, 7);
    assert_eq!(second.node_events("tcp-handoff", "handed-over"), 3);
}

#[test]
fn a_core_without_tcp_services_hands_over_and_refuses_closed_ports() {
    let (mut peer, mut first, _) = two_cores(ECHO_SPEC);
    let header = peer.header(TcpFlags::SYN, syn_options(peer.timestamp));
    assert!(peer.exchange(&header, b"").is_empty());
    first.executor.poll_once();
    let replies = sent_by(&mut first);
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!(replies[0].flags, TcpFlags::SYN | TcpFlags::ACK);

    // Another port: core 1 answers as core 0 would, with RST.
    let mut closed = Peer::with_harness(peer.harness, 40002, 9);
    let header = closed.header(TcpFlags::SYN, syn_options(closed.timestamp));
    let replies = closed.exchange(&header, b"");
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!(replies[0].flags, TcpFlags::RST | TcpFlags::ACK);
    let second = closed.harness.counters();
    assert_eq!(second.node_drops("tcp", "port-closed"), 1);
    assert_eq!(second.node_events("tcp-handoff", "handed-over"), 1);
}

#[test]
fn the_platform_app_is_carried_into_a_rebuilt_stack_and_still_served_through_the_handoff() {
    let (mut peer, mut first, _) = two_cores(TCP_SPEC);
    // Core 0's stack, which serves the platform's app, rebuilt: the app
    // is carried over (no recipe builds it), the handoff rings stay.
    let counters = first.counters();
    let tcp = counters
        .nodes
        .iter()
        .position(|node| node.name == "tcp")
        .unwrap();
    assert!(first.executor.restart_node(tcp));
    assert_eq!(counters.nodes[tcp].supervision.restarts.get(), 1);
    first.executor.poll_once();
    while first.take(0).is_some() {}
    let header = peer.header(TcpFlags::SYN, syn_options(peer.timestamp));
    peer.sequence = peer.sequence.wrapping_add(1);
    assert!(peer.exchange(&header, b"").is_empty());
    first.executor.poll_once();
    let replies = sent_by(&mut first);
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!(replies[0].flags, TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!(replies[0].source_port, PORT);
    peer.acknowledgment = replies[0].sequence.wrapping_add(1);
    peer.echo = replies[0].timestamp();
    assert!(peer.send(TcpFlags::ACK, b"").is_empty());
    assert!(
        peer.send(TcpFlags::PSH | TcpFlags::ACK, b"again")
            .is_empty()
    );
    first.executor.poll_once();
    let echoed: Vec<u8> = sent_by(&mut first)
        .into_iter()
        .flat_map(|segment| segment.payload)
        .collect();
    assert_eq!(echoed, b"again");
    assert_eq!(
        counters.node_events("tcp", "connections-accepted"),
        1,
        "by the rebuilt stack"
    );
}
