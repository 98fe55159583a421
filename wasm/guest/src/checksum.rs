//! The Internet checksum's incremental update (RFC 1624, equation 3), for
//! a transport checksum after the module rewrites a header field. (The host
//! recomputes the IPv4 header checksum of a dirty slot itself.)

/// The checksum `checksum` after a 16-bit field of the summed bytes
/// changed from `old` to `new`: `HC' = ~(~HC + ~m + m')`.
pub fn update16(checksum: u16, old: u16, new: u16) -> u16 {
    let mut sum = u32::from(!checksum) + u32::from(!old) + u32::from(new);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    !(sum as u16)
}

/// [`update16`] for a UDP checksum: `0` (no checksum) stays `0`, and a
/// result of `0` is sent as `0xffff` (RFC 768).
pub fn update16_udp(checksum: u16, old: u16, new: u16) -> u16 {
    match checksum {
        0 => 0,
        _ => match update16(checksum, old, new) {
            0 => 0xffff,
            other => other,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one's-complement checksum of `words`, computed from scratch.
    fn full(words: &[u16]) -> u16 {
        let mut sum: u32 = words.iter().map(|&word| u32::from(word)).sum();
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    #[test]
    fn matches_a_full_recomputation() {
        let mut words = [
            0x4500, 0x0073, 0x0000, 0x4000, 0x4011, 0xc0a8, 0x0001, 0xc0a8, 0x00c7,
        ];
        for (index, new) in [(2usize, 0xffffu16), (5, 0x0000), (8, 0x1234), (0, 0xbeef)] {
            let before = full(&words);
            let old = words[index];
            words[index] = new;
            assert_eq!(update16(before, old, new), full(&words), "word {index}");
        }
    }

    #[test]
    fn udp_keeps_no_checksum_and_never_sends_zero() {
        assert_eq!(update16_udp(0, 9, 7), 0);
        // ~0x0001 + ~0x0000 + 0x0001 folds to 0xffff: a plain update gives 0.
        assert_eq!(update16(0x0001, 0x0000, 0x0001), 0);
        assert_eq!(update16_udp(0x0001, 0x0000, 0x0001), 0xffff);
    }
}
