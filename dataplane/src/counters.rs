//! Per-core counters: plain integers that one core writes and anyone may read.

use core::sync::atomic::{AtomicU64, Ordering};

/// A counter written by exactly one core and read by any.
///
/// `add` is a relaxed load and a relaxed store, not a read-modify-write: on
/// x86 it compiles to the same `add` as a plain integer, and readers on other
/// cores see a value that was true at some point. Sum several cores' counters
/// when reading.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// A counter at zero.
    pub const fn new() -> Self {
        Self(AtomicU64::new(0))
    }

    /// Adds `n`. Only the owning core may call this.
    #[inline]
    pub fn add(&self, n: u64) {
        // Ordering: single writer; Relaxed keeps it a plain load and store.
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }

    /// Adds one. Only the owning core may call this.
    #[inline]
    pub fn increment(&self) {
        self.add(1);
    }

    /// Replaces the value (a gauge, like a core's halt-polling window).
    /// Only the owning core may call this.
    #[inline]
    pub fn set(&self, value: u64) {
        // Ordering: single writer; a statistic no other memory depends on.
        self.0.store(value, Ordering::Relaxed);
    }

    /// The current value, readable from any core.
    #[inline]
    pub fn get(&self) -> u64 {
        // Ordering: a statistic; no other memory depends on it.
        self.0.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_and_reads() {
        let counter = Counter::new();
        counter.increment();
        counter.add(41);
        assert_eq!(counter.get(), 42);
    }
}
