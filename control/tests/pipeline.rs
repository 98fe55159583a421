//! The per-core pipeline end to end: `build_core` on loopback NICs, real
//! frames in, real frames out, counters checked.

mod support;

use control::Spec;
use control::{CoreLinks, build_core};
use core::net::Ipv4Addr;
use dataplane::capture::Direction;
use dataplane::{LoopbackNic, MacAddr, Mempool, Nic, SharedNic};
use services::Registry;
use services::malformed_frames;
use services::wire::ethernet::EthernetFrame;
use services::wire::{ArpPacket, IcmpPacket, Ipv4Packet, UdpPacket};
use support::*;

#[test]
fn every_malformed_frame_bumps_exactly_its_counter_and_sends_only_its_reply() {
    let mut harness = Harness::new(ECHO_SPEC);
    // Teach the ARP cache the peer so that nothing could wait on resolution.
    harness.learn((PEER, PEER_IP));
    let frames = malformed_frames(OURS, OUR_IP, PEER, PEER_IP);
    assert!(frames.len() >= 60, "only {} kinds", frames.len());
    let mut names: Vec<_> = frames.iter().map(|frame| frame.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), frames.len(), "names are unique");
    let counters = harness.counters();
    for frame in &frames {
        let before = all_drops(&counters);
        let expected_before = counters.node_drops(frame.counter.0, frame.counter.1);
        assert!(
            counters
                .nodes
                .iter()
                .any(|node| node.name == frame.counter.0
                    && node.drop_reasons.contains(&frame.counter.1)),
            "{}: no counter {:?}",
            frame.name,
            frame.counter
        );
        for (index, first) in frame.preceded_by.iter().enumerate() {
            assert!(
                harness.exchange(0, first).is_none(),
                "{}: frame {index} before it was answered",
                frame.name
            );
        }
        assert_eq!(
            all_drops(&counters),
            before,
            "{}: the frames before it moved a counter",
            frame.name
        );
        if frame.after_ns > 0 {
            // The peer's binding must outlive the wait.
            harness.learn((PEER, PEER_IP));
        }
        let tx_before = counters.tx_packets.get();
        let mut reply = harness.exchange(0, &frame.bytes);
        if frame.after_ns > 0 {
            assert!(reply.is_none(), "{}: answered at once", frame.name);
            assert_eq!(
                counters.node_drops(frame.counter.0, frame.counter.1),
                expected_before,
                "{}: moved before its time",
                frame.name
            );
            advance_clock(frame.after_ns);
            harness.executor.poll_once();
            reply = harness.take(0);
        }
        assert_eq!(reply, frame.reply, "{}: wrong reply", frame.name);
        assert!(harness.take(0).is_none(), "{}: a second reply", frame.name);
        assert_eq!(
            counters.tx_packets.get(),
            tx_before + u64::from(frame.reply.is_some()),
            "{}",
            frame.name
        );
        assert_eq!(
            counters.node_drops(frame.counter.0, frame.counter.1),
            expected_before + 1,
            "{}: {:?} did not move by one",
            frame.name,
            frame.counter
        );
        let after = all_drops(&counters);
        let moved: Vec<_> = before
            .iter()
            .zip(&after)
            .filter(|(old, new)| old.1 != new.1)
            .map(|(_, new)| new.0.clone())
            .collect();
        assert_eq!(moved.len(), 1, "{}: counters moved: {moved:?}", frame.name);
    }
    assert_eq!(counters.executor_drops(), 0);
    // Still answers afterwards.
    let reply = harness.learn((PEER, PEER_IP));
    assert_eq!(&reply[..6], &PEER.0);
    drop(harness);
}

#[test]
fn protocol_unreachable_is_byte_exact() {
    let mut harness = Harness::new(ECHO_SPEC);
    harness.learn((PEER, PEER_IP));
    // Computed independently (Python): 10.0.0.1 → 10.0.0.2, protocol 253,
    // "experiment"; the answer is ICMP 3/2 from 10.0.0.2 quoting the
    // header and the first 8 bytes.
    let request = hex(
        "02000000000102000000000208004500001e0000000040fd65e10a0000010a0000026578706572696d656e74",
    );
    let expected = hex(concat!(
        "02000000000202000000000108004500003800000000400166c30a0000020a0000010302475100000000",
        "4500001e0000000040fd65e10a0000010a0000026578706572696d65",
    ));
    assert_eq!(harness.exchange(0, &request), Some(expected));
    assert_eq!(harness.counters().node_drops("ipv4", "unknown-protocol"), 1);
}

