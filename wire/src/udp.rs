//! UDP datagrams (RFC 768): ports, length, checksum with the IPv4 pseudo
//! header (zero means "no checksum").

use crate::fields::{field_getters, field_setters};
use crate::{WireError, checksum};
use core::net::Ipv4Addr;

/// Byte ranges of the UDP header.
mod field {
    use core::ops::Range;
    pub const SOURCE_PORT: Range<usize> = 0..2;
    pub const DESTINATION_PORT: Range<usize> = 2..4;
    pub const LENGTH: Range<usize> = 4..6;
    pub const CHECKSUM: Range<usize> = 6..8;
}

/// Length of the UDP header.
pub const HEADER_LEN: usize = 8;

/// A view of a UDP datagram. After `new_checked`: `8 <= length <= buffer`.
#[derive(Debug, Clone)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Wraps `buffer` without checks.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps `buffer` (the IP payload) after checking the length field.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let packet = Self { buffer };
        let length = usize::from(packet.length());
        if length < HEADER_LEN || length > packet.buffer.as_ref().len() {
            return Err(WireError::BadLength);
        }
        Ok(packet)
    }

    field_getters! {
        /// Source port.
        source_port: u16 = field::SOURCE_PORT;
        /// Destination port.
        destination_port: u16 = field::DESTINATION_PORT;
        /// Length of header and payload.
        length: u16 = field::LENGTH;
        /// The checksum field (0: none).
        checksum: u16 = field::CHECKSUM;
    }

    /// True when the checksum is absent (0) or right.
    #[inline]
    pub fn verify_checksum(&self, source: Ipv4Addr, destination: Ipv4Addr) -> bool {
        if self.checksum() == 0 {
            return true;
        }
        let length = self.length();
        let pseudo = checksum::pseudo_header_native(source, destination, 17, length);
        checksum::verifies(&self.buffer.as_ref()[..usize::from(length)], pseudo)
    }

    /// True when the checksum of the datagram behind `addresses` is absent
    /// (0) or right, where `addresses` is what an IPv4 header without
    /// options ends with: the source and destination addresses, 8 bytes,
    /// then the datagram, exactly `length` bytes long (no padding). The
    /// pseudo-header's addresses are then summed with the datagram as one
    /// run of bytes, the first eight of its words, with no separate loads
    /// and adds; its protocol and length are one constant and the length
    /// field's wire bytes. `None` when `addresses` is shorter than the 8
    /// addresses and a UDP header.
    #[inline(always)]
    pub fn verify_checksum_after_addresses(addresses: &[u8]) -> Option<bool> {
        let (head, payload) = addresses.split_first_chunk::<{ 8 + HEADER_LEN }>()?;
        let [.., length_high, length_low, checksum_high, checksum_low] = *head;
        let protocol_and_length = u64::from(u16::from_ne_bytes([0, 17]))
            + u64::from(u16::from_ne_bytes([length_high, length_low]));
        // The 16 bytes of addresses and UDP header are always there: one
        // carry chain at constant offsets, then the payload's blocks.
        // A right sum answers first: a datagram without a checksum (0) is
        // only asked about when its sum is not all ones, so a datagram with
        // one pays no test of the field. The verdict is the same either way.
        Some(
            checksum::verifies_after(head, payload, protocol_and_length)
                || [checksum_high, checksum_low] == [0, 0],
        )
    }

    /// The payload (up to `length`).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.length())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    field_setters! {
        /// Sets the source port (checksum not updated).
        set_source_port: u16 = field::SOURCE_PORT;
        /// Sets the destination port (checksum not updated).
        set_destination_port: u16 = field::DESTINATION_PORT;
        /// Sets the checksum field.
        set_checksum: u16 = field::CHECKSUM;
    }

    /// Swaps the ports; a checksum stays valid when the addresses are
    /// swapped too (the one's-complement sum ignores word order).
    #[inline]
    pub fn swap_ports(&mut self) {
        // One 4-byte load and store: rotating by 16 bits swaps the halves
        // whatever the host's byte order.
        let ports = &mut self.buffer.as_mut()[..4];
        let mut word = [0u8; 4];
        word.copy_from_slice(ports);
        ports.copy_from_slice(&u32::from_ne_bytes(word).rotate_left(16).to_ne_bytes());
    }

    /// Computes and writes the checksum (0 is sent as 0xffff).
    pub fn fill_checksum(&mut self, source: Ipv4Addr, destination: Ipv4Addr) {
        self.set_checksum(0);
        let length = self.length();
        let pseudo = checksum::pseudo_header(source, destination, 17, length);
        let value = !checksum::fold(checksum::sum(
            &self.buffer.as_ref()[..usize::from(length)],
            pseudo,
        ));
        self.set_checksum(if value == 0 { 0xffff } else { value });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const DESTINATION: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
    /// 40000 → 7, "ping", checksum 0x70bb for 10.0.0.1 → 10.0.0.2.
    const DATAGRAM: [u8; 12] = [
        0x9c, 0x40, 0x00, 0x07, 0x00, 0x0c, 0x70, 0xbb, b'p', b'i', b'n', b'g',
    ];

    #[test]
    fn parses_and_verifies() {
        let udp = UdpPacket::new_checked(&DATAGRAM[..]).unwrap();
        assert_eq!(udp.source_port(), 40000);
        assert_eq!(udp.destination_port(), 7);
        assert_eq!(udp.length(), 12);
        assert_eq!(udp.payload(), b"ping");
        assert!(udp.verify_checksum(SOURCE, DESTINATION));
        assert!(!udp.verify_checksum(SOURCE, Ipv4Addr::new(10, 0, 0, 3)));
        let mut none = DATAGRAM;
        none[6..8].copy_from_slice(&[0, 0]);
        assert!(
            UdpPacket::new_checked(&none[..])
                .unwrap()
                .verify_checksum(SOURCE, SOURCE)
        );
    }

    #[test]
    fn verifies_after_the_addresses_as_with_them_apart() {
        let mut span = [0u8; 8 + 12];
        span[..4].copy_from_slice(&SOURCE.octets());
        span[4..8].copy_from_slice(&DESTINATION.octets());
        span[8..].copy_from_slice(&DATAGRAM);
        let verify = UdpPacket::<&[u8]>::verify_checksum_after_addresses;
        assert_eq!(verify(&span), Some(true));
        for index in 0..span.len() {
            for bit in 0..8 {
                let mut broken = span;
                broken[index] ^= 1 << bit;
                // The pseudo-header summed apart, with the length field
                // as it now reads.
                let address = |at: usize| Ipv4Addr::from(*broken[at..].first_chunk().unwrap());
                let length = u16::from_be_bytes([broken[8 + 4], broken[8 + 5]]);
                let pseudo = checksum::pseudo_header(address(0), address(4), 17, length);
                let apart = broken[8 + 6..8 + 8] == [0, 0]
                    || checksum::fold(checksum::sum(&broken[8..], pseudo)) == 0xffff;
                assert_eq!(verify(&broken), Some(apart), "byte {index} bit {bit}");
            }
        }
        // The length is a pseudo-header word too.
        let mut longer = span;
        longer[8 + 5] += 2;
        assert_eq!(verify(&longer), Some(false));
        // No checksum.
        let mut none = span;
        none[8 + 6..8 + 8].fill(0);
        none[19] ^= 0xff;
        assert_eq!(verify(&none), Some(true));
        assert_eq!(verify(&span[..15]), None);
        assert!(verify(&span[..16]).is_some());
    }

    #[test]
    fn generates_and_swaps() {
        let mut bytes = DATAGRAM;
        let mut udp = UdpPacket::new_checked(&mut bytes[..]).unwrap();
        udp.set_checksum(0x1111);
        udp.fill_checksum(SOURCE, DESTINATION);
        assert_eq!(bytes, DATAGRAM);
        let mut udp = UdpPacket::new_checked(&mut bytes[..]).unwrap();
        udp.swap_ports();
        assert_eq!(udp.source_port(), 7);
        assert!(udp.verify_checksum(DESTINATION, SOURCE));
        udp.set_source_port(9);
        udp.set_destination_port(10);
        assert_eq!(&bytes[..4], &[0, 9, 0, 10]);
    }

    #[test]
    fn refuses_bad_lengths() {
        assert_eq!(
            UdpPacket::new_checked(&DATAGRAM[..7]).unwrap_err(),
            WireError::Truncated
        );
        assert_eq!(
            UdpPacket::new_checked(&DATAGRAM[..11]).unwrap_err(),
            WireError::BadLength
        );
        let mut short = DATAGRAM;
        short[5] = 7;
        assert_eq!(
            UdpPacket::new_checked(&short[..]).unwrap_err(),
            WireError::BadLength
        );
        let mut padded = [0u8; 16];
        padded[..12].copy_from_slice(&DATAGRAM);
        assert_eq!(
            UdpPacket::new_checked(&padded[..]).unwrap().payload(),
            b"ping"
        );
    }
}
