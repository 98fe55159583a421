//! Reading the config text the examples share: rules separated by `;` or
//! newlines, words by spaces or tabs; numbers in decimal, addresses as
//! `a.b.c.d` or `a.b.c.d/len`, and `any` for a wildcard.

/// The rules of a config text (empty ones left out).
pub fn rules(config: &[u8]) -> impl Iterator<Item = &[u8]> {
    config
        .split(|&byte| byte == b';' || byte == b'\n')
        .filter(|rule| words(rule).next().is_some())
}

/// The words of a rule.
pub fn words(rule: &[u8]) -> impl Iterator<Item = &[u8]> {
    rule.split(|&byte| byte == b' ' || byte == b'\t' || byte == b'\r')
        .filter(|word| !word.is_empty())
}

/// A decimal number no larger than `max`.
pub fn number(word: &[u8], max: u32) -> Option<u32> {
    if word.is_empty() || word.len() > 10 {
        return None;
    }
    let mut value: u64 = 0;
    for &byte in word {
        if !byte.is_ascii_digit() {
            return None;
        }
        value = value * 10 + u64::from(byte - b'0');
    }
    (value <= u64::from(max)).then_some(value as u32)
}

/// A port or `any`: `Some(None)` for `any`.
pub fn port(word: &[u8]) -> Option<Option<u16>> {
    match word {
        b"any" => Some(None),
        _ => number(word, 65535).map(|port| Some(port as u16)),
    }
}

/// An IP protocol (`tcp`, `udp`, `icmp` or a number) or `any`: `Some(None)` for `any`.
pub fn protocol(word: &[u8]) -> Option<Option<u8>> {
    match word {
        b"any" => Some(None),
        b"tcp" => Some(Some(6)),
        b"udp" => Some(Some(17)),
        b"icmp" => Some(Some(1)),
        _ => number(word, 255).map(|protocol| Some(protocol as u8)),
    }
}

/// An address prefix as `(address, mask)`: `a.b.c.d` is a /32, `any` is `(0, 0)`.
pub fn prefix(word: &[u8]) -> Option<(u32, u32)> {
    if word == b"any" {
        return Some((0, 0));
    }
    let (address, length) = match word.iter().position(|&byte| byte == b'/') {
        Some(slash) => (&word[..slash], number(&word[slash + 1..], 32)?),
        None => (word, 32),
    };
    let mut value: u32 = 0;
    let mut octets = 0;
    for octet in address.split(|&byte| byte == b'.') {
        value = (value << 8) | number(octet, 255)?;
        octets += 1;
    }
    if octets != 4 {
        return None;
    }
    let mask = if length == 0 {
        0
    } else {
        u32::MAX << (32 - length)
    };
    Some((value & mask, mask))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rules_words_and_values() {
        let config = b"drop udp any any 10.0.0.0/8 9;\n pass tcp 1.2.3.4 80 any any ;";
        let all: Vec<Vec<&[u8]>> = rules(config).map(|rule| words(rule).collect()).collect();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0][4], b"10.0.0.0/8");
        assert_eq!(prefix(b"10.1.2.3/8"), Some((0x0a00_0000, 0xff00_0000)));
        assert_eq!(prefix(b"1.2.3.4"), Some((0x0102_0304, u32::MAX)));
        assert_eq!(prefix(b"any"), Some((0, 0)));
        assert_eq!(prefix(b"0.0.0.0/0"), Some((0, 0)));
        assert_eq!(prefix(b"1.2.3"), None);
        assert_eq!(prefix(b"1.2.3.256"), None);
        assert_eq!(prefix(b"1.2.3.4/33"), None);
        assert_eq!(port(b"65536"), None);
        assert_eq!(port(b"any"), Some(None));
        assert_eq!(protocol(b"udp"), Some(Some(17)));
        assert_eq!(number(b"", 5), None);
        assert_eq!(number(b"99999999999", u32::MAX), None);
    }
}