#[test]
fn udp_echo_sends_exactly_the_udp_length_bytes() {
    let mut harness = Harness::new(ECHO_SPEC);
    harness.learn((PEER, PEER_IP));
    let datagram = udp_frame((OURS, PEER), (PEER_IP, OUR_IP), (40000, 7), 64, b"payload");
    let mut padded = datagram.clone();
    padded.extend_from_slice(b"trailing bytes, not UDP");
    let total = (padded.len() - 14) as u16;
    padded[16..18].copy_from_slice(&total.to_be_bytes());
    padded[24..26].fill(0);
    let checksum = services::wire::checksum::checksum(&padded[14..34]);
    padded[24..26].copy_from_slice(&checksum.to_be_bytes());
    let reply = harness.exchange(0, &padded).expect("echo");
    let unpadded = harness.exchange(0, &datagram).expect("echo");
    assert_eq!(reply, unpadded, "the padding is neither echoed nor counted");
    assert_eq!(reply.len(), datagram.len());
    let ip = Ipv4Packet::new_checked(&reply[14..]).unwrap();
    assert!(ip.verify_checksum());
    assert_eq!(usize::from(ip.total_len()), datagram.len() - 14);
    let udp = UdpPacket::new_checked(ip.payload()).unwrap();
    assert_eq!(udp.payload(), b"payload");
    assert!(udp.verify_checksum(OUR_IP, PEER_IP));
}

#[test]
fn arp_requests_from_addresses_no_neighbour_owns_are_ignored() {
    let mut harness = Harness::new(ECHO_SPEC);
    for sender in [
        Ipv4Addr::new(127, 0, 0, 1),
        Ipv4Addr::new(0, 0, 0, 7),
        Ipv4Addr::new(224, 0, 0, 251),
        Ipv4Addr::new(255, 255, 255, 255),
        Ipv4Addr::new(10, 0, 0, 255),
    ] {
        let request = arp_frame(
            1,
            (PEER, sender),
            (MacAddr([0; 6]), OUR_IP),
            MacAddr::BROADCAST,
        );
        assert!(harness.exchange(0, &request).is_none(), "{sender}");
    }
    assert_eq!(harness.counters().node_drops("arp", "bad-sender"), 5);
    harness.learn((PEER, PEER_IP));
}

#[test]
fn arp_request_gets_a_reply_in_place() {
    let mut harness = Harness::new(ECHO_SPEC);
    let mut request = arp_frame(
        1,
        (PEER, PEER_IP),
        (MacAddr([0; 6]), OUR_IP),
        MacAddr::BROADCAST,
    );
    request.resize(60, 0); // Ethernet padding, kept in the reply
    let reply = harness.exchange(0, &request).expect("a reply");
    let mut expected = arp_frame(2, (OURS, OUR_IP), (PEER, PEER_IP), PEER);
    expected.resize(60, 0);
    assert_eq!(reply, expected);
    assert!(harness.take(0).is_none());
}

#[test]
fn icmp_echo_reply_is_byte_exact() {
    let mut harness = Harness::new(ECHO_SPEC);
    harness.learn((PEER, PEER_IP));
    // Computed independently (Python): 10.0.0.1 → 10.0.0.2, id 0x1234 seq 1, "abcdefgh".
    let echo = hex(
        "0200000000010200000000020800450000241c46400040010a910a0000010a00000208005435123400016162636465666768",
    );
    let expected = hex(
        "0200000000020200000000010800450000241c46400040010a910a0000020a00000100005c35123400016162636465666768",
    );
    assert_eq!(harness.exchange(0, &echo).expect("echo reply"), expected);
    // Ethernet padding behind the IP packet is not echoed.
    let mut padded = echo.clone();
    padded.extend_from_slice(&[0; 8]);
    assert_eq!(harness.exchange(0, &padded).expect("echo reply"), expected);
    let counters = harness.counters();
    assert_eq!(counters.node_drops("icmp", "bad-checksum"), 0);
}

