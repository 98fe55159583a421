//! What a connection does with an arriving segment (RFC 9293 3.10.7.4):
//! PAWS and the acceptability test, RST and SYN handling (RFC 5961), the
//! handshake's last ACK, in-order data lent to the app, out-of-order data
//! held, the peer's FIN; and the calls into the app.

use super::*;

impl Connection {
    /// RFC 9293 3.10.7.4 first check, with PAWS (RFC 7323 5.3) before it:
    /// is the segment acceptable?
    pub(super) fn acceptable(&self, segment: &Incoming<'_>, config: &TcpConfig) -> bool {
        let window = self
            .receive_window(config)
            .max(if self.rcv_adv > self.rcv_nxt {
                self.rcv_adv - self.rcv_nxt
            } else {
                0
            });
        let length = segment.len();
        let in_window = |seq: Seq| seq >= self.rcv_nxt && seq < self.rcv_nxt + window;
        match (length, window) {
            (0, 0) => segment.seq == self.rcv_nxt,
            (0, _) => in_window(segment.seq),
            (_, 0) => false,
            _ => in_window(segment.seq) || in_window(segment.seq + (length - 1)),
        }
    }

    /// Handles an arriving segment for this connection.
    #[allow(clippy::too_many_arguments)]
    pub fn on_segment(
        &mut self,
        segment: &Incoming<'_>,
        now_ms: u64,
        now_ns: u64,
        config: &TcpConfig,
        app: &mut dyn Listener,
        sink: &mut dyn SegmentSink,
        tally: &mut Tally,
    ) -> Outcome {
        let flags = segment.flags;
        if self.state == State::SynSent {
            return self.on_segment_in_syn_sent(segment, now_ms, now_ns, config, app, tally);
        }
        // PAWS: an old timestamp on anything but a RST.
        if self.timestamps
            && !flags.contains(TcpFlags::RST)
            && let Some((value, _)) = segment.options.timestamps
            && (value.wrapping_sub(self.ts_recent) as i32) < 0
        {
            self.ack_pending = true;
            return Outcome::Dropped(TcpDrop::Paws);
        }
        if !self.acceptable(segment, config) {
            if flags.contains(TcpFlags::RST) {
                return Outcome::Dropped(TcpDrop::OutOfWindow);
            }
            if self.state == State::SynReceived
                && flags.contains(TcpFlags::SYN)
                && segment.seq + 1u32 == self.rcv_nxt
            {
                // The SYN again: our SYN-ACK was lost.
                self.send_syn_ack(now_ms, config, sink, tally);
                return Outcome::Open;
            }
            self.ack_pending = true;
            return Outcome::Dropped(TcpDrop::OutOfWindow);
        }
        if flags.contains(TcpFlags::RST) {
            return self.on_reset(segment, now_ms, config, sink, tally);
        }
        if flags.contains(TcpFlags::SYN) {
            // RFC 5961 4.2: a SYN in a synchronized state gets a challenge.
            if self.state != State::SynReceived {
                tally.bump(TcpEvent::ChallengeAcks);
                self.send_ack(now_ms, config, sink, tally);
            }
            return Outcome::Dropped(TcpDrop::BadAck);
        }
        if !flags.contains(TcpFlags::ACK) {
            return Outcome::Dropped(TcpDrop::BadFlags);
        }
        // Timestamps: remember the peer's for our echoes (RFC 7323 4.3).
        if let Some((value, echo)) = segment.options.timestamps
            && self.timestamps
        {
            if segment.seq <= self.rcv_nxt {
                self.ts_recent = value;
            }
            if echo != 0 && segment.ack > self.snd_una {
                let sample = (now_ms as u32).wrapping_sub(echo);
                if sample < 60_000 {
                    self.rtt.sample(u64::from(sample), config);
                }
            }
        }
        if self.state == State::SynReceived {
            if segment.ack <= self.snd_una || segment.ack > self.snd_max {
                // RFC 9293: an unacceptable ACK in SYN-RECEIVED gets a RST.
                return Outcome::Dropped(TcpDrop::BadAck);
            }
            self.state = State::Established;
            self.snd_wnd = u32::from(segment.window) << self.snd_scale;
            self.snd_wl1 = segment.seq;
            self.snd_wl2 = segment.ack;
            self.rto_deadline_ms = 0;
            self.retries = 0;
            self.snd_una = segment.ack;
            if !self.accept(app, now_ns, tally) {
                return Outcome::Ended(CloseReason::Aborted);
            }
        }
        if let Some(outcome) = self.on_ack(segment, now_ms, config, app, now_ns, sink, tally) {
            return outcome;
        }
        tally.bump(TcpEvent::SegmentsIn);
        self.on_data(segment, now_ms, now_ns, config, app, sink, tally)
    }

