//! The plain path of `ipv4` against its full checks.

use super::*;
use crate::reassembly::ReassemblyLimits;
use alloc::vec;
use dataplane::{Ipv4Cidr, Mempool};

const US: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const PEER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
/// A protocol bound to a hook (GRE).
const BOUND: u8 = 47;

/// A node for `addresses`, forwarding when `claim` is given (then
/// claiming UDP ports 7 to 9 on our address), with [`BOUND`] bound.
fn node(addresses: &[(Ipv4Addr, u8)], claim: bool) -> Ipv4 {
    let addresses = addresses
        .iter()
        .map(|&(address, prefix_len)| Ipv4Cidr {
            address,
            prefix_len,
        })
        .collect();
    let mut node = Ipv4::new(
        LocalAddresses::new(addresses),
        claim,
        ErrorLimiter::new(),
        Reassembly::new(ReassemblyLimits::default()),
    );
    node.bind_protocol(BOUND).unwrap();
    if claim {
        node.claim(LocalClaim {
            address: US,
            ports: (7, 9),
            extra: Vec::new(),
        });
    }
    node
}

/// A packet from `source` to `destination` carrying 12 bytes of
/// `protocol` (UDP: to port 7) with `padding` bytes behind it, its
/// checksum right; `edit` changes the bytes before the checksum is
/// filled in (when `refill`) or after.
fn packet_bytes(
    source: Ipv4Addr,
    destination: Ipv4Addr,
    protocol: u8,
    padding: usize,
    edit: impl Fn(&mut Vec<u8>),
    refill: bool,
) -> Vec<u8> {
    let mut bytes = vec![0u8; 20 + 12 + padding];
    let mut ip = Ipv4Packet::new_unchecked(&mut bytes[..]);
    ip.emit_header(source, destination, protocol, 12, 64);
    bytes[20..24].copy_from_slice(&[0x9c, 0x40, 0, 7]);
    if refill {
        edit(&mut bytes);
    }
    let header_len = (usize::from(bytes[0] & 0x0f) * 4).clamp(20, bytes.len());
    let mut ip = Ipv4Packet::new_unchecked(&mut bytes[..header_len]);
    ip.fill_checksum();
    if !refill {
        edit(&mut bytes);
    }
    bytes
}

/// `bytes` in a packet of `pool`.
fn packet(pool: &Mempool, bytes: &[u8]) -> Packet {
    let mut packet = pool.alloc().unwrap();
    packet.append(bytes.len()).unwrap().copy_from_slice(bytes);
    packet
}

/// The plain path as `process` picks it: none for a core with several
/// addresses, with the claims test only when the node has claims, and
/// `accepted` the burst's last accepted pair of addresses (`None`: a
/// burst's first packet, the pair seeded).
fn receive_plain(
    node: &Ipv4,
    packet: &mut Packet,
    single: Option<Ipv4Addr>,
    accepted: Option<&mut u64>,
) -> Option<usize> {
    let address = single?;
    let ours = address_key(address.octets());
    let mut seeded = accepted_seed(address);
    let accepted = accepted.unwrap_or(&mut seeded);
    let output = if node.claims.is_empty() {
        node.receive_plain::<false>(packet, ours, accepted)
    } else {
        node.receive_plain::<true>(packet, ours, accepted)
    };
    output.map(usize::from)
}

#[test]
fn the_seeded_pair_of_addresses_is_one_the_checks_accept() {
    let pool = Mempool::with_heap(1, 0).unwrap();
    for ours in [US, PEER, Ipv4Addr::new(192, 168, 7, 1)] {
        let node = node(&[(ours, 24)], false);
        let seed = accepted_seed(ours).to_ne_bytes();
        let source = Ipv4Addr::new(seed[0], seed[1], seed[2], seed[3]);
        let destination = Ipv4Addr::new(seed[4], seed[5], seed[6], seed[7]);
        assert_eq!(destination, ours);
        assert_ne!(source, ours);
        // A packet with the seeded pair is taken by the full checks too.
        let bytes = packet_bytes(source, destination, protocol::UDP, 0, |_| {}, true);
        let verdict = node.receive(&mut packet(&pool, &bytes), Some(ours));
        assert_eq!(verdict, Verdict::emit(Ipv4::UDP), "{ours}");
    }
}

