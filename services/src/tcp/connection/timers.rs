//! A connection's timers: retransmission with backoff (RFC 6298 5), tail
//! loss probes (RFC 8985 7), zero-window probes, the app's timer and
//! FIN-WAIT-2's limit.

use super::*;

impl Connection {
    /// The connection's timers: retransmission, probe, the app's timer,
    /// FIN-WAIT-2's limit.
    pub fn on_timer(
        &mut self,
        now_ms: u64,
        now_ns: u64,
        config: &TcpConfig,
        app: &mut dyn Listener,
        sink: &mut dyn SegmentSink,
        tally: &mut Tally,
    ) -> Outcome {
        if self.linger_deadline_ms != 0 && self.linger_deadline_ms <= now_ms {
            self.linger_deadline_ms = 0;
            if self.state == State::FinWait2 {
                tally.bump(TcpEvent::TimedOut);
                return Outcome::Ended(CloseReason::TimedOut);
            }
        }
        if self.app_deadline_ms != 0 && self.app_deadline_ms <= now_ms {
            self.app_deadline_ms = 0;
            if self.accepted {
                self.call_app(app, now_ns, |app, slot, stream| app.timeout(slot, stream));
                if self.aborted() {
                    return Outcome::Ended(CloseReason::Aborted);
                }
            }
        }
        if self.rto_deadline_ms != 0 && self.rto_deadline_ms <= now_ms {
            self.rto_deadline_ms = 0;
            self.probe_deadline_ms = 0;
            return self.on_retransmission_timeout(now_ms, config, sink, tally);
        }
        if self.probe_deadline_ms != 0 && self.probe_deadline_ms <= now_ms {
            self.probe_deadline_ms = 0;
            self.send_tail_loss_probe(now_ms, config, sink, tally);
        }
        Outcome::Open
    }

    /// A tail loss probe (RFC 8985 7.3): with data in flight and no ACK
    /// for a probe timeout, the last segment goes again, so that an ACK
    /// (with SACK blocks) comes back and recovery can start without
    /// waiting for the retransmission timeout. One per flight.
    fn send_tail_loss_probe(
        &mut self,
        now_ms: u64,
        config: &TcpConfig,
        sink: &mut dyn SegmentSink,
        tally: &mut Tally,
    ) {
        if self.snd_max == self.snd_una || self.in_recovery || self.snd_nxt != self.snd_max {
            return;
        }
        let in_flight_data = ((self.snd_max - self.snd_una) as usize).min(self.send.len());
        if in_flight_data == 0 {
            // Only our FIN is out: send it again.
            self.retransmit_first(now_ms, config, sink, tally);
        } else {
            let length = in_flight_data.min(self.payload_room());
            let seq = self.snd_una + (in_flight_data - length);
            let segment = Outgoing {
                seq,
                ack: self.rcv_nxt,
                flags: TcpFlags::ACK | TcpFlags::PSH,
                window: self.window_field(config, false),
                options: self.options(now_ms),
                payload_offset: in_flight_data - length,
                payload_len: length,
            };
            self.timed = None;
            self.transmit(&segment, sink, tally);
        }
        tally.bump(TcpEvent::TailLossProbes);
    }

    /// RFC 6298 5.4-5.7 (and RFC 5681 3.1 for the window): back off, go
    /// back to the oldest unacknowledged byte, start again from one segment.
    pub(super) fn on_retransmission_timeout(
        &mut self,
        now_ms: u64,
        config: &TcpConfig,
        sink: &mut dyn SegmentSink,
        tally: &mut Tally,
    ) -> Outcome {
        self.retries += 1;
        let limit = if matches!(self.state, State::SynReceived | State::SynSent) {
            config.syn_ack_retries
        } else {
            config.max_retransmissions
        };
        if self.retries > limit {
            tally.bump(TcpEvent::TimedOut);
            return Outcome::Ended(CloseReason::TimedOut);
        }
        tally.bump(TcpEvent::Timeouts);
        self.rtt.back_off(config);
        if self.state == State::SynSent {
            tally.bump(TcpEvent::Retransmits);
            self.rto_deadline_ms = 0;
            self.send_syn(now_ms, config, sink, tally);
            return Outcome::Open;
        }
        if self.state == State::SynReceived {
            tally.bump(TcpEvent::Retransmits);
            self.send_syn_ack(now_ms, config, sink, tally);
            self.rto_deadline_ms = now_ms + self.rtt.timeout_ms();
            return Outcome::Open;
        }
        if self.snd_max == self.snd_una {
            // Nothing in flight: the timer was a window probe.
            if !self.send.is_empty() && self.snd_wnd == 0 {
                tally.bump(TcpEvent::WindowProbes);
                let probe = Outgoing {
                    seq: self.snd_una + u32::MAX, // snd_una - 1: elicits an ACK
                    ack: self.rcv_nxt,
                    flags: TcpFlags::ACK,
                    window: self.window_field(config, false),
                    options: self.options(now_ms),
                    payload_offset: 0,
                    payload_len: 0,
                };
                self.transmit(&probe, sink, tally);
                self.rto_deadline_ms = now_ms + self.rtt.timeout_ms();
            }
            return Outcome::Open;
        }
        let mss = u32::from(self.mss);
        let flight = self.snd_max - self.snd_una;
        self.ssthresh = (flight / 2).max(2 * mss);
        self.cwnd = mss;
        self.in_recovery = false;
        self.recover = self.snd_max;
        self.duplicate_acks = 0;
        self.snd_nxt = self.snd_una;
        // Go back to the oldest byte: what the peer SACKed may be reneged
        // (RFC 2018 8), so it is sent again too.
        self.sacked.clear();
        self.timed = None;
        tally.bump(TcpEvent::Retransmits);
        self.output(now_ms, config, sink, tally);
        if self.rto_deadline_ms == 0 {
            self.rto_deadline_ms = now_ms + self.rtt.timeout_ms();
        }
        Outcome::Open
    }
}
