//! Test frames for the benchmarks, and the turnaround that makes an echo
//! reply the next request.
//!
//! Both stacks under test answer as `examples/echo.toml` says (MAC
//! 02:00:00:00:00:01, 10.0.0.2/24, UDP echo on port 7); the peer is
//! 02:00:00:00:00:02 at 10.0.0.1, sending from port 40000.

use core::net::Ipv4Addr;
use dataplane::MacAddr;
use services::wire::arp::ArpOperation;
use services::wire::ethernet::{self, EtherType};
use services::wire::ipv4::{self, protocol};
use services::wire::{ArpPacket, EthernetFrame, Ipv4Packet, UdpPacket};

/// The echo appliance's MAC (`examples/echo.toml`).
pub const OUR_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
/// The echo appliance's address (`examples/echo.toml`).
pub const OUR_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
/// The UDP echo port (`examples/echo.toml`).
pub const ECHO_PORT: u16 = 7;
/// The peer's MAC.
pub const PEER_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);
/// The peer's address, on the appliance's subnet.
pub const PEER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
/// The peer's UDP source port.
pub const PEER_PORT: u16 = 40_000;
/// Bytes of UDP payload in the echo benchmarks.
pub const PAYLOAD_LEN: usize = 64;

/// Byte offsets the turnaround touches, from the start of the frame.
mod offset {
    use core::ops::Range;

    /// Destination and source MAC.
    pub const MACS: Range<usize> = 0..12;
    /// EtherType.
    pub const ETHERTYPE: Range<usize> = 12..14;
    /// IPv4 version and header length.
    pub const VERSION_IHL: usize = 14;
    /// IPv4 protocol.
    pub const PROTOCOL: usize = 14 + 9;
    /// IPv4 source and destination address.
    pub const ADDRESSES: Range<usize> = 14 + 12..14 + 20;
}

