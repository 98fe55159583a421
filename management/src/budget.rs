//! `RequestBudget`: how many requests the management app answers per
//! second, so that a client hammering the API cannot take the core from
//! the data path it shares (the app runs on a data-path core, core 0 by
//! default). A token bucket: a request beyond it is not refused, it waits
//! (its connection's own timer retries it), and its client waits with it;
//! requests queue in the TCP buffers and the receive window closes.
//!
//! The default, 1000 requests per second in bursts of 100, is far beyond
//! what scrapers, status pages and operators ask (a Prometheus scrape
//! every few seconds), and costs the core about 2 % (a `/metrics` scrape
//! takes about 21 µs hosted; `perf/RESULTS.md`, issue 14).

/// Requests answered per second, sustained.
pub const REQUESTS_PER_SECOND: u32 = 1000;
/// Requests answered at once after a quiet spell.
pub const REQUEST_BURST: u32 = 100;

const NS_PER_SECOND: u64 = 1_000_000_000;

/// A token bucket of requests, with a count of the connections waiting
/// for it (so that their retries are spread out rather than all firing
/// every millisecond).
#[derive(Debug, Clone)]
pub struct RequestBudget {
    per_second: u64,
    burst: u64,
    /// Tokens, in billionths (a token is `NS_PER_SECOND` of these, so a
    /// nanosecond refills `per_second` of them).
    tokens: u64,
    last_ns: Option<u64>,
    waiting: u32,
}

impl RequestBudget {
    /// `per_second` requests a second in bursts of `burst` (both at
    /// least 1), the bucket full.
    pub fn new(per_second: u32, burst: u32) -> Self {
        let burst = u64::from(burst.max(1));
        Self {
            per_second: u64::from(per_second.max(1)),
            burst,
            tokens: burst * NS_PER_SECOND,
            last_ns: None,
            waiting: 0,
        }
    }

    /// Connections waiting for a token now.
    pub fn waiting(&self) -> u32 {
        self.waiting
    }

    fn refill(&mut self, now_ns: u64) {
        let elapsed = now_ns.saturating_sub(self.last_ns.unwrap_or(now_ns));
        self.last_ns = Some(now_ns.max(self.last_ns.unwrap_or(0)));
        self.tokens = self
            .tokens
            .saturating_add(elapsed.saturating_mul(self.per_second))
            .min(self.burst * NS_PER_SECOND);
    }

    /// Takes a token for one request at `now_ns`; `was_waiting` says the
    /// connection was counted as waiting (it is no longer, either way).
    /// Without a token: how long this connection should wait before it
    /// tries again (its turn behind the others waiting), and it is counted
    /// as waiting until it tries again or goes ([`Self::leave`]).
    pub fn take(&mut self, now_ns: u64, was_waiting: bool) -> Result<(), u64> {
        self.refill(now_ns);
        if was_waiting {
            self.waiting = self.waiting.saturating_sub(1);
        }
        if self.tokens >= NS_PER_SECOND {
            self.tokens -= NS_PER_SECOND;
            return Ok(());
        }
        let until_one = (NS_PER_SECOND - self.tokens).div_ceil(self.per_second);
        let turn = NS_PER_SECOND / self.per_second * u64::from(self.waiting);
        self.waiting += 1;
        Err(until_one + turn)
    }

    /// A waiting connection went away.
    pub fn leave(&mut self) {
        self.waiting = self.waiting.saturating_sub(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn a_burst_then_the_rate() {
        let mut budget = RequestBudget::new(1000, 3);
        for _ in 0..3 {
            assert_eq!(budget.take(0, false), Ok(()));
        }
        assert_eq!(budget.take(0, false), Err(MS));
        assert_eq!(budget.waiting(), 1);
        // A second waiter queues behind the first.
        assert_eq!(budget.take(0, false), Err(2 * MS));
        assert_eq!(budget.take(MS / 2, true), Err(MS / 2 + MS));
        assert_eq!(budget.take(MS, true), Ok(()));
        assert_eq!(budget.waiting(), 1);
        budget.leave();
        assert_eq!(budget.waiting(), 0);
        // A quiet second refills the burst, no more.
        for _ in 0..3 {
            assert_eq!(budget.take(5_000 * MS, false), Ok(()));
        }
        assert!(budget.take(5_000 * MS, false).is_err());
    }

    #[test]
    fn a_clock_that_goes_back_or_jumps_far_does_no_harm() {
        let mut budget = RequestBudget::new(u32::MAX, u32::MAX);
        assert_eq!(budget.take(u64::MAX, false), Ok(()));
        assert_eq!(budget.take(0, false), Ok(()));
        let mut slow = RequestBudget::new(0, 0);
        assert_eq!(slow.take(10, false), Ok(()));
        assert_eq!(slow.take(10, false), Err(NS_PER_SECOND));
        assert_eq!(slow.take(10 + NS_PER_SECOND, true), Ok(()));
    }
}