#[test]
fn echo_request_with_a_nonzero_code_is_answered_with_that_code() {
    let mut harness = Harness::new(ECHO_SPEC);
    harness.learn((PEER, PEER_IP));
    let mut echo = hex(
        "0200000000010200000000020800450000241c46400040010a910a0000010a00000208005435123400016162636465666768",
    );
    echo[35] = 7;
    echo[36..38].fill(0);
    let checksum = services::wire::checksum::checksum(&echo[34..]);
    echo[36..38].copy_from_slice(&checksum.to_be_bytes());
    let reply = harness.exchange(0, &echo).expect("echo reply");
    let icmp = IcmpPacket::new_checked(&reply[34..]).unwrap();
    assert_eq!((icmp.msg_type(), icmp.code()), (0, 7));
    assert!(icmp.verify_checksum());
}

#[test]
fn udp_echo_returns_the_datagram_byte_identical() {
    let mut harness = Harness::new(ECHO_SPEC);
    harness.learn((PEER, PEER_IP));
    let payload: Vec<u8> = (0..1472u32).map(|i| (i * 7) as u8).collect();
    let datagram = udp_frame((OURS, PEER), (PEER_IP, OUR_IP), (40000, 7), 17, &payload);
    let reply = harness.exchange(0, &datagram).expect("echo");
    assert_eq!(reply.len(), datagram.len());
    let frame = EthernetFrame::new_checked(&reply[..]).unwrap();
    assert_eq!((frame.destination(), frame.source()), (PEER, OURS));
    let ip = Ipv4Packet::new_checked(frame.payload()).unwrap();
    assert!(ip.verify_checksum());
    assert_eq!(
        (ip.source(), ip.destination(), ip.ttl()),
        (OUR_IP, PEER_IP, 64)
    );
    let udp = UdpPacket::new_checked(ip.payload()).unwrap();
    assert_eq!((udp.source_port(), udp.destination_port()), (7, 40000));
    assert_ne!(udp.checksum(), 0);
    assert!(udp.verify_checksum(OUR_IP, PEER_IP));
    assert_eq!(udp.payload(), &payload[..]);
    let counters = harness.counters();
    let echo = counters
        .nodes
        .iter()
        .find(|node| node.name == "udp-echo")
        .unwrap();
    assert_eq!((echo.received.get(), echo.emitted.get()), (1, 1));
}

#[test]
fn closed_port_gets_icmp_port_unreachable() {
    let mut harness = Harness::new(ECHO_SPEC);
    harness.learn((PEER, PEER_IP));
    let datagram = udp_frame((OURS, PEER), (PEER_IP, OUR_IP), (40000, 9), 64, b"anyone?");
    let reply = harness.exchange(0, &datagram).expect("port unreachable");
    let frame = EthernetFrame::new_checked(&reply[..]).unwrap();
    assert_eq!(frame.destination(), PEER);
    let ip = Ipv4Packet::new_checked(frame.payload()).unwrap();
    assert!(ip.verify_checksum());
    assert_eq!(
        (ip.source(), ip.destination(), ip.protocol()),
        (OUR_IP, PEER_IP, 1)
    );
    let icmp = IcmpPacket::new_checked(ip.payload()).unwrap();
    assert_eq!((icmp.msg_type(), icmp.code()), (3, 3));
    assert!(icmp.verify_checksum());
    // Quotes the offending IP header and the first 8 bytes (the UDP header).
    assert_eq!(icmp.payload(), &datagram[14..14 + 28]);
    assert_eq!(harness.counters().node_drops("udp", "port-closed"), 1);
    // A broadcast to a closed port is dropped silently.
    let broadcast = udp_frame(
        (MacAddr::BROADCAST, PEER),
        (PEER_IP, Ipv4Addr::new(10, 0, 0, 255)),
        (40000, 9),
        64,
        b"anyone?",
    );
    assert!(harness.exchange(0, &broadcast).is_none());
    assert_eq!(harness.counters().node_drops("udp", "port-closed"), 2);
}

#[test]
fn replies_use_the_request_source_mac_without_a_binding() {
    let mut harness = Harness::new(ECHO_SPEC);
    let echo = hex(
        "0200000000010200000000020800450000241c46400040010a910a0000010a00000208005435123400016162636465666768",
    );
    let reply = harness
        .exchange(0, &echo)
        .expect("echo reply, no ARP needed");
    assert_eq!(&reply[..12], &[PEER.0, OURS.0].concat()[..]);
    assert_eq!(reply[34], 0, "echo reply type");
    assert!(harness.take(0).is_none());
    // An ICMP error is a fresh buffer without a hint: it waits for ARP.
    let datagram = udp_frame((OURS, PEER), (PEER_IP, OUR_IP), (40000, 9), 64, b"x");
    let request = harness.exchange(0, &datagram).expect("an ARP request");
    assert_eq!(&request[..6], &MacAddr::BROADCAST.0);
    assert_eq!(&request[12..14], &[8, 6]);
}

