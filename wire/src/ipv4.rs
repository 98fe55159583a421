//! IPv4 headers (RFC 791): validation, fields, header checksum and the
//! incremental TTL decrement used when forwarding.

use crate::fields::{self, field_getters, field_setters};
use crate::{WireError, checksum};
use core::net::Ipv4Addr;

mod plain;

pub use plain::PlainHeader;

/// Byte ranges of the IPv4 header.
mod field {
    use core::ops::Range;
    pub const VERSION_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const TOTAL_LEN: Range<usize> = 2..4;
    pub const IDENT: Range<usize> = 4..6;
    pub const FLAGS_FRAGMENT: Range<usize> = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Range<usize> = 10..12;
    pub const SOURCE: Range<usize> = 12..16;
    pub const DESTINATION: Range<usize> = 16..20;
}

/// Length of a header without options.
pub const HEADER_LEN: usize = 20;
/// The TTL we originate packets with.
pub const DEFAULT_TTL: u8 = 64;

/// IP protocol numbers we know by name.
pub mod protocol {
    /// ICMP.
    pub const ICMP: u8 = 1;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
}

/// A view of an IPv4 packet. After `new_checked`: version 4, `IHL >= 5`,
/// the header fits, and `header_len <= total_len <= buffer length`. The
/// header checksum is not checked there: see [`verify_checksum`](Self::verify_checksum).
#[derive(Debug, Clone)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wraps `buffer` without checks.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps `buffer` after checking version and every length field. One
    /// comparison checks that a whole header without options is there;
    /// its first four bytes are then read from a fixed-size array, and
    /// the common header without options (`0x45`) takes one comparison.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let bytes = buffer.as_ref();
        let len = bytes.len();
        let Some(&[version_ihl, _, total_high, total_low, ..]) = bytes.first_chunk::<HEADER_LEN>()
        else {
            return Err(WireError::Truncated);
        };
        let total_len = usize::from(u16::from_be_bytes([total_high, total_low]));
        if version_ihl == 0x45 {
            // A header without options returns on its own path: the
            // header length is the constant 20 there, and callers that
            // inline this keep it so (a joined path made it a variable).
            if total_len < HEADER_LEN || total_len > len {
                return Err(WireError::BadLength);
            }
            return Ok(Self { buffer });
        }
        if version_ihl >> 4 != 4 {
            return Err(WireError::BadVersion);
        }
        let header_len = usize::from(version_ihl & 0x0f) * 4;
        if header_len < HEADER_LEN || header_len > len {
            return Err(WireError::BadHeaderLength);
        }
        if total_len < header_len || total_len > len {
            return Err(WireError::BadLength);
        }
        Ok(Self { buffer })
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The version field (4).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VERSION_IHL] >> 4
    }

    /// Header length in bytes (IHL × 4).
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VERSION_IHL] & 0x0f) * 4
    }

    /// DSCP and ECN.
    #[inline]
    pub fn dscp_ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN]
    }

    field_getters! {
        /// Total length: header and payload.
        total_len: u16 = field::TOTAL_LEN;
        /// Identification.
        ident: u16 = field::IDENT;
        /// The header checksum field.
        checksum: u16 = field::CHECKSUM;
        /// Source address.
        source: Ipv4Addr = field::SOURCE;
        /// Destination address.
        destination: Ipv4Addr = field::DESTINATION;
    }

    /// The flags and fragment offset, as one word.
    #[inline]
    fn flags_fragment(&self) -> u16 {
        fields::u16_at(self.buffer.as_ref(), field::FLAGS_FRAGMENT)
    }

    /// The don't-fragment flag.
    #[inline]
    pub fn dont_fragment(&self) -> bool {
        self.flags_fragment() & 0x4000 != 0
    }

    /// The more-fragments flag.
    #[inline]
    pub fn more_fragments(&self) -> bool {
        self.flags_fragment() & 0x2000 != 0
    }

    /// Fragment offset in bytes.
    #[inline]
    pub fn fragment_offset(&self) -> u16 {
        (self.flags_fragment() & 0x1fff) * 8
    }

    /// True for any fragment (first, middle or last).
    #[inline]
    pub fn is_fragment(&self) -> bool {
        // More-fragments or any offset bit, in one test of the word as it
        // lies in memory (the mask in the same byte order, no swap).
        let bytes = self.buffer.as_ref();
        let word = u16::from_ne_bytes([
            bytes[field::FLAGS_FRAGMENT.start],
            bytes[field::FLAGS_FRAGMENT.start + 1],
        ]);
        word & u16::from_ne_bytes(0x3fff_u16.to_be_bytes()) != 0
    }

    /// Time to live.
    #[inline]
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// The payload's protocol.
    #[inline]
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    /// True when the header checksum is right.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        let bytes = self.buffer.as_ref();
        match self.header_len() {
            HEADER_LEN => checksum::verifies(&bytes[..HEADER_LEN], 0),
            header_len => checksum::verifies(&bytes[..header_len], 0),
        }
    }

    /// The one's-complement sum of the header; a header without options
    /// (nearly all of them) is summed with its length known.
    #[inline]
    fn header_sum(&self) -> u64 {
        let bytes = self.buffer.as_ref();
        match self.header_len() {
            HEADER_LEN => checksum::sum(&bytes[..HEADER_LEN], 0),
            header_len => checksum::sum(&bytes[..header_len], 0),
        }
    }

    /// The header, options included.
    #[inline]
    pub fn header(&self) -> &[u8] {
        &self.buffer.as_ref()[..self.header_len()]
    }

    /// The payload: from the end of the header to `total_len` (link-layer
    /// padding excluded).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..usize::from(self.total_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Sets the TTL (checksum not updated).
    #[inline]
    pub fn set_ttl(&mut self, ttl: u8) {
        self.buffer.as_mut()[field::TTL] = ttl;
    }

    field_setters! {
        /// Sets the source address (checksum not updated).
        set_source: Ipv4Addr = field::SOURCE;
        /// Sets the destination address (checksum not updated).
        set_destination: Ipv4Addr = field::DESTINATION;
        /// Sets the checksum field.
        set_checksum: u16 = field::CHECKSUM;
        /// Sets the total length (header and payload); the checksum is left
        /// alone.
        set_total_len: u16 = field::TOTAL_LEN;
    }

    /// Swaps source and destination (the checksum stays valid: the sum
    /// does not depend on the order of the words).
    #[inline]
    pub fn swap_addresses(&mut self) {
        // One 8-byte load and store: rotating by 32 bits swaps the halves
        // whatever the host's byte order.
        let addresses = &mut self.buffer.as_mut()[field::SOURCE.start..field::DESTINATION.end];
        let mut word = [0u8; 8];
        word.copy_from_slice(addresses);
        addresses.copy_from_slice(&u64::from_ne_bytes(word).rotate_left(32).to_ne_bytes());
    }

    /// Recomputes the header checksum.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let value = !checksum::fold(self.header_sum());
        self.set_checksum(value);
    }

    /// Decrements the TTL by one and updates the checksum incrementally
    /// (RFC 1624). The caller checks `ttl() > 1` first.
    #[inline]
    pub fn decrement_ttl(&mut self) {
        let old_word = u16::from_be_bytes([self.ttl(), self.protocol()]);
        let ttl = self.ttl().wrapping_sub(1);
        self.set_ttl(ttl);
        let new_word = u16::from_be_bytes([ttl, self.protocol()]);
        let value = checksum::update(self.checksum(), old_word, new_word);
        self.set_checksum(value);
    }

    /// Sets the TTL and updates the checksum incrementally (RFC 1624):
    /// the checksum less the TTL's change, in one's complement. When the
    /// header checksum was valid, the result is the same bytes
    /// [`fill_checksum`](Self::fill_checksum) writes: both agree modulo
    /// `0xffff` and lie in `0..=0xfffe` (a full recomputation complements
    /// a nonzero sum, so never writes `0xffff`).
    ///
    /// The words are read and written in host byte order, without swaps:
    /// one's-complement arithmetic gives the same bytes in either order
    /// (RFC 1071 §2B).
    ///
    /// A TTL that is already `ttl` (a neighbour sending with the common
    /// default of 64, answered with 64) changes nothing, and the checksum
    /// is left as it is unless it is `0xffff`, the one form `fill_checksum`
    /// never writes, which the update turns into its `0x0000`.
    #[inline]
    pub fn set_ttl_updating_checksum(&mut self, ttl: u8) {
        let bytes = self.buffer.as_mut();
        let old_ttl = bytes[field::TTL];
        if old_ttl == ttl && bytes[field::CHECKSUM] != [0xff, 0xff] {
            return;
        }
        bytes[field::TTL] = ttl;
        // The TTL's change as it weighs in the word [TTL, protocol] laid
        // out in host order, plus 0xffff (one's-complement zero) so that
        // it is never negative, folded once: it lies in 1..=0xffff.
        let change = 0xffff + u32::from(u16::from_ne_bytes([ttl, 0]))
            - u32::from(u16::from_ne_bytes([old_ttl, 0]));
        let change = (change as u16).wrapping_add((change >> 16) as u16);
        let checksum = u16::from_ne_bytes([
            bytes[field::CHECKSUM.start],
            bytes[field::CHECKSUM.start + 1],
        ]);
        // End-around borrow: the checksum less a change of 1..=0xffff
        // lands in 0..=0xfffe, the form `fill_checksum` writes, even from
        // a checksum field of 0xffff (the other zero, which a sender may
        // use where the sum allows it).
        let (value, borrow) = checksum.overflowing_sub(change);
        let value = value - u16::from(borrow);
        bytes[field::CHECKSUM].copy_from_slice(&value.to_ne_bytes());
    }

    /// Sets the flags and fragment offset: don't-fragment, more-fragments
    /// and the offset in bytes (a multiple of 8, below 65536); the
    /// checksum is left alone.
    #[inline]
    pub fn set_fragment(&mut self, dont_fragment: bool, more_fragments: bool, offset: u16) {
        let value =
            (u16::from(dont_fragment) << 14) | (u16::from(more_fragments) << 13) | (offset / 8);
        self.buffer.as_mut()[field::FLAGS_FRAGMENT].copy_from_slice(&value.to_be_bytes());
    }

    /// Writes a 20-byte header without options and its checksum.
    pub fn emit_header(
        &mut self,
        source: Ipv4Addr,
        destination: Ipv4Addr,
        protocol: u8,
        payload_len: u16,
        ttl: u8,
    ) {
        let bytes = self.buffer.as_mut();
        bytes[field::VERSION_IHL] = 0x45;
        bytes[field::DSCP_ECN] = 0;
        bytes[field::TOTAL_LEN].copy_from_slice(&(payload_len + HEADER_LEN as u16).to_be_bytes());
        bytes[field::IDENT].copy_from_slice(&[0, 0]);
        bytes[field::FLAGS_FRAGMENT].copy_from_slice(&[0, 0]);
        bytes[field::TTL] = ttl;
        bytes[field::PROTOCOL] = protocol;
        self.set_source(source);
        self.set_destination(destination);
        self.fill_checksum();
    }

    /// The payload, writable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let range = self.header_len()..usize::from(self.total_len());
        &mut self.buffer.as_mut()[range]
    }
}