#[test]
fn the_plain_path_takes_the_common_packets_and_decides_as_the_full_checks() {
    let pool = Mempool::with_heap(4, 0).unwrap();
    let keep = |_: &mut Vec<u8>| {};
    let broadcast = Ipv4Addr::new(10, 0, 0, 255);
    let other = Ipv4Addr::new(10, 0, 0, 9);
    let udp = protocol::UDP;
    // (case, bytes, whether the plain path takes it)
    let cases: Vec<(&str, Vec<u8>, bool)> = vec![
        ("udp", packet_bytes(PEER, US, udp, 0, keep, true), true),
        // Another peer: the pair carried from here on is this one, so the
        // cases from `PEER` below have their addresses checked anew.
        (
            "another peer",
            packet_bytes(Ipv4Addr::new(10, 0, 0, 7), US, udp, 0, keep, true),
            true,
        ),
        (
            "icmp",
            packet_bytes(PEER, US, protocol::ICMP, 0, keep, true),
            true,
        ),
        (
            "bound protocol",
            packet_bytes(PEER, US, BOUND, 0, keep, true),
            true,
        ),
        ("padding", packet_bytes(PEER, US, udp, 6, keep, true), true),
        (
            "don't fragment and the reserved bit",
            packet_bytes(PEER, US, udp, 0, |b| b[6] = 0xc0, true),
            true,
        ),
        (
            "unbound protocol",
            packet_bytes(PEER, US, 99, 0, keep, true),
            false,
        ),
        (
            "options",
            packet_bytes(
                PEER,
                US,
                udp,
                0,
                |b| {
                    b.splice(20..20, [1, 1, 1, 0]);
                    b[0] = 0x46;
                    b[2..4].copy_from_slice(&36u16.to_be_bytes());
                },
                true,
            ),
            false,
        ),
        (
            "more fragments",
            packet_bytes(PEER, US, udp, 0, |b| b[6] = 0x20, true),
            false,
        ),
        (
            "an offset",
            packet_bytes(PEER, US, udp, 0, |b| b[7] = 1, true),
            false,
        ),
        (
            "bad checksum",
            packet_bytes(PEER, US, udp, 0, |b| b[10] ^= 1, false),
            false,
        ),
        (
            "version 6",
            packet_bytes(PEER, US, udp, 0, |b| b[0] = 0x65, true),
            false,
        ),
        (
            "total length beyond the packet",
            packet_bytes(PEER, US, udp, 0, |b| b[3] += 1, true),
            false,
        ),
        (
            "total length below a header",
            packet_bytes(
                PEER,
                US,
                udp,
                0,
                |b| b[2..4].copy_from_slice(&[0, 19]),
                true,
            ),
            false,
        ),
        (
            "truncated",
            packet_bytes(PEER, US, udp, 0, |b| b.truncate(19), false),
            false,
        ),
        (
            "martian source",
            packet_bytes(Ipv4Addr::LOCALHOST, US, udp, 0, keep, true),
            false,
        ),
        // Each rejected pair twice in a row: a rejected pair never
        // becomes the carried one, so the second is checked anew too.
        (
            "martian source, again",
            packet_bytes(Ipv4Addr::LOCALHOST, US, udp, 0, keep, true),
            false,
        ),
        (
            "our own source",
            packet_bytes(US, US, udp, 0, keep, true),
            false,
        ),
        (
            "our own source, again",
            packet_bytes(US, US, udp, 0, keep, true),
            false,
        ),
        (
            "subnet broadcast",
            packet_bytes(PEER, broadcast, udp, 0, keep, true),
            false,
        ),
        (
            "limited broadcast",
            packet_bytes(PEER, Ipv4Addr::BROADCAST, udp, 0, keep, true),
            false,
        ),
        (
            "for another host",
            packet_bytes(PEER, other, udp, 0, keep, true),
            false,
        ),
    ];
    let single = [(US, 24)];
    let two = [(US, 24), (Ipv4Addr::new(192, 168, 1, 2), 24)];
    // (addresses, claim, whether the plain path may take anything)
    for (addresses, claim, plain_at_all) in [
        (&single[..], false, true),
        (&single[..], true, true),
        (&two[..], false, false),
    ] {
        let node = node(addresses, claim);
        let single = node.local.single();
        let mut taken = 0;
        // The last accepted pair carried from case to case, as along a
        // burst: a pair accepted before never lets a packet past a check
        // of anything but its addresses, and a new pair is checked.
        let mut accepted = single.map_or(0, accepted_seed);
        for (case, bytes, common) in &cases {
            let (mut plain, mut full) = (packet(&pool, bytes), packet(&pool, bytes));
            let output = receive_plain(&node, &mut plain, single, None);
            let mut carried = packet(&pool, bytes);
            let carried = receive_plain(&node, &mut carried, single, Some(&mut accepted));
            assert_eq!(carried, output, "{case:?}");
            let verdict = node.receive(&mut full, single);
            let case = (case, addresses.len(), claim);
            assert_eq!(output.is_some(), *common && plain_at_all, "{case:?}");
            if let Some(output) = output {
                assert_eq!(Verdict::emit(output), verdict, "{case:?}");
                assert_eq!(plain.payload(), full.payload(), "{case:?}");
                assert_eq!(plain.checked(), full.checked(), "{case:?}");
                taken += 1;
            }
        }
        let expected = if plain_at_all { 6 } else { 0 };
        assert_eq!(taken, expected, "{addresses:?}");
    }
    // The claimed datagram (UDP to port 7) goes to `forward` from the
    // plain path too.
    let claiming = node(&single, true);
    let bytes = packet_bytes(PEER, US, udp, 0, keep, true);
    let output = receive_plain(&claiming, &mut packet(&pool, &bytes), Some(US), None);
    assert_eq!(output, Some(Ipv4::FORWARD));
    let verdict = claiming.receive(&mut packet(&pool, &bytes), Some(US));
    assert_eq!(verdict, Verdict::emit(Ipv4::FORWARD));
}

