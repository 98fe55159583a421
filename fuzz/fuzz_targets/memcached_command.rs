//! Fuzzes the memcached text protocol: every line of the input through
//! `parse_line`, and the input through a one-core kv app twice, whole and
//! cut at arbitrary points (as TCP segments would cut it): the answers
//! must be the same, and nothing may panic.
#![forbid(unsafe_code)]
#![no_main]

use libfuzzer_sys::fuzz_target;
use services::kv::command::{Line, find_line, parse_line};
use services::kv::harness::KvHarness;

/// Small limits, so that eviction and "too large" are reached.
const MEMORY_BYTES: usize = 16 * 1024;
const MAX_ITEM_BYTES: usize = 2048;

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    // The first byte seeds the cut points.
    let (seed, input) = (data[0], &data[1..]);

    let mut rest = input;
    while let Line::Complete { length, consumed } = find_line(rest) {
        let _ = parse_line(&rest[..length]);
        rest = &rest[consumed..];
    }

    let mut whole = KvHarness::new(MEMORY_BYTES, MAX_ITEM_BYTES);
    whole.feed(input);

    let mut cut = KvHarness::new(MEMORY_BYTES, MAX_ITEM_BYTES);
    let mut state = u32::from(seed) | 1;
    let mut at = 0;
    while at < input.len() {
        // xorshift: piece lengths from 1 to 64.
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let length = (state as usize % 64 + 1).min(input.len() - at);
        cut.feed(&input[at..at + length]);
        at += length;
    }
    assert_eq!(whole.output(), cut.output(), "answers depend on the cut");
    assert_eq!(whole.closed(), cut.closed());
});
