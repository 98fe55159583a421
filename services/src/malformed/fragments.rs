//! The fragment cases of the catalogue: tiny, empty and oversized
//! fragments, datagrams in order, reordered and duplicated, overlaps,
//! contradictions, too many holes, and datagrams never completed.
//!
//! Datagrams that complete are UDP with a wrong checksum (dropped by `udp`
//! without a reply: proof that they were reassembled) or of an unknown
//! protocol (answered with protocol unreachable quoting the reassembled
//! header). Each case uses its own identification.

use super::{Builder, Catalogue};
use crate::reassembly::TIMEOUT_NS;
use crate::wire::UdpPacket;
use crate::wire::ipv4::protocol;
use alloc::vec;
use alloc::vec::Vec;
use core::net::Ipv4Addr;

/// Payload bytes of each test datagram: three fragments of 16.
const DATAGRAM_LEN: usize = 48;

impl Builder {
    /// A UDP datagram to the echo port whose checksum is wrong.
    fn bad_udp(&self) -> Vec<u8> {
        let mut datagram = self.udp(7, b"fragmented, not for echo");
        datagram.resize(DATAGRAM_LEN, b'.');
        datagram[4..6].copy_from_slice(&(DATAGRAM_LEN as u16).to_be_bytes());
        UdpPacket::new_unchecked(&mut datagram[..]).fill_checksum(self.peer_ip, self.our_ip);
        datagram[6] ^= 0x5a;
        datagram
    }

    /// The IP fragment of `data` at `[start, end)` (MF unless `last`).
    fn fragment_ip(
        &self,
        ident: u16,
        protocol: u8,
        data: &[u8],
        (start, end): (usize, usize),
        last: bool,
    ) -> Vec<u8> {
        let ip = self.ipv4(self.our_ip, protocol, &data[start..end]);
        let word = if last { 0 } else { 0x2000 } | (start / 8) as u16;
        self.edited(ip, |p| {
            p[4..6].copy_from_slice(&ident.to_be_bytes());
            p[6..8].copy_from_slice(&word.to_be_bytes());
        })
    }

    /// [`Self::fragment_ip`] in an Ethernet frame to us.
    fn fragment(&self, ident: u16, data: &[u8], range: (usize, usize), last: bool) -> Vec<u8> {
        self.frame(&self.fragment_ip(ident, protocol::UDP, data, range, last))
    }
}

/// `count` first fragments of distinct datagrams (identifications 0x8000
/// on) whose rest never comes: each holds a reassembly slot until it is
/// evicted by a newer one or times out.
pub fn unfinished_datagrams(
    ours: dataplane::MacAddr,
    our_ip: Ipv4Addr,
    peer_mac: dataplane::MacAddr,
    peer_ip: Ipv4Addr,
    count: u16,
) -> Vec<Vec<u8>> {
    let b = Builder {
        ours,
        our_ip,
        peer_mac,
        peer_ip,
    };
    let data = b.bad_udp();
    (0..count)
        .map(|index| b.fragment(0x8000 | index, &data, (0, 16), false))
        .collect()
}