/// A UDP packet from `source` to `US` whose identification is `id`.
fn numbered(source: Ipv4Addr, id: u16) -> Vec<u8> {
    let id = id.to_be_bytes();
    packet_bytes(
        source,
        US,
        protocol::UDP,
        0,
        |b| b[4..6].copy_from_slice(&id),
        true,
    )
}

/// A packet from `PEER` to `destination` with identification `id`, then
/// `edit`ed, before the header checksum is filled when `refill` (as
/// [`packet_bytes`]).
fn numbered_to(
    destination: Ipv4Addr,
    protocol: u8,
    padding: usize,
    id: u16,
    edit: impl Fn(&mut Vec<u8>),
    refill: bool,
) -> Vec<u8> {
    let id = id.to_be_bytes();
    packet_bytes(
        PEER,
        destination,
        protocol,
        padding,
        |b| {
            b[4..6].copy_from_slice(&id);
            edit(b)
        },
        refill,
    )
}

/// Runs a node for `US` (claiming UDP ports 7 to 9 when `claim`) once on
/// `burst`, one burst through `process`; returns the identifications of
/// the packets it delivered (on `forward` when claimed, else on `udp`),
/// in order, and its `bad-source` drops.
fn process_once(burst: &[Vec<u8>], claim: bool) -> (Vec<u16>, Option<u64>) {
    use dataplane::{ExecutorBuilder, LoopbackNic, MacAddr, Target};
    let room = burst.len().max(16);
    let pool = Mempool::with_heap(room, 0).unwrap();
    let mut nic = LoopbackNic::new(MacAddr::default(), room);
    for bytes in burst {
        nic.inject(packet(&pool, bytes)).unwrap();
    }
    let ipv4 = node(&[(US, 24)], claim);
    let outputs = ipv4.outputs();
    let mut builder = ExecutorBuilder::new();
    let port = builder.add_port(Box::new(nic));
    let delivered = builder.add_port(Box::new(LoopbackNic::new(MacAddr::default(), room)));
    let node = builder.add_node(Box::new(ipv4));
    builder.route_rx(port, node).unwrap();
    let taken = if claim { "forward" } else { "udp" };
    for output in outputs {
        let target = if *output == taken {
            Target::Port(delivered)
        } else {
            Target::Discard
        };
        builder.connect(node, output, target).unwrap();
    }
    let mut executor = builder.build().unwrap();
    assert_eq!(executor.poll_once(), burst.len());
    let bad_source = executor.counters().nodes[0].drops_named("bad-source");
    let nic = executor.nic_as::<LoopbackNic>(delivered).unwrap();
    let ids = core::iter::from_fn(|| nic.take_transmitted())
        .map(|packet| Ipv4Packet::new_checked(packet.payload()).unwrap().ident())
        .collect();
    (ids, bad_source)
}

