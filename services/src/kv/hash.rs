//! Key hashing: one hash for the shard's table, and from it the shard
//! that owns a key. Every core computes the same values (fixed seeds), so
//! any core can tell which core owns a key.
//!
//! The seeds are fixed because the cores have no shared random source at
//! build time; a client that can choose keys can therefore aim them at
//! one table bucket (hash flooding). Keys are bounded (250 bytes) and the
//! table probes are cheap, so the cost is bounded, not eliminated.

/// Multiplier of the folded multiply (from the fractional digits of pi).
const MULTIPLIER: u64 = 0x243f_6a88_85a3_08d3;
/// Seed of the table hash.
const SEED: u64 = 0x1319_8a2e_0370_7344;
/// Seed of the shard hash, independent of the table hash so that keys of
/// one shard still spread over all of its table's buckets.
const SHARD_SEED: u64 = 0xa409_3822_299f_31d0;

/// Multiplies as 128 bits and folds the halves together.
fn fold(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    (product as u64) ^ ((product >> 64) as u64)
}

/// Hashes `key`, eight bytes at a time.
fn hash_with(key: &[u8], seed: u64) -> u64 {
    let mut state = seed ^ (key.len() as u64).wrapping_mul(MULTIPLIER);
    let mut chunks = key.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        state = fold(state ^ u64::from_le_bytes(word), MULTIPLIER);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut word = [0u8; 8];
        word[..rest.len()].copy_from_slice(rest);
        state = fold(state ^ u64::from_le_bytes(word), MULTIPLIER ^ seed);
    }
    fold(state, MULTIPLIER.rotate_left(17))
}

/// The hash a shard's table files `key` under.
pub fn key_hash(key: &[u8]) -> u64 {
    hash_with(key, SEED)
}

/// The shard (of `shards`) that owns `key`.
pub fn shard_of(key: &[u8], shards: usize) -> usize {
    if shards <= 1 {
        return 0;
    }
    // The high half of a 64x64 product spreads the hash evenly over
    // `0..shards` without a division.
    ((u128::from(hash_with(key, SHARD_SEED)) * shards as u128) >> 64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_spread_over_shards_and_hashes_differ() {
        let mut counts = [0usize; 3];
        for number in 0..3000u32 {
            let key = alloc::format!("key:{number}");
            counts[shard_of(key.as_bytes(), 3)] += 1;
        }
        assert!(
            counts.iter().all(|count| (800..1200).contains(count)),
            "{counts:?}"
        );
        assert_ne!(key_hash(b"a"), key_hash(b"b"));
        assert_ne!(key_hash(b""), key_hash(b"\0"));
        assert_eq!(shard_of(b"anything", 1), 0);
    }
}
