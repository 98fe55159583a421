//! The Internet checksum (RFC 1071) with 64-bit scalar arithmetic (the
//! bare-metal target has no SIMD), and its incremental update (RFC 1624).
//!
//! The one's-complement sum does not depend on byte order (RFC 1071 §2B):
//! `sum` adds the data as native-endian 64-bit words with end-around carry
//! (an `add`/`adc` pair per eight bytes on x86, no byte swaps), folds once,
//! and swaps the folded 16 bits to network order at the end.

use core::net::Ipv4Addr;

/// Adds `data` as big-endian 16-bit words into a 64-bit one's-complement
/// accumulator. An odd last byte is padded with zero.
#[inline]
pub fn sum(data: &[u8], accumulator: u64) -> u64 {
    add_carry(
        accumulator,
        u64::from(u16::from_be(fold(sum_native(data, 0)))),
    )
}

/// Adds `data` as native-endian words into `native`, a one's-complement
/// accumulator in host byte order (not folded, not swapped): what
/// [`verifies`] needs, since the byte order does not change whether a sum
/// is all ones.
#[inline(always)]
pub fn sum_native(data: &[u8], native: u64) -> u64 {
    let mut native = native;
    // Blocks of 64 bytes, walked by pointer and length (no block count and
    // index worked out first, which short datagrams of one block or none
    // paid for).
    let mut rest = data;
    while let Some((block, tail)) = rest.split_first_chunk::<64>() {
        native = add_words(native, block);
        rest = tail;
    }
    // Below 64 bytes: a run of 32, one of 16 and a word of 8 as the
    // length's bits say, each one carry chain, with no loop.
    if let Some((words, tail)) = rest.split_first_chunk::<32>() {
        native = add_words(native, words);
        rest = tail;
    }
    if let Some((words, tail)) = rest.split_first_chunk::<16>() {
        native = add_words(native, words);
        rest = tail;
    }
    if let Some((word, tail)) = rest.split_first_chunk::<8>() {
        native = add_carry(native, u64::from_ne_bytes(*word));
        rest = tail;
    }
    // A length that is a multiple of eight leaves nothing here: one test
    // then skips the three below.
    if rest.is_empty() {
        return native;
    }
    if rest.len() >= 4 {
        native = add_carry(
            native,
            u64::from(u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]])),
        );
        rest = &rest[4..];
    }
    if rest.len() >= 2 {
        native = add_carry(native, u64::from(u16::from_ne_bytes([rest[0], rest[1]])));
        rest = &rest[2..];
    }
    if let [byte] = rest {
        native = add_carry(native, u64::from(u16::from_ne_bytes([*byte, 0])));
    }
    native
}

/// [`verifies`] of `head` followed by `rest`, for data whose first `N`
/// bytes (a multiple of 8) are always there, such as the pseudo-header's
/// addresses and a UDP header: the head is one carry chain at constant
/// offsets, with no length test, and `rest` goes through the block loop.
/// A datagram whose payload is whole 64-byte blocks then leaves the loop
/// with nothing behind it, instead of a run of 16 tested for and summed
/// behind the blocks.
#[inline(always)]
pub fn verifies_after<const N: usize>(head: &[u8; N], rest: &[u8], native: u64) -> bool {
    const { assert!(N.is_multiple_of(8), "the head is whole 64-bit words") };
    // With a block behind the head, head and block are one carry chain
    // (not two, each with its carry added back) and the block loop sums
    // what follows the block. The chain comes last and the block first in
    // it: a chain that began with the head in every arm would be hoisted
    // above the length test, its carry saved and restored around it.
    let native = match rest.split_first_chunk::<64>() {
        // Whole blocks: nothing behind the first is tested for twice.
        Some((block, [])) => add_runs(native, block, head),
        Some((block, rest)) => add_runs(sum_native(rest, native), block, head),
        // The head first here: had this arm ended with a chain too, the
        // compiler would have merged the two chains' last `adc`, saving
        // the carry (`setb`) to restore it after the merge.
        None => sum_native(rest, add_words(native, head)),
    };
    is_all_ones(native)
}

/// True when `data`, with the host-order accumulator `native` (0, or a
/// [`pseudo_header_native`]), sums to all ones: the checksum in it is
/// right. Folding in host order reaches 0xffff exactly when folding in
/// network order does (a byte swap is a rotation by 8 bits, which maps the
/// one's-complement zeros to themselves), so no swap and no second fold.
#[inline]
pub fn verifies(data: &[u8], native: u64) -> bool {
    is_all_ones(sum_native(data, native))
}

/// `(2^64 - 1) / 0xffff`, a one in each 16-bit lane; its negation modulo
/// 2^64 is the inverse of 0xffff (`0xffff * 0xfffe_fffe_fffe_ffff = 1`).
const LANE_ONES: u64 = u64::MAX / 0xffff;
const _: () = assert!(LANE_ONES.wrapping_neg().wrapping_mul(0xffff) == 1);

