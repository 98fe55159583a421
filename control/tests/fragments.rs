//! Fragments end to end: reassembly behind `build_core`'s pipeline
//! (65507-byte ping, reordered UDP echo, never-completed datagrams) and
//! fragmentation on the way out (ipv4-out, l3fwd with don't-fragment).

mod support;

use core::net::Ipv4Addr;
use dataplane::{LoopbackNic, Mempool, SharedNic};
use services::wire::{IcmpPacket, Ipv4Packet, UdpPacket};
use support::*;

/// `ip` (a whole IPv4 packet without options) as Ethernet frames of
/// fragments of at most 1500 bytes, from the peer to us.
fn fragments_of(ip: &[u8]) -> Vec<Vec<u8>> {
    let payload = &ip[20..];
    let mut frames = Vec::new();
    for (index, chunk) in payload.chunks(1480).enumerate() {
        let offset = index * 1480;
        let more = offset + chunk.len() < payload.len();
        let mut frame = vec![0u8; 14 + 20 + chunk.len()];
        frame[..6].copy_from_slice(&OURS.0);
        frame[6..12].copy_from_slice(&PEER.0);
        frame[12..14].copy_from_slice(&[8, 0]);
        frame[14..34].copy_from_slice(&ip[..20]);
        frame[16..18].copy_from_slice(&((20 + chunk.len()) as u16).to_be_bytes());
        let word = (u16::from(more) << 13) | (offset / 8) as u16;
        frame[20..22].copy_from_slice(&word.to_be_bytes());
        frame[24..26].fill(0);
        let checksum = services::wire::checksum::checksum(&frame[14..34]);
        frame[24..26].copy_from_slice(&checksum.to_be_bytes());
        frame[34..].copy_from_slice(chunk);
        frames.push(frame);
    }
    frames
}

/// Sends `frames` in, polling between bursts, and returns every frame
/// sent back.
fn exchange_all(harness: &mut Harness, frames: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut replies = Vec::new();
    for burst in frames.chunks(16) {
        for frame in burst {
            harness.inject(0, frame);
        }
        for _ in 0..4 {
            harness.executor.poll_once();
        }
        while let Some(reply) = harness.take(0) {
            replies.push(reply);
        }
    }
    replies
}

/// Puts fragments sent by us back together (an independent reassembly:
/// offsets and lengths only) and returns the IP packet with a 20-byte
/// header (the first fragment's, flags cleared).
fn reassemble(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut payload = Vec::new();
    let mut header = Vec::new();
    let mut last_seen = false;
    for frame in frames {
        let ip = Ipv4Packet::new_checked(&frame[14..]).unwrap();
        assert!(ip.verify_checksum());
        assert!(frame.len() <= 1514, "a frame over the MTU");
        assert_eq!(usize::from(ip.fragment_offset()), payload.len(), "in order");
        if ip.fragment_offset() == 0 {
            header = frame[14..34].to_vec();
        }
        payload.extend_from_slice(ip.payload());
        last_seen = !ip.more_fragments();
    }
    assert!(last_seen);
    header.extend_from_slice(&payload);
    let total = header.len() as u16;
    header[2..4].copy_from_slice(&total.to_be_bytes());
    header[6..8].fill(0);
    header
}

#[test]
fn ping_of_65507_bytes_is_reassembled_and_answered_in_fragments() {
    let mut harness = Harness::new(ECHO_SPEC);
    harness.learn((PEER, PEER_IP));
    let data: Vec<u8> = (0..65507u32).map(|i| (i * 13 + 5) as u8).collect();
    let mut message = vec![8u8, 0, 0, 0, 0x42, 0x42, 0, 1];
    message.extend_from_slice(&data);
    let checksum = services::wire::checksum::checksum(&message);
    message[2..4].copy_from_slice(&checksum.to_be_bytes());
    let mut ip = vec![0u8; 20];
    Ipv4Packet::new_unchecked(&mut ip[..]).emit_header(
        PEER_IP,
        OUR_IP,
        1,
        message.len() as u16,
        64,
    );
    ip[4..6].copy_from_slice(&0x4242u16.to_be_bytes());
    ip[10..12].fill(0);
    let checksum = services::wire::checksum::checksum(&ip);
    ip[10..12].copy_from_slice(&checksum.to_be_bytes());
    ip.extend_from_slice(&message);
    assert_eq!(ip.len(), 65535);
    let frames = fragments_of(&ip);
    assert_eq!(frames.len(), 45);
    let replies = exchange_all(&mut harness, &frames);
    assert_eq!(replies.len(), 45, "the echo leaves in 45 fragments");
    for reply in &replies {
        assert_eq!(&reply[..12], &[PEER.0, OURS.0].concat()[..]);
    }
    let echo = reassemble(&replies);
    assert_eq!(echo.len(), 65535);
    let header = Ipv4Packet::new_checked(&echo[..]).unwrap();
    assert_eq!((header.source(), header.destination()), (OUR_IP, PEER_IP));
    let icmp = IcmpPacket::new_unchecked(&echo[20..]);
    assert_eq!((icmp.msg_type(), icmp.code()), (0, 0));
    assert!(icmp.verify_checksum());
    assert_eq!(&echo[28..], &data[..], "byte-identical payload");
    let counters = harness.counters();
    assert_eq!(all_drops(&counters).iter().map(|(_, n)| n).sum::<u64>(), 0);
    assert_eq!(counters.executor_drops(), 0);
}

