//! TCP segments (RFC 9293): the header view and its checksum with the IPv4
//! pseudo header; flags, options (RFC 7323, RFC 2018) and the header repr
//! live in the submodules.

use crate::fields::{field_getters, field_setters};
use crate::ipv4::protocol;
use crate::{WireError, checksum};
use core::net::Ipv4Addr;

mod flags;
mod header;
mod options;

pub use flags::TcpFlags;
pub use header::TcpHeader;
pub use options::{
    MAX_SACK_BLOCKS, MAX_WINDOW_SCALE, MAX_WRITTEN_LEN, SackBlocks, TcpOptions, parse_options,
    write_options,
};

/// Byte ranges of the TCP header.
mod field {
    use core::ops::Range;
    pub const SOURCE_PORT: Range<usize> = 0..2;
    pub const DESTINATION_PORT: Range<usize> = 2..4;
    pub const SEQUENCE_NUMBER: Range<usize> = 4..8;
    pub const ACKNOWLEDGMENT_NUMBER: Range<usize> = 8..12;
    /// Data offset (high nibble) and reserved bits.
    pub const DATA_OFFSET: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WINDOW: Range<usize> = 14..16;
    pub const CHECKSUM: Range<usize> = 16..18;
    pub const URGENT_POINTER: Range<usize> = 18..20;
}

/// Length of a header without options.
pub const HEADER_LEN: usize = 20;