#[test]
fn a_rejected_pair_of_addresses_is_rejected_again_within_a_burst() {
    let other_peer = Ipv4Addr::new(10, 0, 0, 7);
    // (burst, identifications delivered, bad-source drops)
    let cases: [(Vec<Vec<u8>>, Vec<u16>, u64); 3] = [
        // From the seeded peer: its first packet takes the carried pair.
        (
            vec![
                numbered(PEER, 1),
                numbered(Ipv4Addr::LOCALHOST, 2),
                numbered(Ipv4Addr::LOCALHOST, 3),
                numbered(PEER, 4),
            ],
            vec![1, 4],
            2,
        ),
        // From another peer first: its pair is checked and carried, then
        // the rejected pairs, each twice, are checked every time.
        (
            vec![
                numbered(other_peer, 1),
                numbered(Ipv4Addr::LOCALHOST, 2),
                numbered(Ipv4Addr::LOCALHOST, 3),
                numbered(other_peer, 4),
                numbered(US, 5),
                numbered(US, 6),
                numbered(other_peer, 7),
            ],
            vec![1, 4, 7],
            4,
        ),
        // A rejected pair first.
        (
            vec![numbered(US, 1), numbered(US, 2), numbered(other_peer, 3)],
            vec![3],
            2,
        ),
    ];
    // Every case run before any is judged: a wrong one names them all.
    let mut wrong = Vec::new();
    for claim in [false, true] {
        for (index, (burst, ids, bad_source)) in cases.iter().enumerate() {
            let expected = (ids.clone(), Some(*bad_source));
            let got = process_once(burst, claim);
            if got != expected {
                wrong.push((index, claim, got, expected));
            }
        }
    }
    assert!(wrong.is_empty(), "(case, claim, got, expected): {wrong:?}");
}

#[test]
fn a_burst_of_one_flow_and_every_packet_that_leaves_it_go_as_they_would_one_a_burst() {
    // (case, the packet put at an index of a burst from `PEER`)
    type Variant = (&'static str, fn(u16) -> Vec<u8>);
    let variants: Vec<Variant> = vec![
        ("alike", |id| numbered(PEER, id)),
        ("bad checksum", |id| {
            numbered_to(US, protocol::UDP, 0, id, |b| b[10] ^= 1, false)
        }),
        ("padding", |id| {
            numbered_to(US, protocol::UDP, 4, id, |_| {}, true)
        }),
        ("options", |id| {
            let options = |b: &mut Vec<u8>| {
                b.splice(20..20, [1, 1, 1, 0]);
                b[0] = 0x46;
                b[2..4].copy_from_slice(&36u16.to_be_bytes());
            };
            numbered_to(US, protocol::UDP, 0, id, options, true)
        }),
        ("another peer", |id| {
            numbered(Ipv4Addr::new(10, 0, 0, 7), id)
        }),
        ("icmp", |id| {
            numbered_to(US, protocol::ICMP, 0, id, |_| {}, true)
        }),
        ("broadcast", |id| {
            let broadcast = Ipv4Addr::new(10, 0, 0, 255);
            numbered_to(broadcast, protocol::UDP, 0, id, |_| {}, true)
        }),
        ("our own source", |id| numbered(US, id)),
        ("a fragment", |id| {
            numbered_to(US, protocol::UDP, 0, id, |b| b[6] = 0x20, true)
        }),
    ];
    let mut wrong = Vec::new();
    for claim in [false, true] {
        for (case, variant) in &variants {
            for index in [0usize, 1, 15, 31] {
                let burst: Vec<Vec<u8>> = (0..32u16)
                    .map(|id| {
                        if usize::from(id) == index {
                            variant(id)
                        } else {
                            numbered(PEER, id)
                        }
                    })
                    .collect();
                let whole = process_once(&burst, claim);
                let mut ids = Vec::new();
                let mut bad_source = 0;
                for bytes in &burst {
                    let (got, drops) = process_once(core::slice::from_ref(bytes), claim);
                    ids.extend(got);
                    bad_source += drops.unwrap_or(0);
                }
                if whole != (ids.clone(), Some(bad_source)) {
                    wrong.push((case, index, claim, whole, ids, bad_source));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:?}");
}
