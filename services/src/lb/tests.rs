//! The Maglev table against the paper's properties (balance, minimal
//! disruption on removal and addition), the rewrites on byte fixtures
//! with checksums recomputed independently, and the node's steering.

use super::*;
use alloc::vec::Vec;
use core::net::Ipv4Addr;

fn backend(host: u8, port: u16) -> Endpoint {
    Endpoint {
        address: Ipv4Addr::new(10, 0, 2, host),
        port,
    }
}

fn backends(count: u8) -> Vec<Endpoint> {
    (0..count).map(|index| backend(10 + index, 8000)).collect()
}

/// Slots per backend index.
fn shares(table: &MaglevTable, count: usize) -> Vec<usize> {
    let mut shares = alloc::vec![0; count];
    for &slot in table.slots() {
        shares[usize::from(slot)] += 1;
    }
    shares
}

#[test]
fn every_backend_gets_its_share_of_the_slots() {
    // Pseudocode 1 fills the table in rounds, one slot per backend per
    // round: every backend ends with floor(M/N) or ceil(M/N) slots.
    for count in [1u8, 2, 3, 7, 16] {
        for size in [65_537usize, 251, 17] {
            if size < usize::from(count) {
                continue;
            }
            let table = MaglevTable::new(&backends(count), size);
            assert_eq!(table.len(), size);
            let shares = shares(&table, usize::from(count));
            let low = size / usize::from(count);
            for share in &shares {
                assert!(
                    *share == low || *share == low + 1,
                    "{count} backends, {size} slots: {shares:?}"
                );
            }
            assert_eq!(shares.iter().sum::<usize>(), size);
        }
    }
}

/// Slots whose backend changed between two tables, among those that did
/// not belong to `except` in the first (by address, not index).
fn moved(
    before: (&MaglevTable, &[Endpoint]),
    after: (&MaglevTable, &[Endpoint]),
    except: Option<Endpoint>,
) -> usize {
    before
        .0
        .slots()
        .iter()
        .zip(after.0.slots())
        .filter(|&(&old, &new)| {
            let old = before.1[usize::from(old)];
            Some(old) != except && old != after.1[usize::from(new)]
        })
        .count()
}

#[test]
fn removing_a_backend_moves_its_slots_and_few_others() {
    let size = 65_537;
    for count in [3u8, 10] {
        let all = backends(count);
        let before = MaglevTable::new(&all, size);
        let mut worst = 0;
        for removed in 0..all.len() {
            let mut rest = all.clone();
            let gone = rest.remove(removed);
            let after = MaglevTable::new(&rest, size);
            // Every slot of the removed backend moves (it is gone); of
            // the others' slots, a small fraction does (Maglev trades
            // perfect stability for balance: the paper's Figure 10).
            let others = moved((&before, &all), (&after, &rest), Some(gone));
            worst = worst.max(others);
            assert!(others * 100 < size, "removing {removed}: {others} moved");
        }
        std::println!(
            "maglev removal, {count} backends, M = {size}: at most {worst} of the others' slots moved ({:.3} %)",
            worst as f64 * 100.0 / size as f64
        );
    }
}

#[test]
fn adding_a_backend_takes_its_share_and_moves_few_others() {
    let size = 65_537;
    let all = backends(10);
    let before = MaglevTable::new(&all[..9], size);
    let after = MaglevTable::new(&all, size);
    let new = all[9];
    // Slots that went to a backend other than the new one.
    let elsewhere = before
        .slots()
        .iter()
        .zip(after.slots())
        .filter(|&(&old, &now)| {
            let now = all[usize::from(now)];
            now != new && all[usize::from(old)] != now
        })
        .count();
    let taken = shares(&after, 10)[9];
    assert!(taken == size / 10 || taken == size / 10 + 1);
    assert!(elsewhere * 100 < size, "{elsewhere} moved elsewhere");
    std::println!(
        "maglev addition, 9 -> 10 backends, M = {size}: the new one took {taken} slots, {elsewhere} others moved ({:.3} %)",
        elsewhere as f64 * 100.0 / size as f64
    );
}

#[test]
fn the_table_depends_on_the_backends_not_their_order() {
    let all = backends(5);
    let mut reversed = all.clone();
    reversed.reverse();
    let forward = MaglevTable::new(&all, 251);
    let backward = MaglevTable::new(&reversed, 251);
    // Ties within a round go by list order, so a few slots may differ.
    let differ = moved((&forward, &all), (&backward, &reversed), None);
    assert!(differ * 10 < 251, "{differ} slots differ");
}

