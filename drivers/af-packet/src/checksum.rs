//! Completing transport checksums the kernel left for hardware to fill in.
//!
//! A frame sent by a local socket through a veth keeps `CHECKSUM_PARTIAL`:
//! its UDP or TCP checksum field holds only the pseudo-header sum, and the
//! packet socket marks it `TP_STATUS_CSUMNOTREADY`. Hardware would finish it;
//! we are the hardware, so the driver does, before services verify it.

use wire::checksum;
use wire::ethernet::{EtherType, EthernetFrame};
use wire::ipv4::{Ipv4Packet, protocol};

/// Where the checksum field sits in a TCP segment and in a UDP datagram.
const TCP_CHECKSUM_OFFSET: usize = 16;
const UDP_CHECKSUM_OFFSET: usize = 6;

/// Finishes the TCP or UDP checksum of the IPv4 `frame` whose checksum field
/// holds the folded pseudo-header sum. Returns false (frame untouched) when
/// the frame is not IPv4 TCP/UDP or its lengths do not add up; services then
/// see and count it as they would any malformed frame.
pub(crate) fn complete_partial(frame: &mut [u8]) -> bool {
    let Ok(mut ethernet) = EthernetFrame::new_checked(frame) else {
        return false;
    };
    if ethernet.ethertype() != EtherType::IPV4 {
        return false;
    }
    let Ok(mut ip) = Ipv4Packet::new_checked(ethernet.payload_mut()) else {
        return false;
    };
    let checksum_offset = match ip.protocol() {
        protocol::TCP => TCP_CHECKSUM_OFFSET,
        protocol::UDP => UDP_CHECKSUM_OFFSET,
        _ => return false,
    };
    let segment = ip.payload_mut();
    if checksum_offset + 2 > segment.len() {
        return false;
    }
    // The field already holds the pseudo-header sum: summing the segment
    // as it is covers both.
    let mut value = checksum::checksum(segment);
    if value == 0 && checksum_offset == UDP_CHECKSUM_OFFSET {
        // UDP sends a computed zero as all ones; zero means "no checksum".
        value = 0xffff;
    }
    segment[checksum_offset..checksum_offset + 2].copy_from_slice(&value.to_be_bytes());
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ethernet frame with a UDP datagram 10.0.0.1:1234 -> 10.0.0.2:7
    /// carrying "hi", checksum field zero.
    fn udp_frame() -> Vec<u8> {
        let mut frame = vec![0; 14];
        frame[12..14].copy_from_slice(&EtherType::IPV4.0.to_be_bytes());
        frame.extend_from_slice(&[
            0x45, 0, 0, 30, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ]);
        frame.extend_from_slice(&[0x04, 0xd2, 0, 7, 0, 10, 0, 0, b'h', b'i']);
        frame
    }

    /// The full checksum computed the slow, obvious way: pseudo header plus
    /// segment with a zero checksum field.
    fn reference_checksum(frame: &[u8]) -> u16 {
        let ip = &frame[14..];
        let segment = &ip[20..];
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&ip[12..20]);
        pseudo.extend_from_slice(&[0, ip[9]]);
        pseudo.extend_from_slice(&(segment.len() as u16).to_be_bytes());
        let mut covered = pseudo;
        covered.extend_from_slice(segment);
        covered[12 + 6..12 + 8].copy_from_slice(&[0, 0]);
        // Sixteen bits at a time with end-around carry (an even length here).
        let mut sum = 0u32;
        for pair in covered.chunks(2) {
            sum += u32::from(u16::from_be_bytes([pair[0], pair[1]]));
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    #[test]
    fn completes_a_partial_udp_checksum() {
        let mut frame = udp_frame();
        let expected = reference_checksum(&frame);
        // What the kernel leaves in the field: the folded pseudo-header sum.
        let ip = &frame[14..34];
        let pseudo = checksum::sum(&ip[12..20], 0) + u64::from(protocol::UDP) + 10;
        frame[40..42].copy_from_slice(&checksum::fold(pseudo).to_be_bytes());
        assert!(complete_partial(&mut frame));
        assert_eq!(u16::from_be_bytes([frame[40], frame[41]]), expected);
    }

    #[test]
    fn leaves_other_and_broken_frames_alone() {
        let mut arp = udp_frame();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        let before = arp.clone();
        assert!(!complete_partial(&mut arp));
        assert_eq!(arp, before);

        let mut lying_length = udp_frame();
        lying_length[16..18].copy_from_slice(&200u16.to_be_bytes());
        assert!(!complete_partial(&mut lying_length));

        let mut short = udp_frame();
        short.truncate(20);
        assert!(!complete_partial(&mut short));

        let mut icmp = udp_frame();
        icmp[23] = 1;
        assert!(!complete_partial(&mut icmp));
    }
}
