//! Kernel command line: space-separated `key=value` options and bare flags.

use spin::Once;

static CMDLINE: Once<&'static str> = Once::new();

/// Records the command line; later calls are ignored.
pub fn init(cmdline: &'static str) {
    CMDLINE.call_once(|| cmdline);
}

/// The whole command line.
pub fn all() -> &'static str {
    CMDLINE.get().copied().unwrap_or("")
}

/// The value of `key=value`, if present.
pub fn get(key: &str) -> Option<&'static str> {
    all().split_ascii_whitespace().find_map(|word| {
        let (name, value) = word.split_once('=')?;
        (name == key).then_some(value)
    })
}

/// Parses `key=<number>` (decimal or `0x` hex).
pub fn get_u64(key: &str) -> Option<u64> {
    parse_u64(get(key)?)
}

/// Parses a decimal or `0x`-prefixed hexadecimal number.
pub fn parse_u64(text: &str) -> Option<u64> {
    match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}
