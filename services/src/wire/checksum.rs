//! The Internet checksum (RFC 1071) with 64-bit scalar arithmetic (the
//! bare-metal target has no SIMD), and its incremental update (RFC 1624).

use core::net::Ipv4Addr;

/// Adds `data` as big-endian 16-bit words into a 64-bit one's-complement
/// accumulator, eight bytes at a time. An odd last byte is padded with zero.
#[inline]
pub fn sum(data: &[u8], mut accumulator: u64) -> u64 {
    let mut chunks = data.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let (total, carry) = accumulator.overflowing_add(u64::from_be_bytes(word));
        accumulator = total + u64::from(carry);
    }
    let mut rest = [0u8; 8];
    let remainder = chunks.remainder();
    rest[..remainder.len()].copy_from_slice(remainder);
    let (total, carry) = accumulator.overflowing_add(u64::from_be_bytes(rest));
    total + u64::from(carry)
}

/// Folds a 64-bit accumulator to 16 bits (not complemented).
#[inline]
pub fn fold(mut accumulator: u64) -> u16 {
    accumulator = (accumulator & 0xffff_ffff) + (accumulator >> 32);
    accumulator = (accumulator & 0xffff_ffff) + (accumulator >> 32);
    accumulator = (accumulator & 0xffff) + (accumulator >> 16);
    accumulator = (accumulator & 0xffff) + (accumulator >> 16);
    accumulator as u16
}

/// The checksum of `data`: the complement of its one's-complement sum.
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    !fold(sum(data, 0))
}

/// The accumulator of the IPv4 pseudo header for TCP/UDP.
#[inline]
pub fn pseudo_header(source: Ipv4Addr, destination: Ipv4Addr, protocol: u8, length: u16) -> u64 {
    u64::from(source.to_bits())
        + u64::from(destination.to_bits())
        + u64::from(protocol)
        + u64::from(length)
}

/// RFC 1624 eqn. 3: the new checksum after a 16-bit word of the covered
/// data changed from `old_word` to `new_word`: `HC' = ~(~HC + ~m + m')`.
#[inline]
pub fn update(checksum: u16, old_word: u16, new_word: u16) -> u16 {
    let sum = u64::from(!checksum) + u64::from(!old_word) + u64::from(new_word);
    !fold(sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The straightforward 16-bit reference.
    fn reference(data: &[u8]) -> u16 {
        let mut sum = 0u32;
        for pair in data.chunks(2) {
            let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
            sum += u32::from(word);
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    #[test]
    fn matches_rfc1071_and_the_reference() {
        // RFC 1071 section 3 example: sum of these words is 0xddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(&data, 0)), 0xddf2);
        // A real IPv4 header (checksum field 0xb861).
        let header = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(checksum(&header), 0xb861);
        let mut state = 0x1234_5678_u32;
        for len in 0..300 {
            let bytes: alloc::vec::Vec<u8> = (0..len)
                .map(|_| {
                    state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (state >> 16) as u8
                })
                .collect();
            assert_eq!(checksum(&bytes), reference(&bytes), "len {len}");
        }
        assert_eq!(checksum(&[0xff; 64]), reference(&[0xff; 64]));
    }

    #[test]
    fn incremental_update_matches_recomputing() {
        let mut header = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        for ttl in (0..=0x40u8).rev() {
            let old = u16::from_be_bytes([header[8], header[9]]);
            header[8] = ttl;
            let new = u16::from_be_bytes([header[8], header[9]]);
            let updated = update(u16::from_be_bytes([header[10], header[11]]), old, new);
            header[10..12].copy_from_slice(&[0, 0]);
            assert_eq!(updated, checksum(&header), "ttl {ttl}");
            header[10..12].copy_from_slice(&updated.to_be_bytes());
        }
    }
}
