//! `RttEstimator`: the smoothed round-trip time and the retransmission
//! timeout it gives (RFC 6298 2, in milliseconds).

use super::config::TcpConfig;

/// RFC 8985's `WCDelAckT`: how long a receiver may delay an ACK at worst
/// (RFC 9293 3.8.6.3 allows up to 500 ms; RFC 8985 7.2 recommends 200 ms,
/// Linux's `TCP_DELACK_MAX`).
pub const WORST_CASE_DELAYED_ACK_MS: u64 = 200;

/// Smoothed RTT, its variation and the current timeout.
#[derive(Debug, Clone, Copy)]
pub struct RttEstimator {
    /// Smoothed RTT; `None` before the first sample.
    smoothed_ms: Option<u64>,
    /// RTT variation.
    variation_ms: u64,
    /// The retransmission timeout now (backed off after timeouts).
    timeout_ms: u64,
}

impl RttEstimator {
    /// Before any sample: the initial timeout (RFC 6298 2.1).
    pub fn new(config: &TcpConfig) -> Self {
        Self {
            smoothed_ms: None,
            variation_ms: 0,
            timeout_ms: config.rto_initial_ms,
        }
    }

    /// The retransmission timeout.
    pub fn timeout_ms(&self) -> u64 {
        self.timeout_ms
    }

    /// The probe timeout of a tail loss probe (RFC 8985 7.2): twice the
    /// smoothed RTT, at least 10 ms, and before the retransmission
    /// timeout; the timeout itself before the first sample. With one
    /// segment in flight (`one_segment`) the peer may be holding its ACK
    /// back for a second segment that never comes (delayed ACK), so the
    /// worst case of that wait is added ([`WORST_CASE_DELAYED_ACK_MS`]),
    /// which leaves the retransmission timeout as the bound: a probe
    /// sooner would resend a reply that is not lost, and its timer would
    /// wake an idle core for every request-response exchange.
    pub fn probe_timeout_ms(&self, one_segment: bool) -> u64 {
        match self.smoothed_ms {
            Some(smoothed) if one_segment => {
                (2 * smoothed + WORST_CASE_DELAYED_ACK_MS).min(self.timeout_ms)
            }
            Some(smoothed) => (2 * smoothed).max(10).min(self.timeout_ms),
            None => self.timeout_ms,
        }
    }

    /// Takes an RTT measurement (RFC 6298 2.2, 2.3; clock granularity 1 ms).
    pub fn sample(&mut self, rtt_ms: u64, config: &TcpConfig) {
        match self.smoothed_ms {
            None => {
                self.smoothed_ms = Some(rtt_ms);
                self.variation_ms = rtt_ms / 2;
            }
            Some(smoothed) => {
                let error = smoothed.abs_diff(rtt_ms);
                self.variation_ms = (3 * self.variation_ms + error) / 4;
                self.smoothed_ms = Some((7 * smoothed + rtt_ms) / 8);
            }
        }
        let smoothed = self.smoothed_ms.unwrap_or(rtt_ms);
        self.timeout_ms =
            (smoothed + (4 * self.variation_ms).max(1)).clamp(config.rto_min_ms, config.rto_max_ms);
    }

    /// Doubles the timeout after it expired (RFC 6298 5.5).
    pub fn back_off(&mut self, config: &TcpConfig) {
        self.timeout_ms = (self.timeout_ms * 2).min(config.rto_max_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_rfc_6298() {
        let config = TcpConfig::default();
        let mut rtt = RttEstimator::new(&config);
        assert_eq!(rtt.timeout_ms(), 1000);
        rtt.sample(100, &config);
        // SRTT 100, RTTVAR 50: RTO = 100 + 200.
        assert_eq!(rtt.timeout_ms(), 300);
        rtt.sample(100, &config);
        // RTTVAR 37, SRTT 100: 248.
        assert_eq!(rtt.timeout_ms(), 248);
        rtt.sample(1, &config);
        assert!(rtt.timeout_ms() >= config.rto_min_ms);
        rtt.back_off(&config);
        assert_eq!(rtt.timeout_ms(), 2 * 200.max(rtt.timeout_ms() / 2));
        for _ in 0..20 {
            rtt.back_off(&config);
        }
        assert_eq!(rtt.timeout_ms(), config.rto_max_ms);
    }

    #[test]
    fn a_lone_segment_waits_out_a_delayed_ack_before_its_probe() {
        let config = TcpConfig::default();
        let mut rtt = RttEstimator::new(&config);
        // Before a sample: the retransmission timeout, one segment or many.
        assert_eq!(rtt.probe_timeout_ms(true), 1000);
        assert_eq!(rtt.probe_timeout_ms(false), 1000);
        rtt.sample(4, &config);
        // SRTT 4, RTO 200: many segments are probed after 10 ms (2 SRTT,
        // at least 10), a lone one not before the RTO (2 SRTT + 200 ms).
        assert_eq!(rtt.timeout_ms(), 200);
        assert_eq!(rtt.probe_timeout_ms(false), 10);
        assert_eq!(rtt.probe_timeout_ms(true), 200);
        for _ in 0..8 {
            rtt.sample(100, &config);
        }
        // A long RTT: 2 SRTT beats the 10 ms floor, and still comes
        // before the RTO for many segments.
        assert!(rtt.probe_timeout_ms(false) < rtt.timeout_ms());
        assert_eq!(rtt.probe_timeout_ms(true), rtt.timeout_ms());
    }
}
