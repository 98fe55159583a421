//! `malformed_frames`: a catalogue of bad frames, each with the one drop
//! counter it must bump, for unit tests here and for the hosted and QEMU
//! integration tests that send them from a network namespace.
//!
//! Every frame is aimed at an interface with MAC `ours` and address
//! `our_ip` on a core **without l3fwd**, sent by a neighbour (`peer_mac`,
//! `peer_ip`) on the same subnet, whose MAC the core has learnt. A frame
//! causes no transmission but its `reply`, byte for byte (ICMP errors:
//! fewer than the rate limiter's burst per peer in the whole catalogue, so
//! every one is sent). Frames in `preceded_by` go first (the fragments a
//! case needs) and move no counter. The catalogue is sent in order, and a
//! fragment case may finish a datagram an earlier case left in progress;
//! only the cases with an `after_ns` leave one to time out.

use crate::wire::arp::{ArpOperation, ArpPacket};
use crate::wire::checksum;
use crate::wire::ethernet::{EtherType, EthernetFrame, HEADER_LEN};
use crate::wire::ipv4::protocol;
use crate::wire::{IcmpPacket, Ipv4Packet, UdpPacket};
use alloc::vec;
use alloc::vec::Vec;
use core::net::Ipv4Addr;
use dataplane::MacAddr;

/// A bad frame and the counter it must move by exactly one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MalformedFrame {
    /// Short kebab-case name, like `ipv4-bad-checksum`.
    pub name: &'static str,
    /// The whole Ethernet frame (no FCS).
    pub bytes: Vec<u8>,
    /// (node name, drop reason) as in `CoreCounters`.
    pub counter: (&'static str, &'static str),
    /// Frames sent first, in order: each is taken in (fragments held for
    /// reassembly), moves no counter and gets no reply.
    pub preceded_by: Vec<Vec<u8>>,
    /// The whole Ethernet frame sent back, if any (an ICMP error).
    pub reply: Option<Vec<u8>>,
    /// How long after the frame the counter moves and the reply leaves:
    /// 0, except for datagrams left to time out in reassembly.
    pub after_ns: u64,
}

mod fragments;
mod tcp;

pub use fragments::unfinished_datagrams;
pub use tcp::malformed_segments;

struct Builder {
    ours: MacAddr,
    our_ip: Ipv4Addr,
    peer_mac: MacAddr,
    peer_ip: Ipv4Addr,
}

impl Builder {
    fn ethernet(&self, destination: MacAddr, ethertype: EtherType, payload: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0u8; HEADER_LEN + payload.len()];
        let mut frame = EthernetFrame::new_unchecked(&mut bytes[..]);
        frame.set_destination(destination);
        frame.set_source(self.peer_mac);
        frame.set_ethertype(ethertype);
        frame.payload_mut().copy_from_slice(payload);
        bytes
    }

    fn arp(&self, operation: ArpOperation, sender_ip: Ipv4Addr, target_ip: Ipv4Addr) -> Vec<u8> {
        let mut arp = [0u8; 28];
        ArpPacket::new_unchecked(&mut arp[..]).emit(
            operation,
            (self.peer_mac, sender_ip),
            (MacAddr([0; 6]), target_ip),
        );
        self.ethernet(MacAddr::BROADCAST, EtherType::ARP, &arp)
    }

    /// An IPv4 packet from the peer with a correct header checksum.
    fn ipv4(&self, destination: Ipv4Addr, protocol: u8, payload: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0u8; 20 + payload.len()];
        Ipv4Packet::new_unchecked(&mut bytes[..]).emit_header(
            self.peer_ip,
            destination,
            protocol,
            payload.len() as u16,
            64,
        );
        bytes[20..].copy_from_slice(payload);
        bytes
    }

    /// Applies `edit` to an IP packet and fixes its header checksum.
    fn edited(&self, mut packet: Vec<u8>, edit: impl FnOnce(&mut [u8])) -> Vec<u8> {
        edit(&mut packet);
        let header_len = (usize::from(packet[0] & 0x0f) * 4).clamp(20, packet.len());
        packet[10..12].copy_from_slice(&[0, 0]);
        let value = checksum::checksum(&packet[..header_len]);
        packet[10..12].copy_from_slice(&value.to_be_bytes());
        packet
    }

    fn frame(&self, ip: &[u8]) -> Vec<u8> {
        self.ethernet(self.ours, EtherType::IPV4, ip)
    }

    fn udp(&self, port: u16, payload: &[u8]) -> Vec<u8> {
        let mut datagram = vec![0u8; 8 + payload.len()];
        datagram[..2].copy_from_slice(&40000u16.to_be_bytes());
        datagram[2..4].copy_from_slice(&port.to_be_bytes());
        let length = datagram.len() as u16;
        datagram[4..6].copy_from_slice(&length.to_be_bytes());
        datagram[8..].copy_from_slice(payload);
        UdpPacket::new_unchecked(&mut datagram[..]).fill_checksum(self.peer_ip, self.our_ip);
        datagram
    }

    /// The ICMP error we send back about `offending` (an IP packet from
    /// the peer), as a whole Ethernet frame.
    fn icmp_error(&self, msg_type: u8, code: u8, offending: &[u8]) -> Vec<u8> {
        let header_len = usize::from(offending[0] & 0x0f) * 4;
        let quoted = &offending[..(header_len + 8).min(offending.len())];
        let mut message = vec![0u8; 8 + quoted.len()];
        IcmpPacket::new_unchecked(&mut message[..]).emit_error(msg_type, code, quoted);
        let mut ip = vec![0u8; 20 + message.len()];
        Ipv4Packet::new_unchecked(&mut ip[..]).emit_header(
            self.our_ip,
            self.peer_ip,
            protocol::ICMP,
            message.len() as u16,
            64,
        );
        ip[20..].copy_from_slice(&message);
        let mut bytes = vec![0u8; HEADER_LEN + ip.len()];
        let mut frame = EthernetFrame::new_unchecked(&mut bytes[..]);
        frame.set_destination(self.peer_mac);
        frame.set_source(self.ours);
        frame.set_ethertype(EtherType::IPV4);
        frame.payload_mut().copy_from_slice(&ip);
        bytes
    }

    fn echo_request(&self) -> Vec<u8> {
        let mut message = vec![8, 0, 0, 0, 0x12, 0x34, 0, 1, b'w', b'a', b'r', b'p'];
        IcmpPacket::new_unchecked(&mut message[..]).fill_checksum();
        message
    }
}