#[test]
fn udp_echo_of_4000_bytes_in_fragments_comes_back_byte_identical() {
    let mut harness = Harness::new(ECHO_SPEC);
    harness.learn((PEER, PEER_IP));
    let payload: Vec<u8> = (0..4000u32).map(|i| (i * 31) as u8).collect();
    let datagram = udp_frame((OURS, PEER), (PEER_IP, OUR_IP), (40000, 7), 64, &payload);
    let mut ip = datagram[14..].to_vec();
    ip[4..6].copy_from_slice(&0x0fa0u16.to_be_bytes());
    ip[10..12].fill(0);
    let checksum = services::wire::checksum::checksum(&ip[..20]);
    ip[10..12].copy_from_slice(&checksum.to_be_bytes());
    // Out of order: the last fragment first.
    let mut frames = fragments_of(&ip);
    assert_eq!(frames.len(), 3);
    frames.rotate_right(1);
    let replies = exchange_all(&mut harness, &frames);
    assert_eq!(replies.len(), 3);
    let echo = reassemble(&replies);
    let ip = Ipv4Packet::new_checked(&echo[..]).unwrap();
    assert_eq!((ip.source(), ip.destination()), (OUR_IP, PEER_IP));
    let udp = UdpPacket::new_checked(ip.payload()).unwrap();
    assert_eq!((udp.source_port(), udp.destination_port()), (7, 40000));
    assert!(udp.verify_checksum(OUR_IP, PEER_IP));
    assert_eq!(udp.payload(), &payload[..]);
}

#[test]
fn a_thousand_never_completed_datagrams_stay_within_the_bound_and_time_out() {
    let spec = format!("{ECHO_SPEC}[ipv4]\nreassembly_datagrams = 4\n");
    let mut harness = Harness::new(&spec);
    harness.learn((PEER, PEER_IP));
    let pool_free = harness.executor.pool().unwrap().available();
    let payload = [0x55u8; 2000];
    for ident in 0..1000u16 {
        let datagram = udp_frame((OURS, PEER), (PEER_IP, OUR_IP), (40000, 7), 64, &payload);
        let mut ip = datagram[14..].to_vec();
        ip[4..6].copy_from_slice(&ident.to_be_bytes());
        // Only the first of two fragments ever comes.
        let first = fragments_of(&ip).swap_remove(0);
        assert!(harness.exchange(0, &first).is_none());
    }
    let counters = harness.counters();
    assert_eq!(counters.node_drops("ipv4", "reassembly-evicted"), 996);
    // Every receive buffer came back: fragments are copied, not held.
    assert_eq!(harness.executor.pool().unwrap().available(), pool_free);
    // The four left time out, each with time exceeded (11/1).
    advance_clock(services::reassembly::TIMEOUT_NS);
    harness.executor.poll_once();
    let mut errors = Vec::new();
    while let Some(frame) = harness.take(0) {
        errors.push(frame);
    }
    assert_eq!(counters.node_drops("ipv4", "reassembly-timeout"), 4);
    assert_eq!(errors.len(), 4);
    for error in &errors {
        assert_eq!((error[34], error[35]), (11, 1));
    }
    // And it still answers.
    let echo = udp_frame((OURS, PEER), (PEER_IP, OUR_IP), (40000, 7), 64, b"after");
    assert!(harness.exchange(0, &echo).is_some());
}