/// Byte fixtures for the tests of this crate and of the crates built on it.
pub mod fixtures {
    /// 192.168.0.1 → 192.168.0.199, UDP, total length 0x73 (header only here).
    pub const HEADER: [u8; 20] = [
        0x45, 0x00, 0x00, 0x14, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0xc0, 0xc0, 0xa8, 0x00,
        0x01, 0xc0, 0xa8, 0x00, 0xc7,
    ];
}

#[cfg(test)]
mod tests {
    use super::fixtures::HEADER;
    use super::*;

    #[test]
    fn parses_fields_and_checksum() {
        let packet = Ipv4Packet::new_checked(&HEADER[..]).unwrap();
        assert_eq!(packet.version(), 4);
        assert_eq!(packet.header_len(), 20);
        assert_eq!(packet.total_len(), 20);
        assert!(packet.dont_fragment());
        assert!(!packet.is_fragment());
        assert_eq!(packet.ttl(), 64);
        assert_eq!(packet.protocol(), protocol::UDP);
        assert_eq!(packet.source(), Ipv4Addr::new(192, 168, 0, 1));
        assert_eq!(packet.destination(), Ipv4Addr::new(192, 168, 0, 199));
        assert!(packet.verify_checksum());
        assert!(packet.payload().is_empty());
        let mut bad = HEADER;
        bad[11] ^= 1;
        assert!(!Ipv4Packet::new_checked(&bad[..]).unwrap().verify_checksum());
    }