#[test]
fn replies_to_a_learned_neighbour_skip_arp_and_follow_its_binding() {
    let mut harness = Harness::new(ECHO_SPEC);
    harness.learn((PEER, PEER_IP));
    let arp_received = |harness: &Harness| {
        let counters = harness.counters();
        let arp = counters.nodes.iter().find(|node| node.name == "arp");
        arp.unwrap().received.get()
    };
    let datagram = udp_frame((OURS, PEER), (PEER_IP, OUR_IP), (40000, 7), 64, b"x");
    let before = arp_received(&harness);
    let reply = harness.exchange(0, &datagram).expect("echo");
    assert_eq!(&reply[..14], &[&PEER.0[..], &OURS.0, &[8, 0]].concat()[..]);
    assert_eq!(
        arp_received(&harness),
        before,
        "ipv4-out completed the frame from the published binding"
    );
    // The neighbour moves: the binding it announces is used at once,
    // although the request still comes from the old MAC.
    let moved = MacAddr([2, 0, 0, 0, 0, 0x22]);
    harness.learn((moved, PEER_IP));
    let reply = harness.exchange(0, &datagram).expect("echo");
    assert_eq!(&reply[..6], &moved.0);
    // A binding the cache no longer trusts is not used either: the reply
    // goes through `arp`, which answers through the reply hint.
    advance_clock(services::arp_cache::ARP_ENTRY_LIFETIME_NS);
    let before = arp_received(&harness);
    let reply = harness.exchange(0, &datagram).expect("echo");
    assert_eq!(&reply[..6], &PEER.0);
    assert_eq!(arp_received(&harness), before + 1);
}

#[test]
fn replies_in_one_burst_each_go_to_their_own_peer() {
    let mut harness = Harness::new(ECHO_SPEC);
    let peers = [
        (MacAddr([2, 0, 0, 0, 0, 0x0a]), Ipv4Addr::new(10, 0, 0, 10)),
        (MacAddr([2, 0, 0, 0, 0, 0x0b]), Ipv4Addr::new(10, 0, 0, 11)),
    ];
    for peer in peers {
        harness.learn(peer);
    }
    // Not in the cache: answered through the reply hint.
    let stranger = (MacAddr([2, 0, 0, 0, 0, 0x0c]), Ipv4Addr::new(10, 0, 0, 12));
    let order = [peers[0], peers[1], peers[1], stranger, peers[0], peers[0]];
    for (index, (mac, ip)) in order.into_iter().enumerate() {
        harness.inject(
            0,
            &udp_frame((OURS, mac), (ip, OUR_IP), (40000, 7), 64, &[index as u8]),
        );
    }
    harness.executor.poll_once();
    // Each peer gets its replies in order; replies to different peers may
    // leave in another order (the one with the published binding leaves
    // from `ipv4-out`, the others from `arp`).
    let mut replies = Vec::new();
    while let Some(reply) = harness.take(0) {
        let frame = EthernetFrame::new_checked(&reply[..]).unwrap();
        let ip = Ipv4Packet::new_checked(frame.payload()).unwrap();
        let mark = UdpPacket::new_checked(ip.payload()).unwrap().payload()[0];
        let peer = order[usize::from(mark)];
        assert_eq!((frame.destination(), frame.source()), (peer.0, OURS));
        assert_eq!(ip.destination(), peer.1);
        replies.push(mark);
    }
    assert_eq!(replies.len(), order.len());
    for peer in [peers[0], peers[1], stranger] {
        let sent: Vec<u8> = (0..order.len() as u8)
            .filter(|mark| order[usize::from(*mark)] == peer)
            .collect();
        let got: Vec<u8> = replies
            .iter()
            .copied()
            .filter(|mark| order[usize::from(*mark)] == peer)
            .collect();
        assert_eq!(got, sent, "replies to {peer:?} in order");
    }
}

