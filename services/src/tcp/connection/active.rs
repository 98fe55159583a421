//! A connection we open (RFC 9293 3.10.7.3): our SYN with the options we
//! offer, and what a segment does in SYN-SENT; the SYN-ACK settles the
//! options both sides use and hands the connection to its app.

use super::*;

impl Connection {
    /// A connection we open on `tuple` for the app's `token` (state
    /// SYN-SENT), with `iss` as our initial sequence number. Send its SYN
    /// with [`Connection::send_syn`].
    pub fn active(
        tuple: FourTuple,
        id: ConnectionId,
        listener: usize,
        iss: Seq,
        token: u64,
        config: &TcpConfig,
    ) -> Self {
        let mut connection = Self::new(tuple, id, listener, iss, config);
        connection.state = State::SynSent;
        connection.token = Some(token);
        connection.mss = LOCAL_MSS;
        // Offered in the SYN; kept only if the SYN-ACK offers one too.
        connection.rcv_scale = config.window_scale();
        connection
    }

    /// Sends our SYN (again): MSS, window scale, SACK permitted and
    /// timestamps offered, as Linux does.
    pub fn send_syn(
        &mut self,
        now_ms: u64,
        config: &TcpConfig,
        sink: &mut dyn SegmentSink,
        tally: &mut Tally,
    ) {
        let options = TcpOptions {
            mss: Some(LOCAL_MSS),
            window_scale: Some(config.window_scale()),
            sack_permitted: true,
            timestamps: Some((now_ms as u32, 0)),
            sack_blocks: Default::default(),
        };
        let segment = Outgoing {
            seq: self.iss,
            ack: Seq(0),
            flags: TcpFlags::SYN,
            window: self.window_field(config, true),
            options,
            payload_offset: 0,
            payload_len: 0,
        };
        self.transmit(&segment, sink, tally);
        if self.timed.is_none() {
            self.timed = Some((self.iss, now_ms));
        }
        if self.rto_deadline_ms == 0 {
            self.rto_deadline_ms = now_ms + self.rtt.timeout_ms();
        }
    }

    /// A segment in SYN-SENT (RFC 9293 3.10.7.3). A SYN-ACK that
    /// acknowledges our SYN establishes the connection and hands it to the
    /// app ([`Listener::connected`]); a RST that does refuses it. A SYN
    /// without ACK (simultaneous open) is not supported: dropped, and our
    /// SYN's retransmission goes on.
    pub(super) fn on_segment_in_syn_sent(
        &mut self,
        segment: &Incoming<'_>,
        now_ms: u64,
        now_ns: u64,
        config: &TcpConfig,
        app: &mut dyn Listener,
        tally: &mut Tally,
    ) -> Outcome {
        let flags = segment.flags;
        if flags.contains(TcpFlags::ACK) && (segment.ack <= self.iss || segment.ack > self.snd_max)
        {
            // Not for our SYN: the node answers with RST unless it is one.
            return Outcome::Dropped(TcpDrop::BadAck);
        }
        if flags.contains(TcpFlags::RST) {
            if !flags.contains(TcpFlags::ACK) {
                return Outcome::Dropped(TcpDrop::BadAck);
            }
            tally.bump(TcpEvent::ConnectsRefused);
            return Outcome::Ended(CloseReason::Reset);
        }
        if !flags.contains(TcpFlags::SYN | TcpFlags::ACK) {
            return Outcome::Dropped(TcpDrop::BadFlags);
        }
        let options = &segment.options;
        self.rcv_nxt = segment.seq + 1u32;
        self.rcv_adv = self.rcv_nxt;
        self.snd_una = segment.ack;
        self.mss = options.mss.unwrap_or(536).clamp(64, LOCAL_MSS);
        match options.window_scale {
            Some(scale) => self.snd_scale = scale.min(14),
            None => self.rcv_scale = 0,
        }
        // Window fields of SYN segments are never scaled (RFC 7323 2.2).
        self.snd_wnd = u32::from(segment.window);
        self.snd_wl1 = segment.seq;
        self.snd_wl2 = segment.ack;
        self.sack = options.sack_permitted;
        let sample_ms = match options.timestamps {
            Some((value, echo)) => {
                self.timestamps = true;
                self.ts_recent = value;
                (echo != 0).then(|| u64::from((now_ms as u32).wrapping_sub(echo)))
            }
            None => self
                .timed
                .map(|(_, sent_ms)| now_ms.saturating_sub(sent_ms)),
        };
        // A retransmitted SYN makes the sample ambiguous (Karn).
        if let Some(sample_ms) = sample_ms
            && self.retries == 0
            && sample_ms < 60_000
        {
            self.rtt.sample(sample_ms, config);
        }
        self.timed = None;
        self.retries = 0;
        self.rto_deadline_ms = 0;
        self.cwnd = INITIAL_WINDOW_SEGMENTS * u32::from(self.mss);
        self.state = State::Established;
        self.ack_pending = true;
        tally.bump(TcpEvent::SegmentsIn);
        tally.bump(TcpEvent::Connected);
        let token = self.token.take().unwrap_or_default();
        let wanted = self.call_app(app, now_ns, |app, slot, stream| {
            app.connected(slot, token, stream)
        });
        if !wanted {
            tally.bump(TcpEvent::Aborted);
            return Outcome::Ended(CloseReason::Aborted);
        }
        self.accepted = true;
        Outcome::Open
    }
}
