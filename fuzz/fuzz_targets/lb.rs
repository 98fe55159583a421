//! Fuzzes the load balancer: a sequence of IPv4 packets (separated by
//! `WCFZ`, the first byte of each picking its addresses: to the VIP, from
//! a backend, or as they are) through `LoadBalancer::steer` with three
//! backends and a 16-flow pin table. Invariants: nothing panics; a packet
//! refused or passed is unchanged; a packet steered to a backend has that
//! backend as its destination, a reply the VIP as its source; and checksums
//! that were right before an incremental rewrite are right after it.
#![forbid(unsafe_code)]
#![no_main]

use libfuzzer_sys::fuzz_target;
use services::lb::{Endpoint, LoadBalancer, MaglevTable, PinTable, Steered};
use std::net::Ipv4Addr;

const VIP: Endpoint = Endpoint { address: Ipv4Addr::new(10, 0, 2, 100), port: 80 };

fn sum(data: &[u8]) -> u32 {
    data.chunks(2).map(|pair| u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]))).sum()
}

fn folds_to_zero(mut total: u64) -> bool {
    while total > 0xffff {
        total = (total & 0xffff) + (total >> 16);
    }
    total == 0xffff
}

/// The IPv4 header and TCP/UDP checksums both hold (a UDP checksum of 0
/// means none). `None` when the packet is not one to judge.
fn checksums_hold(ip: &[u8]) -> Option<bool> {
    let header_len = usize::from(*ip.first()? & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?]));
    if header_len < 20 || total < header_len || total > ip.len() {
        return None;
    }
    let segment = &ip[header_len..total];
    let header_ok = folds_to_zero(u64::from(sum(&ip[..header_len])));
    let mut pseudo = Vec::from(&ip[12..20]);
    pseudo.extend_from_slice(&[0, ip[9]]);
    pseudo.extend_from_slice(&(segment.len() as u16).to_be_bytes());
    let transport_ok = match ip[9] {
        17 if segment.get(6..8) == Some(&[0, 0]) => true,
        6 | 17 => folds_to_zero(u64::from(sum(&pseudo)) + u64::from(sum(segment))),
        _ => return None,
    };
    Some(header_ok && transport_ok)
}

fuzz_target!(|data: &[u8]| {
    let backends: Vec<Endpoint> = (0..3)
        .map(|index| Endpoint { address: Ipv4Addr::new(10, 0, 2, 2 + index), port: 8000 })
        .collect();
    let table = MaglevTable::new(&backends, 251);
    let mut node = LoadBalancer::new(VIP, backends.clone(), table, PinTable::new(16));
    let mut rest = data;
    let mut now_ns = 1;
    while !rest.is_empty() {
        let end = rest.windows(4).position(|window| window == b"WCFZ").unwrap_or(rest.len());
        let (piece, after) = rest.split_at(end);
        rest = after.get(4..).unwrap_or(&[]);
        let [choice, packet @ ..] = piece else {
            continue;
        };
        let mut ip = packet.to_vec();
        // Aim the packet at the balancer (checksums then usually wrong,
        // which the rewrite must keep wrong, not crash on).
        if ip.len() >= 24 {
            match choice % 3 {
                0 => {
                    ip[16..20].copy_from_slice(&VIP.address.octets());
                    let header_len = usize::from(ip[0] & 0x0f) * 4;
                    if let Some(port) = ip.get_mut(header_len + 2..header_len + 4) {
                        port.copy_from_slice(&VIP.port.to_be_bytes());
                    }
                }
                1 => {
                    let backend = backends[usize::from(*choice >> 2) % 3];
                    ip[12..16].copy_from_slice(&backend.address.octets());
                    let header_len = usize::from(ip[0] & 0x0f) * 4;
                    if let Some(port) = ip.get_mut(header_len..header_len + 2) {
                        port.copy_from_slice(&backend.port.to_be_bytes());
                    }
                }
                _ => {}
            }
        }
        let before = ip.clone();
        let held = checksums_hold(&before);
        now_ns += u64::from(*choice) * 1_000_000_000;
        match node.steer(&mut ip, now_ns) {
            Ok(Steered::Passed) | Err(_) => assert_eq!(ip, before),
            Ok(Steered::Backend { index, .. }) => {
                assert_eq!(&ip[16..20], &backends[index].address.octets());
                assert_eq!(&ip[12..16], &before[12..16]);
                if held == Some(true) {
                    assert_eq!(checksums_hold(&ip), Some(true));
                }
            }
            Ok(Steered::Error) => {
                // An ICMP error about a balanced flow, translated: still
                // ICMP, the same length, its IPv4 header checksum kept
                // right when it was right.
                assert_eq!((ip[9], ip.len()), (1, before.len()));
                let header_len = usize::from(ip[0] & 0x0f) * 4;
                if folds_to_zero(u64::from(sum(&before[..header_len]))) {
                    assert!(folds_to_zero(u64::from(sum(&ip[..header_len]))));
                }
            }
            Ok(Steered::Reply) => {
                assert_eq!(&ip[12..16], &VIP.address.octets());
                if held == Some(true) {
                    assert_eq!(checksums_hold(&ip), Some(true));
                }
            }
        }
    }
    let flows: u64 = node.backend_flows().iter().sum();
    let packets: u64 = node.backend_packets().iter().sum();
    assert!(flows <= packets);
});
