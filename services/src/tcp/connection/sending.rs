//! The sending side of a connection: what an ACK acknowledges, the peer's
//! window, congestion control (Reno with NewReno recovery, RFC 5681 and
//! 6582; limited transmit, RFC 3042), fast retransmit, and `output`, which
//! sends what the windows allow.

use super::*;

impl Connection {
    /// ACK processing: what the peer acknowledged, its window, congestion
    /// control, our FIN. `Some` when the segment ends here.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_ack(
        &mut self,
        segment: &Incoming<'_>,
        now_ms: u64,
        config: &TcpConfig,
        app: &mut dyn Listener,
        now_ns: u64,
        sink: &mut dyn SegmentSink,
        tally: &mut Tally,
    ) -> Option<Outcome> {
        let ack = segment.ack;
        if ack > self.snd_max {
            // Acknowledges what we never sent (RFC 9293: ACK and drop).
            self.ack_pending = true;
            return Some(Outcome::Dropped(TcpDrop::BadAck));
        }
        let window = u32::from(segment.window) << self.snd_scale;
        if self.sack {
            self.take_sack_blocks(&segment.options.sack_blocks);
        }
        if ack > self.snd_una {
            let acked = ack - self.snd_una;
            self.on_new_ack(ack, acked, now_ms, config, sink, tally);
        } else if ack == self.snd_una
            && segment.payload.is_empty()
            && !segment.flags.contains(TcpFlags::FIN)
            && window == self.snd_wnd
            && self.snd_max > self.snd_una
        {
            self.on_duplicate_ack(now_ms, config, sink, tally);
        }
        if self.sack && !self.sacked.is_empty() {
            self.recover_with_sack(now_ms, config, sink, tally);
        }
        // Window update (RFC 9293 3.10.7.4, SND.WL1/WL2).
        if self.snd_wl1 < segment.seq || (self.snd_wl1 == segment.seq && self.snd_wl2 <= ack) {
            self.snd_wnd = window;
            self.snd_wl1 = segment.seq;
            self.snd_wl2 = ack;
        }
        let fin_acked = self.fin_seq.is_some_and(|fin| ack > fin);
        match self.state {
            State::FinWait1 if fin_acked => {
                self.state = State::FinWait2;
                self.linger_deadline_ms = now_ms + config.fin_wait2_ms;
            }
            State::Closing if fin_acked => {
                self.state = State::TimeWait;
                return Some(Outcome::TimeWait);
            }
            State::LastAck if fin_acked => {
                self.state = State::Closed;
                tally.bump(TcpEvent::Closed);
                return Some(Outcome::Ended(CloseReason::Closed));
            }
            _ => {}
        }
        if self.want_writable && self.send.free() > 0 && self.accepted {
            self.want_writable = false;
            self.call_app(app, now_ns, |app, slot, stream| app.writable(slot, stream));
        }
        None
    }

    /// New data acknowledged: free it, sample the RTT, grow the window,
    /// leave or continue recovery.
    pub(super) fn on_new_ack(
        &mut self,
        ack: Seq,
        acked: u32,
        now_ms: u64,
        config: &TcpConfig,
        sink: &mut dyn SegmentSink,
        tally: &mut Tally,
    ) {
        let data = (acked as usize).min(self.send.len());
        self.send.consume(data);
        self.snd_una = ack;
        self.trim_sacked();
        if self.snd_nxt < ack {
            self.snd_nxt = ack;
        }
        self.retries = 0;
        if let Some((timed, sent_ms)) = self.timed
            && ack > timed
        {
            if !self.timestamps {
                self.rtt.sample(now_ms.saturating_sub(sent_ms), config);
            }
            self.timed = None;
        }
        let mss = u32::from(self.mss);
        if self.in_recovery {
            if ack >= self.recover {
                // Full acknowledgment: recovery is over (RFC 6582 3.2 step 3).
                self.in_recovery = false;
                let flight = self.snd_max - self.snd_una;
                self.cwnd = self.ssthresh.min(flight.max(mss) + mss);
            } else {
                // Partial: the next hole is lost too; deflate (step 4).
                // With SACK the holes are known and sent after this.
                if self.sacked.is_empty() {
                    self.retransmit_first(now_ms, config, sink, tally);
                }
                self.cwnd = self.cwnd.saturating_sub(acked).max(mss) + mss;
            }
        } else if self.cwnd < self.ssthresh {
            self.cwnd += acked.min(mss);
        } else {
            self.cwnd += (mss * mss / self.cwnd.max(1)).max(1);
        }
        self.duplicate_acks = 0;
        let in_flight = self.snd_max > self.snd_una;
        self.rto_deadline_ms = if in_flight {
            now_ms + self.rtt.timeout_ms()
        } else {
            0
        };
        self.probe_deadline_ms = if in_flight && !self.in_recovery {
            now_ms
                + self
                    .rtt
                    .probe_timeout_ms(self.snd_max - self.snd_una <= mss)
        } else {
            0
        };
    }

    /// A duplicate ACK: the third starts fast retransmit and recovery
    /// (RFC 5681 3.2, RFC 6582), later ones inflate the window.
    pub(super) fn on_duplicate_ack(
        &mut self,
        now_ms: u64,
        config: &TcpConfig,
        sink: &mut dyn SegmentSink,
        tally: &mut Tally,
    ) {
        self.duplicate_acks += 1;
        let mss = u32::from(self.mss);
        if self.in_recovery {
            self.cwnd += mss;
        } else if self.duplicate_acks == 3 && self.snd_una >= self.recover {
            self.enter_recovery(tally);
            self.cwnd = self.ssthresh + 3 * mss;
            self.retransmit_first(now_ms, config, sink, tally);
            self.retransmit_next = self.snd_una + self.payload_room();
        }
    }

    /// Sends the oldest unacknowledged segment again.
    pub(super) fn retransmit_first(
        &mut self,
        now_ms: u64,
        config: &TcpConfig,
        sink: &mut dyn SegmentSink,
        tally: &mut Tally,
    ) {
        let length = self.send.len().min(self.payload_room());
        let fin =
            self.fin_seq == Some(self.snd_una + length) && self.snd_max > self.snd_una + length;
        if length == 0 && !fin {
            return;
        }
        let mut flags = TcpFlags::ACK;
        if fin {
            flags |= TcpFlags::FIN;
        }
        let segment = Outgoing {
            seq: self.snd_una,
            ack: self.rcv_nxt,
            flags,
            window: self.window_field(config, false),
            options: self.options(now_ms),
            payload_offset: 0,
            payload_len: length,
        };
        // Karn: a retransmitted segment gives no sample.
        self.timed = None;
        self.transmit(&segment, sink, tally);
        self.rto_deadline_ms = now_ms + self.rtt.timeout_ms();
    }

    /// Sends what the windows allow: new data, our FIN, or the ACK owed.
    pub fn output(
        &mut self,
        now_ms: u64,
        config: &TcpConfig,
        sink: &mut dyn SegmentSink,
        tally: &mut Tally,
    ) -> Outcome {
        if self.state == State::SynReceived {
            // Owed an ACK (a stray SYN or segment, RFC 9293 and 5961):
            // the SYN-ACK is ours to repeat.
            if self.ack_pending {
                self.send_syn_ack(now_ms, config, sink, tally);
            }
            return Outcome::Open;
        }
        if matches!(self.state, State::Closed | State::SynSent) {
            return Outcome::Open;
        }
        self.queue_fin();
        // The MSS covers our options too (RFC 6691).
        let mss = self.payload_room();
        loop {
            let in_flight = (self.snd_nxt - self.snd_una) as usize;
            let unsent = self.send.len().saturating_sub(in_flight);
            // Limited transmit (RFC 3042): the first two duplicate ACKs
            // each let one new segment out, so that a small window still
            // produces the three a fast retransmit needs.
            let limited = if self.in_recovery || self.duplicate_acks >= 3 {
                0
            } else {
                self.duplicate_acks * u32::from(self.mss)
            };
            let window = (self.cwnd + limited).min(self.snd_wnd) as usize;
            let room = window.saturating_sub(in_flight);
            let fin_due = self.fin_seq.is_some_and(|fin| fin == self.snd_nxt);
            if unsent == 0 && !fin_due {
                break;
            }
            let length = unsent.min(mss).min(room);
            if unsent > 0 && length == 0 {
                // The peer's window is shut: probe it later.
                if self.snd_wnd == 0 && self.rto_deadline_ms == 0 {
                    self.rto_deadline_ms = now_ms + self.rtt.timeout_ms();
                }
                break;
            }
            // Sender-side silly window avoidance: a small segment waits
            // while data is in flight and more is queued.
            if length < mss && length < unsent && in_flight > 0 {
                break;
            }
            let fin = self.fin_seq == Some(self.snd_nxt + length);
            let mut flags = TcpFlags::ACK;
            if length == unsent && length > 0 {
                flags |= TcpFlags::PSH;
            }
            if fin {
                flags |= TcpFlags::FIN;
            }
            let segment = Outgoing {
                seq: self.snd_nxt,
                ack: self.rcv_nxt,
                flags,
                window: self.window_field(config, false),
                options: self.options(now_ms),
                payload_offset: in_flight,
                payload_len: length,
            };
            self.transmit(&segment, sink, tally);
            if self.timed.is_none() && self.snd_nxt == self.snd_max {
                self.timed = Some((self.snd_nxt, now_ms));
            }
            self.snd_nxt = self.snd_nxt + length + usize::from(fin);
            self.snd_max = self.snd_max.max(self.snd_nxt);
            if self.rto_deadline_ms == 0 {
                self.rto_deadline_ms = now_ms + self.rtt.timeout_ms();
            }
            if !self.in_recovery {
                // Armed by the first segment in flight; brought forward
                // when a second one makes the delayed-ACK allowance moot.
                let one_segment = self.snd_max - self.snd_una <= u32::from(self.mss);
                let probe = now_ms + self.rtt.probe_timeout_ms(one_segment);
                if self.probe_deadline_ms == 0 || probe < self.probe_deadline_ms {
                    self.probe_deadline_ms = probe;
                }
            }
            if fin {
                break;
            }
        }
        if self.ack_pending {
            if self.holds_ack(now_ms) {
                // Counted once a hold, not on every pass that keeps it.
                if !self.ack_hold_counted {
                    self.ack_hold_counted = true;
                    tally.bump(TcpEvent::AcksHeld);
                }
            } else {
                if self.ack_hold_deadline_ms != 0 {
                    // Only a hold that held (was counted) ends counted.
                    if self.ack_hold_counted {
                        tally.bump(if self.ack_hold_deadline_ms <= now_ms {
                            TcpEvent::AcksHeldExpired
                        } else {
                            TcpEvent::AcksHeldReleased
                        });
                    }
                    // Once: a failed send (no packet buffer) retries
                    // unheld at the next pass.
                    self.ack_hold_deadline_ms = 0;
                    self.ack_hold_counted = false;
                }
                self.send_ack(now_ms, config, sink, tally);
            }
        } else {
            self.ack_hold_deadline_ms = 0;
            self.ack_hold_counted = false;
        }
        Outcome::Open
    }

    /// True while the ACK owed waits for the app's answer: the app asked
    /// ([`Stream::hold_ack`](crate::tcp::Stream::hold_ack)), the hold has
    /// not run out, the connection is established (a FIN's ACK is not
    /// held), less than two full-sized segments (of the payload room
    /// they have with our options) are unacknowledged (RFC 9293 3.8.6.3),
    /// and nothing waits out of order (the ACK carries SACK blocks, RFC
    /// 5681 4.2).
    pub(super) fn holds_ack(&self, now_ms: u64) -> bool {
        self.ack_hold_deadline_ms > now_ms
            && self.state == State::Established
            && ((self.rcv_nxt - self.rcv_acked) as usize) < 2 * self.payload_room()
            && !self.receive.has_gaps()
    }

    /// Gives our FIN a sequence number once the app closed and every byte
    /// before it is queued, and moves the state on.
    pub(super) fn queue_fin(&mut self) {
        if !self.close_requested || self.fin_seq.is_some() {
            return;
        }
        self.fin_seq = Some(self.snd_una + self.send.len());
        match self.state {
            State::Established => self.state = State::FinWait1,
            State::CloseWait => self.state = State::LastAck,
            _ => {}
        }
    }
}
