//! Cores built from a spec, idle: they sleep until their services' next
//! deadline (an ARP retry, a TCP retransmission) and what was due then
//! happens on the first poll after the sleep; a core handing work to a
//! sleeping one over a ring rings its doorbell (the kv service's shards).

mod support;

use dataplane::{Doorbell, Idle, WakeCause};
use services::wire::ArpPacket;
use services::wire::tcp::TcpFlags;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use support::segments::Peer;
use support::*;

/// The pipeline tests' echo interface with a TCP echo on 7.
const TCP_SPEC: &str = "[[interface]]\nname = \"eth0\"\ndriver = \"loopback\"\nmac = \"02:00:00:00:00:01\"\naddress = \"10.0.0.2/24\"\n\
    [[service]]\nkind = \"tcp-echo\"\nport = 7\n";

/// The deadline `harness`'s core would sleep until; fails if it would
/// not sleep.
fn sleep_deadline(harness: &mut Harness) -> Option<u64> {
    match harness.executor.prepare_sleep() {
        Idle::Sleep { deadline_ns } => deadline_ns,
        Idle::Busy => panic!("the core found work"),
    }
}

/// Sleeps `harness`'s core until its deadline: the clock jumps there, the
/// timer wakes it, it polls once.
fn sleep_until_deadline(harness: &mut Harness) {
    let deadline = sleep_deadline(harness).expect("a deadline to wake for");
    let now = clock();
    assert!(deadline > now, "deadline {deadline} is not after now {now}");
    advance_clock(deadline - now);
    harness.executor.finish_sleep(WakeCause::Timer);
    harness.executor.poll_once();
}

#[test]
fn an_idle_core_without_timers_sleeps_without_a_deadline() {
    let mut harness = Harness::new(ECHO_SPEC);
    assert_eq!(sleep_deadline(&mut harness), None);
    harness.executor.finish_sleep(WakeCause::Other);
    // A binding learnt: the core wakes when it goes stale.
    advance_clock(1_000_000);
    harness.learn((PEER, PEER_IP));
    assert_eq!(
        sleep_deadline(&mut harness),
        Some(clock() + services::arp_cache::ARP_ENTRY_LIFETIME_NS)
    );
}

#[test]
fn an_unanswered_arp_request_is_retried_when_the_sleeping_core_wakes_for_it() {
    let mut harness = Harness::new(ECHO_SPEC);
    advance_clock(1_000_000);
    // A port-unreachable error for a host we do not know: an ARP request.
    let stranger = std::net::Ipv4Addr::new(10, 0, 0, 77);
    let lost = udp_frame((OURS, PEER), (stranger, OUR_IP), (40000, 9), 64, b"x");
    assert!(harness.exchange(0, &lost).is_some(), "first ARP request");
    let asked = clock();
    assert_eq!(
        sleep_deadline(&mut harness),
        Some(asked + services::arp::REQUEST_INTERVAL_NS)
    );
    harness.executor.finish_sleep(WakeCause::Other);
    sleep_until_deadline(&mut harness);
    let retry = harness.take(0).expect("the ARP request, again");
    assert_eq!(
        ArpPacket::new_checked(&retry[14..]).unwrap().target_ip(),
        stranger
    );
    // Retried until the resolution times out, each time woken for it.
    for _ in 0..3 {
        sleep_until_deadline(&mut harness);
    }
    let counters = harness.counters();
    assert_eq!(counters.node_drops("arp", "resolution-timeout"), 1);
    assert_eq!(counters.idle.wakeups_by_timer.get(), 4);
}

#[test]
fn unacknowledged_data_is_probed_and_sent_again_as_the_sleeping_core_wakes_for_it() {
    let mut peer = Peer::new(TCP_SPEC, 40000, 7);
    peer.connect();
    // Two echoes in flight, more than a segment's worth together and
    // neither acknowledged (the peer's ACK stays at our SYN-ACK): no
    // delayed ACK can be holding their answer back.
    let (first, second) = (vec![b'a'; 1000], vec![b'b'; 1000]);
    for payload in [&first, &second] {
        let replies = peer.send(TcpFlags::PSH | TcpFlags::ACK, payload);
        assert_eq!(replies.len(), 1, "{replies:?}");
    }
    let sent = clock();
    // Woken first for the tail loss probe, then for the retransmission
    // timeout; the binding the peer's ARP taught goes stale much later.
    sleep_until_deadline(&mut peer.harness);
    assert_eq!(peer.event("tail-loss-probes"), 1);
    assert_eq!(peer.event("retransmits"), 0);
    sleep_until_deadline(&mut peer.harness);
    assert_eq!(peer.event("rto-expired"), 1);
    assert_eq!(peer.event("retransmits"), 1);
    let waited = clock() - sent;
    assert!(
        (200_000_000..=1_000_000_000).contains(&waited),
        "the retransmission came {} ms after sending",
        waited / 1_000_000
    );
    // The probe and the retransmission, each resending bytes of the
    // unacknowledged stream (repacketised as the sender sees fit).
    let stream = [first, second].concat();
    let again = peer.transmitted();
    let lengths: Vec<usize> = again.iter().map(|segment| segment.payload.len()).collect();
    assert_eq!(
        again.len(),
        2,
        "the probe and the retransmission: {lengths:?}"
    );
    for segment in &again {
        assert!(
            !segment.payload.is_empty()
                && stream
                    .windows(segment.payload.len())
                    .any(|bytes| bytes == segment.payload),
            "a resent segment of {} bytes that the stream does not hold",
            segment.payload.len()
        );
    }
    assert_eq!(peer.harness.counters().idle.wakeups_by_timer.get(), 2);
}

