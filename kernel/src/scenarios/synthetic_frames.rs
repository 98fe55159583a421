//! Frames of the synthetic scenario: UDP echo requests to the appliance's
//! address in `examples/echo.toml`, and the check that turns an echo back
//! into the request it answered.

use core::net::Ipv4Addr;

use dataplane::{MacAddr, Packet};
use services::wire::{EtherType, EthernetFrame, Ipv4Packet, UdpPacket};

/// The appliance's MAC and address in `examples/echo.toml`.
pub(crate) const APPLIANCE_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
const APPLIANCE_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
/// The generator's MAC and address (a peer on the appliance's subnet).
const GENERATOR_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x64]);
const GENERATOR_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
/// UDP echo port of the spec, and the generator's first source port.
const ECHO_PORT: u16 = 7;
const FIRST_SOURCE_PORT: u16 = 40_000;
/// Distinct source ports (flows) per pipeline core.
const FLOWS: u64 = 16;
/// UDP payload bytes: as the `perf/scenarios` runs (64).
const PAYLOAD_LEN: usize = 64;
/// Ethernet + IPv4 + UDP headers.
const HEADERS_LEN: usize = 14 + 20 + 8;
pub(crate) const FRAME_LEN: usize = HEADERS_LEN + PAYLOAD_LEN;
/// Byte ranges in the frame.
const ETH_DESTINATION: usize = 0;
const IP_SOURCE: usize = 26;
const UDP_SOURCE: usize = 34;
const UDP_DESTINATION: usize = 36;
const TAG: usize = HEADERS_LEN;
/// How thoroughly replies are checked.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verify {
    /// Addresses, ports and tag: what the turn-around relies on.
    Headers,
    /// Also both checksums, the length and every payload byte.
    Full,
}

/// The payload byte at `index` of a request (a fixed pattern after the tag).
fn pattern(index: usize) -> u8 {
    (index as u8).wrapping_mul(31).wrapping_add(7)
}

/// Writes request number `tag` into `packet`: flow `tag % FLOWS`.
pub(crate) fn build_request(packet: &mut Packet, tag: u64) -> bool {
    let Ok(bytes) = packet.append(FRAME_LEN) else {
        return false;
    };
    let mut frame = EthernetFrame::new_unchecked(&mut bytes[..]);
    frame.set_destination(APPLIANCE_MAC);
    frame.set_source(GENERATOR_MAC);
    frame.set_ethertype(EtherType::IPV4);
    let datagram_len = (8 + PAYLOAD_LEN) as u16;
    let mut ip = Ipv4Packet::new_unchecked(&mut bytes[14..]);
    ip.emit_header(GENERATOR_IP, APPLIANCE_IP, 17, datagram_len, 64);
    let udp_bytes = &mut bytes[34..];
    udp_bytes[0..2].copy_from_slice(&(FIRST_SOURCE_PORT + (tag % FLOWS) as u16).to_be_bytes());
    udp_bytes[2..4].copy_from_slice(&ECHO_PORT.to_be_bytes());
    udp_bytes[4..6].copy_from_slice(&datagram_len.to_be_bytes());
    udp_bytes[8..16].copy_from_slice(&tag.to_be_bytes());
    for (index, byte) in udp_bytes[16..8 + PAYLOAD_LEN].iter_mut().enumerate() {
        *byte = pattern(index);
    }
    UdpPacket::new_unchecked(&mut udp_bytes[..]).fill_checksum(GENERATOR_IP, APPLIANCE_IP);
    true
}

/// What came back from a pipeline core.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reply {
    /// The echo of one of our requests, now turned back into that request.
    Echo,
    /// A frame the pipeline sent on its own (its ARP announcement).
    Unsolicited,
    /// Anything else: a wrong echo.
    Bad,
}