#[test]
fn table_sizes_are_primes() {
    assert!(is_prime(65_537));
    assert!(is_prime(2) && is_prime(3) && is_prime(251));
    assert!(!is_prime(0) && !is_prime(1) && !is_prime(65_536) && !is_prime(65_535));
    assert!(!is_prime(4_194_304));
}

/// The internet checksum of `data`, the plain way (RFC 1071).
fn reference_sum(data: &[u8]) -> u32 {
    let mut sum = 0u32;
    for pair in data.chunks(2) {
        sum += u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]));
    }
    sum
}

fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// True when the IPv4 header and the TCP or UDP checksum of `ip` are
/// right, recomputed from scratch.
fn checksums_hold(ip: &[u8]) -> bool {
    let header_len = usize::from(ip[0] & 0x0f) * 4;
    if fold(reference_sum(&ip[..header_len])) != 0 {
        return false;
    }
    let segment = &ip[header_len..];
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&ip[12..20]);
    pseudo.extend_from_slice(&[0, ip[9]]);
    pseudo.extend_from_slice(&(segment.len() as u16).to_be_bytes());
    fold(reference_sum(&pseudo) + reference_sum(segment)) == 0
}

/// An IPv4 packet from `source` to `destination` (fixed ports 40000 →
/// 80) of `protocol` 6 or 17 with `payload`, checksums filled.
fn packet(protocol: u8, source: Endpoint, destination: Endpoint, payload: &[u8]) -> Vec<u8> {
    let transport_len = if protocol == 6 { 20 } else { 8 };
    let total = 20 + transport_len + payload.len();
    let mut ip = alloc::vec![0u8; total];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    ip[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
    ip[8] = 64;
    ip[9] = protocol;
    ip[12..16].copy_from_slice(&source.address.octets());
    ip[16..20].copy_from_slice(&destination.address.octets());
    let sum = fold(reference_sum(&ip[..20]));
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    let segment = &mut ip[20..];
    segment[0..2].copy_from_slice(&source.port.to_be_bytes());
    segment[2..4].copy_from_slice(&destination.port.to_be_bytes());
    if protocol == 6 {
        segment[4..8].copy_from_slice(&0x0102_0304u32.to_be_bytes());
        segment[12] = 5 << 4;
        segment[13] = 0x02; // SYN
        segment[14..16].copy_from_slice(&64_240u16.to_be_bytes());
    } else {
        segment[4..6].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    }
    segment[transport_len..].copy_from_slice(payload);
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&ip[12..20]);
    pseudo.extend_from_slice(&[0, protocol]);
    pseudo.extend_from_slice(&((transport_len + payload.len()) as u16).to_be_bytes());
    let sum = fold(reference_sum(&pseudo) + reference_sum(&ip[20..]));
    let at = if protocol == 6 { 36 } else { 26 };
    ip[at..at + 2].copy_from_slice(&sum.to_be_bytes());
    ip
}

const CLIENT: Endpoint = Endpoint {
    address: Ipv4Addr::new(10, 0, 1, 2),
    port: 40_000,
};
const VIP: Endpoint = Endpoint {
    address: Ipv4Addr::new(10, 0, 2, 100),
    port: 80,
};

#[test]
fn rewriting_the_destination_keeps_tcp_and_udp_checksums_right() {
    let to = backend(3, 8000);
    for protocol in [6, 17] {
        for payload in [&b""[..], b"GET / HTTP/1.0\r\n\r\n", b"odd"] {
            let mut ip = packet(protocol, CLIENT, VIP, payload);
            assert!(checksums_hold(&ip));
            rewrite_destination(&mut ip, to).unwrap();
            assert_eq!(&ip[16..20], &[10, 0, 2, 3]);
            assert_eq!(&ip[22..24], &8000u16.to_be_bytes());
            assert_eq!(&ip[12..16], &[10, 0, 1, 2], "the source stays the client's");
            assert!(checksums_hold(&ip), "protocol {protocol}, {payload:?}");
            // And the same bytes as building the packet to the backend.
            assert_eq!(ip, packet(protocol, CLIENT, to, payload));
        }
    }
}

