//! `PlainHeader`: the common IPv4 header (no options, no fragment, right
//! checksum) recognised from three words as they lie in memory.

use super::HEADER_LEN;
use core::net::Ipv4Addr;

/// The first eight header bytes' bits that a plain header fixes, as the
/// word lies in memory: the version and IHL byte, and the more-fragments
/// flag with the fragment offset (bytes 6 and 7 under `0x3fff`; the
/// don't-fragment flag and the reserved bit may be anything).
const PLAIN_MASK: u64 = u64::from_ne_bytes([0xff, 0, 0, 0, 0, 0, 0x3f, 0xff]);
/// What a plain header has under [`PLAIN_MASK`]: version 4, IHL 5, not a
/// fragment.
const PLAIN_BITS: u64 = u64::from_ne_bytes([0x45, 0, 0, 0, 0, 0, 0, 0]);

/// The inverse of 0xffff modulo 2^64: `n` is a multiple of 0xffff
/// exactly when `n * INVERSE_OF_0XFFFF mod 2^64 <= (2^64 - 1) / 0xffff`.
const INVERSE_OF_0XFFFF: u64 = 0xfffe_fffe_fffe_ffff;

/// An IPv4 header in the form nearly every packet has, checked as a whole:
/// version 4, IHL 5 (no options), not a fragment (neither more-fragments
/// nor an offset), a total length from 20 bytes to the packet's length,
/// and a right header checksum. [`PlainHeader::read`] tells it with one
/// masked compare of the first eight bytes and the checksum's three words
/// added with carry; anything else is `None` and goes through
/// [`Ipv4Packet::new_checked`](super::Ipv4Packet::new_checked) and
/// [`verify_checksum`](super::Ipv4Packet::verify_checksum), which name
/// what is wrong. The fields are kept as the words were loaded, in host
/// order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlainHeader {
    /// Bytes 0..8: version and IHL, DSCP/ECN, total length,
    /// identification, flags and fragment offset.
    front: u64,
    /// Bytes 8..12: TTL, protocol, checksum.
    middle: u32,
    /// Bytes 12..20: the source and the destination, one word (see
    /// [`PlainHeader::addresses`]).
    addresses: u64,
    /// The total length (bytes 2..4, also inside `front`).
    total_len: u16,
}

impl PlainHeader {
    /// The plain header at the start of `packet`, or `None` when it is
    /// not one (too short, another version, options, a fragment, a total
    /// length out of bounds, or a wrong checksum).
    #[inline(always)]
    pub fn read(packet: &[u8]) -> Option<Self> {
        // The bytes behind a header's 20: the one subtraction both tells
        // a packet too short and bounds the total length below.
        let room = packet.len().checked_sub(HEADER_LEN)?;
        let header = packet.first_chunk::<HEADER_LEN>()?;
        let (front, rest) = header.split_first_chunk::<8>()?;
        let (middle, addresses) = rest.split_first_chunk::<4>()?;
        let plain = Self {
            front: u64::from_ne_bytes(*front),
            middle: u32::from_ne_bytes(*middle),
            addresses: u64::from_ne_bytes(*addresses.first_chunk::<8>()?),
            // Bytes 2 and 3, the low half of the first four in network
            // order: one byte swap of a word, where the two bytes alone
            // took a shift and a rotate.
            total_len: u32::from_be_bytes(*header.first_chunk::<4>()?) as u16,
        };
        // From 20 to the packet's length (at least 20 here) in one
        // compare: a total length below 20 wraps around past the top.
        let beyond_header = usize::from(plain.total_len).wrapping_sub(HEADER_LEN);
        if plain.front & PLAIN_MASK != PLAIN_BITS
            || beyond_header > room
            || !plain.sums_to_all_ones()
        {
            return None;
        }
        Some(plain)
    }