/// Bytes 0..12 of an echo: Ethernet destination (us) and source (appliance).
const ECHO_MACS: [u8; 12] = concat_6(GENERATOR_MAC.0, APPLIANCE_MAC.0);
/// Bytes 26..36 of an echo: IPv4 source and destination, UDP source port.
const ECHO_ADDRESSES: [u8; 10] = {
    let (source, destination, port) = (
        APPLIANCE_IP.octets(),
        GENERATOR_IP.octets(),
        ECHO_PORT.to_be_bytes(),
    );
    let mut bytes = [0u8; 10];
    let mut index = 0;
    while index < 4 {
        bytes[index] = source[index];
        bytes[4 + index] = destination[index];
        index += 1;
    }
    bytes[8] = port[0];
    bytes[9] = port[1];
    bytes
};

/// Bytes 0..12 of a request: Ethernet destination (appliance) and source (us).
const REQUEST_MACS: [u8; 12] = concat_6(APPLIANCE_MAC.0, GENERATOR_MAC.0);
/// Bytes 26..34 of a request: IPv4 source (us) and destination (appliance).
const REQUEST_ADDRESSES: [u8; 8] = {
    let (source, destination) = (GENERATOR_IP.octets(), APPLIANCE_IP.octets());
    let mut bytes = [0u8; 8];
    let mut index = 0;
    while index < 4 {
        bytes[index] = source[index];
        bytes[4 + index] = destination[index];
        index += 1;
    }
    bytes
};

const fn concat_6(first: [u8; 6], second: [u8; 6]) -> [u8; 12] {
    let mut bytes = [0u8; 12];
    let mut index = 0;
    while index < 6 {
        bytes[index] = first[index];
        bytes[6 + index] = second[index];
        index += 1;
    }
    bytes
}

/// Checks that `packet` is the echo of one of our requests and turns it back
/// into that request.
pub(crate) fn turn_around(packet: &mut Packet, verify: Verify) -> Reply {
    let frame = packet.payload_mut();
    if frame.get(12..14) == Some(&EtherType::ARP.0.to_be_bytes()[..]) {
        return Reply::Unsolicited;
    }
    let Ok(frame) = <&mut [u8; FRAME_LEN]>::try_from(frame) else {
        return Reply::Bad;
    };
    let mut tag = [0u8; 8];
    tag.copy_from_slice(&frame[TAG..TAG + 8]);
    let flow_port = FIRST_SOURCE_PORT + (u64::from_be_bytes(tag) % FLOWS) as u16;
    let headers_match = frame[ETH_DESTINATION..ETH_DESTINATION + 12] == ECHO_MACS
        && frame[IP_SOURCE..IP_SOURCE + 10] == ECHO_ADDRESSES
        && frame[UDP_DESTINATION..UDP_DESTINATION + 2] == flow_port.to_be_bytes();
    if !headers_match {
        return Reply::Bad;
    }
    if verify == Verify::Full {
        let Ok(ip) = Ipv4Packet::new_checked(&frame[14..]) else {
            return Reply::Bad;
        };
        let Ok(udp) = UdpPacket::new_checked(ip.payload()) else {
            return Reply::Bad;
        };
        let payload_intact = udp.payload()[8..]
            .iter()
            .enumerate()
            .all(|(index, &byte)| byte == pattern(index));
        if !ip.verify_checksum()
            || ip.ttl() != 64
            || !udp.verify_checksum(APPLIANCE_IP, GENERATOR_IP)
            || !payload_intact
        {
            return Reply::Bad;
        }
    }
    // The echo matched, so the request it answered is these fields swapped
    // back: write them as constants (a few moves). Swapping keeps every
    // checksum valid.
    frame[ETH_DESTINATION..ETH_DESTINATION + 12].copy_from_slice(&REQUEST_MACS);
    frame[IP_SOURCE..IP_SOURCE + 8].copy_from_slice(&REQUEST_ADDRESSES);
    frame[UDP_SOURCE..UDP_SOURCE + 2].copy_from_slice(&flow_port.to_be_bytes());
    frame[UDP_DESTINATION..UDP_DESTINATION + 2].copy_from_slice(&ECHO_PORT.to_be_bytes());
    Reply::Echo
}
