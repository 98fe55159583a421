//! `malformed_segments`: bad TCP segments for the TCP node, each wrong in
//! exactly one way and counted as ("tcp", reason), none answered.
//!
//! Every segment comes from the peer's port 40000 to `port` on us, in an
//! IPv4 packet with a correct header checksum, and (but for the
//! bad-checksum case) with a correct TCP checksum, so that each is dropped
//! for its one fault. They are not in `malformed_frames` until the TCP node
//! exists.

use super::{Builder, Catalogue, MalformedFrame};
use crate::wire::TcpPacket;
use crate::wire::ipv4::protocol;
use crate::wire::tcp::{TcpFlags, TcpHeader, TcpOptions};
use alloc::vec::Vec;
use core::net::Ipv4Addr;
use dataplane::MacAddr;

/// The peer's port.
const PEER_PORT: u16 = 40000;

impl Builder {
    /// A segment from the peer to `port`: `flags`, the options of a Linux
    /// SYN when `flags` has SYN, then `payload`; checksum filled.
    fn tcp(&self, port: u16, flags: TcpFlags, payload: &[u8]) -> Vec<u8> {
        let options = if flags.contains(TcpFlags::SYN) {
            TcpOptions {
                mss: Some(1460),
                window_scale: Some(7),
                sack_permitted: true,
                timestamps: Some((0x0001_0203, 0)),
                sack_blocks: Default::default(),
            }
        } else {
            TcpOptions::default()
        };
        let header = TcpHeader {
            source_port: PEER_PORT,
            destination_port: port,
            sequence: 0x1000_0000,
            acknowledgment: if flags.contains(TcpFlags::ACK) { 1 } else { 0 },
            flags,
            window: 64240,
            options,
        };
        let mut segment = alloc::vec![0u8; header.header_len() + payload.len()];
        header.emit(&mut segment);
        segment[header.header_len()..].copy_from_slice(payload);
        self.sealed(segment)
    }

    /// `segment` with its TCP checksum filled (any length from 18 bytes,
    /// whatever its data offset says).
    fn sealed(&self, mut segment: Vec<u8>) -> Vec<u8> {
        TcpPacket::new_unchecked(&mut segment[..]).fill_checksum(self.peer_ip, self.our_ip);
        segment
    }

    /// `segment` in an IPv4 packet in an Ethernet frame to us.
    fn tcp_frame(&self, segment: &[u8]) -> Vec<u8> {
        self.frame(&self.ipv4(self.our_ip, protocol::TCP, segment))
    }
}