/// True when `accumulator` folds to 0xffff, the one's-complement sum of a
/// correct checksum, without folding it. Every fold step keeps the value
/// modulo 0xffff (2^16 and 2^32 are 1 modulo 0xffff) and a fold of a
/// non-zero accumulator is never 0, so the fold is 0xffff exactly when the
/// accumulator is a non-zero multiple of 0xffff.
///
/// Divisibility by the odd 0xffff (Granlund and Montgomery; Lemire's
/// "faster remainder"): a non-zero `n` is a multiple exactly when
/// `n * inverse mod 2^64` lies in `1..=LANE_ONES`. The inverse is
/// `-LANE_ONES`, so with `m = n * LANE_ONES mod 2^64` (not 0, as `n` is
/// not) that is `2^64 - m <= LANE_ONES`: `m + LANE_ONES` carries out of 64
/// bits. For `n = 0`, `m = 0` and nothing carries, so 0 is refused
/// without a test of its own: a multiply, an add and the carry flag, with
/// one constant.
#[inline(always)]
pub fn is_all_ones(accumulator: u64) -> bool {
    accumulator
        .wrapping_mul(LANE_ONES)
        .overflowing_add(LANE_ONES)
        .1
}

/// Adds the native-endian words of `words` (`N` a multiple of 8) to
/// `native`: [`add_runs`] of one run.
#[inline(always)]
fn add_words<const N: usize>(native: u64, words: &[u8; N]) -> u64 {
    add_runs(native, words, &[])
}

/// Adds the native-endian words of `first`, then of `second` (`N` and `M`
/// multiples of 8), to `native`. On x86_64 the carry out of each addition
/// goes into the next (`add`, then `adc`s), across both runs, and only the
/// last one is added back: one instruction per word instead of an
/// `add`/`adc` pair. Deferring a carry by one word is still one's-complement
/// addition (it is the same sum modulo `2^64 - 1`).
///
/// Adding that last carry back cannot carry again, so it is one `adc`:
/// a step of the chain ends with a total of all ones and a carry only when
/// it added all ones to all ones with a carry in, that is, when the step
/// before it ended the same way, and the first step (an `add`) has no
/// carry in.
#[inline(always)]
fn add_runs<const N: usize, const M: usize>(native: u64, first: &[u8; N], second: &[u8; M]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::_addcarry_u64;
        let mut total = native;
        let mut carry = 0;
        // Two loops, not one over chained iterators, which the compiler
        // does not unroll.
        for word in first.chunks_exact(8) {
            carry = _addcarry_u64(carry, total, u64::from_ne_bytes(eight(word)), &mut total);
        }
        for word in second.chunks_exact(8) {
            carry = _addcarry_u64(carry, total, u64::from_ne_bytes(eight(word)), &mut total);
        }
        // One more `adc` of 0, whose own carry out is never set (above).
        _addcarry_u64(carry, total, 0, &mut total);
        total
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let add = |total, word: &[u8]| add_carry(total, u64::from_ne_bytes(eight(word)));
        let total = first.chunks_exact(8).fold(native, add);
        second.chunks_exact(8).fold(total, add)
    }
}

/// The first eight bytes of `bytes` (which has eight).
#[inline(always)]
fn eight(bytes: &[u8]) -> [u8; 8] {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[..8]);
    word
}

/// `a + b` with the carry out added back in (one's-complement addition).
#[inline(always)]
fn add_carry(a: u64, b: u64) -> u64 {
    let (total, carry) = a.overflowing_add(b);
    total + u64::from(carry)
}

