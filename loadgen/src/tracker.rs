//! Matching replies to probes: loss, duplicates, reordering and round-trip
//! latency for one run.

use crate::frame::Reply;
use hdrhistogram::Histogram;
use std::collections::VecDeque;

/// What one reply turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKind {
    /// First reply for a probe we sent, in order.
    Fresh,
    /// First reply for a probe, but after a later probe's reply.
    Reordered,
    /// A second (or later) reply for the same probe.
    Duplicate,
    /// Another run's probe, or a sequence number we never sent.
    Foreign,
}

/// Bookkeeping for one run.
pub struct Tracker {
    run_id: u32,
    sent: u64,
    received_bits: Vec<u64>,
    received: u64,
    duplicates: u64,
    reordered: u64,
    foreign: u64,
    highest_seen: Option<u64>,
    latency: Histogram<u64>,
    /// Probes not yet answered or expired, oldest first: (sequence, sent_ns).
    outstanding: VecDeque<(u64, u64)>,
    /// Probes below this sequence have left `outstanding`.
    settled_below: u64,
    /// Probes in `outstanding` that are neither answered nor expired.
    in_flight: u64,
}

impl Tracker {
    /// A tracker for run `run_id`.
    pub fn new(run_id: u32) -> Self {
        Self {
            run_id,
            sent: 0,
            received_bits: Vec::new(),
            received: 0,
            duplicates: 0,
            reordered: 0,
            foreign: 0,
            highest_seen: None,
            // 1 ns to 100 s at three significant figures.
            latency: Histogram::new_with_bounds(1, 100_000_000_000, 3)
                .expect("constant histogram bounds are valid"),
            outstanding: VecDeque::new(),
            settled_below: 0,
            in_flight: 0,
        }
    }

    /// This run's id.
    pub fn run_id(&self) -> u32 {
        self.run_id
    }

    /// Books the next probe as sent at `now_ns` and returns its sequence number.
    pub fn next_sent(&mut self, now_ns: u64) -> u64 {
        let sequence = self.sent;
        self.sent += 1;
        if self.received_bits.len() * 64 < self.sent as usize {
            self.received_bits.push(0);
        }
        self.outstanding.push_back((sequence, now_ns));
        self.in_flight += 1;
        sequence
    }

    /// Books a reply received at `now_ns`.
    pub fn on_reply(&mut self, reply: &Reply, now_ns: u64) -> ReplyKind {
        let probe = reply.probe;
        if probe.run_id != self.run_id || probe.sequence >= self.sent {
            self.foreign += 1;
            return ReplyKind::Foreign;
        }
        let word = (probe.sequence / 64) as usize;
        let bit = 1u64 << (probe.sequence % 64);
        if self.received_bits[word] & bit != 0 {
            self.duplicates += 1;
            return ReplyKind::Duplicate;
        }
        self.received_bits[word] |= bit;
        self.received += 1;
        if probe.sequence >= self.settled_below {
            // Still waited for (not expired): it leaves the window now.
            self.in_flight -= 1;
        }
        let _ = self
            .latency
            .record(now_ns.saturating_sub(probe.sent_ns).max(1));
        match self.highest_seen {
            Some(highest) if probe.sequence < highest => {
                self.reordered += 1;
                ReplyKind::Reordered
            }
            _ => {
                self.highest_seen = Some(probe.sequence);
                ReplyKind::Fresh
            }
        }
    }

    fn is_received(&self, sequence: u64) -> bool {
        self.received_bits[(sequence / 64) as usize] & (1 << (sequence % 64)) != 0
    }

    /// Probes sent but neither answered nor older than `timeout_ns`: the
    /// closed-loop window counts these.
    pub fn in_flight(&mut self, now_ns: u64, timeout_ns: u64) -> u64 {
        while let Some(&(sequence, sent_ns)) = self.outstanding.front() {
            if self.is_received(sequence) {
                self.outstanding.pop_front();
            } else if now_ns.saturating_sub(sent_ns) >= timeout_ns {
                self.in_flight -= 1;
                self.outstanding.pop_front();
            } else {
                break;
            }
            self.settled_below = sequence + 1;
        }
        self.in_flight
    }

    /// Probes sent so far.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Distinct probes answered so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// The run's figures.
    pub fn summary(&self) -> Summary {
        let quantile = |q: f64| {
            if self.latency.is_empty() {
                None
            } else {
                Some(self.latency.value_at_quantile(q))
            }
        };
        let lost = self.sent - self.received;
        Summary {
            sent: self.sent,
            received: self.received,
            lost,
            loss_percent: if self.sent == 0 {
                0.0
            } else {
                lost as f64 * 100.0 / self.sent as f64
            },
            duplicates: self.duplicates,
            reordered: self.reordered,
            foreign: self.foreign,
            latency_p50_ns: quantile(0.5),
            latency_p90_ns: quantile(0.9),
            latency_p99_ns: quantile(0.99),
            latency_p999_ns: quantile(0.999),
            latency_max_ns: (!self.latency.is_empty()).then(|| self.latency.max()),
        }
    }