/// The catalogue as it grows.
#[derive(Default)]
struct Catalogue {
    frames: Vec<MalformedFrame>,
}

impl Catalogue {
    /// Adds a frame that must move `node`'s drop counter `reason`.
    fn add(
        &mut self,
        name: &'static str,
        bytes: Vec<u8>,
        node: &'static str,
        reason: &'static str,
    ) {
        self.frames.push(MalformedFrame {
            name,
            bytes,
            counter: (node, reason),
            preceded_by: Vec::new(),
            reply: None,
            after_ns: 0,
        });
    }

    /// Adds a case that needs `preceded_by` sent first.
    fn add_after(
        &mut self,
        name: &'static str,
        preceded_by: Vec<Vec<u8>>,
        bytes: Vec<u8>,
        counter: (&'static str, &'static str),
    ) {
        self.add(name, bytes, counter.0, counter.1);
        if let Some(frame) = self.frames.last_mut() {
            frame.preceded_by = preceded_by;
        }
    }

    /// Sets how long after the last frame added its counter moves.
    fn last_after(&mut self, after_ns: u64) {
        if let Some(frame) = self.frames.last_mut() {
            frame.after_ns = after_ns;
        }
    }

    /// Sets the reply of the last frame added.
    fn reply(&mut self, reply: Vec<u8>) {
        if let Some(frame) = self.frames.last_mut() {
            frame.reply = Some(reply);
        }
    }
}

