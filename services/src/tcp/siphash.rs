//! SipHash-2-4 (Aumasson and Bernstein), the keyed hash behind initial
//! sequence numbers (RFC 6528) and SYN cookies: an attacker who sees our
//! sequence numbers cannot predict the next connection's or forge a cookie.

/// A SipHash-2-4 key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SipKey(pub [u64; 2]);

/// One SipRound over the state.
#[inline(always)]
fn round(v: &mut [u64; 4]) {
    v[0] = v[0].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(13) ^ v[0];
    v[0] = v[0].rotate_left(32);
    v[2] = v[2].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(16) ^ v[2];
    v[0] = v[0].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(21) ^ v[0];
    v[2] = v[2].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(17) ^ v[2];
    v[2] = v[2].rotate_left(32);
}

impl SipKey {
    /// SipHash-2-4 of `bytes` under this key.
    pub fn hash(&self, bytes: &[u8]) -> u64 {
        let [k0, k1] = self.0;
        let mut v = [
            k0 ^ 0x736f_6d65_7073_6575,
            k1 ^ 0x646f_7261_6e64_6f6d,
            k0 ^ 0x6c79_6765_6e65_7261,
            k1 ^ 0x7465_6462_7974_6573,
        ];
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            let m = u64::from_le_bytes(word);
            v[3] ^= m;
            round(&mut v);
            round(&mut v);
            v[0] ^= m;
        }
        let rest = chunks.remainder();
        let mut last = [0u8; 8];
        last[..rest.len()].copy_from_slice(rest);
        last[7] = bytes.len() as u8;
        let m = u64::from_le_bytes(last);
        v[3] ^= m;
        round(&mut v);
        round(&mut v);
        v[0] ^= m;
        v[2] ^= 0xff;
        for _ in 0..4 {
            round(&mut v);
        }
        v[0] ^ v[1] ^ v[2] ^ v[3]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_reference_vectors() {
        // The paper's key 00 01 .. 0f and messages 00 01 .. (len - 1).
        let key = SipKey([0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908]);
        let message: alloc::vec::Vec<u8> = (0..64).collect();
        assert_eq!(key.hash(&message[..0]), 0x726f_db47_dd0e_0e31);
        assert_eq!(key.hash(&message[..1]), 0x74f8_39c5_93dc_67fd);
        assert_eq!(key.hash(&message[..8]), 0x93f5_f579_9a93_2462);
        assert_eq!(key.hash(&message[..15]), 0xa129_ca61_49be_45e5);
    }
}
