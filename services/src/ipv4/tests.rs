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
        (
            "our own source",
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