#[test]
fn unresolved_next_hop_queues_then_sends_or_times_out() {
    let mut harness = Harness::new(ECHO_SPEC);
    // ICMP errors are fresh buffers without a reply hint: they wait for ARP.
    let closed = udp_frame((OURS, PEER), (PEER_IP, OUR_IP), (40000, 9), 64, b"x");
    let request = harness.exchange(0, &closed).expect("an ARP request");
    let arp = ArpPacket::new_checked(&request[14..]).unwrap();
    assert_eq!(&request[..6], &MacAddr::BROADCAST.0);
    assert_eq!(
        (arp.operation().0, arp.sender_ip(), arp.target_ip()),
        (1, OUR_IP, PEER_IP)
    );
    assert!(harness.take(0).is_none());
    // Four more wait (the error limiter's burst of 6 allows no more; the
    // queue's own limit is the next test's).
    for _ in 0..4 {
        assert!(harness.exchange(0, &closed).is_none());
    }
    let counters = harness.counters();
    assert_eq!(counters.node_drops("arp", "queue-full"), 0);
    // The reply releases the five queued port-unreachable messages.
    let reply = arp_frame(2, (PEER, PEER_IP), (OURS, OUR_IP), OURS);
    harness.inject(0, &reply);
    harness.executor.poll_once();
    for _ in 0..5 {
        let sent = harness.take(0).expect("queued ICMP error");
        assert_eq!(&sent[..6], &PEER.0);
        assert_eq!((sent[34], sent[35]), (3, 3), "port unreachable");
    }
    assert!(harness.take(0).is_none());

    // An unknown host: retried every 250 ms, then dropped after 1 s.
    let stranger = Ipv4Addr::new(10, 0, 0, 77);
    let lost = udp_frame((OURS, PEER), (stranger, OUR_IP), (40000, 9), 64, b"x");
    assert!(harness.exchange(0, &lost).is_some(), "first ARP request");
    advance_clock(300_000_000);
    harness.executor.poll_once();
    let retry = harness.take(0).expect("retried ARP request");
    assert_eq!(
        ArpPacket::new_checked(&retry[14..]).unwrap().target_ip(),
        stranger
    );
    assert_eq!(counters.node_drops("arp", "resolution-timeout"), 0);
    advance_clock(800_000_000);
    harness.executor.poll_once();
    assert_eq!(counters.node_drops("arp", "resolution-timeout"), 1);
}

const ROUTER_SPEC: &str = include_str!("../../examples/router.toml");

#[test]
fn l3fwd_routes_between_interfaces_with_ttl_decrement() {
    let spec = ROUTER_SPEC.replace("virtio", "loopback");
    let mut harness = Harness::new(&spec);
    let (left_mac, right_mac) = (MacAddr([2, 0, 0, 0, 1, 1]), MacAddr([2, 0, 0, 0, 2, 1]));
    let (a_mac, a_ip) = (MacAddr([2, 0xaa, 0, 0, 0, 1]), Ipv4Addr::new(10, 0, 1, 2));
    let (b_mac, b_ip) = (MacAddr([2, 0xbb, 0, 0, 0, 1]), Ipv4Addr::new(10, 0, 2, 2));
    let ask = |mac, ip, ours| arp_frame(1, (mac, ip), (MacAddr([0; 6]), ours), MacAddr::BROADCAST);
    harness
        .exchange(0, &ask(a_mac, a_ip, Ipv4Addr::new(10, 0, 1, 1)))
        .unwrap();
    harness
        .exchange(1, &ask(b_mac, b_ip, Ipv4Addr::new(10, 0, 2, 1)))
        .unwrap();

    let datagram = udp_frame(
        (left_mac, a_mac),
        (a_ip, b_ip),
        (5000, 6000),
        64,
        b"through",
    );
    harness.inject(0, &datagram);
    harness.executor.poll_once();
    assert!(harness.take(0).is_none());
    let forwarded = harness.take(1).expect("forwarded on eth1");
    assert_eq!(&forwarded[..6], &b_mac.0);
    assert_eq!(&forwarded[6..12], &right_mac.0);
    let ip = Ipv4Packet::new_checked(&forwarded[14..]).unwrap();
    assert_eq!(ip.ttl(), 63);
    assert!(ip.verify_checksum());
    assert_eq!(
        &forwarded[14 + 12..],
        &datagram[14 + 12..],
        "only TTL and checksum change"
    );

    // TTL 1: time exceeded back to A, from our address on A's side.
    let dying = udp_frame((left_mac, a_mac), (a_ip, b_ip), (5000, 6000), 1, b"dying");
    let error = harness.exchange(0, &dying).expect("time exceeded");
    assert!(harness.take(1).is_none());
    let ip = Ipv4Packet::new_checked(&error[14..]).unwrap();
    assert_eq!(
        (ip.source(), ip.destination()),
        (Ipv4Addr::new(10, 0, 1, 1), a_ip)
    );
    let icmp = IcmpPacket::new_checked(ip.payload()).unwrap();
    assert_eq!((icmp.msg_type(), icmp.code()), (11, 0));
    assert_eq!(harness.counters().node_drops("l3fwd", "ttl-expired"), 1);

    // No route: net unreachable.
    let nowhere = udp_frame(
        (left_mac, a_mac),
        (a_ip, Ipv4Addr::new(192, 168, 9, 9)),
        (1, 2),
        64,
        b"?",
    );
    let error = harness.exchange(0, &nowhere).expect("net unreachable");
    let ip = Ipv4Packet::new_checked(&error[14..]).unwrap();
    let icmp = IcmpPacket::new_checked(ip.payload()).unwrap();
    assert_eq!((icmp.msg_type(), icmp.code()), (3, 0));
    assert_eq!(harness.counters().node_drops("l3fwd", "no-route"), 1);
}

