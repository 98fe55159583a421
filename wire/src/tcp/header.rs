//! `TcpHeader`: a TCP header as values, parsed from a `TcpPacket` and
//! emitted into bytes with its options.

use super::{HEADER_LEN, TcpFlags, TcpOptions, TcpPacket, parse_options, write_options};
use crate::WireError;

/// The fields of a TCP header we send. Reserved bits, the checksum and the
/// urgent pointer are written as zero; the data offset follows from the
/// options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpHeader {
    /// Source port.
    pub source_port: u16,
    /// Destination port.
    pub destination_port: u16,
    /// Sequence number.
    pub sequence: u32,
    /// Acknowledgment number.
    pub acknowledgment: u32,
    /// Control bits.
    pub flags: TcpFlags,
    /// Window, unscaled (as on the wire).
    pub window: u16,
    /// The options we use.
    pub options: TcpOptions,
}

impl TcpHeader {
    /// Reads the header of a checked `packet`, parsing its options.
    pub fn parse<T: AsRef<[u8]>>(packet: &TcpPacket<T>) -> Result<Self, WireError> {
        Ok(Self {
            source_port: packet.source_port(),
            destination_port: packet.destination_port(),
            sequence: packet.sequence_number(),
            acknowledgment: packet.acknowledgment_number(),
            flags: packet.flags(),
            window: packet.window(),
            options: parse_options(packet.options())?,
        })
    }

    /// Length of the emitted header, options included: 20 to 40.
    #[inline]
    pub const fn header_len(&self) -> usize {
        HEADER_LEN + self.options.written_len()
    }

    /// Writes the header and its options at the start of `buffer`, with
    /// the data offset set and a zero checksum: call
    /// [`TcpPacket::fill_checksum`] once the payload is in place.
    ///
    /// # Panics
    ///
    /// When `buffer` is shorter than [`header_len`](Self::header_len).
    pub fn emit(&self, buffer: &mut [u8]) {
        let header_len = self.header_len();
        let header = &mut buffer[..header_len];
        header[..HEADER_LEN].fill(0);
        write_options(&mut header[HEADER_LEN..], &self.options);
        let mut packet = TcpPacket::new_unchecked(header);
        packet.set_source_port(self.source_port);
        packet.set_destination_port(self.destination_port);
        packet.set_sequence_number(self.sequence);
        packet.set_acknowledgment_number(self.acknowledgment);
        packet.set_header_len(header_len);
        packet.set_flags(self.flags);
        packet.set_window(self.window);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    const SOURCE: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
    const DESTINATION: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    /// The SYN-ACK Linux 6.x answered the SYN of `tcp::tests::LINUX_SYN`
    /// with (192.0.2.2:80 → 192.0.2.1:52237; checksum completed, as the
    /// loopback it was captured on leaves it to offload).
    const LINUX_SYN_ACK: [u8; 40] = [
        0x00, 0x50, 0xcc, 0x0d, 0xe9, 0x8a, 0xd4, 0x6b, 0xb4, 0xd1, 0xf3, 0x9c, 0xa0, 0x12, 0xfe,
        0x88, 0xcd, 0x78, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0x28, 0x3e,
        0x7c, 0x1d, 0xa2, 0x74, 0x7e, 0x54, 0x01, 0x03, 0x03, 0x0a,
    ];

    #[test]
    fn parses_a_linux_syn_ack() {
        let packet = TcpPacket::new_checked(&LINUX_SYN_ACK[..]).unwrap();
        assert_eq!(
            TcpHeader::parse(&packet),
            Ok(TcpHeader {
                source_port: 80,
                destination_port: 52237,
                sequence: 0xe98a_d46b,
                acknowledgment: 0xb4d1_f39c,
                flags: TcpFlags::SYN | TcpFlags::ACK,
                window: 65160,
                options: TcpOptions {
                    mss: Some(1460),
                    window_scale: Some(10),
                    sack_permitted: true,
                    timestamps: Some((0x283e_7c1d, 0xa274_7e54)),
                    sack_blocks: Default::default(),
                },
            })
        );
    }

    #[test]
    fn emits_the_bytes_linux_sent() {
        let packet = TcpPacket::new_checked(&LINUX_SYN_ACK[..]).unwrap();
        let header = TcpHeader::parse(&packet).unwrap();
        assert_eq!(header.header_len(), 40);
        let mut bytes = [0xee; 40];
        header.emit(&mut bytes);
        let mut packet = TcpPacket::new_checked(&mut bytes[..]).unwrap();
        assert_eq!(packet.checksum(), 0);
        assert_eq!(packet.urgent_pointer(), 0);
        packet.fill_checksum(SOURCE, DESTINATION);
        assert_eq!(bytes, LINUX_SYN_ACK);
    }

    #[test]
    fn round_trips_with_a_payload() {
        let header = TcpHeader {
            source_port: 7,
            destination_port: 65535,
            sequence: u32::MAX,
            acknowledgment: 1,
            flags: TcpFlags::PSH | TcpFlags::ACK,
            window: 512,
            options: TcpOptions {
                timestamps: Some((5, 6)),
                ..TcpOptions::default()
            },
        };
        assert_eq!(header.header_len(), 32);
        let mut bytes = [0xffu8; 36];
        header.emit(&mut bytes);
        assert_eq!(bytes[12], 0x80, "data offset 8, reserved bits clear");
        let mut packet = TcpPacket::new_checked(&mut bytes[..]).unwrap();
        packet.payload_mut().copy_from_slice(b"abcd");
        packet.fill_checksum(SOURCE, DESTINATION);
        assert!(packet.verify_checksum(SOURCE, DESTINATION));
        assert_eq!(packet.payload(), b"abcd");
        assert_eq!(TcpHeader::parse(&packet), Ok(header));
        let bare = TcpHeader {
            options: TcpOptions::default(),
            ..header
        };
        let mut bytes = [0xffu8; 20];
        bare.emit(&mut bytes);
        let packet = TcpPacket::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.header_len(), 20);
        assert_eq!(TcpHeader::parse(&packet), Ok(bare));
    }

    #[test]
    fn parse_reports_bad_options() {
        let mut bytes = LINUX_SYN_ACK;
        bytes[21] = 3; // MSS of length 3
        let packet = TcpPacket::new_checked(&bytes[..]).unwrap();
        assert_eq!(TcpHeader::parse(&packet), Err(WireError::BadOption));
    }
}