    /// The plain header at the start of `packet` when it is alike
    /// `model`, a plain header read before: the same first eight bytes
    /// but the identification (so the same version, IHL, fragment bits
    /// and total length), the same addresses and the same protocol, and
    /// a right checksum. Otherwise `None` (whether or not [`Self::read`]
    /// would take it). What `read` checks holds for such a header as it
    /// held for `model`: the fixed bits and the total length's lower
    /// bound are `model`'s, and the total length is compared with this
    /// packet's length again. The packets of one flow are alike: one
    /// compare of bytes 0..4 and one of 6..8 stand for the fixed bits and
    /// the total length's byte swap and bound.
    #[inline(always)]
    pub fn read_alike(packet: &[u8], model: &Self) -> Option<Self> {
        let header = packet.first_chunk::<HEADER_LEN>()?;
        let (front, rest) = header.split_first_chunk::<8>()?;
        let (middle, addresses) = rest.split_first_chunk::<4>()?;
        let alike = Self {
            front: u64::from_ne_bytes(*front),
            middle: u32::from_ne_bytes(*middle),
            addresses: u64::from_ne_bytes(*addresses.first_chunk::<8>()?),
            total_len: model.total_len,
        };
        // Bytes 0..4 and 6..8 compared apart: no 64-bit mask to hold in a
        // register. The length last, where the caller's trim compares the
        // same two numbers.
        if alike.front as u32 != model.front as u32
            || u16::from_ne_bytes([front[6], front[7]]) != (model.front >> 48) as u16
            || alike.addresses != model.addresses
            || header[9] != model.protocol()
            || !alike.sums_to_all_ones()
            || packet.len() < usize::from(model.total_len)
        {
            return None;
        }
        Some(alike)
    }

    /// True when the header's one's-complement sum is all ones (its
    /// checksum is right). The three words (bytes 0..8, 8..12 and 12..20,
    /// each starting at an even offset) are added with end-around carry
    /// into a 64-bit accumulator, which is congruent to the 16-bit sum
    /// modulo 0xffff (2^16 and 2^64 are both 1 modulo 0xffff, so a word is
    /// congruent to the sum of its 16-bit pieces, and a byte order is a
    /// permutation of the 16-bit words' bytes that keeps 0 modulo
    /// 0xffff). A nonzero accumulator folds to 0xffff exactly when it is
    /// a multiple of 0xffff, and this one is nonzero (its first byte is
    /// 0x45, and end-around addition never reaches zero from a nonzero
    /// operand). A multiple of an odd constant is told by one
    /// multiplication and compare, where folding to 16 bits takes two
    /// add-with-carry steps.
    ///
    /// The first addition's carry goes in with `middle` (a 32-bit word,
    /// so that sum stays below 2^64 + 2^32 and its own carry, added last,
    /// cannot carry again): on x86_64 one add-with-carry chain, `add`,
    /// `adc`, `adc 0`, where two end-around carries took two instructions
    /// each.
    #[inline(always)]
    fn sums_to_all_ones(&self) -> bool {
        #[cfg(target_arch = "x86_64")]
        let sum = {
            use core::arch::x86_64::_addcarry_u64;
            let mut sum = 0;
            let carry = _addcarry_u64(0, self.front, self.addresses, &mut sum);
            let carry = _addcarry_u64(carry, sum, u64::from(self.middle), &mut sum);
            // Cannot overflow: after a carry `sum` is below 2^32.
            sum + u64::from(carry)
        };
        #[cfg(not(target_arch = "x86_64"))]
        let sum = {
            let (sum, carry) = self.front.overflowing_add(self.addresses);
            // `middle` is below 2^32: adding the carry cannot overflow.
            let (sum, carry) = sum.overflowing_add(u64::from(self.middle) + u64::from(carry));
            sum + u64::from(carry)
        };
        // `sum % 0xffff == 0`, written as the multiplication and compare
        // it is (left to the compiler, a division came out in one loop).
        sum.wrapping_mul(INVERSE_OF_0XFFFF) <= u64::MAX / 0xffff
    }