#[test]
fn rewriting_a_reply_source_to_the_vip_keeps_checksums_right() {
    let from = backend(3, 8000);
    for protocol in [6, 17] {
        let mut ip = packet(protocol, from, CLIENT, b"HTTP/1.0 200 OK\r\n");
        rewrite_source(&mut ip, VIP).unwrap();
        assert!(checksums_hold(&ip));
        assert_eq!(ip, packet(protocol, VIP, CLIENT, b"HTTP/1.0 200 OK\r\n"));
    }
}

#[test]
fn a_udp_datagram_without_a_checksum_keeps_none() {
    let mut ip = packet(17, CLIENT, VIP, b"x");
    ip[26..28].copy_from_slice(&[0, 0]);
    rewrite_destination(&mut ip, backend(3, 8000)).unwrap();
    assert_eq!(&ip[26..28], &[0, 0]);
    assert_eq!(fold(reference_sum(&ip[..20])), 0);
}

#[test]
fn short_and_fragmented_packets_are_refused_unchanged() {
    let whole = packet(6, CLIENT, VIP, b"");
    for cut in [0, 10, 19, 20, 30, 39] {
        let mut ip = whole[..cut].to_vec();
        let before = ip.clone();
        assert!(rewrite_destination(&mut ip, backend(3, 8000)).is_err());
        assert_eq!(ip, before);
    }
    // A header that says more than the bytes hold.
    let mut ip = whole.clone();
    ip[2..4].copy_from_slice(&1000u16.to_be_bytes());
    assert_eq!(
        rewrite_destination(&mut ip, backend(3, 8000)),
        Err(RewriteError::Malformed)
    );
    // A later fragment.
    let mut ip = whole.clone();
    ip[6..8].copy_from_slice(&0x0001u16.to_be_bytes());
    let sum = {
        ip[10..12].copy_from_slice(&[0, 0]);
        fold(reference_sum(&ip[..20]))
    };
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    assert_eq!(
        rewrite_destination(&mut ip, backend(3, 8000)),
        Err(RewriteError::Fragment)
    );
}

fn balancer(backends: Vec<Endpoint>, size: usize, flows: usize) -> LoadBalancer {
    let table = MaglevTable::new(&backends, size);
    LoadBalancer::new(VIP, backends, table, PinTable::new(flows))
}

fn from_client(port: u16) -> Vec<u8> {
    packet(
        6,
        Endpoint {
            address: CLIENT.address,
            port,
        },
        VIP,
        b"",
    )
}

#[test]
fn flows_spread_over_the_backends_and_stick_to_theirs() {
    let all = backends(3);
    let mut node = balancer(all.clone(), 65_537, 4096);
    let mut chosen = Vec::new();
    for port in 40_000..40_300 {
        let mut ip = from_client(port);
        let Ok(Steered::Backend { index, new, .. }) = node.steer(&mut ip, 1) else {
            panic!("not steered");
        };
        assert!(new);
        assert_eq!(&ip[16..20], &all[index].address.octets());
        assert!(checksums_hold(&ip));
        chosen.push(index);
    }
    for (offset, port) in (40_000..40_300).enumerate() {
        let mut ip = from_client(port);
        assert_eq!(
            node.steer(&mut ip, 2),
            Ok(Steered::Backend {
                index: chosen[offset],
                new: false,
                evicted: false
            })
        );
    }
    let flows = node.backend_flows();
    assert_eq!(flows.iter().sum::<u64>(), 300);
    // 300 flows over 3 backends: each gets some (and roughly a third).
    assert!(flows.iter().all(|&count| count > 60), "{flows:?}");
    assert_eq!(node.backend_packets().iter().sum::<u64>(), 600);
}