    /// Hands the connection to its app; false when the app refused it (a
    /// RST is sent).
    pub fn accept(&mut self, app: &mut dyn Listener, now_ns: u64, tally: &mut Tally) -> bool {
        let peer = self.tuple.remote;
        let accepted = self.call_app(app, now_ns, |app, slot, stream| {
            app.accept(slot, peer, stream)
        });
        if !accepted {
            tally.bump(TcpEvent::Aborted);
            return false;
        }
        self.accepted = true;
        tally.bump(TcpEvent::Accepted);
        true
    }

    /// RST handling (RFC 9293 3.10.7.4 second check, RFC 5961 3.2).
    pub(super) fn on_reset(
        &mut self,
        segment: &Incoming<'_>,
        now_ms: u64,
        config: &TcpConfig,
        sink: &mut dyn SegmentSink,
        tally: &mut Tally,
    ) -> Outcome {
        if segment.seq == self.rcv_nxt {
            tally.bump(TcpEvent::ResetByPeer);
            return Outcome::Ended(CloseReason::Reset);
        }
        tally.bump(TcpEvent::ChallengeAcks);
        self.send_ack(now_ms, config, sink, tally);
        Outcome::Dropped(TcpDrop::BadAck)
    }

    /// Data and FIN (RFC 9293 3.10.7.4, seventh and eighth checks).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_data(
        &mut self,
        segment: &Incoming<'_>,
        now_ms: u64,
        now_ns: u64,
        config: &TcpConfig,
        app: &mut dyn Listener,
        sink: &mut dyn SegmentSink,
        tally: &mut Tally,
    ) -> Outcome {
        let receiving = matches!(
            self.state,
            State::Established | State::FinWait1 | State::FinWait2
        );
        let mut payload = segment.payload;
        let mut seq = segment.seq;
        if !payload.is_empty() && receiving {
            // Trim what we already have, and what lies beyond the window.
            if seq < self.rcv_nxt {
                let skip = ((self.rcv_nxt - seq) as usize).min(payload.len());
                payload = &payload[skip..];
                seq = self.rcv_nxt;
            }
            let window = self.receive_window(config) as usize;
            let ahead = (seq - self.rcv_nxt) as usize;
            payload = &payload[..payload.len().min(window.saturating_sub(ahead))];
            if seq > self.rcv_nxt {
                tally.bump(TcpEvent::OutOfOrder);
                let kept = self.receive.insert_out_of_order(seq, payload);
                // A duplicate ACK at once, for the peer's fast retransmit.
                self.send_ack(now_ms, config, sink, tally);
                return if kept {
                    Outcome::Open
                } else {
                    Outcome::Dropped(TcpDrop::NoRoom)
                };
            }
            if !payload.is_empty() {
                tally.add(TcpEvent::BytesIn, payload.len() as u64);
                self.rcv_nxt = self.rcv_nxt + payload.len();
                self.ack_pending = true;
                self.deliver(payload, app, now_ns);
                let before = self.rcv_nxt;
                self.rcv_nxt = self.receive.reassemble(self.rcv_nxt);
                if self.rcv_nxt != before {
                    tally.add(TcpEvent::BytesIn, u64::from(self.rcv_nxt - before));
                    self.deliver_buffered(app, now_ns);
                    // A segment that fills a gap is ACKed at once (RFC
                    // 5681 4.2), whatever the app asked.
                    self.ack_hold_deadline_ms = 0;
                    self.ack_hold_counted = false;
                }
            }
        }
        let fin_in_order = segment.flags.contains(TcpFlags::FIN)
            && segment.seq + segment.payload.len() == self.rcv_nxt;
        if fin_in_order {
            self.rcv_nxt = self.rcv_nxt + 1u32;
            self.ack_pending = true;
            match self.state {
                State::Established => self.state = State::CloseWait,
                State::FinWait1 => {
                    // Our FIN is not acknowledged yet (or we would be in
                    // FIN-WAIT-2): simultaneous close.
                    self.state = State::Closing;
                }
                State::FinWait2 => {
                    self.state = State::TimeWait;
                    self.send_ack(now_ms, config, sink, tally);
                    return Outcome::TimeWait;
                }
                _ => {}
            }
            // Tells the app of the FIN once nothing waits before it, or
            // once what waits is a piece the app cannot use alone.
            self.deliver_buffered(app, now_ns);
            if self.receive.is_empty() {
                self.tell_read_closed(app, now_ns);
            }
        } else if segment.flags.contains(TcpFlags::FIN) && self.state == State::TimeWait {
            self.ack_pending = true;
        }
        Outcome::Open
    }

    /// In-order payload: lent to the app straight from the packet when
    /// nothing waits before it, otherwise queued behind what waits.
    pub(super) fn deliver(&mut self, payload: &[u8], app: &mut dyn Listener, now_ns: u64) {
        if !self.accepted || self.read_paused || !self.receive.is_empty() {
            self.receive.push(payload);
            if self.accepted && !self.read_paused {
                self.deliver_buffered(app, now_ns);
            }
            return;
        }
        let consumed = self.call_app(app, now_ns, |app, slot, stream| {
            app.data(slot, payload, stream)
        });
        if consumed < payload.len() {
            self.receive.push(&payload[consumed..]);
        }
    }

    /// Lends the buffered in-order bytes to the app, again and again while
    /// it consumes some.
    pub fn deliver_buffered(&mut self, app: &mut dyn Listener, now_ns: u64) {
        let mut stuck = false;
        while self.accepted && !self.read_paused && !self.receive.is_empty() {
            let mut requests = Requests::default();
            let consumed = {
                let mut stream = Stream {
                    id: self.id,
                    peer: self.tuple.remote,
                    now_ns,
                    send: &mut self.send,
                    requests: &mut requests,
                };
                app.data(self.id.slot, self.receive.unread(), &mut stream)
            };
            self.receive.consume(consumed);
            self.apply(requests, now_ns / 1_000_000);
            if consumed == 0 {
                // Waiting for bytes that, after a FIN, never come.
                stuck = !self.want_writable;
                break;
            }
        }
        if (self.receive.is_empty() || stuck) && self.peer_closed() {
            self.tell_read_closed(app, now_ns);
        }
    }

    /// True once the peer's FIN arrived.
    pub(super) fn peer_closed(&self) -> bool {
        matches!(
            self.state,
            State::CloseWait | State::Closing | State::LastAck | State::TimeWait
        )
    }

    /// Tells the app (once) that the peer will send no more.
    pub(super) fn tell_read_closed(&mut self, app: &mut dyn Listener, now_ns: u64) {
        if self.read_closed_told || !self.accepted {
            return;
        }
        self.read_closed_told = true;
        self.call_app(app, now_ns, |app, slot, stream| {
            app.read_closed(slot, stream)
        });
    }

    /// Calls the app with a stream over this connection, applies what it
    /// asked, and returns what the call returned.
    pub fn call_app<R>(
        &mut self,
        app: &mut dyn Listener,
        now_ns: u64,
        call: impl FnOnce(&mut dyn Listener, u32, &mut Stream<'_>) -> R,
    ) -> R {
        let mut requests = Requests::default();
        let result = {
            let mut stream = Stream {
                id: self.id,
                peer: self.tuple.remote,
                now_ns,
                send: &mut self.send,
                requests: &mut requests,
            };
            call(app, self.id.slot, &mut stream)
        };
        self.apply(requests, now_ns / 1_000_000);
        result
    }

    /// Takes in what the app asked during a call.
    pub(super) fn apply(&mut self, requests: Requests, now_ms: u64) {
        if requests.close {
            self.close_requested = true;
        }
        if requests.abort {
            self.state = State::Closed;
        }
        if requests.want_writable {
            self.want_writable = true;
        }
        if let Some(paused) = requests.pause_reading {
            self.read_paused = paused;
        }
        if let Some(request) = requests.connect {
            self.connect_request = Some(request);
        }
        if requests.hold_ack && self.ack_pending && self.ack_hold_deadline_ms == 0 {
            // From the first hold: holding again does not push it back.
            self.ack_hold_deadline_ms = now_ms + ACK_HOLD_MS;
        }
        if let Some(milliseconds) = requests.timeout_ms {
            self.app_deadline_ms = if milliseconds == 0 {
                0
            } else {
                now_ms + u64::from(milliseconds)
            };
        }
    }
}