#[test]
fn a_lone_unacknowledged_segment_wakes_the_core_once_at_the_retransmission_timeout() {
    let mut peer = Peer::new(TCP_SPEC, 40000, 7);
    peer.connect();
    let replies = peer.send(TcpFlags::PSH | TcpFlags::ACK, b"hello");
    assert_eq!(replies.len(), 1, "{replies:?}");
    let sent = clock();
    // A lone segment's probe waits out the peer's worst-case delayed ACK
    // (RFC 8985 7.2), which puts it at the retransmission timeout: one
    // wake-up, one retransmission, no probe before it.
    sleep_until_deadline(&mut peer.harness);
    assert_eq!(peer.event("tail-loss-probes"), 0);
    assert_eq!(peer.event("rto-expired"), 1);
    assert_eq!(peer.event("retransmits"), 1);
    assert!(clock() - sent >= 200_000_000);
    let again = peer.transmitted();
    assert_eq!(again.len(), 1, "{again:?}");
    assert_eq!(again[0].payload, b"hello");
    assert_eq!(peer.harness.counters().idle.wakeups_by_timer.get(), 1);
}

/// A doorbell that counts its rings, in a core's links.
fn with_doorbell(mut links: control::CoreLinks) -> (control::CoreLinks, Arc<AtomicUsize>) {
    let rings = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&rings);
    links.insert_shared(Arc::new(Doorbell::new(move || {
        // Ordering: Relaxed: read on this thread after the ringing call.
        counter.fetch_add(1, Ordering::Relaxed);
    })));
    (links, rings)
}

/// A kv `set` on core 0 of a key core 1 owns, both cores asleep: core 0
/// rings core 1, core 1 answers and rings core 0, core 0 replies.
#[test]
fn a_kv_request_wakes_the_sleeping_shard_and_its_answer_the_origin() {
    let text = format!("{TCP_SPEC}[[service]]\nkind = \"kv\"\nport = 11211\n");
    let spec = control::Spec::parse(&text, &services::Registry::with_builtin()).unwrap();
    let mut links = control::core_links(&spec, 2);
    let (second_links, second_rings) = with_doorbell(links.pop().unwrap());
    let (first_links, first_rings) = with_doorbell(links.pop().unwrap());
    let mut second = Harness::on_core(&spec, 1, second_links);
    let first = Harness::on_core(&spec, 0, first_links);
    let mut peer = Peer::with_harness(first, 40000, 11211);
    peer.connect();
    let key = (0..)
        .map(|index| format!("key{index}"))
        .find(|key| services::kv::hash::shard_of(key.as_bytes(), 2) == 1)
        .unwrap();
    assert_eq!(
        sleep_deadline(&mut second),
        None,
        "core 1 has nothing to do"
    );
    let command = format!("set {key} 0 0 1\r\nx\r\n");
    let replies = peer.send(TcpFlags::PSH | TcpFlags::ACK, command.as_bytes());
    assert!(
        replies.iter().all(|segment| segment.payload.is_empty()),
        "no answer before core 1's: {replies:?}"
    );
    assert_eq!(second_rings.load(Ordering::Relaxed), 1, "core 1 was rung");
    // Core 0 sleeps too (until its delayed ACK or retransmission timer).
    assert!(matches!(
        peer.harness.executor.prepare_sleep(),
        Idle::Sleep { .. }
    ));
    second.executor.finish_sleep(WakeCause::Doorbell);
    second.executor.poll_once();
    assert_eq!(first_rings.load(Ordering::Relaxed), 1, "core 0 was rung");
    assert_eq!(sleep_deadline(&mut second), None, "core 1 is done");
    peer.harness.executor.finish_sleep(WakeCause::Doorbell);
    peer.harness.executor.poll_once();
    let answer: Vec<u8> = peer
        .transmitted()
        .into_iter()
        .flat_map(|segment| segment.payload)
        .collect();
    assert_eq!(answer, b"STORED\r\n");
    assert_eq!(peer.harness.counters().idle.wakeups_by_doorbell.get(), 1);
}