/// An l3fwd node alone between two loopback ports (what reaches it from
/// the wire is never longer than the MTU, so it is fed directly).
fn l3fwd_alone() -> (
    dataplane::Executor,
    SharedNic<LoopbackNic>,
    SharedNic<LoopbackNic>,
) {
    use dataplane::{ExecutorBuilder, Target};
    use services::route::{LocalAddresses, RoutingTable};
    let (a, b): (dataplane::Ipv4Cidr, dataplane::Ipv4Cidr) = (
        "10.0.1.1/24".parse().unwrap(),
        "10.0.2.1/24".parse().unwrap(),
    );
    let local = LocalAddresses::new(vec![a, b]);
    let routes = RoutingTable::new(&[a, b], &[]);
    let node = services::L3fwd::new(local, routes, services::icmp_error::ErrorLimiter::new());
    let left = SharedNic::new(LoopbackNic::new(OURS, 64));
    let right = SharedNic::new(LoopbackNic::new(PEER, 64));
    let mut builder = ExecutorBuilder::new();
    builder
        .pool(Mempool::with_heap(128, 128).unwrap())
        .clock(clock);
    let left_port = builder.add_port(Box::new(left.clone()));
    let right_port = builder.add_port(Box::new(right.clone()));
    let node = builder.add_node(Box::new(node));
    builder.route_rx(left_port, node).unwrap();
    builder.route_rx(right_port, node).unwrap();
    builder
        .connect(node, "errors", Target::Port(left_port))
        .unwrap();
    builder
        .connect(node, "if0", Target::Port(left_port))
        .unwrap();
    builder
        .connect(node, "if1", Target::Port(right_port))
        .unwrap();
    for output in ["if2", "if3"] {
        builder.connect(node, output, Target::Discard).unwrap();
    }
    (builder.build().unwrap(), left, right)
}

#[test]
fn l3fwd_fragments_packets_over_the_mtu_and_honours_dont_fragment() {
    let (mut executor, left, right) = l3fwd_alone();
    let (a_ip, b_ip) = (Ipv4Addr::new(10, 0, 1, 2), Ipv4Addr::new(10, 0, 2, 2));
    let payload: Vec<u8> = (0..1980u32).map(|i| i as u8).collect();
    let frame = udp_frame((OURS, PEER), (a_ip, b_ip), (5000, 6000), 64, &payload);
    let ip = frame[14..].to_vec();
    let inject = |executor: &mut dataplane::Executor, bytes: &[u8]| {
        let mut packet = executor.pool().unwrap().alloc().unwrap();
        packet.append(bytes.len()).unwrap().copy_from_slice(bytes);
        left.borrow_mut().inject(packet).unwrap();
        executor.poll_once();
    };
    inject(&mut executor, &ip);
    let mut pieces = Vec::new();
    while let Some(sent) = right.borrow_mut().take_transmitted() {
        pieces.push(sent.payload().to_vec());
    }
    assert_eq!(pieces.len(), 2, "two fragments on the egress side");
    let mut whole = Vec::new();
    for (index, piece) in pieces.iter().enumerate() {
        // Behind the 14-byte resolution header for next hop 10.0.2.2.
        assert_eq!(&piece[..4], &b_ip.octets());
        let fragment = Ipv4Packet::new_checked(&piece[14..]).unwrap();
        assert!(fragment.verify_checksum());
        assert_eq!(fragment.ttl(), 63);
        assert!(piece.len() - 14 <= 1500);
        assert_eq!(fragment.more_fragments(), index == 0);
        assert_eq!(usize::from(fragment.fragment_offset()), whole.len());
        whole.extend_from_slice(fragment.payload());
    }
    assert_eq!(&whole[..], &ip[20..], "the payload, whole and in order");

    // Don't fragment: 3/4 back to the source with the MTU, quoting the
    // header as it came.
    let mut dont = ip.clone();
    dont[6] = 0x40;
    dont[10..12].fill(0);
    let checksum = services::wire::checksum::checksum(&dont[..20]);
    dont[10..12].copy_from_slice(&checksum.to_be_bytes());
    inject(&mut executor, &dont);
    assert!(right.borrow_mut().take_transmitted().is_none());
    let error = left
        .borrow_mut()
        .take_transmitted()
        .expect("fragmentation needed");
    let ip = Ipv4Packet::new_checked(error.payload()).unwrap();
    assert_eq!(
        (ip.source(), ip.destination()),
        (Ipv4Addr::new(10, 0, 1, 1), a_ip)
    );
    let icmp = IcmpPacket::new_checked(ip.payload()).unwrap();
    assert_eq!((icmp.msg_type(), icmp.code()), (3, 4));
    assert!(icmp.verify_checksum());
    assert_eq!(&ip.payload()[6..8], &1500u16.to_be_bytes());
    assert_eq!(&ip.payload()[8..], &dont[..28]);
    assert_eq!(
        executor
            .counters()
            .node_drops("l3fwd", "fragmentation-needed"),
        1
    );
}
