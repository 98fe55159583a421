//! The busy path of `ipv4-out` (the burst's first header copied onto the
//! packets behind it to the same destination) against one packet a burst,
//! which never takes it.

use super::*;
use crate::route::RouteEntry;
use crate::wire::ipv4::protocol;
use alloc::boxed::Box;
use alloc::vec;
use dataplane::{Checked, ExecutorBuilder, Ipv4Cidr, LoopbackNic, Mempool, PortId, Target};

const US: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
/// The next hop whose binding `arp` published.
const PEER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
/// On the link, but not published: through `arp`.
const OTHER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 7);
/// Behind a gateway that is not published: through `arp`.
const FAR: Ipv4Addr = Ipv4Addr::new(192, 168, 5, 9);
/// No route.
const UNROUTED: Ipv4Addr = Ipv4Addr::new(172, 16, 0, 1);
const OUR_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);
const PEER_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
/// The clock the bindings are judged at (past a binding's lifetime).
const NOW_NS: u64 = 100_000_000_000;

/// How a packet comes to `ipv4-out`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// A UDP datagram with the upstream claim on its IPv4 header.
    Claimed,
    /// The same without the claim (parsed again).
    Unclaimed,
    /// Claimed, but without headroom for a link header.
    NoHeadroom,
    /// Ten bytes, no IPv4 header.
    Malformed,
}

/// A packet of `shape` to `destination`, numbered `id` (its
/// identification).
fn packet(pool: &Mempool, shape: Shape, destination: Ipv4Addr, id: u16) -> Packet {
    let mut bytes = vec![0u8; 20 + 8];
    let mut ip = Ipv4Packet::new_unchecked(&mut bytes[..]);
    ip.emit_header(US, destination, protocol::UDP, 8, 64);
    bytes[4..6].copy_from_slice(&id.to_be_bytes());
    Ipv4Packet::new_unchecked(&mut bytes[..]).fill_checksum();
    if shape == Shape::Malformed {
        bytes.truncate(10);
    }
    let mut packet = pool.alloc().unwrap();
    if shape == Shape::NoHeadroom {
        packet.set_range(0, bytes.len()).unwrap();
        packet.payload_mut().copy_from_slice(&bytes);
    } else {
        packet.append(bytes.len()).unwrap().copy_from_slice(&bytes);
    }
    if matches!(shape, Shape::Claimed | Shape::NoHeadroom) {
        packet.set_checked(Checked::IPV4_HEADER.local_unicast());
    }
    packet
}

