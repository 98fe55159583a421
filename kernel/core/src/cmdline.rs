//! The kernel command line: space-separated `key=value` options and bare
//! flags.

/// The value of `key=value` in `cmdline`, if present (the first one wins).
pub fn value<'a>(cmdline: &'a str, key: &str) -> Option<&'a str> {
    cmdline.split_ascii_whitespace().find_map(|word| {
        let (name, value) = word.split_once('=')?;
        (name == key).then_some(value)
    })
}

/// Parses a decimal or `0x`-prefixed hexadecimal number.
pub fn parse_u64(text: &str) -> Option<u64> {
    match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_and_numbers() {
        let line = "console=ttyS0 test=boot  messages=0x10 flag dma_mib=64 test=other";
        assert_eq!(value(line, "test"), Some("boot"));
        assert_eq!(value(line, "messages").and_then(parse_u64), Some(16));
        assert_eq!(value(line, "dma_mib").and_then(parse_u64), Some(64));
        assert_eq!(value(line, "flag"), None);
        assert_eq!(value(line, "missing"), None);
        assert_eq!(value("", "test"), None);
        assert_eq!(value("a==b", "a"), Some("=b"));
        for bad in ["", "0x", "0xg", "-1", "1e3", "18446744073709551616"] {
            assert_eq!(parse_u64(bad), None, "{bad}");
        }
        assert_eq!(parse_u64("0xffffffffffffffff"), Some(u64::MAX));
    }
}