/// Folds a 64-bit accumulator to 16 bits (not complemented): 64 to 32 to
/// 16 bits, each with end-around carry.
#[inline]
pub fn fold(accumulator: u64) -> u16 {
    let (high, low) = ((accumulator >> 32) as u32, accumulator as u32);
    let (total, carry) = low.overflowing_add(high);
    // Cannot overflow: a carry leaves `total` at most 0xffff_fffe.
    let total = total + u32::from(carry);
    let (high, low) = ((total >> 16) as u16, total as u16);
    let (total, carry) = low.overflowing_add(high);
    total + u16::from(carry)
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

/// [`pseudo_header`] in host byte order, for [`verifies`]: the words read
/// from their network-order bytes as the data words are.
#[inline]
pub fn pseudo_header_native(
    source: Ipv4Addr,
    destination: Ipv4Addr,
    protocol: u8,
    length: u16,
) -> u64 {
    u64::from(u32::from_ne_bytes(source.octets()))
        + u64::from(u32::from_ne_bytes(destination.octets()))
        + u64::from(u16::from_ne_bytes([0, protocol]))
        + u64::from(u16::from_ne_bytes(length.to_be_bytes()))
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
    fn verifies_like_the_network_order_sum() {
        let mut state = 0x9e37_79b9_u32;
        let mut next = || {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (state >> 16) as u8
        };
        for len in 0..200 {
            let mut bytes: alloc::vec::Vec<u8> = (0..len).map(|_| next()).collect();
            let source = Ipv4Addr::new(next(), next(), next(), next());
            let destination = Ipv4Addr::new(next(), next(), next(), next());
            let length = len as u16;
            let pseudo = pseudo_header(source, destination, 17, length);
            let native = pseudo_header_native(source, destination, 17, length);
            let check = |bytes: &[u8]| {
                assert_eq!(
                    verifies(bytes, native),
                    fold(sum(bytes, pseudo)) == 0xffff,
                    "len {len}"
                );
                assert_eq!(verifies(bytes, 0), fold(sum(bytes, 0)) == 0xffff);
                // The same sum with its first 16 or 8 bytes as a head.
                if let Some((head, rest)) = bytes.split_first_chunk::<16>() {
                    assert_eq!(verifies_after(head, rest, native), verifies(bytes, native));
                }
                if let Some((head, rest)) = bytes.split_first_chunk::<8>() {
                    assert_eq!(verifies_after(head, rest, 0), verifies(bytes, 0));
                }
                verifies(bytes, native)
            };
            check(&bytes);
            if len >= 2 {
                // Make it valid (checksum in the first word), then break it.
                bytes[..2].fill(0);
                let value = !fold(sum(&bytes, pseudo));
                bytes[..2].copy_from_slice(&value.to_be_bytes());
                assert!(check(&bytes), "len {len}");
                bytes[len - 1] ^= 0x10;
                assert!(!check(&bytes), "len {len}");
            }
        }
        assert!(!verifies(&[0; 20], 0));
        assert!(!verifies_after(&[0; 16], &[0; 4], 0));
        assert!(verifies(&[0xff; 20], 0));
        assert!(verifies_after(&[0xff; 16], &[0xff; 4], 0));
    }

    #[test]
    fn all_ones_is_a_fold_to_0xffff_without_the_fold() {
        let mut values = alloc::vec![
            0,
            1,
            0xfffe,
            0xffff,
            0x1_0000,
            0x1_fffe,
            0x1_ffff,
            0xffff_ffff,
            0xffff_fffe,
            0x1_0000_0000,
            0xffff_0000_ffff,
            u64::MAX,
            u64::MAX - 1,
            u64::MAX - 0xffff,
            (u64::MAX / 0xffff) * 0xffff,
            0x8000_0000_8000_0000,
        ];
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..100_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            values.push(state);
            // Multiples of 0xffff and their neighbours.
            let multiple = (state >> 16).wrapping_mul(0xffff);
            values.extend([multiple, multiple.wrapping_add(1), multiple.wrapping_sub(1)]);
        }
        for value in values {
            assert_eq!(is_all_ones(value), fold(value) == 0xffff, "{value:#x}");
        }
    }

    #[test]
    fn a_chain_adds_its_last_carry_back_exactly() {
        // Words of all ones and near it, where carries pile up: the chain's
        // total is the exact sum modulo 2^64 - 1, and 0 only for a zero sum.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..20_000 {
            let pick = |value: u64| match value % 4 {
                0 => u64::MAX,
                1 => u64::MAX - (value >> 60),
                2 => 0,
                _ => value,
            };
            let native = pick(next());
            let mut words = [0u8; 80];
            for word in words.chunks_exact_mut(8) {
                word.copy_from_slice(&pick(next()).to_ne_bytes());
            }
            let (head, block) = words.split_first_chunk::<16>().unwrap();
            let block: &[u8; 64] = block.try_into().unwrap();
            let exact = words
                .chunks_exact(8)
                .map(|word| u128::from(u64::from_ne_bytes(word.try_into().unwrap())))
                .sum::<u128>()
                + u128::from(native);
            let modulus = u128::from(u64::MAX);
            for total in [add_runs(native, block, head), add_words(native, &words)] {
                assert_eq!(
                    u128::from(total) % modulus,
                    exact % modulus,
                    "round {round}"
                );
                assert_eq!(total == 0, exact == 0, "round {round}");
            }
        }
    }

    #[test]
    fn folds_like_sixteen_bit_end_around_carry() {
        let reference = |mut value: u64| {
            while value > 0xffff {
                value = (value & 0xffff) + (value >> 16);
            }
            value as u16
        };
        for value in [
            0,
            1,
            0xffff,
            0x1_0000,
            0x1_fffe,
            0xffff_ffff,
            0x1_0000_0000,
            0xffff_0000_ffff,
            u64::MAX,
            u64::MAX - 1,
            0x8000_0000_8000_0000,
        ] {
            assert_eq!(fold(value), reference(value), "{value:#x}");
        }
        // A pseudo-header accumulator plus odd-length data, against the
        // big-endian reference.
        let data = [
            0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x0f, 0xed, 0xcb,
        ];
        let expected = reference(0x1_2345 + u64::from(!super::tests::reference(&data)));
        assert_eq!(fold(sum(&data, 0x1_2345)), expected);
        // An odd last byte is the high byte of a zero-padded word.
        assert_eq!(fold(sum(&[1, 2, 3], 0)), 0x0102 + 0x0300);
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