/// What came out: the frames each output sent, in order, and the drops
/// by reason.
#[derive(Debug, PartialEq, Eq)]
struct Sent {
    frames: Vec<Vec<Vec<u8>>>,
    drops: Vec<(&'static str, Option<u64>)>,
}

/// Runs `burst` (shape, destination) through one `ipv4-out` whose
/// interface 0 is 10.0.0.2/24 (with a route to 192.168.5.0/24 via
/// 10.0.0.9) and whose `arp` published `PEER` at `learned_ns`: as one
/// burst, or one packet a burst when `singly`.
fn run(burst: &[(Shape, Ipv4Addr)], learned_ns: u64, singly: bool) -> Sent {
    let pool = Mempool::with_heap(2 * BURST + 8, 64).unwrap();
    let interface = Ipv4Cidr {
        address: US,
        prefix_len: 24,
    };
    let gateway = RouteEntry {
        destination: Ipv4Cidr {
            address: Ipv4Addr::new(192, 168, 5, 0),
            prefix_len: 24,
        },
        interface: 0,
        via: Some(Ipv4Addr::new(10, 0, 0, 9)),
    };
    let neighbour = Arc::new(Neighbour::new());
    neighbour.publish(PEER, PEER_MAC, learned_ns);
    let mut neighbours: [Option<Arc<Neighbour>>; MAX_INTERFACES] = Default::default();
    neighbours[0] = Some(neighbour);
    let node = Ipv4Out::new(RoutingTable::new(&[interface], &[gateway]), vec![OUR_MAC])
        .with_neighbours(neighbours);
    let outputs = node.outputs();
    let drop_reasons = node.drop_reasons();
    let mut builder = ExecutorBuilder::new();
    builder.clock(|| NOW_NS);
    let input = builder.add_port(Box::new(LoopbackNic::new(MacAddr::default(), 64)));
    let node = builder.add_node(Box::new(node));
    builder.route_rx(input, node).unwrap();
    let ports: Vec<PortId> = outputs
        .iter()
        .map(|output| {
            let port = builder.add_port(Box::new(LoopbackNic::new(MacAddr::default(), 64)));
            builder.connect(node, output, Target::Port(port)).unwrap();
            port
        })
        .collect();
    let mut executor = builder.build().unwrap();
    let packets: Vec<Packet> = burst
        .iter()
        .zip(0..)
        .map(|(&(shape, destination), id)| packet(&pool, shape, destination, id))
        .collect();
    let chunk = if singly { 1 } else { burst.len() };
    let mut packets = packets.into_iter();
    loop {
        let taken: Vec<Packet> = packets.by_ref().take(chunk).collect();
        if taken.is_empty() {
            break;
        }
        let count = taken.len();
        let nic = executor.nic_as::<LoopbackNic>(input).unwrap();
        for packet in taken {
            nic.inject(packet).unwrap();
        }
        assert_eq!(executor.poll_once(), count);
    }
    let drops = drop_reasons
        .iter()
        .map(|reason| (*reason, executor.counters().nodes[0].drops_named(reason)))
        .collect();
    let frames = ports
        .iter()
        .map(|port| {
            let nic = executor.nic_as::<LoopbackNic>(*port).unwrap();
            core::iter::from_fn(|| nic.take_transmitted())
                .map(|packet| packet.payload().to_vec())
                .collect()
        })
        .collect();
    Sent { frames, drops }
}

/// A full burst.
const BURST: usize = dataplane::BURST_SIZE;

/// `BURST` claimed packets to `PEER`, with `changes` (index, shape,
/// destination) made.
fn burst_with(changes: &[(usize, Shape, Ipv4Addr)]) -> Vec<(Shape, Ipv4Addr)> {
    let mut burst = vec![(Shape::Claimed, PEER); BURST];
    for &(index, shape, destination) in changes {
        burst[index] = (shape, destination);
    }
    burst
}

#[test]
fn a_burst_to_one_published_next_hop_leaves_whole_on_its_port_with_its_header() {
    let sent = run(&burst_with(&[]), NOW_NS, false);
    let tx0 = Ipv4Out::TX_0;
    for (output, frames) in sent.frames.iter().enumerate() {
        let expected = if output == tx0 { BURST } else { 0 };
        assert_eq!(frames.len(), expected, "output {output}");
    }
    for (id, frame) in (0u16..).zip(&sent.frames[tx0]) {
        assert_eq!(frame[..6], PEER_MAC.0);
        assert_eq!(frame[6..12], OUR_MAC.0);
        assert_eq!(frame[12..14], [0x08, 0x00]);
        let ip = Ipv4Packet::new_checked(&frame[14..]).unwrap();
        assert_eq!((ip.destination(), ip.ident()), (PEER, id));
    }
    assert!(sent.drops.iter().all(|(_, count)| *count == Some(0)));
}

#[test]
fn every_burst_leaves_as_its_packets_would_one_a_burst() {
    use Shape::*;
    let cases: Vec<(&str, Vec<(Shape, Ipv4Addr)>)> = vec![
        ("uniform", burst_with(&[])),
        ("packet 31 to another", burst_with(&[(31, Claimed, OTHER)])),
        ("packet 31 unclaimed", burst_with(&[(31, Unclaimed, PEER)])),
        (
            "packet 31 without headroom",
            burst_with(&[(31, NoHeadroom, PEER)]),
        ),
        ("packet 31 malformed", burst_with(&[(31, Malformed, PEER)])),
        ("packet 31 unrouted", burst_with(&[(31, Claimed, UNROUTED)])),
        ("packet 1 to another", burst_with(&[(1, Claimed, OTHER)])),
        ("packet 0 to another", burst_with(&[(0, Claimed, OTHER)])),
        ("packet 0 unclaimed", burst_with(&[(0, Unclaimed, PEER)])),
        (
            "packet 0 without headroom",
            burst_with(&[(0, NoHeadroom, PEER)]),
        ),
        ("packet 0 malformed", burst_with(&[(0, Malformed, PEER)])),
        ("packet 0 unrouted", burst_with(&[(0, Claimed, UNROUTED)])),
        (
            "a gateway's packets in the middle",
            burst_with(&[(10, Claimed, FAR), (11, Claimed, FAR), (12, Unclaimed, FAR)]),
        ),
        (
            "alternating",
            (0..BURST)
                .map(|index| (Claimed, if index % 2 == 0 { PEER } else { OTHER }))
                .collect(),
        ),
        ("one packet", vec![(Claimed, PEER)]),
        ("one packet to another", vec![(Claimed, OTHER)]),
        ("two to another", vec![(Claimed, OTHER), (Claimed, OTHER)]),
        ("every shape", {
            let shapes = [Claimed, Unclaimed, NoHeadroom, Malformed];
            let destinations = [PEER, OTHER, FAR, UNROUTED, PEER];
            (0..BURST)
                .map(|index| (shapes[index % 4], destinations[index % 5]))
                .collect()
        }),
    ];
    // Every case run before any is judged: a wrong one names them all.
    let mut wrong = Vec::new();
    // With the binding held, and stale (everything through `arp`).
    for learned_ns in [NOW_NS, NOW_NS - ARP_LIFETIME_NS] {
        for (name, burst) in &cases {
            let whole = run(burst, learned_ns, false);
            let singly = run(burst, learned_ns, true);
            if whole != singly {
                wrong.push((name, learned_ns, whole, singly));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "(case, learned, whole, singly): {wrong:?}"
    );
}

/// How long `arp`'s bindings hold.
const ARP_LIFETIME_NS: u64 = crate::arp_cache::ARP_ENTRY_LIFETIME_NS;
