//! Numbers as ASCII without `core::fmt`: decimal for `Content-Length`,
//! hexadecimal for chunk sizes, written into a small array on the stack.

/// Digits of the largest `u64` in decimal (and more than in hexadecimal).
pub const MAX_DIGITS: usize = 20;

/// A number's digits, right-aligned in a fixed array.
#[derive(Debug, Clone, Copy)]
pub struct Digits {
    bytes: [u8; MAX_DIGITS],
    start: usize,
}

impl Digits {
    /// `value` in decimal.
    pub fn decimal(value: u64) -> Self {
        Self::in_radix::<10>(value)
    }

    /// `value` in lowercase hexadecimal.
    pub fn hexadecimal(value: u64) -> Self {
        Self::in_radix::<16>(value)
    }

    /// The radix is a constant, so that the divisions become multiplies
    /// and shifts (a `Content-Length` is formatted on every response).
    fn in_radix<const RADIX: u64>(mut value: u64) -> Self {
        let mut bytes = [b'0'; MAX_DIGITS];
        let mut start = MAX_DIGITS;
        loop {
            start -= 1;
            bytes[start] = b"0123456789abcdef"[(value % RADIX) as usize];
            value /= RADIX;
            if value == 0 {
                break;
            }
        }
        Self { bytes, start }
    }

    /// The digits.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[self.start..]
    }
}

/// Parses 1 to 19 decimal digits (no sign, no blanks).
pub fn parse_decimal(text: &[u8]) -> Option<u64> {
    if text.is_empty() || text.len() > 19 || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        text.iter()
            .fold(0, |total, digit| total * 10 + u64::from(digit - b'0')),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_and_hexadecimal() {
        assert_eq!(Digits::decimal(0).as_bytes(), b"0");
        assert_eq!(Digits::decimal(10_485_760).as_bytes(), b"10485760");
        assert_eq!(
            Digits::decimal(u64::MAX).as_bytes(),
            b"18446744073709551615"
        );
        assert_eq!(Digits::hexadecimal(0).as_bytes(), b"0");
        assert_eq!(Digits::hexadecimal(0x4000).as_bytes(), b"4000");
        assert_eq!(
            Digits::hexadecimal(u64::MAX).as_bytes(),
            b"ffffffffffffffff"
        );
    }

    #[test]
    fn parsing() {
        assert_eq!(parse_decimal(b"0"), Some(0));
        assert_eq!(
            parse_decimal(b"9999999999999999999"),
            Some(9_999_999_999_999_999_999)
        );
        for bad in [
            &b""[..],
            b"-1",
            b"+1",
            b" 1",
            b"1a",
            b"10000000000000000000",
        ] {
            assert_eq!(parse_decimal(bad), None);
        }
    }
}