/// Bad TCP segments to `port` on us, each with the ("tcp", reason) counter
/// it must bump: `truncated`, `bad-data-offset`, `bad-checksum`,
/// `bad-options` or `bad-flags`. None gets a reply. The setup is that of
/// `malformed_frames`.
pub fn malformed_segments(
    ours: MacAddr,
    our_ip: Ipv4Addr,
    peer_mac: MacAddr,
    peer_ip: Ipv4Addr,
    port: u16,
) -> Vec<MalformedFrame> {
    let b = Builder {
        ours,
        our_ip,
        peer_mac,
        peer_ip,
    };
    let syn = b.tcp(port, TcpFlags::SYN, b"");
    let mut c = Catalogue::default();

    // Truncated: 19 bytes, the checksum field still inside and right.
    let short = b.sealed(b.tcp(port, TcpFlags::ACK, b"")[..19].to_vec());
    c.add("tcp-truncated", b.tcp_frame(&short), "tcp", "truncated");

    // Data offset.
    let mut below_5 = b.tcp(port, TcpFlags::ACK, b"");
    below_5[12] = 0x40;
    c.add(
        "tcp-data-offset-below-5",
        b.tcp_frame(&b.sealed(below_5)),
        "tcp",
        "bad-data-offset",
    );
    let mut beyond = b.tcp(port, TcpFlags::ACK, b"four");
    beyond[12] = 0xf0;
    c.add(
        "tcp-data-offset-beyond-segment",
        b.tcp_frame(&b.sealed(beyond)),
        "tcp",
        "bad-data-offset",
    );

    // Checksum.
    let mut checksum = syn.clone();
    checksum[16] ^= 0x5a;
    c.add(
        "tcp-bad-checksum",
        b.tcp_frame(&checksum),
        "tcp",
        "bad-checksum",
    );

    // Options, in a SYN with a 24-byte header.
    for (name, options) in [
        // An experimental kind (RFC 4727) of length 0.
        ("tcp-option-length-zero", [253, 0, 1, 1]),
        // Eight bytes claimed, two left in the header.
        ("tcp-option-past-header", [1, 1, 253, 8]),
        ("tcp-option-mss-length-3", [2, 3, 5, 1]),
    ] {
        let mut segment = b.tcp(port, TcpFlags::NONE, b"");
        segment.extend_from_slice(&options);
        segment[12] = 0x60;
        segment[13] = TcpFlags::SYN.0;
        c.add(name, b.tcp_frame(&b.sealed(segment)), "tcp", "bad-options");
    }

    // Flags.
    for (name, flags, payload) in [
        ("tcp-flags-syn-fin", TcpFlags::SYN | TcpFlags::FIN, &b""[..]),
        ("tcp-flags-syn-rst", TcpFlags::SYN | TcpFlags::RST, b""),
        ("tcp-flags-none", TcpFlags::NONE, b""),
        (
            "tcp-flags-xmas",
            TcpFlags::FIN | TcpFlags::PSH | TcpFlags::URG,
            b"",
        ),
        ("tcp-data-without-ack", TcpFlags::PSH, b"warpcore"),
    ] {
        c.add(
            name,
            b.tcp_frame(&b.tcp(port, flags, payload)),
            "tcp",
            "bad-flags",
        );
    }
    c.frames
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ethernet::{EtherType, EthernetFrame};
    use crate::wire::tcp::parse_options;
    use crate::wire::{Ipv4Packet, WireError};
    use alloc::collections::BTreeSet;

    const OURS: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
    const PEER_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);
    const OUR_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const PEER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
    const PORT: u16 = 8080;

    /// What a TCP node would count for `segment`, checking in this order.
    fn reason(segment: &[u8]) -> &'static str {
        let tcp = match TcpPacket::new_checked(segment) {
            Ok(tcp) => tcp,
            Err(WireError::Truncated) => return "truncated",
            Err(_) => return "bad-data-offset",
        };
        if !tcp.verify_checksum(PEER_IP, OUR_IP) {
            return "bad-checksum";
        }
        if parse_options(tcp.options()).is_err() {
            return "bad-options";
        }
        let flags = tcp.flags();
        let syn_with =
            flags.contains(TcpFlags::SYN) && flags.intersects(TcpFlags::FIN | TcpFlags::RST);
        let none_of = !flags.intersects(TcpFlags::ACK | TcpFlags::SYN | TcpFlags::RST);
        if syn_with || none_of {
            return "bad-flags";
        }
        "accepted"
    }

    #[test]
    fn every_segment_is_wrong_in_its_one_way() {
        let segments = malformed_segments(OURS, OUR_IP, PEER_MAC, PEER_IP, PORT);
        let names: BTreeSet<_> = segments.iter().map(|segment| segment.name).collect();
        assert_eq!(names.len(), segments.len(), "names are unique");
        assert_eq!(segments.len(), 12);
        for case in &segments {
            let name = case.name;
            let frame = EthernetFrame::new_checked(&case.bytes[..]).unwrap();
            assert_eq!(frame.destination(), OURS, "{name}");
            assert_eq!(frame.source(), PEER_MAC, "{name}");
            assert_eq!(frame.ethertype(), EtherType::IPV4, "{name}");
            let ip = Ipv4Packet::new_checked(frame.payload()).unwrap();
            assert!(ip.verify_checksum(), "{name}");
            assert_eq!(usize::from(ip.total_len()), frame.payload().len(), "{name}");
            assert_eq!(ip.protocol(), protocol::TCP, "{name}");
            assert_eq!(ip.source(), PEER_IP, "{name}");
            assert_eq!(ip.destination(), OUR_IP, "{name}");
            let segment = ip.payload();
            let tcp = TcpPacket::new_unchecked(segment);
            assert_eq!(tcp.source_port(), PEER_PORT, "{name}");
            assert_eq!(tcp.destination_port(), PORT, "{name}");
            assert_eq!(
                tcp.verify_checksum(PEER_IP, OUR_IP),
                name != "tcp-bad-checksum",
                "{name}"
            );
            assert_eq!(case.counter, ("tcp", reason(segment)), "{name}");
            assert!(case.name.starts_with("tcp-"), "{name}");
            assert_eq!(case.reply, None, "{name}");
            assert!(case.preceded_by.is_empty(), "{name}");
            assert_eq!(case.after_ns, 0, "{name}");
        }
        let reasons: BTreeSet<_> = segments.iter().map(|segment| segment.counter.1).collect();
        assert_eq!(
            reasons,
            BTreeSet::from([
                "truncated",
                "bad-data-offset",
                "bad-checksum",
                "bad-options",
                "bad-flags"
            ])
        );
    }

    #[test]
    fn the_segments_they_are_made_from_are_accepted() {
        let b = Builder {
            ours: OURS,
            our_ip: OUR_IP,
            peer_mac: PEER_MAC,
            peer_ip: PEER_IP,
        };
        assert_eq!(reason(&b.tcp(PORT, TcpFlags::SYN, b"")), "accepted");
        assert_eq!(reason(&b.tcp(PORT, TcpFlags::ACK, b"")), "accepted");
        assert_eq!(
            reason(&b.tcp(PORT, TcpFlags::PSH | TcpFlags::ACK, b"data")),
            "accepted"
        );
    }
}