    #[test]
    fn emits_the_same_header() {
        let mut bytes = [0u8; 20];
        let mut packet = Ipv4Packet::new_unchecked(&mut bytes[..]);
        packet.emit_header(
            Ipv4Addr::new(192, 168, 0, 1),
            Ipv4Addr::new(192, 168, 0, 199),
            protocol::UDP,
            0,
            64,
        );
        let mut expected = HEADER;
        expected[6] = 0; // we do not set DF
        expected[10..12].copy_from_slice(&[0, 0]);
        let value = checksum::checksum(&expected);
        expected[10..12].copy_from_slice(&value.to_be_bytes());
        assert_eq!(bytes, expected);
    }

    #[test]
    fn decrements_ttl_incrementally_and_swaps() {
        let mut bytes = HEADER;
        let mut packet = Ipv4Packet::new_checked(&mut bytes[..]).unwrap();
        packet.decrement_ttl();
        assert_eq!(packet.ttl(), 63);
        assert!(packet.verify_checksum());
        packet.swap_addresses();
        assert!(packet.verify_checksum());
        assert_eq!(packet.source(), Ipv4Addr::new(192, 168, 0, 199));
        assert_eq!(packet.destination(), Ipv4Addr::new(192, 168, 0, 1));
    }

    #[test]
    fn setting_the_ttl_incrementally_matches_refilling() {
        for (ident, ttl) in (0..=0xffffu16)
            .step_by(97)
            .zip((0..=255u8).cycle().step_by(7))
        {
            let mut bytes = HEADER;
            bytes[4..6].copy_from_slice(&ident.to_be_bytes());
            bytes[8] = ttl;
            let mut packet = Ipv4Packet::new_checked(&mut bytes[..]).unwrap();
            packet.fill_checksum();
            for new_ttl in [0, 1, DEFAULT_TTL, ttl, 255] {
                let mut incremental = bytes;
                Ipv4Packet::new_checked(&mut incremental[..])
                    .unwrap()
                    .set_ttl_updating_checksum(new_ttl);
                let mut refilled = bytes;
                let mut packet = Ipv4Packet::new_checked(&mut refilled[..]).unwrap();
                packet.set_ttl(new_ttl);
                packet.fill_checksum();
                assert_eq!(
                    incremental, refilled,
                    "ident {ident:#x} ttl {ttl} -> {new_ttl}"
                );
            }
        }
    }

