//! The restart policy: exponential backoff between restarts of a failing
//! service, reset after a healthy spell, and the per-batch time budget.

/// How failing services are restarted (the spec's `[supervision]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SupervisionPolicy {
    /// The wait before the first restart, in milliseconds (default 100).
    pub initial_backoff_ms: u32,
    /// The longest wait between restarts, in milliseconds (default 30 000):
    /// each failure in a row doubles the wait up to this.
    pub max_backoff_ms: u32,
    /// A service that ran this long without failing, in milliseconds
    /// (default 60 000), starts again from `initial_backoff_ms` when it
    /// fails next.
    pub reset_after_ms: u32,
    /// The longest one call of a service (one batch, or one tick) may
    /// take, in microseconds, or `None` (the default) for no budget. A
    /// call that took longer counts as a failure once it returns: a core
    /// runs its services to completion and cannot preempt one.
    pub batch_budget_us: Option<u32>,
}

impl Default for SupervisionPolicy {
    fn default() -> Self {
        Self {
            initial_backoff_ms: 100,
            max_backoff_ms: 30_000,
            reset_after_ms: 60_000,
            batch_budget_us: None,
        }
    }
}

impl SupervisionPolicy {
    /// The wait before restarting a service that has failed
    /// `failures_in_row` times in a row (1 for the first failure):
    /// `initial_backoff_ms` doubled per earlier failure, capped at
    /// `max_backoff_ms`; in nanoseconds.
    pub fn backoff_ns(&self, failures_in_row: u32) -> u64 {
        let doublings = failures_in_row.saturating_sub(1).min(63);
        let initial = u64::from(self.initial_backoff_ms);
        let wait_ms = initial
            .checked_shl(doublings)
            .filter(|wait| wait >> doublings == initial)
            .unwrap_or(u64::MAX)
            .min(u64::from(self.max_backoff_ms));
        wait_ms * 1_000_000
    }

    /// The budget in nanoseconds, if there is one.
    pub fn budget_ns(&self) -> Option<u64> {
        self.batch_budget_us.map(|us| u64::from(us) * 1_000)
    }

    /// The healthy spell after which the backoff starts over, in
    /// nanoseconds.
    pub fn reset_after_ns(&self) -> u64 {
        u64::from(self.reset_after_ms) * 1_000_000
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_100_ms_up_to_30_s() {
        let policy = SupervisionPolicy::default();
        let waits_ms: alloc::vec::Vec<u64> = (1..=12)
            .map(|failures| policy.backoff_ns(failures) / 1_000_000)
            .collect();
        assert_eq!(
            waits_ms,
            [
                100, 200, 400, 800, 1_600, 3_200, 6_400, 12_800, 25_600, 30_000, 30_000, 30_000
            ]
        );
        assert_eq!(policy.backoff_ns(0), 100_000_000);
        assert_eq!(policy.backoff_ns(u32::MAX), 30_000_000_000);
    }

    #[test]
    fn backoff_never_overflows() {
        let policy = SupervisionPolicy {
            initial_backoff_ms: u32::MAX,
            max_backoff_ms: u32::MAX,
            ..SupervisionPolicy::default()
        };
        for failures in [1, 2, 33, 64, 65, u32::MAX] {
            assert_eq!(policy.backoff_ns(failures), u64::from(u32::MAX) * 1_000_000);
        }
    }

    #[test]
    fn budget_and_reset_in_nanoseconds() {
        let policy = SupervisionPolicy {
            batch_budget_us: Some(250),
            ..SupervisionPolicy::default()
        };
        assert_eq!(policy.budget_ns(), Some(250_000));
        assert_eq!(SupervisionPolicy::default().budget_ns(), None);
        assert_eq!(policy.reset_after_ns(), 60_000_000_000);
    }
}