/// A 64-byte Ethernet frame (IPv4/UDP-shaped) from `source` to `destination`.
pub fn ethernet_frame(destination: [u8; 6], source: [u8; 6]) -> [u8; 64] {
    let mut frame = [0u8; 64];
    frame[..6].copy_from_slice(&destination);
    frame[6..12].copy_from_slice(&source);
    frame[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    frame
}

/// The payload the echo benchmarks send: 64 bytes that are not all alike,
/// so a reply with shifted or zeroed bytes would show.
pub fn echo_payload() -> [u8; PAYLOAD_LEN] {
    core::array::from_fn(|index| (index as u8).wrapping_mul(37).wrapping_add(11))
}

/// An Ethernet/IPv4/UDP frame from the peer to our echo port carrying
/// `payload`, with valid IPv4 and UDP checksums.
pub fn udp_echo_request(payload: &[u8]) -> Vec<u8> {
    let udp_len = 8 + payload.len();
    let mut bytes = vec![0u8; ethernet::HEADER_LEN + ipv4::HEADER_LEN + udp_len];
    let mut frame = EthernetFrame::new_unchecked(&mut bytes[..]);
    frame.set_destination(OUR_MAC);
    frame.set_source(PEER_MAC);
    frame.set_ethertype(EtherType::IPV4);
    let datagram = &mut bytes[ethernet::HEADER_LEN + ipv4::HEADER_LEN..];
    datagram[..2].copy_from_slice(&PEER_PORT.to_be_bytes());
    datagram[2..4].copy_from_slice(&ECHO_PORT.to_be_bytes());
    datagram[4..6].copy_from_slice(&(udp_len as u16).to_be_bytes());
    datagram[8..].copy_from_slice(payload);
    UdpPacket::new_unchecked(&mut datagram[..]).fill_checksum(PEER_IP, OUR_IP);
    Ipv4Packet::new_unchecked(&mut bytes[ethernet::HEADER_LEN..]).emit_header(
        PEER_IP,
        OUR_IP,
        protocol::UDP,
        udp_len as u16,
        ipv4::DEFAULT_TTL,
    );
    bytes
}

/// A broadcast ARP request from the peer asking for our address: a stack
/// that answers it also learns the peer's MAC.
pub fn arp_request() -> Vec<u8> {
    let mut bytes = vec![0u8; ethernet::HEADER_LEN + services::wire::arp::PACKET_LEN];
    let mut frame = EthernetFrame::new_unchecked(&mut bytes[..]);
    frame.set_destination(MacAddr::BROADCAST);
    frame.set_source(PEER_MAC);
    frame.set_ethertype(EtherType::ARP);
    ArpPacket::new_unchecked(&mut bytes[ethernet::HEADER_LEN..]).emit(
        ArpOperation::REQUEST,
        (PEER_MAC, PEER_IP),
        (MacAddr([0; 6]), OUR_IP),
    );
    bytes
}

/// Turns an Ethernet/IPv4/UDP reply into the request that would have caused
/// it: MACs, addresses and ports swapped. Swapping 16-bit-aligned fields
/// leaves both checksums valid, so nothing is recomputed. Returns false, and
/// leaves the frame alone, when it is not IPv4/UDP (an ARP reply or
/// announcement), which the caller then drops.
#[inline]
pub fn turn_around(frame: &mut [u8]) -> bool {
    // An IPv4 header without options (every frame the benchmarks send):
    // fixed offsets into one array, each swap one rotate of a word.
    if let Some(headers) = frame.first_chunk_mut::<PLAIN_HEADERS>()
        && headers[offset::ETHERTYPE] == EtherType::IPV4.0.to_be_bytes()
        && headers[offset::VERSION_IHL] == 0x45
        && headers[offset::PROTOCOL] == protocol::UDP
    {
        swap_macs(headers);
        rotate_halves::<8>(&mut headers[offset::ADDRESSES]);
        rotate_halves::<4>(&mut headers[offset::ADDRESSES.end..PLAIN_HEADERS - 4]);
        return true;
    }
    if frame.len() < offset::ADDRESSES.end
        || frame[offset::ETHERTYPE] != EtherType::IPV4.0.to_be_bytes()
        || frame[offset::PROTOCOL] != protocol::UDP
    {
        return false;
    }
    let ports = offset::VERSION_IHL + usize::from(frame[offset::VERSION_IHL] & 0x0f) * 4;
    if frame.len() < ports + 4 {
        return false;
    }
    let (destination, source) = frame[offset::MACS].split_at_mut(6);
    destination.swap_with_slice(source);
    let (destination, source) = frame[offset::ADDRESSES].split_at_mut(4);
    destination.swap_with_slice(source);
    let (destination, source) = frame[ports..ports + 4].split_at_mut(2);
    destination.swap_with_slice(source);
    true
}

/// Swaps the destination and source MAC at the head of `frame` with two
/// overlapping 8-byte loads: the first word's low six bytes are the
/// destination, the second's (from byte 4) high six the source, so the new
/// first eight bytes are one double shift of the two (`shrd` on x86) and
/// the last four the destination's high bytes.
#[inline(always)]
fn swap_macs<const N: usize>(frame: &mut [u8; N]) {
    const { assert!(N >= 12) };
    let word = |at: usize, frame: &[u8; N]| {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&frame[at..at + 8]);
        u64::from_le_bytes(bytes)
    };
    let (first, second) = (word(0, frame), word(4, frame));
    // Bytes 0..6: the source (bytes 6..12, the second word's top six);
    // bytes 6..8: the destination's first two.
    let head = (second >> 16) | (first << 48);
    frame[..8].copy_from_slice(&head.to_le_bytes());
    // Bytes 8..12: the destination's last four (bytes 2..6).
    frame[8..12].copy_from_slice(&((first >> 16) as u32).to_le_bytes());
}

/// Ethernet, IPv4 without options and the UDP ports and length.
const PLAIN_HEADERS: usize = ethernet::HEADER_LEN + ipv4::HEADER_LEN + 8;

