//! The `pattern` generator: `n` deterministic bytes that a test can
//! recompute to check a download, without storing them anywhere.
//!
//! Byte `i` (counting from 0) is `(7 * i + i / 251) mod 256`. The `i / 251`
//! term shifts the period-256 sequence every 251 bytes, so a dropped,
//! repeated or reordered segment changes the digest. In Python:
//!
//! ```text
//! bytes((7 * i + i // 251) % 256 for i in range(n))
//! ```

/// Byte `index` of the pattern.
pub const fn byte(index: u64) -> u8 {
    (index.wrapping_mul(7).wrapping_add(index / 251)) as u8
}

/// Fills `out` with the pattern's bytes from `start` on.
pub fn fill(start: u64, out: &mut [u8]) {
    for (offset, slot) in out.iter_mut().enumerate() {
        *slot = byte(start + offset as u64);
    }
}

/// Longest pattern a request may ask for (`/bytes?n=`): 1 TiB.
pub const MAX_LENGTH: u64 = 1 << 40;

/// Length of a pattern when the query does not say.
pub const DEFAULT_LENGTH: u64 = 1024;

/// The length a query asks for: `n=<decimal>` among `&`-separated
/// parameters, [`DEFAULT_LENGTH`] without one; `None` when `n` is not a
/// number up to [`MAX_LENGTH`].
pub fn requested_length(query: &[u8]) -> Option<u64> {
    let mut length = DEFAULT_LENGTH;
    for parameter in query.split(|byte| *byte == b'&') {
        if let Some(value) = parameter.strip_prefix(b"n=") {
            length = super::decimal::parse_decimal(value).filter(|n| *n <= MAX_LENGTH)?;
        }
    }
    Some(length)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_bytes() {
        let mut out = [0u8; 6];
        fill(249, &mut out);
        // 7*249 = 1743 -> 207, +0; 7*251 = 1757 -> 221, +1 -> 222.
        assert_eq!(out, [207, 214, 222, 229, 236, 243]);
        assert_eq!(byte(0), 0);
    }

    #[test]
    fn queries() {
        assert_eq!(requested_length(b""), Some(DEFAULT_LENGTH));
        assert_eq!(requested_length(b"n=10485760"), Some(10_485_760));
        assert_eq!(requested_length(b"x=1&n=0"), Some(0));
        assert_eq!(requested_length(b"n=abc"), None);
        assert_eq!(requested_length(b"n=1099511627777"), None);
    }
}