#[test]
fn replies_get_the_vip_back_and_other_traffic_passes() {
    let all = backends(3);
    let mut node = balancer(all.clone(), 251, 64);
    let mut reply = packet(6, all[1], CLIENT, b"hi");
    assert_eq!(node.steer(&mut reply, 1), Ok(Steered::Reply));
    assert_eq!(reply, packet(6, VIP, CLIENT, b"hi"));
    // A backend's other ports, other destinations, ICMP: untouched.
    for mut other in [
        packet(6, backend(11, 22), CLIENT, b""),
        packet(17, CLIENT, backend(3, 8000), b""),
        packet(6, CLIENT, Endpoint { port: 81, ..VIP }, b""),
    ] {
        let before = other.clone();
        assert_eq!(node.steer(&mut other, 1), Ok(Steered::Passed));
        assert_eq!(other, before);
    }
    let mut garbage = alloc::vec![0x45u8, 0, 0, 20];
    assert_eq!(node.steer(&mut garbage, 1), Ok(Steered::Passed));
    let mut short = from_client(1234);
    short.truncate(30);
    short[2..4].copy_from_slice(&30u16.to_be_bytes());
    short[10..12].copy_from_slice(&[0, 0]);
    let sum = fold(reference_sum(&short[..20]));
    short[10..12].copy_from_slice(&sum.to_be_bytes());
    assert_eq!(node.steer(&mut short, 1), Err(RewriteError::Malformed));
}

#[test]
fn pinned_flows_keep_their_backend_and_lapse_when_idle() {
    let mut node = balancer(backends(3), 251, 8);
    let mut ip = from_client(5555);
    let Ok(Steered::Backend { index, .. }) = node.steer(&mut ip, 1) else {
        panic!("not steered");
    };
    let mut again = from_client(5555);
    assert!(matches!(
        node.steer(&mut again, 1 + PIN_IDLE_NS - 1),
        Ok(Steered::Backend { new: false, index: same, .. }) if same == index
    ));
    let mut later = from_client(5555);
    assert!(matches!(
        node.steer(&mut later, 10 * PIN_IDLE_NS),
        Ok(Steered::Backend { new: true, index: same, .. }) if same == index
    ));
}

#[test]
fn a_full_pin_table_evicts_and_counts() {
    // 8 flows: two buckets of 4; 100 flows push each other out.
    let mut node = balancer(backends(3), 251, 8);
    let mut evicted = 0;
    for port in 1..=100 {
        let mut ip = from_client(port);
        if let Ok(Steered::Backend { evicted: true, .. }) = node.steer(&mut ip, u64::from(port)) {
            evicted += 1;
        }
    }
    assert!(evicted >= 100 - 8, "{evicted}");
}

#[test]
fn every_event_has_a_counter() {
    assert_eq!(node::EVENTS.len(), 2 * BACKEND_COUNTERS + 3);
    assert!(node::EVENTS.len() <= dataplane::stats::MAX_EVENTS);
    assert_eq!(BACKEND_COUNTERS, MAX_BACKENDS);
}

/// Each port's backend (by address:port) through `node` at `now_ns`.
fn steer_all(node: &mut LoadBalancer, ports: core::ops::Range<u16>, now_ns: u64) -> Vec<Endpoint> {
    ports
        .map(|port| {
            let mut ip = from_client(port);
            let Ok(Steered::Backend { index, .. }) = node.steer(&mut ip, now_ns) else {
                panic!("port {port} not steered");
            };
            node.backends()[index]
        })
        .collect()
}

#[test]
fn an_adopted_node_keeps_the_pins_of_surviving_backends() {
    // Three backends; then 10.0.2.12 removed and 10.0.2.13 added, the
    // survivors listed in another order (their indexes change).
    let all = backends(4);
    let first = alloc::vec![all[0], all[1], all[2]];
    let mut before = balancer(first.clone(), 65_537, 4096);
    let pinned = steer_all(&mut before, 40_000..40_400, 1);
    let mut after = balancer(alloc::vec![all[3], all[1], all[0]], 65_537, 4096);
    let kept = after.adopt(&before);
    let removed = pinned.iter().filter(|&&backend| backend == all[2]).count();
    assert!(removed > 0);
    assert_eq!(kept, 400 - removed);
    // The counts of kept backends follow them to their new places.
    assert_eq!(after.backend_flows()[2], before.backend_flows()[0]);
    assert_eq!(after.backend_flows()[0], 0);
    let now = steer_all(&mut after, 40_000..40_400, 2);
    let mut moved_to_new = 0;
    for (old, new) in pinned.iter().zip(&now) {
        if *old == all[2] {
            assert_ne!(*new, all[2]);
        } else {
            // Pinned: the new backend takes none of the live flows, though
            // its Maglev share would have taken about a third of them.
            assert_eq!(old, new, "a surviving backend's flow moved");
        }
        if *new == all[3] {
            moved_to_new += 1;
        }
    }
    assert!(moved_to_new <= removed);
    // Without adoption a fresh node would have moved survivors' flows.
    let mut fresh = balancer(alloc::vec![all[3], all[1], all[0]], 65_537, 4096);
    let fresh_now = steer_all(&mut fresh, 40_000..40_400, 2);
    let disturbed = pinned
        .iter()
        .zip(&fresh_now)
        .filter(|(old, new)| **old != all[2] && old != new)
        .count();
    assert!(disturbed > 0, "the test would not tell adoption from none");
    // A smaller pin table keeps what fits in its buckets.
    let mut small = balancer(first, 65_537, 64);
    assert!(small.adopt(&before) <= 64);
}