/// Swaps the two halves of `bytes` (`N` of them, 4 or 8) as one word
/// rotated by half its width, whatever the host's byte order.
#[inline(always)]
fn rotate_halves<const N: usize>(bytes: &mut [u8]) {
    if N == 8 {
        let mut word = [0u8; 8];
        word.copy_from_slice(bytes);
        bytes.copy_from_slice(&u64::from_ne_bytes(word).rotate_left(32).to_ne_bytes());
    } else {
        let mut word = [0u8; 4];
        word.copy_from_slice(bytes);
        bytes.copy_from_slice(&u32::from_ne_bytes(word).rotate_left(16).to_ne_bytes());
    }
}

/// What a test checks in an echo frame: addresses, ports and payload, once
/// both checksums were verified; `None` when the frame is not valid
/// Ethernet/IPv4/UDP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpSummary {
    /// Destination and source MAC.
    pub macs: (MacAddr, MacAddr),
    /// Source and destination address.
    pub addresses: (Ipv4Addr, Ipv4Addr),
    /// Source and destination port.
    pub ports: (u16, u16),
    /// The UDP payload.
    pub payload: Vec<u8>,
}

impl UdpSummary {
    /// Parses and verifies `frame`.
    pub fn of(frame: &[u8]) -> Option<Self> {
        let ethernet = EthernetFrame::new_checked(frame).ok()?;
        if ethernet.ethertype() != EtherType::IPV4 {
            return None;
        }
        let ip = Ipv4Packet::new_checked(&frame[ethernet::HEADER_LEN..]).ok()?;
        if !ip.verify_checksum() || ip.protocol() != protocol::UDP {
            return None;
        }
        let udp = UdpPacket::new_checked(ip.payload()).ok()?;
        if !udp.verify_checksum(ip.source(), ip.destination()) {
            return None;
        }
        Some(Self {
            macs: (ethernet.destination(), ethernet.source()),
            addresses: (ip.source(), ip.destination()),
            ports: (udp.source_port(), udp.destination_port()),
            payload: udp.payload().to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_is_valid_and_turnaround_is_an_involution() {
        let request = udp_echo_request(&echo_payload());
        let summary = UdpSummary::of(&request).expect("a valid request");
        assert_eq!(summary.macs, (OUR_MAC, PEER_MAC));
        assert_eq!(summary.addresses, (PEER_IP, OUR_IP));
        assert_eq!(summary.ports, (PEER_PORT, ECHO_PORT));
        assert_eq!(summary.payload, echo_payload());

        let mut turned = request.clone();
        assert!(turn_around(&mut turned));
        let reply = UdpSummary::of(&turned).expect("checksums survive the swaps");
        assert_eq!(reply.macs, (PEER_MAC, OUR_MAC));
        assert_eq!(reply.addresses, (OUR_IP, PEER_IP));
        assert_eq!(reply.ports, (ECHO_PORT, PEER_PORT));
        assert!(turn_around(&mut turned));
        assert_eq!(turned, request);
    }

    #[test]
    fn turnaround_with_ip_options_swaps_the_same_fields() {
        let request = udp_echo_request(&echo_payload());
        // The same frame with 4 bytes of options: the ports move by 4.
        let mut with_options = request[..34].to_vec();
        with_options[14] = 0x46;
        with_options.extend_from_slice(&[1, 1, 1, 1]);
        with_options.extend_from_slice(&request[34..]);
        let mut plain = request.clone();
        assert!(turn_around(&mut plain));
        assert!(turn_around(&mut with_options));
        assert_eq!(with_options[..14], plain[..14], "MACs");
        assert_eq!(with_options[26..34], plain[26..34], "addresses");
        assert_eq!(with_options[38..42], plain[34..38], "ports");
        assert_eq!(with_options[42..], plain[38..], "the rest untouched");
    }

    #[test]
    fn turnaround_leaves_other_frames_alone() {
        let mut arp = arp_request();
        let before = arp.clone();
        assert!(!turn_around(&mut arp));
        assert_eq!(arp, before);
        let mut runt = vec![0u8; 20];
        assert!(!turn_around(&mut runt));
        let mut truncated = udp_echo_request(&[]);
        truncated.truncate(ethernet::HEADER_LEN + ipv4::HEADER_LEN + 2);
        assert!(!turn_around(&mut truncated));
    }
}