/// The first burst towards a next hop nobody resolved yet arrives in one
/// poll, before any ARP reply can: all of it waits and goes out once the
/// reply comes. (With 4 packets per destination, the bench's l3fwd over
/// vhost-user lost probes 4..=31 of every run: 28 `queue-full` drops.)
#[test]
fn a_whole_burst_to_an_unresolved_next_hop_waits_for_arp() {
    let spec = ROUTER_SPEC.replace("virtio", "loopback");
    let mut harness = Harness::new(&spec);
    let (left_mac, right_mac) = (MacAddr([2, 0, 0, 0, 1, 1]), MacAddr([2, 0, 0, 0, 2, 1]));
    let (a_mac, a_ip) = (MacAddr([2, 0xaa, 0, 0, 0, 1]), Ipv4Addr::new(10, 0, 1, 2));
    let (b_mac, b_ip) = (MacAddr([2, 0xbb, 0, 0, 0, 1]), Ipv4Addr::new(10, 0, 2, 2));
    for sequence in 0..dataplane::BURST_SIZE {
        let probe = udp_frame(
            (left_mac, a_mac),
            (a_ip, b_ip),
            (5000, 6000),
            64,
            &[sequence as u8],
        );
        harness.inject(0, &probe);
    }
    harness.executor.poll_once();
    let request = harness.take(1).expect("an ARP request for the next hop");
    let arp = ArpPacket::new_checked(&request[14..]).unwrap();
    assert_eq!((arp.operation().0, arp.target_ip()), (1, b_ip));
    assert!(
        harness.take(1).is_none(),
        "nothing forwarded before the reply"
    );
    let counters = harness.counters();
    assert_eq!(counters.node_drops("arp", "queue-full"), 0);
    // One more than a burst overflows the destination's queue.
    let extra = udp_frame((left_mac, a_mac), (a_ip, b_ip), (5000, 6000), 64, b"x");
    assert!(harness.exchange(0, &extra).is_none());
    assert!(harness.take(1).is_none(), "asked once, 250 ms not up");
    assert_eq!(counters.node_drops("arp", "queue-full"), 1);

    let reply = arp_frame(
        2,
        (b_mac, b_ip),
        (right_mac, Ipv4Addr::new(10, 0, 2, 1)),
        right_mac,
    );
    harness.inject(1, &reply);
    harness.executor.poll_once();
    for sequence in 0..dataplane::BURST_SIZE {
        let forwarded = harness.take(1).expect("every queued probe is forwarded");
        assert_eq!(&forwarded[..6], &b_mac.0);
        assert_eq!(*forwarded.last().unwrap(), sequence as u8, "in order");
    }
    assert!(harness.take(1).is_none());
    assert_eq!(counters.node_drops("arp", "queue-full"), 1);
}

