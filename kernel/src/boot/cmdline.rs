//! Kernel command line: space-separated `key=value` options and bare flags,
//! recorded once at boot and parsed by `kernel-core`.

use spin::Once;

pub use kernel_core::cmdline::parse_u64;

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
    kernel_core::cmdline::value(all(), key)
}

/// Parses `key=<number>` (decimal or `0x` hex).
pub fn get_u64(key: &str) -> Option<u64> {
    parse_u64(get(key)?)
}