/// Adds the fragment cases.
pub(super) fn add(b: &Builder, c: &mut Catalogue) {
    let data = b.bad_udp();
    let udp_bad_checksum = ("udp", "bad-checksum");
    let overlap = ("ipv4", "fragment-overlap");
    let duplicate = ("ipv4", "fragment-duplicate");
    let part = |ident: u16, start: usize, end: usize, last: bool| {
        b.fragment(ident, &data, (start, end), last)
    };
    let thirds = |ident: u16| {
        [
            part(ident, 0, 16, false),
            part(ident, 16, 32, false),
            part(ident, 32, 48, true),
        ]
    };

    // Single fragments refused on sight.
    c.add_after(
        "fragment-tiny",
        vec![],
        part(0x100, 0, 5, false),
        ("ipv4", "fragment-bad-length"),
    );
    c.add_after(
        "fragment-empty",
        vec![],
        part(0x101, 16, 16, true),
        ("ipv4", "fragment-bad-length"),
    );
    let mut huge = vec![0u8; 65528 + 16];
    huge[65528..].copy_from_slice(&data[..16]);
    c.add_after(
        "fragment-ping-of-death",
        vec![],
        b.fragment(0x102, &huge, (65528, 65528 + 16), true),
        ("ipv4", "fragment-too-large"),
    );
    c.add_after(
        "fragment-oversized-middle",
        vec![],
        b.fragment(0x103, &huge, (65512, 65512 + 32), false),
        ("ipv4", "fragment-too-large"),
    );
    let multicast = b.edited(b.fragment_ip(0x104, 17, &data, (0, 16), false), |p| {
        p[12..16].copy_from_slice(&[224, 0, 0, 9])
    });
    c.add(
        "fragment-multicast-source",
        b.frame(&multicast),
        "ipv4",
        "bad-source",
    );
    let mut bad_checksum = b.fragment_ip(0x105, 17, &data, (0, 16), false);
    bad_checksum[10] ^= 0x33;
    c.add(
        "fragment-bad-header-checksum",
        b.frame(&bad_checksum),
        "ipv4",
        "bad-checksum",
    );
    let looped = b.edited(b.fragment_ip(0x106, 17, &data, (0, 16), false), |p| {
        p[12..16].copy_from_slice(&[127, 0, 0, 1])
    });
    c.add(
        "fragment-loopback-source",
        b.frame(&looped),
        "ipv4",
        "bad-source",
    );
    let stranger = Ipv4Addr::from_bits(b.our_ip.to_bits() ^ 0xf0);
    let elsewhere = b.edited(b.fragment_ip(0x107, 17, &data, (0, 16), false), |p| {
        p[16..20].copy_from_slice(&stranger.octets())
    });
    c.add(
        "fragment-not-for-us",
        b.frame(&elsewhere),
        "ipv4",
        "not-for-us",
    );

    // Datagrams that complete, in every order.
    for (name, ident, order) in [
        ("fragments-in-order", 0x110, [0, 1, 2]),
        ("fragments-reordered", 0x111, [2, 1, 0]),
        ("fragments-last-first", 0x112, [2, 0, 1]),
        ("fragments-middle-first", 0x113, [1, 2, 0]),
    ] {
        let [first, second, third] = order.map(|index| thirds(ident)[index].clone());
        c.add_after(name, vec![first, second], third, udp_bad_checksum);
    }
    let unknown = [0u8; DATAGRAM_LEN].map(|_| b'?');
    let proto =
        |start, end, last| b.frame(&b.fragment_ip(0x114, 253, &unknown, (start, end), last));
    c.add_after(
        "fragments-of-an-unknown-protocol",
        vec![proto(16, 48, true)],
        proto(0, 16, false),
        ("ipv4", "unknown-protocol"),
    );
    let whole = b.edited(b.ipv4(b.our_ip, 253, &unknown), |p| {
        p[4..6].copy_from_slice(&0x114u16.to_be_bytes())
    });
    c.reply(b.icmp_error(3, 2, &whole));

    // Duplicates are ignored; the datagram they belong to is finished or
    // broken by the case after.
    let [first, _, third] = thirds(0x120);
    c.add_after("fragment-duplicate", vec![first.clone()], first, duplicate);
    c.add_after(
        "fragment-overlapping-partly",
        vec![],
        part(0x120, 8, 24, false),
        overlap,
    );
    c.add_after(
        "fragment-duplicate-inside-a-run",
        vec![part(0x121, 0, 16, false), part(0x121, 16, 32, false)],
        part(0x121, 8, 24, false),
        duplicate,
    );
    c.add_after(
        "fragments-completed-after-a-duplicate",
        vec![],
        part(0x121, 32, 48, true),
        udp_bad_checksum,
    );
    c.add_after(
        "fragment-duplicate-last",
        vec![third.clone()],
        third,
        duplicate,
    );
    c.add_after(
        "fragment-overlapping-the-last",
        vec![],
        part(0x120, 24, 40, false),
        overlap,
    );

    // Contradictions drop the datagram.
    c.add_after(
        "fragment-overwriting-the-udp-header",
        vec![part(0x130, 0, 16, false)],
        part(0x130, 8, 32, false),
        overlap,
    );
    c.add_after(
        "fragment-second-last-with-another-end",
        vec![part(0x131, 32, 48, true)],
        part(0x131, 16, 24, true),
        overlap,
    );
    c.add_after(
        "fragment-past-the-known-end",
        vec![part(0x132, 16, 32, true)],
        part(0x132, 32, 48, false),
        overlap,
    );
    c.add_after(
        "fragment-last-before-received-data",
        vec![part(0x133, 32, 48, false)],
        part(0x133, 16, 24, true),
        overlap,
    );
    let spread = vec![0x77u8; 8 * 2 * (crate::reassembly::MAX_RUNS + 1)];
    let holes = (0..crate::reassembly::MAX_RUNS)
        .map(|index| b.fragment(0x134, &spread, (index * 16, index * 16 + 8), false))
        .collect();
    let beyond = crate::reassembly::MAX_RUNS * 16;
    c.add_after(
        "fragments-with-too-many-holes",
        holes,
        b.fragment(0x134, &spread, (beyond, beyond + 8), false),
        ("ipv4", "fragment"),
    );

    // Never completed: dropped after the timeout, with time exceeded when
    // the first fragment had come.
    let first = b.fragment_ip(0x140, protocol::UDP, &data, (0, 16), false);
    c.add_after(
        "fragments-never-completed",
        vec![],
        b.frame(&first),
        ("ipv4", "reassembly-timeout"),
    );
    c.reply(b.icmp_error(11, 1, &first));
    c.last_after(TIMEOUT_NS);
    c.add_after(
        "fragments-never-completed-without-the-first",
        vec![],
        part(0x141, 16, 32, false),
        ("ipv4", "reassembly-timeout"),
    );
    c.last_after(TIMEOUT_NS);
}
