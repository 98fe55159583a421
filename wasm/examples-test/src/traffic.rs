//! The frames every test and the cost report run through the modules:
//! one mix of flows that touches each rule and branch of the examples.

use crate::frames::{Ipv4Packet, arp_frame};

/// The ACL config the tests and the cost report use.
pub const ACL_CONFIG: &str = "drop udp any any 10.0.2.0/24 9; pass tcp 10.0.1.5 any any 22;\n\
                              drop tcp any any any 22; drop icmp 192.168.0.0/16 any any any; drop 47 any any any any";

/// The rewriter config the tests and the cost report use.
pub const REWRITER_CONFIG: &str = "dscp 46; port 9 7; port 5000 6000";

/// The mix's IPv4 packets (`None` for the ARP frame, which has no IPv4 form).
pub fn mix() -> Vec<Option<Ipv4Packet>> {
    let long = Ipv4Packet {
        payload: vec![0xa5; 1000],
        ..Ipv4Packet::udp([10, 0, 1, 3], [10, 0, 2, 2], 1234, 9)
    };
    let fragment = Ipv4Packet {
        fragment_offset: 100,
        ..Ipv4Packet::udp([10, 0, 1, 2], [10, 0, 2, 2], 1000, 9)
    };
    let no_checksum = Ipv4Packet {
        udp_checksum: false,
        ..Ipv4Packet::udp([10, 0, 1, 2], [10, 0, 2, 9], 53, 9)
    };
    let gre = Ipv4Packet {
        protocol: 47,
        ..Ipv4Packet::udp([10, 0, 1, 2], [10, 0, 2, 2], 0, 0)
    };
    let marked = Ipv4Packet {
        tos: 46 << 2 | 1,
        ..Ipv4Packet::udp([10, 0, 1, 4], [10, 0, 4, 4], 3000, 3001)
    };
    vec![
        Some(Ipv4Packet::udp([10, 0, 1, 2], [10, 0, 2, 2], 1000, 9)),
        Some(Ipv4Packet::udp([10, 0, 1, 2], [10, 0, 2, 2], 1001, 7)),
        Some(Ipv4Packet::tcp([10, 0, 1, 5], [10, 0, 2, 2], 40000, 22)),
        Some(Ipv4Packet::tcp([10, 0, 1, 6], [10, 0, 2, 2], 40001, 22)),
        Some(Ipv4Packet::icmp([10, 0, 1, 2], [10, 0, 2, 2])),
        Some(Ipv4Packet::icmp([192, 168, 0, 1], [10, 0, 2, 2])),
        Some(Ipv4Packet::tcp([10, 0, 1, 7], [10, 0, 3, 3], 5000, 5000)),
        Some(no_checksum),
        Some(fragment),
        None,
        Some(gre),
        Some(long),
        Some(marked),
    ]
}

/// The mix as Ethernet frames (what `port:rx` sees).
pub fn mix_frames() -> Vec<Vec<u8>> {
    mix()
        .into_iter()
        .map(|packet| packet.map_or_else(arp_frame, |packet| packet.frame()))
        .collect()
}

/// The mix as IPv4 packets (what the `ipv4:*` hooks see), without the ARP frame.
pub fn mix_ip() -> Vec<Vec<u8>> {
    mix()
        .into_iter()
        .flatten()
        .map(|packet| packet.ip())
        .collect()
}

/// `times` copies of `frames` one after another.
pub fn repeated(frames: &[Vec<u8>], times: usize) -> Vec<Vec<u8>> {
    (0..times).flat_map(|_| frames.iter().cloned()).collect()
}
