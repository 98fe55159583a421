//! Completing transport checksums the kernel left for hardware to fill in.
//!
//! A frame sent by a local socket through a veth keeps `CHECKSUM_PARTIAL`:
//! its UDP or TCP checksum field holds only the pseudo-header sum, and the
//! packet socket marks it `TP_STATUS_CSUMNOTREADY`. Hardware would finish it;
//! we are the hardware, so the driver does, before services verify it.

/// Ethernet header bytes.
const ETHERNET_LEN: usize = 14;
/// EtherType of IPv4.
const ETHERTYPE_IPV4: [u8; 2] = [0x08, 0x00];
/// IP protocol numbers and where their checksum field sits.
const PROTOCOL_TCP: u8 = 6;
const PROTOCOL_UDP: u8 = 17;
const TCP_CHECKSUM_OFFSET: usize = 16;
const UDP_CHECKSUM_OFFSET: usize = 6;

/// Finishes the TCP or UDP checksum of the IPv4 `frame` whose checksum field
/// holds the folded pseudo-header sum. Returns false (frame untouched) when
/// the frame is not IPv4 TCP/UDP or its lengths do not add up; services then
/// see and count it as they would any malformed frame.
pub(crate) fn complete_partial(frame: &mut [u8]) -> bool {
    let Some(ip) = frame.get(ETHERNET_LEN..) else {
        return false;
    };
    if frame[12..14] != ETHERTYPE_IPV4 || ip.len() < 20 || ip[0] >> 4 != 4 {
        return false;
    }
    let header_len = usize::from(ip[0] & 0x0f) * 4;
    let total_len = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    let checksum_offset = match ip[9] {
        PROTOCOL_TCP => TCP_CHECKSUM_OFFSET,
        PROTOCOL_UDP => UDP_CHECKSUM_OFFSET,
        _ => return false,
    };
    if header_len < 20 || total_len > ip.len() || header_len + checksum_offset + 2 > total_len {
        return false;
    }
    let segment = &mut frame[ETHERNET_LEN + header_len..ETHERNET_LEN + total_len];
    let mut checksum = !fold(sum_words(segment));
    if checksum == 0 && checksum_offset == UDP_CHECKSUM_OFFSET {
        // UDP sends a computed zero as all ones; zero means "no checksum".
        checksum = 0xffff;
    }
    segment[checksum_offset..checksum_offset + 2].copy_from_slice(&checksum.to_be_bytes());
    true
}

/// The one's-complement sum of `bytes` as big-endian 16-bit words (odd
/// length padded with zero), not yet folded.
fn sum_words(bytes: &[u8]) -> u64 {
    let mut chunks = bytes.chunks_exact(2);
    let mut sum: u64 = chunks
        .by_ref()
        .map(|pair| u64::from(u16::from_be_bytes([pair[0], pair[1]])))
        .sum();
    if let [last] = chunks.remainder() {
        sum += u64::from(*last) << 8;
    }
    sum
}

/// Folds a wide sum into 16 bits with end-around carry.
fn fold(mut sum: u64) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ethernet frame with a UDP datagram 10.0.0.1:1234 -> 10.0.0.2:7
    /// carrying "hi", checksum field zero.
    fn udp_frame() -> Vec<u8> {
        let mut frame = vec![0; 14];
        frame[12..14].copy_from_slice(&ETHERTYPE_IPV4);
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
        let mut zeroed = segment.to_vec();
        zeroed[6..8].copy_from_slice(&[0, 0]);
        !fold(sum_words(&pseudo) + sum_words(&zeroed))
    }

    #[test]
    fn completes_a_partial_udp_checksum() {
        let mut frame = udp_frame();
        let expected = reference_checksum(&frame);
        // What the kernel leaves in the field: the folded pseudo-header sum.
        let ip = &frame[14..34];
        let pseudo = sum_words(&ip[12..20]) + u64::from(PROTOCOL_UDP) + 10;
        frame[40..42].copy_from_slice(&fold(pseudo).to_be_bytes());
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

    #[test]
    fn folding_carries_around() {
        assert_eq!(fold(0x1_fffe), 0xffff);
        assert_eq!(fold(0xffff_ffff), 0xffff);
        assert_eq!(sum_words(&[1, 2, 3]), 0x0102 + 0x0300);
    }
}