/// At least sixty kinds of bad frames, each with the exact
/// (node, drop reason) counter it bumps. See the module docs for the setup.
pub fn malformed_frames(
    ours: MacAddr,
    our_ip: Ipv4Addr,
    peer_mac: MacAddr,
    peer_ip: Ipv4Addr,
) -> Vec<MalformedFrame> {
    let b = Builder {
        ours,
        our_ip,
        peer_mac,
        peer_ip,
    };
    let udp = b.ipv4(our_ip, protocol::UDP, &b.udp(7, b"warpcore"));
    let echo = b.ipv4(our_ip, protocol::ICMP, &b.echo_request());
    let stranger = Ipv4Addr::from_bits(our_ip.to_bits() ^ 0x0000_00f0);
    let mut c = Catalogue::default();

    // Ethernet.
    c.add("ethernet-runt", b.frame(&[])[..10].to_vec(), "eth", "runt");
    let mut oversized = b.frame(&udp);
    oversized.resize(1600, 0);
    c.add("ethernet-oversized", oversized, "eth", "oversized");
    c.add(
        "ethernet-foreign-unicast",
        b.ethernet(MacAddr([2, 0x99, 0, 0, 0, 0x99]), EtherType::IPV4, &udp),
        "eth",
        "not-for-us",
    );
    c.add(
        "ethernet-unjoined-multicast",
        b.ethernet(MacAddr([1, 0, 0x5e, 0, 0, 0x42]), EtherType::IPV4, &udp),
        "eth",
        "not-for-us",
    );
    c.add(
        "ethernet-unknown-ethertype",
        b.ethernet(ours, EtherType(0x88b5), b"local experimental"),
        "eth",
        "unknown-ethertype",
    );
    c.add(
        "ethernet-ipv6",
        b.ethernet(ours, EtherType::IPV6, &[0x60; 40]),
        "eth",
        "unknown-ethertype",
    );
    c.add(
        "ethernet-vlan-tagged",
        b.ethernet(ours, EtherType(0x8100), &[0, 5, 8, 0, 0x45]),
        "eth",
        "unknown-ethertype",
    );

    // ARP.
    let request = b.arp(ArpOperation::REQUEST, peer_ip, our_ip);
    c.add(
        "arp-truncated",
        request[..HEADER_LEN + 20].to_vec(),
        "arp",
        "truncated",
    );
    let mut token_ring = request.clone();
    token_ring[HEADER_LEN + 1] = 6;
    c.add(
        "arp-bad-hardware-type",
        token_ring,
        "arp",
        "unsupported-format",
    );
    let mut opcode = request.clone();
    opcode[HEADER_LEN + 7] = 9;
    c.add("arp-bad-operation", opcode, "arp", "unsupported-format");
    c.add(
        "arp-request-for-foreign-address",
        b.arp(ArpOperation::REQUEST, peer_ip, stranger),
        "arp",
        "not-for-us",
    );
    c.add(
        "arp-reply-for-other-host",
        b.arp(ArpOperation::REPLY, peer_ip, stranger),
        "arp",
        "not-for-us",
    );
    c.add(
        "arp-sender-claims-our-address",
        b.arp(ArpOperation::REQUEST, our_ip, our_ip),
        "arp",
        "bad-sender",
    );
    for (name, sender) in [
        ("arp-sender-loopback", Ipv4Addr::new(127, 0, 0, 1)),
        ("arp-sender-multicast", Ipv4Addr::new(224, 0, 0, 1)),
        ("arp-sender-broadcast", Ipv4Addr::BROADCAST),
        ("arp-sender-unspecified", Ipv4Addr::UNSPECIFIED),
        ("arp-sender-this-network", Ipv4Addr::new(0, 1, 2, 3)),
        ("arp-sender-reserved", Ipv4Addr::new(240, 0, 0, 1)),
    ] {
        c.add(
            name,
            b.arp(ArpOperation::REQUEST, sender, our_ip),
            "arp",
            "bad-sender",
        );
    }
    let mut multicast_mac = b.arp(ArpOperation::REQUEST, peer_ip, our_ip);
    multicast_mac[HEADER_LEN + 8] |= 1;
    c.add(
        "arp-sender-multicast-mac",
        multicast_mac,
        "arp",
        "bad-sender",
    );

    // IPv4.
    c.add("ipv4-truncated", b.frame(&udp[..12]), "ipv4", "truncated");
    let v6 = b.edited(udp.clone(), |p| p[0] = 0x65);
    c.add("ipv4-wrong-version", b.frame(&v6), "ipv4", "bad-version");
    let ihl = b.edited(udp.clone(), |p| p[0] = 0x44);
    c.add(
        "ipv4-ihl-below-5",
        b.frame(&ihl),
        "ipv4",
        "bad-header-length",
    );
    let long = b.edited(udp.clone(), |p| {
        p[2..4].copy_from_slice(&1000u16.to_be_bytes())
    });
    c.add(
        "ipv4-total-length-beyond-frame",
        b.frame(&long),
        "ipv4",
        "bad-total-length",
    );
    let mut bad_checksum = udp.clone();
    bad_checksum[10] ^= 0x5a;
    c.add(
        "ipv4-bad-checksum",
        b.frame(&bad_checksum),
        "ipv4",
        "bad-checksum",
    );
    // TTL 0 is no reason for a host to drop (RFC 1122 3.2.1.7): delivered,
    // here to a closed port, so answered.
    let ttl_zero = b.edited(b.ipv4(our_ip, protocol::UDP, &b.udp(9, b"ttl 0")), |p| {
        p[8] = 0
    });
    c.add(
        "ipv4-ttl-zero-to-a-closed-port",
        b.frame(&ttl_zero),
        "udp",
        "port-closed",
    );
    c.reply(b.icmp_error(3, 3, &ttl_zero));
    let broadcast_source = b.edited(udp.clone(), |p| p[12..16].fill(255));
    c.add(
        "ipv4-broadcast-source",
        b.frame(&broadcast_source),
        "ipv4",
        "bad-source",
    );
    let spoofed = b.edited(udp.clone(), |p| p[12..16].copy_from_slice(&our_ip.octets()));
    c.add(
        "ipv4-our-own-source",
        b.frame(&spoofed),
        "ipv4",
        "bad-source",
    );
    let experiment = b.ipv4(our_ip, 253, b"experiment");
    c.add(
        "ipv4-unknown-protocol",
        b.frame(&experiment),
        "ipv4",
        "unknown-protocol",
    );
    c.reply(b.icmp_error(3, 2, &experiment));
    c.add(
        "ipv4-unknown-protocol-to-broadcast",
        b.ethernet(
            MacAddr::BROADCAST,
            EtherType::IPV4,
            &b.ipv4(Ipv4Addr::BROADCAST, 253, b"experiment"),
        ),
        "ipv4",
        "unknown-protocol",
    );
    let looped = b.edited(experiment.clone(), |p| {
        p[12..16].copy_from_slice(&[127, 0, 0, 1])
    });
    c.add(
        "ipv4-loopback-source",
        b.frame(&looped),
        "ipv4",
        "bad-source",
    );
    let reserved = b.edited(experiment.clone(), |p| {
        p[12..16].copy_from_slice(&[240, 0, 0, 1])
    });
    c.add(
        "ipv4-reserved-source",
        b.frame(&reserved),
        "ipv4",
        "bad-source",
    );
    c.add(
        "ipv4-not-for-us",
        b.frame(&b.ipv4(stranger, protocol::UDP, &b.udp(7, b"x"))),
        "ipv4",
        "not-for-us",
    );

    // UDP.
    let short_udp = b.edited(udp[..24].to_vec(), |p| {
        p[2..4].copy_from_slice(&24u16.to_be_bytes())
    });
    c.add("udp-truncated", b.frame(&short_udp), "udp", "truncated");
    let mut udp_length = udp.clone();
    udp_length[24..26].copy_from_slice(&500u16.to_be_bytes());
    c.add(
        "udp-length-beyond-packet",
        b.frame(&udp_length),
        "udp",
        "bad-length",
    );
    // RFC 768 padding behind a datagram to a closed port: the error quotes
    // the header as it came, padding counted in its total length.
    let mut padded = b.ipv4(our_ip, protocol::UDP, &b.udp(9, b"closed"));
    padded.extend_from_slice(b"padding!");
    let padded = b.edited(padded, |p| {
        let total = p.len() as u16;
        p[2..4].copy_from_slice(&total.to_be_bytes())
    });
    c.add(
        "udp-padded-to-closed-port",
        b.frame(&padded),
        "udp",
        "port-closed",
    );
    c.reply(b.icmp_error(3, 3, &padded));
    let mut udp_checksum = udp.clone();
    udp_checksum[27] ^= 0xff;
    c.add(
        "udp-bad-checksum",
        b.frame(&udp_checksum),
        "udp",
        "bad-checksum",
    );

    // ICMP.
    let short_icmp = b.edited(echo[..24].to_vec(), |p| {
        p[2..4].copy_from_slice(&24u16.to_be_bytes())
    });
    c.add("icmp-truncated", b.frame(&short_icmp), "icmp", "truncated");
    let mut icmp_checksum = echo.clone();
    icmp_checksum[22] ^= 0xff;
    c.add(
        "icmp-bad-checksum",
        b.frame(&icmp_checksum),
        "icmp",
        "bad-checksum",
    );
    let mut timestamp = b.echo_request();
    timestamp[0] = 13;
    IcmpPacket::new_unchecked(&mut timestamp[..]).fill_checksum();
    c.add(
        "icmp-timestamp-request",
        b.frame(&b.ipv4(our_ip, protocol::ICMP, &timestamp)),
        "icmp",
        "unsupported-type",
    );
    c.add(
        "icmp-echo-to-broadcast",
        b.ethernet(
            MacAddr::BROADCAST,
            EtherType::IPV4,
            &b.ipv4(Ipv4Addr::BROADCAST, protocol::ICMP, &b.echo_request()),
        ),
        "icmp",
        "broadcast",
    );
    fragments::add(&b, &mut c);
    c.frames
}