#[test]
fn icmp_errors_are_rate_limited() {
    let mut harness = Harness::new(ECHO_SPEC);
    harness.learn((PEER, PEER_IP));
    let datagram = udp_frame((OURS, PEER), (PEER_IP, OUR_IP), (40000, 9), 64, b"x");
    let mut answered = 0;
    for _ in 0..50 {
        if harness.exchange(0, &datagram).is_some() {
            answered += 1;
        }
    }
    assert_eq!(answered, services::icmp_error::ERROR_BURST);
    assert_eq!(harness.counters().node_drops("udp", "port-closed"), 50);
    advance_clock(1_000_000_000);
    assert!(harness.exchange(0, &datagram).is_some());
}

#[test]
fn l2fwd_reflects_frames() {
    let spec = ECHO_SPEC.replace("kind = \"udp-echo\"\nport = 7", "kind = \"l2fwd\"");
    let spec = Spec::parse(&spec, &Registry::with_builtin()).unwrap();
    let pool = Mempool::with_heap(16, 0).unwrap();
    let nic = SharedNic::new(LoopbackNic::new(OURS, 8));
    let mut executor = build_core(
        &spec,
        0,
        vec![(0, Box::new(nic.clone()))],
        pool,
        clock,
        CoreLinks::new(),
    )
    .unwrap();
    let mut packet = executor.pool().unwrap().alloc().unwrap();
    packet
        .append(14)
        .unwrap()
        .copy_from_slice(&[1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 8, 0]);
    nic.borrow_mut().inject(packet).unwrap();
    executor.poll_once();
    let sent = nic.borrow_mut().take_transmitted().unwrap();
    assert_eq!(sent.payload(), &[2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 8, 0]);
}

#[test]
fn build_core_refuses_bad_ports() {
    let spec = Spec::parse(ECHO_SPEC, &Registry::with_builtin()).unwrap();
    let pool = Mempool::with_heap(4, 0).unwrap();
    let nic = || Box::new(LoopbackNic::new(OURS, 1)) as Box<dyn Nic>;
    let error = build_core(&spec, 0, vec![(1, nic())], pool, clock, CoreLinks::new()).err();
    let pool = Mempool::with_heap(4, 0).unwrap();
    assert_eq!(error, Some(control::PipelineError::UnknownInterface(1)));
    let error = build_core(
        &spec,
        0,
        vec![(0, nic()), (0, nic())],
        pool,
        clock,
        CoreLinks::new(),
    )
    .err();
    assert_eq!(error, Some(control::PipelineError::DuplicateInterface(0)));
}

/// More cores than queue pairs: a core with no port still builds its
/// stack (its apps may serve other cores over rings) and polls quietly.
#[test]
fn a_core_without_ports_builds_and_idles() {
    let spec = Spec::parse(
        &format!("{ECHO_SPEC}[[service]]\nkind = \"kv\"\nport = 11211\n"),
        &Registry::with_builtin(),
    )
    .unwrap();
    let pool = Mempool::with_heap(4, 0).unwrap();
    let mut executor = build_core(&spec, 1, Vec::new(), pool, clock, CoreLinks::new()).unwrap();
    executor.poll_once();
    assert_eq!(executor.counters().rx_packets.get(), 0);
}

/// A platform that shares a capture board gets a tap on every port: an
/// armed capture of eth0 sees the echo request come in and the reply go
/// out, whole up to the snap length.
#[test]
fn a_shared_capture_board_taps_every_port() {
    let spec = Spec::parse(ECHO_SPEC, &Registry::with_builtin()).unwrap();
    let board = std::sync::Arc::new(dataplane::CaptureBoard::new());
    let mut links = CoreLinks::new();
    links.insert_shared(board.clone());
    let mut harness = Harness::on_core(&spec, 0, links);
    harness.learn((PEER, PEER_IP));
    let echo = hex(
        "0200000000010200000000020800450000241c46400040010a910a0000010a00000208005435123400016162636465666768",
    );
    let capture = board.arm(0, 40, None).unwrap();
    let reply = harness.exchange(0, &echo).expect("echo reply");
    let mut out = [0u8; 64];
    let mut frames = Vec::new();
    while let Some((header, copied)) = board.next_record(&capture, |_| true, &mut out) {
        frames.push((
            header.direction,
            header.original_len,
            out[..copied].to_vec(),
        ));
    }
    board.finish(capture);
    assert_eq!(
        frames,
        [
            (Direction::Received, echo.len() as u32, echo[..40].to_vec()),
            (Direction::Sent, reply.len() as u32, reply[..40].to_vec()),
        ]
    );
}