    /// Latency percentiles from 0 to 100 in `steps`, for CDF plots: (percent, ns).
    pub fn latency_cdf(&self, steps: u32) -> Vec<(f64, u64)> {
        if self.latency.is_empty() {
            return Vec::new();
        }
        (0..=steps)
            .map(|step| {
                let quantile = f64::from(step) / f64::from(steps);
                (quantile * 100.0, self.latency.value_at_quantile(quantile))
            })
            .collect()
    }
}

/// Counts and latency percentiles of a finished run.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    /// Probes sent.
    pub sent: u64,
    /// Distinct probes answered.
    pub received: u64,
    /// Probes never answered.
    pub lost: u64,
    /// `lost` as a percentage of `sent`.
    pub loss_percent: f64,
    /// Extra replies for already-answered probes.
    pub duplicates: u64,
    /// Replies that arrived after a later probe's reply.
    pub reordered: u64,
    /// Replies from another run or with a sequence never sent.
    pub foreign: u64,
    /// Median round-trip time.
    pub latency_p50_ns: Option<u64>,
    /// 90th percentile round-trip time.
    pub latency_p90_ns: Option<u64>,
    /// 99th percentile round-trip time.
    pub latency_p99_ns: Option<u64>,
    /// 99.9th percentile round-trip time.
    pub latency_p999_ns: Option<u64>,
    /// Slowest round trip.
    pub latency_max_ns: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::Probe;

    fn reply(run_id: u32, sequence: u64, sent_ns: u64) -> Reply {
        Reply {
            probe: Probe {
                run_id,
                sequence,
                sent_ns,
            },
            flow: 0,
        }
    }

    /// A scripted reflector: answers 0..10 except 3 and 7, answers 5 twice,
    /// answers 2 after 4, and sends one stale reply from another run.
    #[test]
    fn scripted_reflector_accounting() {
        let mut tracker = Tracker::new(9);
        for i in 0..10 {
            assert_eq!(tracker.next_sent(i * 1000), i);
        }
        let script = [0, 1, 4, 2, 5, 5, 6, 8, 9];
        let kinds: Vec<ReplyKind> = script
            .iter()
            .map(|&sequence| {
                tracker.on_reply(&reply(9, sequence, sequence * 1000), sequence * 1000 + 500)
            })
            .collect();
        use ReplyKind::*;
        assert_eq!(
            kinds,
            [
                Fresh, Fresh, Fresh, Reordered, Fresh, Duplicate, Fresh, Fresh, Fresh
            ]
        );
        assert_eq!(tracker.on_reply(&reply(8, 1, 0), 0), Foreign);
        assert_eq!(tracker.on_reply(&reply(9, 10, 0), 0), Foreign);
        let summary = tracker.summary();
        assert_eq!((summary.sent, summary.received, summary.lost), (10, 8, 2));
        assert_eq!(
            (summary.duplicates, summary.reordered, summary.foreign),
            (1, 1, 2)
        );
        assert!((summary.loss_percent - 20.0).abs() < 1e-9);
        // Every answered probe took 500 ns.
        let p50 = summary.latency_p50_ns.unwrap();
        assert!((499..=501).contains(&p50), "{p50}");
        assert_eq!(
            summary.latency_max_ns.map(|max| (499..=501).contains(&max)),
            Some(true)
        );
    }

    #[test]
    fn window_shrinks_on_replies_and_expiry() {
        let mut tracker = Tracker::new(1);
        for _ in 0..4 {
            tracker.next_sent(0);
        }
        assert_eq!(tracker.in_flight(10, 1_000), 4);
        tracker.on_reply(&reply(1, 1, 0), 20);
        assert_eq!(tracker.in_flight(30, 1_000), 3);
        // 0, 2 and 3 time out; a late reply for 0 does not shrink it again.
        assert_eq!(tracker.in_flight(5_000, 1_000), 0);
        tracker.on_reply(&reply(1, 0, 0), 6_000);
        assert_eq!(tracker.in_flight(6_000, 1_000), 0);
        tracker.next_sent(7_000);
        assert_eq!(tracker.in_flight(7_000, 1_000), 1);
        assert_eq!(tracker.summary().received, 2);
    }

    #[test]
    fn empty_run_has_no_latency() {
        let summary = Tracker::new(1).summary();
        assert_eq!(summary.latency_p50_ns, None);
        assert_eq!(summary.loss_percent, 0.0);
    }
}