    #[test]
    fn setting_the_ttl_from_the_other_zero_checksum_matches_refilling() {
        // A header whose checksum is 0x0000 is as valid with 0xffff in
        // the field: the update gives what refilling gives from either.
        let mut bytes = HEADER;
        let ident = (0..=0xffffu16)
            .find(|ident| {
                bytes[4..6].copy_from_slice(&ident.to_be_bytes());
                let mut packet = Ipv4Packet::new_unchecked(&mut bytes[..]);
                packet.fill_checksum();
                packet.checksum() == 0
            })
            .unwrap();
        bytes[4..6].copy_from_slice(&ident.to_be_bytes());
        for field in [0x0000u16, 0xffff] {
            bytes[10..12].copy_from_slice(&field.to_be_bytes());
            assert!(
                Ipv4Packet::new_checked(&bytes[..])
                    .unwrap()
                    .verify_checksum()
            );
            for new_ttl in 0..=255u8 {
                let mut incremental = bytes;
                Ipv4Packet::new_unchecked(&mut incremental[..]).set_ttl_updating_checksum(new_ttl);
                let mut refilled = bytes;
                let mut packet = Ipv4Packet::new_unchecked(&mut refilled[..]);
                packet.set_ttl(new_ttl);
                packet.fill_checksum();
                assert_eq!(incremental, refilled, "{field:#x} -> ttl {new_ttl}");
            }
        }
    }

    #[test]
    fn refuses_malformed_headers() {
        assert_eq!(
            Ipv4Packet::new_checked(&HEADER[..19]).unwrap_err(),
            WireError::Truncated
        );
        let mut v6 = HEADER;
        v6[0] = 0x65;
        assert_eq!(
            Ipv4Packet::new_checked(&v6[..]).unwrap_err(),
            WireError::BadVersion
        );
        let mut short_ihl = HEADER;
        short_ihl[0] = 0x44;
        assert_eq!(
            Ipv4Packet::new_checked(&short_ihl[..]).unwrap_err(),
            WireError::BadHeaderLength
        );
        let mut long_ihl = HEADER;
        long_ihl[0] = 0x46;
        assert_eq!(
            Ipv4Packet::new_checked(&long_ihl[..]).unwrap_err(),
            WireError::BadHeaderLength
        );
        let mut long_total = HEADER;
        long_total[3] = 21;
        assert_eq!(
            Ipv4Packet::new_checked(&long_total[..]).unwrap_err(),
            WireError::BadLength
        );
        let mut short_total = HEADER;
        short_total[3] = 19;
        assert_eq!(
            Ipv4Packet::new_checked(&short_total[..]).unwrap_err(),
            WireError::BadLength
        );
        // A header with one word of options takes the general path.
        let mut options = [0u8; 24];
        options[..20].copy_from_slice(&HEADER);
        options[0] = 0x46;
        options[3] = 24;
        assert_eq!(
            Ipv4Packet::new_checked(&options[..]).unwrap().header_len(),
            24
        );
        options[3] = 23;
        assert_eq!(
            Ipv4Packet::new_checked(&options[..]).unwrap_err(),
            WireError::BadLength
        );
        let mut fragment = HEADER;
        fragment[6] = 0x20;
        assert!(
            Ipv4Packet::new_checked(&fragment[..])
                .unwrap()
                .is_fragment()
        );
        let mut later = HEADER;
        later[6..8].copy_from_slice(&[0x00, 0x10]);
        let later = Ipv4Packet::new_checked(&later[..]).unwrap();
        assert!(later.is_fragment());
        assert_eq!(later.fragment_offset(), 128);
    }
}