    /// The source's and the destination's wire bytes (bytes 12..20) as
    /// one word read natively: one compare tells two headers' address
    /// pairs apart.
    #[inline(always)]
    pub fn addresses(&self) -> u64 {
        self.addresses
    }

    /// Total length: header and payload (20 to the packet's length).
    #[inline(always)]
    pub fn total_len(&self) -> u16 {
        self.total_len
    }

    /// The payload's protocol.
    #[inline(always)]
    pub fn protocol(&self) -> u8 {
        self.middle.to_ne_bytes()[1]
    }

    /// The source address's wire bytes.
    #[inline(always)]
    pub fn source_octets(&self) -> [u8; 4] {
        let [s0, s1, s2, s3, ..] = self.addresses.to_ne_bytes();
        [s0, s1, s2, s3]
    }

    /// The source address.
    #[inline(always)]
    pub fn source(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.source_octets())
    }

    /// The destination address's wire bytes.
    #[inline(always)]
    pub fn destination_octets(&self) -> [u8; 4] {
        let [.., d0, d1, d2, d3] = self.addresses.to_ne_bytes();
        [d0, d1, d2, d3]
    }

    /// The destination address.
    #[inline(always)]
    pub fn destination(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.destination_octets())
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::HEADER;
    use super::super::{Ipv4Packet, protocol};
    use super::*;

    /// What the general checks say about `bytes`: a plain header exactly
    /// when the view is valid, without options or fragment bits, and its
    /// checksum right.
    fn plain_by_the_general_checks(bytes: &[u8]) -> bool {
        Ipv4Packet::new_checked(bytes).is_ok_and(|view| {
            view.header_len() == HEADER_LEN && !view.is_fragment() && view.verify_checksum()
        })
    }

    /// `bytes` with the checksum filled in when it has a header's room.
    fn with_checksum(mut bytes: alloc::vec::Vec<u8>) -> alloc::vec::Vec<u8> {
        if bytes.len() >= HEADER_LEN && bytes[0] & 0x0f >= 5 {
            let header_len = usize::from(bytes[0] & 0x0f) * 4;
            if header_len <= bytes.len() {
                bytes[10..12].fill(0);
                let value = !crate::checksum::fold(crate::checksum::sum(&bytes[..header_len], 0));
                bytes[10..12].copy_from_slice(&value.to_be_bytes());
            }
        }
        bytes
    }

    #[test]
    fn reads_the_fields_of_a_plain_header() {
        let plain = PlainHeader::read(&HEADER).unwrap();
        assert_eq!(plain.total_len(), 20);
        assert_eq!(plain.protocol(), protocol::UDP);
        assert_eq!(plain.source(), Ipv4Addr::new(192, 168, 0, 1));
        assert_eq!(plain.destination(), Ipv4Addr::new(192, 168, 0, 199));
        assert_eq!(plain.destination_octets(), [192, 168, 0, 199]);
        assert_eq!(
            plain.addresses().to_ne_bytes(),
            [192, 168, 0, 1, 192, 168, 0, 199]
        );
    }

    #[test]
    fn agrees_with_the_general_checks_on_every_flag_length_and_checksum() {
        let mut cases = 0;
        for version_ihl in [0x45u8, 0x46, 0x44, 0x35, 0x55, 0x4f] {
            for flags in [0x00u8, 0x40, 0x80, 0xc0, 0x20, 0x01, 0x60] {
                for offset_low in [0x00u8, 0x01, 0x80] {
                    for (total_len, padding) in
                        [(20u16, 0usize), (28, 8), (28, 12), (24, 0), (19, 0)]
                    {
                        for corrupt in [false, true] {
                            let mut bytes = HEADER.to_vec();
                            bytes.resize(HEADER_LEN + padding, 0xab);
                            bytes[0] = version_ihl;
                            bytes[2..4].copy_from_slice(&total_len.to_be_bytes());
                            bytes[6] = flags;
                            bytes[7] = offset_low;
                            let mut bytes = with_checksum(bytes);
                            if corrupt {
                                bytes[13] ^= 0x10;
                            }
                            let case =
                                (version_ihl, flags, offset_low, total_len, padding, corrupt);
                            assert_eq!(
                                PlainHeader::read(&bytes).is_some(),
                                plain_by_the_general_checks(&bytes),
                                "{case:x?}"
                            );
                            cases += 1;
                        }
                    }
                }
            }
        }
        assert_eq!(cases, 6 * 7 * 3 * 5 * 2);
        // Too short for a header.
        assert_eq!(PlainHeader::read(&HEADER[..19]), None);
    }

    #[test]
    fn tells_every_wrong_checksum_and_only_those() {
        // Every value of the checksum field over a header: one is right.
        // The zero sum never passes for all ones (0 is a multiple of
        // 0xffff, but a plain header's sum is never 0).
        let mut right = 0;
        let mut bytes = HEADER;
        for value in 0..=u16::MAX {
            bytes[10..12].copy_from_slice(&value.to_be_bytes());
            let general = Ipv4Packet::new_checked(&bytes[..])
                .unwrap()
                .verify_checksum();
            assert_eq!(PlainHeader::read(&bytes).is_some(), general, "{value:#06x}");
            right += usize::from(general);
        }
        assert_eq!(right, 1);
    }

    #[test]
    fn both_encodings_of_zero_and_carries_out_of_64_bits() {
        // With the checksum field fixed at 0x0000 or 0xffff (both zero in
        // one's complement), every identification: exactly the ones that
        // make the sum all ones pass, whichever zero the field holds, with
        // words of all ones that carry out of 64 bits and words of zeros.
        for fill in [0x00u8, 0xff] {
            for field in [0x0000u16, 0xffff] {
                let mut bytes = HEADER;
                bytes[8] = fill;
                bytes[12..20].fill(fill);
                bytes[10..12].copy_from_slice(&field.to_be_bytes());
                let mut passed = 0;
                for ident in 0..=u16::MAX {
                    bytes[4..6].copy_from_slice(&ident.to_be_bytes());
                    let general = plain_by_the_general_checks(&bytes);
                    assert_eq!(
                        PlainHeader::read(&bytes).is_some(),
                        general,
                        "{fill:#x} {field:#x} {ident:#x}"
                    );
                    passed += usize::from(general);
                }
                assert!((1..=2).contains(&passed), "{fill:#x} {field:#x}: {passed}");
            }
        }
    }

    #[test]
    fn a_header_alike_its_model_is_one_read_takes_and_no_other_is() {
        let model = PlainHeader::read(&HEADER).unwrap();
        // (edit, whether the result is still alike the model)
        type Edit = (&'static str, fn(&mut [u8; 20]), bool);
        let edits: [Edit; 9] = [
            ("same", |_| {}, true),
            (
                "identification",
                |b| b[4..6].copy_from_slice(&[0x12, 0x34]),
                true,
            ),
            ("dscp", |b| b[1] = 4, false),
            ("total length", |b| b[3] = 24, false),
            ("don't fragment", |b| b[6] ^= 0x40, false),
            ("fragment offset", |b| b[7] = 1, false),
            ("ttl", |b| b[8] = 9, true),
            ("protocol", |b| b[9] = protocol::ICMP, false),
            ("source", |b| b[15] ^= 1, false),
        ];
        for (case, edit, alike) in edits {
            for corrupt in [false, true] {
                let mut bytes = HEADER;
                edit(&mut bytes);
                let mut bytes = with_checksum(bytes.to_vec());
                if corrupt {
                    bytes[11] ^= 1;
                }
                let read = PlainHeader::read(&bytes);
                let got = PlainHeader::read_alike(&bytes, &model);
                assert_eq!(got.is_some(), alike && !corrupt, "{case} {corrupt}");
                if got.is_some() {
                    assert_eq!(got, read, "{case}");
                }
                // Shorter than the model's total length: never alike.
                bytes.push(0);
                assert_eq!(PlainHeader::read_alike(&bytes[..19], &model), None);
            }
        }
    }
}