/// A view of a TCP segment: the whole IP payload. After `new_checked`:
/// `20 <= header_len <= buffer length`.
#[derive(Debug, Clone)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Wraps `buffer` without checks.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps `buffer` (the IP payload) after checking that the fixed
    /// header is there and the data offset lies between it and the end.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let bytes = buffer.as_ref();
        let Some(header) = bytes.first_chunk::<HEADER_LEN>() else {
            return Err(WireError::Truncated);
        };
        let header_len = usize::from(header[field::DATA_OFFSET] >> 4) * 4;
        if header_len < HEADER_LEN || header_len > bytes.len() {
            return Err(WireError::BadDataOffset);
        }
        Ok(Self { buffer })
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    field_getters! {
        /// Source port.
        source_port: u16 = field::SOURCE_PORT;
        /// Destination port.
        destination_port: u16 = field::DESTINATION_PORT;
        /// Sequence number.
        sequence_number: u32 = field::SEQUENCE_NUMBER;
        /// Acknowledgment number (meaningful with ACK).
        acknowledgment_number: u32 = field::ACKNOWLEDGMENT_NUMBER;
        /// Window, unscaled (as on the wire).
        window: u16 = field::WINDOW;
        /// The checksum field.
        checksum: u16 = field::CHECKSUM;
        /// Urgent pointer (meaningful with URG).
        urgent_pointer: u16 = field::URGENT_POINTER;
    }

    /// Header length in bytes (data offset × 4), options included.
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::DATA_OFFSET] >> 4) * 4
    }

    /// The control bits.
    #[inline]
    pub fn flags(&self) -> TcpFlags {
        TcpFlags(self.buffer.as_ref()[field::FLAGS])
    }

    /// Where the header ends: `header_len`, kept within the buffer and at
    /// least 20, since a setter may have written any data offset after
    /// `new_checked`.
    #[inline]
    fn header_end(&self) -> usize {
        self.header_len()
            .max(HEADER_LEN)
            .min(self.buffer.as_ref().len())
    }

    /// The options area (for [`parse_options`]): bytes 20 to `header_len`.
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_end()]
    }

    /// The payload: everything after the header.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_end()..]
    }

    /// True when the checksum over the whole segment and the IPv4 pseudo
    /// header is right. A buffer longer than 65535 bytes cannot be an IPv4
    /// payload and never verifies.
    #[inline]
    pub fn verify_checksum(&self, source: Ipv4Addr, destination: Ipv4Addr) -> bool {
        let bytes = self.buffer.as_ref();
        let Ok(length) = u16::try_from(bytes.len()) else {
            return false;
        };
        let pseudo = checksum::pseudo_header_native(source, destination, protocol::TCP, length);
        checksum::verifies(bytes, pseudo)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    field_setters! {
        /// Sets the source port (checksum not updated).
        set_source_port: u16 = field::SOURCE_PORT;
        /// Sets the destination port (checksum not updated).
        set_destination_port: u16 = field::DESTINATION_PORT;
        /// Sets the sequence number (checksum not updated).
        set_sequence_number: u32 = field::SEQUENCE_NUMBER;
        /// Sets the acknowledgment number (checksum not updated).
        set_acknowledgment_number: u32 = field::ACKNOWLEDGMENT_NUMBER;
        /// Sets the window (checksum not updated).
        set_window: u16 = field::WINDOW;
        /// Sets the checksum field.
        set_checksum: u16 = field::CHECKSUM;
        /// Sets the urgent pointer (checksum not updated).
        set_urgent_pointer: u16 = field::URGENT_POINTER;
    }

    /// Sets the data offset to `header_len / 4` (a multiple of 4 from 20
    /// to 60; other bits are dropped), keeping the reserved bits.
    #[inline]
    pub fn set_header_len(&mut self, header_len: usize) {
        let byte = &mut self.buffer.as_mut()[field::DATA_OFFSET];
        *byte = (((header_len / 4) as u8) << 4) | (*byte & 0x0f);
    }

    /// Sets the control bits (checksum not updated).
    #[inline]
    pub fn set_flags(&mut self, flags: TcpFlags) {
        self.buffer.as_mut()[field::FLAGS] = flags.0;
    }

    /// The payload, writable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_end();
        &mut self.buffer.as_mut()[start..]
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

    /// Computes and writes the checksum over the whole segment (the
    /// buffer) and the IPv4 pseudo header. The buffer must be a whole IPv4
    /// payload: at most 65535 bytes, the length in the pseudo header.
    pub fn fill_checksum(&mut self, source: Ipv4Addr, destination: Ipv4Addr) {
        self.set_checksum(0);
        let bytes = self.buffer.as_ref();
        let pseudo =
            checksum::pseudo_header(source, destination, protocol::TCP, bytes.len() as u16);
        let value = !checksum::fold(checksum::sum(bytes, pseudo));
        self.set_checksum(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    const SOURCE: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const DESTINATION: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
    /// A SYN from Linux 6.x, 192.0.2.1:52237 → 192.0.2.2:80, captured on a
    /// loopback with MTU 1500 in a network namespace: MSS 1460,
    /// SACK-permitted, timestamps, NOP, window scale 10. The loopback
    /// leaves the checksum to offload; 0x3374 is the completed one.
    const LINUX_SYN: [u8; 40] = [
        0xcc, 0x0d, 0x00, 0x50, 0xb4, 0xd1, 0xf3, 0x9b, 0x00, 0x00, 0x00, 0x00, 0xa0, 0x02, 0xfa,
        0xf0, 0x33, 0x74, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0xa2, 0x74,
        0x7e, 0x54, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x0a,
    ];
    /// "hello" on the same connection: PSH|ACK, NOP NOP timestamps, an odd
    /// length (37), checksum 0xb6b2.
    const LINUX_DATA: [u8; 37] = [
        0xcc, 0x0d, 0x00, 0x50, 0xb4, 0xd1, 0xf3, 0x9c, 0xe9, 0x8a, 0xd4, 0x6c, 0x80, 0x18, 0x00,
        0x3f, 0xb6, 0xb2, 0x00, 0x00, 0x01, 0x01, 0x08, 0x0a, 0xa2, 0x74, 0x7e, 0x54, 0x28, 0x3e,
        0x7c, 0x1d, b'h', b'e', b'l', b'l', b'o',
    ];

    #[test]
    fn parses_a_linux_syn() {
        let syn = TcpPacket::new_checked(&LINUX_SYN[..]).unwrap();
        assert_eq!(syn.source_port(), 52237);
        assert_eq!(syn.destination_port(), 80);
        assert_eq!(syn.sequence_number(), 0xb4d1_f39b);
        assert_eq!(syn.acknowledgment_number(), 0);
        assert_eq!(syn.header_len(), 40);
        assert_eq!(syn.flags(), TcpFlags::SYN);
        assert_eq!(syn.window(), 64240);
        assert_eq!(syn.checksum(), 0x3374);
        assert_eq!(syn.urgent_pointer(), 0);
        assert_eq!(syn.options(), &LINUX_SYN[20..]);
        assert_eq!(syn.payload(), b"");
        assert_eq!(
            parse_options(syn.options()),
            Ok(TcpOptions {
                mss: Some(1460),
                window_scale: Some(10),
                sack_permitted: true,
                timestamps: Some((0xa274_7e54, 0)),
                sack_blocks: Default::default(),
            })
        );
        assert!(syn.verify_checksum(SOURCE, DESTINATION));
        assert!(syn.verify_checksum(DESTINATION, SOURCE));
        assert!(!syn.verify_checksum(SOURCE, Ipv4Addr::new(192, 0, 2, 3)));
    }

    #[test]
    fn parses_a_linux_data_segment() {
        let data = TcpPacket::new_checked(&LINUX_DATA[..]).unwrap();
        assert_eq!(data.flags(), TcpFlags::PSH | TcpFlags::ACK);
        assert_eq!(data.acknowledgment_number(), 0xe98a_d46c);
        assert_eq!(data.window(), 63);
        assert_eq!(data.header_len(), 32);
        assert_eq!(data.options().len(), 12);
        assert_eq!(data.payload(), b"hello");
        assert!(data.verify_checksum(SOURCE, DESTINATION));
        let mut corrupt = LINUX_DATA;
        corrupt[36] ^= 0x01;
        let corrupt = TcpPacket::new_checked(&corrupt[..]).unwrap();
        assert!(!corrupt.verify_checksum(SOURCE, DESTINATION));
    }

    #[test]
    fn fills_the_checksum_linux_sent() {
        for fixture in [&LINUX_SYN[..], &LINUX_DATA[..]] {
            let mut bytes = fixture.to_vec();
            let mut packet = TcpPacket::new_checked(&mut bytes[..]).unwrap();
            packet.set_checksum(0xdead);
            assert!(!packet.verify_checksum(SOURCE, DESTINATION));
            packet.fill_checksum(SOURCE, DESTINATION);
            assert_eq!(bytes, fixture);
        }
    }

    #[test]
    fn sets_every_field() {
        let mut bytes = LINUX_DATA;
        let mut packet = TcpPacket::new_checked(&mut bytes[..]).unwrap();
        packet.set_source_port(0x0102);
        packet.set_destination_port(0x0304);
        packet.set_sequence_number(0x0506_0708);
        packet.set_acknowledgment_number(0x090a_0b0c);
        packet.set_header_len(24);
        packet.set_flags(TcpFlags::FIN | TcpFlags::URG);
        packet.set_window(0x0d0e);
        packet.set_checksum(0x0f10);
        packet.set_urgent_pointer(0x1112);
        packet.payload_mut()[0] = 0xaa;
        assert_eq!(
            bytes[..25],
            [
                1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x60, 0x21, 13, 14, 15, 16, 17, 18, 1, 1, 8,
                10, 0xaa
            ]
        );
        // The reserved bits survive a new data offset.
        bytes[12] = 0x5f;
        TcpPacket::new_unchecked(&mut bytes[..]).set_header_len(32);
        assert_eq!(bytes[12], 0x8f);
    }

    #[test]
    fn swapped_ports_verify_with_swapped_addresses() {
        let mut bytes = LINUX_SYN;
        let mut packet = TcpPacket::new_checked(&mut bytes[..]).unwrap();
        packet.swap_ports();
        assert_eq!(packet.source_port(), 80);
        assert_eq!(packet.destination_port(), 52237);
        assert!(packet.verify_checksum(DESTINATION, SOURCE));
    }

    #[test]
    fn refuses_bad_lengths() {
        assert_eq!(
            TcpPacket::new_checked(&LINUX_SYN[..19]).unwrap_err(),
            WireError::Truncated
        );
        assert_eq!(
            TcpPacket::new_checked(&[][..]).unwrap_err(),
            WireError::Truncated
        );
        // The options cut off: offset 10 in 39 bytes.
        assert_eq!(
            TcpPacket::new_checked(&LINUX_SYN[..39]).unwrap_err(),
            WireError::BadDataOffset
        );
        for offset in [0x00, 0x10, 0x40, 0xb0, 0xf0] {
            let mut bytes = LINUX_SYN;
            bytes[12] = offset;
            assert_eq!(
                TcpPacket::new_checked(&bytes[..]).unwrap_err(),
                WireError::BadDataOffset,
                "{offset:#x}"
            );
        }
        let mut bare = LINUX_SYN;
        bare[12] = 0x50;
        let packet = TcpPacket::new_checked(&bare[..20]).unwrap();
        assert_eq!(packet.options(), b"");
        assert_eq!(packet.payload(), b"");
    }

    #[test]
    fn accessors_survive_a_bad_offset_set_after_the_check() {
        let mut bytes = LINUX_DATA;
        let mut packet = TcpPacket::new_checked(&mut bytes[..]).unwrap();
        packet.set_header_len(60);
        assert_eq!(packet.header_len(), 60);
        assert_eq!(packet.options().len(), 17);
        assert_eq!(packet.payload(), b"");
        packet.set_header_len(8);
        assert_eq!(packet.options(), b"");
        assert_eq!(packet.payload().len(), 17);
    }

    #[test]
    fn a_buffer_longer_than_an_ip_payload_never_verifies() {
        let mut bytes = vec![0u8; 65536];
        bytes[12] = 0x50;
        let mut packet = TcpPacket::new_checked(&mut bytes[..]).unwrap();
        packet.fill_checksum(SOURCE, DESTINATION);
        assert!(!packet.verify_checksum(SOURCE, DESTINATION));
        let mut packet = TcpPacket::new_checked(&mut bytes[..65535]).unwrap();
        packet.fill_checksum(SOURCE, DESTINATION);
        assert!(packet.verify_checksum(SOURCE, DESTINATION));
    }
}
