//! kv unit tests: memcached's answers byte for byte through a stand-in
//! stack, the store's limits, and two shards wired with real rings.

mod commands;
mod limits;
mod shards;

use super::harness::KvHarness;

/// A connection to a fresh one-core app with 1 MiB of memory.
fn harness() -> KvHarness {
    KvHarness::new(1 << 20, 64 * 1024)
}

/// Sends `input` and returns the answer, as text for readable failures.
fn exchange(harness: &mut KvHarness, input: &str) -> alloc::string::String {
    harness.feed(input.as_bytes());
    alloc::string::String::from_utf8(harness.take_output()).unwrap()
}