/// An ICMP port unreachable from `from` to `to` quoting the first 28
/// bytes of `quoted`, checksums filled.
fn unreachable(from: Ipv4Addr, to: Ipv4Addr, quoted: &[u8]) -> Vec<u8> {
    let total = 20 + 8 + 28;
    let mut ip = alloc::vec![0u8; total];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    ip[8] = 64;
    ip[9] = 1;
    ip[12..16].copy_from_slice(&from.octets());
    ip[16..20].copy_from_slice(&to.octets());
    let sum = fold(reference_sum(&ip[..20]));
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    ip[20] = 3;
    ip[21] = 3;
    ip[28..].copy_from_slice(&quoted[..28]);
    let sum = fold(reference_sum(&ip[20..]));
    ip[22..24].copy_from_slice(&sum.to_be_bytes());
    ip
}

#[test]
fn an_icmp_error_about_a_balanced_flow_is_translated_back_to_the_client() {
    let all = backends(3);
    let mut node = balancer(all.clone(), 251, 64);
    let mut sent = packet(17, CLIENT, VIP, b"ping");
    let Ok(Steered::Backend { index, .. }) = node.steer(&mut sent, 1) else {
        panic!("not steered");
    };
    let backend = all[index];
    // From the backend itself: from the VIP now, quoting the datagram as
    // the client sent it.
    let mut error = unreachable(backend.address, CLIENT.address, &sent);
    assert_eq!(node.steer(&mut error, 2), Ok(Steered::Error));
    let original = packet(17, CLIENT, VIP, b"ping");
    assert_eq!(&error[12..16], &VIP.address.octets());
    assert_eq!(&error[16..20], &CLIENT.address.octets());
    assert_eq!(fold(reference_sum(&error[..20])), 0, "outer IPv4 checksum");
    assert_eq!(fold(reference_sum(&error[20..])), 0, "ICMP checksum");
    assert_eq!(
        &error[28..56],
        &original[..28],
        "the quote as the client sent it"
    );
    // From a router on the way: its own address stays.
    let router = Ipv4Addr::new(10, 0, 2, 254);
    let mut error = unreachable(router, CLIENT.address, &sent);
    assert_eq!(node.steer(&mut error, 2), Ok(Steered::Error));
    assert_eq!(&error[12..16], &router.octets());
    assert_eq!(&error[28..56], &original[..28]);
    assert_eq!(fold(reference_sum(&error[20..])), 0);
    // About a flow the client opened to the backend directly (not
    // pinned through the VIP): not ours, untouched.
    let other = Endpoint {
        address: CLIENT.address,
        port: 40_001,
    };
    let direct = packet(17, other, backend, b"ping");
    let mut error = unreachable(backend.address, CLIENT.address, &direct);
    let before = error.clone();
    assert_eq!(node.steer(&mut error, 2), Ok(Steered::Passed));
    assert_eq!(error, before);
    // A quote cut short is no flow of ours either.
    let mut short = unreachable(backend.address, CLIENT.address, &sent);
    short.truncate(20 + 8 + 20);
    short[2..4].copy_from_slice(&48u16.to_be_bytes());
    let sum = fold(reference_sum(&{
        let mut header = short[..20].to_vec();
        header[10] = 0;
        header[11] = 0;
        header
    }));
    short[10..12].copy_from_slice(&sum.to_be_bytes());
    assert_eq!(node.steer(&mut short, 2), Ok(Steered::Passed));
    // Nor is one quoting garbage.
    let mut garbage = unreachable(backend.address, CLIENT.address, &[0x99; 28]);
    let before = garbage.clone();
    assert_eq!(node.steer(&mut garbage, 2), Ok(Steered::Passed));
    assert_eq!(garbage, before);
}
