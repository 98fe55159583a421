//! `Connection`: one TCP connection's state (RFC 9293 3.3.2) and what it
//! does with an arriving segment (3.10.7.4), with its retransmission timer
//! (RFC 6298), Reno congestion control with NewReno recovery (RFC 5681,
//! RFC 6582), window scaling and timestamps (RFC 7323) and the RFC 5961
//! defences against blind resets.
//!
//! A connection never touches packets: it reads an [`Incoming`] segment
//! and sends through a [`SegmentSink`], which copies payload out of the
//! send buffer into a fresh packet. The app is called through its
//! [`Listener`] with a [`Stream`] over the connection's send buffer.

use super::app::{CloseReason, ConnectionId, Requests, Stream};
use super::buffer::SendBuffer;
use super::config::TcpConfig;
use super::events::{Tally, TcpDrop, TcpEvent};
use super::listener::Listener;
use super::receive::ReceiveBuffer;
use super::rtt::RttEstimator;
use super::seq::Seq;
use crate::wire::tcp::{TcpFlags, TcpOptions};
use core::net::SocketAddrV4;

/// Where a connection stands (LISTEN and CLOSED have no connection; a
/// connection entering TIME-WAIT leaves the table for a smaller entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Our SYN-ACK is out, the peer's ACK not in yet.
    SynReceived,
    /// Open both ways.
    Established,
    /// We sent FIN; the peer has not acknowledged it.
    FinWait1,
    /// Our FIN is acknowledged; waiting for the peer's.
    FinWait2,
    /// The peer sent FIN; our side is still open.
    CloseWait,
    /// Both sent FIN at once; waiting for the ACK of ours.
    Closing,
    /// The peer closed first and we sent FIN; waiting for its ACK.
    LastAck,
    /// Both FINs are acknowledged and we closed first: 2 MSL to wait.
    TimeWait,
    /// Gone: the slot can be freed.
    Closed,
}

/// Local and remote address of a connection: its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FourTuple {
    /// Our address and port.
    pub local: SocketAddrV4,
    /// The peer's.
    pub remote: SocketAddrV4,
}

/// An arriving segment, parsed and checked.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    /// Sequence number.
    pub seq: Seq,
    /// Acknowledgment number (meaningful with ACK).
    pub ack: Seq,
    /// Control bits.
    pub flags: TcpFlags,
    /// Window, as on the wire (unscaled).
    pub window: u16,
    /// Options we act on.
    pub options: TcpOptions,
    /// The payload.
    pub payload: &'a [u8],
}

impl Incoming<'_> {
    /// Sequence space the segment takes: payload, SYN and FIN.
    pub fn len(&self) -> u32 {
        self.payload.len() as u32
            + u32::from(self.flags.contains(TcpFlags::SYN))
            + u32::from(self.flags.contains(TcpFlags::FIN))
    }

    /// True for a segment that takes no sequence space.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A segment to send: header fields and which bytes of the send buffer
/// (from the oldest unacknowledged one) it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outgoing {
    /// Sequence number.
    pub seq: Seq,
    /// Acknowledgment number (sent when `flags` has ACK).
    pub ack: Seq,
    /// Control bits.
    pub flags: TcpFlags,
    /// Window, as on the wire (already scaled down).
    pub window: u16,
    /// Options.
    pub options: TcpOptions,
    /// Offset of the payload in the send buffer.
    pub payload_offset: usize,
    /// Payload length.
    pub payload_len: usize,
}

/// Sends segments of a connection.
pub trait SegmentSink {
    /// Sends `segment` on `tuple`, its payload copied from `send`; false
    /// when there was no packet buffer for it.
    fn send(&mut self, tuple: &FourTuple, segment: &Outgoing, send: &SendBuffer) -> bool;
}

/// What became of a connection after a segment or a timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It goes on.
    Open,
    /// The segment was not accepted, for this reason (the connection goes on).
    Dropped(TcpDrop),
    /// It ended; free it after telling the app.
    Ended(CloseReason),
    /// It entered TIME-WAIT; move it to the TIME-WAIT table.
    TimeWait,
}

/// One connection.
#[derive(Debug)]
pub struct Connection {
    /// Its addresses.
    pub tuple: FourTuple,
    /// Its id (slot and generation).
    pub id: ConnectionId,
    /// Index of its app in the node's listeners.
    pub listener: usize,
    /// Where it stands.
    pub state: State,
    /// True once the app has a session for it.
    pub accepted: bool,
    // Send sequence space (RFC 9293 3.3.1).
    /// Our initial sequence number.
    pub iss: Seq,
    /// Oldest unacknowledged sequence number.
    pub snd_una: Seq,
    /// Next sequence number to send.
    pub snd_nxt: Seq,
    /// Highest sequence number sent (snd_nxt goes back on a timeout).
    snd_max: Seq,
    /// The peer's window, scaled.
    snd_wnd: u32,
    snd_wl1: Seq,
    snd_wl2: Seq,
    /// The peer's window scale shift.
    snd_scale: u8,
    /// MSS we send with.
    pub mss: u16,
    // Receive sequence space.
    /// Next sequence number expected.
    pub rcv_nxt: Seq,
    /// Our window scale shift.
    rcv_scale: u8,
    /// The right edge of the window we last offered.
    rcv_adv: Seq,
    // Timestamps (RFC 7323).
    timestamps: bool,
    ts_recent: u32,
    // Congestion control.
    cwnd: u32,
    ssthresh: u32,
    duplicate_acks: u32,
    /// NewReno: the highest sequence number sent when recovery began.
    recover: Seq,
    in_recovery: bool,
    rtt: RttEstimator,
    /// Karn's algorithm without timestamps: the sequence number timed and
    /// when it was sent.
    timed: Option<(Seq, u64)>,
    /// Consecutive timeouts of the same data.
    retries: u32,
    // Timers: 0 is "not armed".
    /// Retransmission (or SYN-ACK, or window probe) deadline.
    pub rto_deadline_ms: u64,
    /// The app's timer.
    pub app_deadline_ms: u64,
    /// FIN-WAIT-2 limit.
    pub linger_deadline_ms: u64,
    /// The deadline the timer wheel holds an entry for.
    pub scheduled_ms: u64,
    // Buffers and the app's wishes.
    /// Bytes to send and in flight.
    pub send: SendBuffer,
    /// Bytes received and not consumed.
    pub receive: ReceiveBuffer,
    /// The sequence number of our FIN once the app closed.
    fin_seq: Option<Seq>,
    /// The app asked to close.
    close_requested: bool,
    /// The app asked for `writable`.
    want_writable: bool,
    /// The app paused reading.
    read_paused: bool,
    /// The peer's FIN was delivered to the app.
    read_closed_told: bool,
    /// An ACK is owed (sent with data or alone at the end of the burst).
    pub ack_pending: bool,
    /// On the node's list of connections to visit after the burst.
    pub dirty: bool,
}

/// The initial congestion window (RFC 6928): ten segments.
const INITIAL_WINDOW_SEGMENTS: u32 = 10;

impl Connection {
    /// A connection for a SYN that arrived on `tuple` (state SYN-RECEIVED),
    /// with `iss` as our initial sequence number.
    pub fn passive(
        tuple: FourTuple,
        id: ConnectionId,
        listener: usize,
        syn: &Incoming<'_>,
        iss: Seq,
        mss: u16,
        config: &TcpConfig,
    ) -> Self {
        let window_scale = syn.options.window_scale;
        let mut connection = Self::new(tuple, id, listener, iss, config);
        connection.state = State::SynReceived;
        connection.rcv_nxt = syn.seq + 1u32;
        connection.snd_wl1 = syn.seq;
        connection.mss = syn.options.mss.unwrap_or(536).min(mss);
        connection.snd_scale = window_scale.unwrap_or(0);
        connection.rcv_scale = if window_scale.is_some() {
            config.window_scale()
        } else {
            0
        };
        connection.snd_wnd = u32::from(syn.window);
        if let Some((value, _)) = syn.options.timestamps {
            connection.timestamps = true;
            connection.ts_recent = value;
        }
        connection.cwnd = INITIAL_WINDOW_SEGMENTS * u32::from(connection.mss);
        connection
    }

    /// A connection established from a valid SYN cookie: the ACK that
    /// returned it is `ack`, our initial sequence number was the cookie.
    #[allow(clippy::too_many_arguments)]
    pub fn from_cookie(
        tuple: FourTuple,
        id: ConnectionId,
        listener: usize,
        ack: &Incoming<'_>,
        mss: u16,
        peer_window_scale: Option<u8>,
        config: &TcpConfig,
    ) -> Self {
        let iss = ack.ack + u32::MAX; // ack - 1
        let mut connection = Self::new(tuple, id, listener, iss, config);
        connection.state = State::Established;
        connection.snd_una = ack.ack;
        connection.snd_nxt = ack.ack;
        connection.snd_max = ack.ack;
        connection.rcv_nxt = ack.seq;
        connection.snd_wl1 = ack.seq;
        connection.snd_wl2 = ack.ack;
        connection.mss = mss;
        if let Some((value, _)) = ack.options.timestamps {
            connection.timestamps = true;
            connection.ts_recent = value;
            connection.snd_scale = peer_window_scale.unwrap_or(0);
            connection.rcv_scale = if peer_window_scale.is_some() {
                config.window_scale()
            } else {
                0
            };
        }
        connection.snd_wnd = u32::from(ack.window) << connection.snd_scale;
        connection.cwnd = INITIAL_WINDOW_SEGMENTS * u32::from(mss);
        connection
    }

    fn new(
        tuple: FourTuple,
        id: ConnectionId,
        listener: usize,
        iss: Seq,
        config: &TcpConfig,
    ) -> Self {
        Self {
            tuple,
            id,
            listener,
            state: State::SynReceived,
            accepted: false,
            iss,
            snd_una: iss,
            snd_nxt: iss + 1u32,
            snd_max: iss + 1u32,
            snd_wnd: 0,
            snd_wl1: Seq(0),
            snd_wl2: iss,
            snd_scale: 0,
            mss: 536,
            rcv_nxt: Seq(0),
            rcv_scale: 0,
            rcv_adv: Seq(0),
            timestamps: false,
            ts_recent: 0,
            cwnd: 0,
            ssthresh: u32::MAX,
            duplicate_acks: 0,
            recover: iss,
            in_recovery: false,
            rtt: RttEstimator::new(config),
            timed: None,
            retries: 0,
            rto_deadline_ms: 0,
            app_deadline_ms: 0,
            linger_deadline_ms: 0,
            scheduled_ms: 0,
            send: SendBuffer::new(config.send_buffer),
            receive: ReceiveBuffer::default(),
            fin_seq: None,
            close_requested: false,
            want_writable: false,
            read_paused: false,
            read_closed_told: false,
            ack_pending: false,
            dirty: false,
        }
    }

    /// The earliest armed deadline, 0 for none.
    pub fn next_deadline_ms(&self) -> u64 {
        [
            self.rto_deadline_ms,
            self.app_deadline_ms,
            self.linger_deadline_ms,
        ]
        .into_iter()
        .filter(|deadline| *deadline != 0)
        .min()
        .unwrap_or(0)
    }

    /// The receive window we can offer now, in bytes.
    fn receive_window(&self, config: &TcpConfig) -> u32 {
        let free = config.receive_buffer.saturating_sub(self.receive.held());
        // Never more than the scaled 16-bit field can say.
        free.min(usize::from(u16::MAX) << self.rcv_scale) as u32
    }

    /// The window field for a segment we send (SYN-ACKs are unscaled).
    fn window_field(&mut self, config: &TcpConfig, syn: bool) -> u16 {
        let window = self.receive_window(config);
        // Never move the right edge back (RFC 9293 3.8.6.2.2).
        let window = window.max(if self.rcv_adv > self.rcv_nxt {
            self.rcv_adv - self.rcv_nxt
        } else {
            0
        });
        if syn {
            return window.min(u32::from(u16::MAX)) as u16;
        }
        let field = (window >> self.rcv_scale).min(u32::from(u16::MAX));
        self.rcv_adv = self.rcv_nxt + (field << self.rcv_scale);
        field as u16
    }

    /// The options of a segment we send now: timestamps when in use.
    fn options(&self, now_ms: u64) -> TcpOptions {
        TcpOptions {
            timestamps: self.timestamps.then_some((now_ms as u32, self.ts_recent)),
            ..TcpOptions::default()
        }
    }

    /// Sends our SYN-ACK (again), with the options the SYN asked for.
    pub fn send_syn_ack(
        &mut self,
        now_ms: u64,
        config: &TcpConfig,
        local_mss: u16,
        sink: &mut dyn SegmentSink,
        tally: &mut Tally,
    ) {
        let options = TcpOptions {
            mss: Some(local_mss),
            window_scale: (self.rcv_scale != 0 || self.snd_scale != 0 || self.offered_scale())
                .then_some(self.rcv_scale),
            sack_permitted: false,
            timestamps: self.timestamps.then_some((now_ms as u32, self.ts_recent)),
        };
        let segment = Outgoing {
            seq: self.iss,
            ack: self.rcv_nxt,
            flags: TcpFlags::SYN | TcpFlags::ACK,
            window: self.window_field(config, true),
            options,
            payload_offset: 0,
            payload_len: 0,
        };
        self.transmit(&segment, sink, tally);
        if self.rto_deadline_ms == 0 {
            self.rto_deadline_ms = now_ms + self.rtt.timeout_ms();
        }
    }

    /// True when the peer's SYN offered a window scale (we answer with ours).
    fn offered_scale(&self) -> bool {
        self.rcv_scale != 0
    }

    /// Sends one segment, counting it.
    fn transmit(&mut self, segment: &Outgoing, sink: &mut dyn SegmentSink, tally: &mut Tally) {
        if sink.send(&self.tuple, segment, &self.send) {
            tally.bump(TcpEvent::SegmentsOut);
            tally.add(TcpEvent::BytesOut, segment.payload_len as u64);
            if segment.flags.contains(TcpFlags::ACK) {
                self.ack_pending = false;
            }
        } else {
            tally.bump(TcpEvent::NoBuffer);
        }
    }

    /// A bare ACK of what we received.
    pub fn send_ack(
        &mut self,
        now_ms: u64,
        config: &TcpConfig,
        sink: &mut dyn SegmentSink,
        tally: &mut Tally,
    ) {
        let segment = Outgoing {
            seq: self.snd_nxt,
            ack: self.rcv_nxt,
            flags: TcpFlags::ACK,
            window: self.window_field(config, false),
            options: self.options(now_ms),
            payload_offset: 0,
            payload_len: 0,
        };
        self.transmit(&segment, sink, tally);
    }

    /// Sends RST for this connection (we abort it).
    pub fn send_reset(&mut self, sink: &mut dyn SegmentSink, tally: &mut Tally) {
        let segment = Outgoing {
            seq: self.snd_nxt,
            ack: self.rcv_nxt,
            flags: TcpFlags::RST | TcpFlags::ACK,
            window: 0,
            options: TcpOptions::default(),
            payload_offset: 0,
            payload_len: 0,
        };
        self.transmit(&segment, sink, tally);
        tally.bump(TcpEvent::ResetsSent);
    }

    /// RFC 9293 3.10.7.4 first check, with PAWS (RFC 7323 5.3) before it:
    /// is the segment acceptable?
    fn acceptable(&self, segment: &Incoming<'_>, config: &TcpConfig) -> bool {
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
                self.send_syn_ack(now_ms, config, self.mss, sink, tally);
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
    fn on_reset(
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

    /// ACK processing: what the peer acknowledged, its window, congestion
    /// control, our FIN. `Some` when the segment ends here.
    #[allow(clippy::too_many_arguments)]
    fn on_ack(
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
    fn on_new_ack(
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
                self.retransmit_first(now_ms, config, sink, tally);
                self.cwnd = self.cwnd.saturating_sub(acked).max(mss) + mss;
            }
        } else if self.cwnd < self.ssthresh {
            self.cwnd += acked.min(mss);
        } else {
            self.cwnd += (mss * mss / self.cwnd.max(1)).max(1);
        }
        self.duplicate_acks = 0;
        self.rto_deadline_ms = if self.snd_max > self.snd_una {
            now_ms + self.rtt.timeout_ms()
        } else {
            0
        };
    }

    /// A duplicate ACK: the third starts fast retransmit and recovery
    /// (RFC 5681 3.2, RFC 6582), later ones inflate the window.
    fn on_duplicate_ack(
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
            let flight = self.snd_max - self.snd_una;
            self.ssthresh = (flight / 2).max(2 * mss);
            self.recover = self.snd_max;
            self.in_recovery = true;
            self.cwnd = self.ssthresh + 3 * mss;
            tally.bump(TcpEvent::FastRetransmits);
            self.retransmit_first(now_ms, config, sink, tally);
        }
    }

    /// Sends the oldest unacknowledged segment again.
    fn retransmit_first(
        &mut self,
        now_ms: u64,
        config: &TcpConfig,
        sink: &mut dyn SegmentSink,
        tally: &mut Tally,
    ) {
        let length = self.send.len().min(usize::from(self.mss));
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

    /// Data and FIN (RFC 9293 3.10.7.4, seventh and eighth checks).
    #[allow(clippy::too_many_arguments)]
    fn on_data(
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
                    self.deliver_buffered(app, now_ns);
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
    fn deliver(&mut self, payload: &[u8], app: &mut dyn Listener, now_ns: u64) {
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
    fn peer_closed(&self) -> bool {
        matches!(
            self.state,
            State::CloseWait | State::Closing | State::LastAck | State::TimeWait
        )
    }

    /// Tells the app (once) that the peer will send no more.
    fn tell_read_closed(&mut self, app: &mut dyn Listener, now_ns: u64) {
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
    fn apply(&mut self, requests: Requests, now_ms: u64) {
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
        if let Some(milliseconds) = requests.timeout_ms {
            self.app_deadline_ms = if milliseconds == 0 {
                0
            } else {
                now_ms + u64::from(milliseconds)
            };
        }
        self.dirty_hint();
    }

    /// Marks that output may be due (the node collects dirty connections).
    fn dirty_hint(&mut self) {
        // The node checks `dirty` to put the connection on its list; the
        // flag is set by the node itself when it visits, so nothing here.
    }

    /// True when the app aborted the connection during a call.
    pub fn aborted(&self) -> bool {
        self.state == State::Closed
    }

    /// Sends what the windows allow: new data, our FIN, or the ACK owed.
    pub fn output(
        &mut self,
        now_ms: u64,
        config: &TcpConfig,
        sink: &mut dyn SegmentSink,
        tally: &mut Tally,
    ) -> Outcome {
        if matches!(self.state, State::SynReceived | State::Closed) {
            return Outcome::Open;
        }
        self.queue_fin();
        let mss = usize::from(self.mss);
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
            if fin {
                break;
            }
        }
        if self.ack_pending {
            self.send_ack(now_ms, config, sink, tally);
        }
        Outcome::Open
    }

    /// Gives our FIN a sequence number once the app closed and every byte
    /// before it is queued, and moves the state on.
    fn queue_fin(&mut self) {
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
            return self.on_retransmission_timeout(now_ms, config, sink, tally);
        }
        Outcome::Open
    }

    /// RFC 6298 5.4-5.7 (and RFC 5681 3.1 for the window): back off, go
    /// back to the oldest unacknowledged byte, start again from one segment.
    fn on_retransmission_timeout(
        &mut self,
        now_ms: u64,
        config: &TcpConfig,
        sink: &mut dyn SegmentSink,
        tally: &mut Tally,
    ) -> Outcome {
        self.retries += 1;
        let limit = if self.state == State::SynReceived {
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
        if self.state == State::SynReceived {
            tally.bump(TcpEvent::Retransmits);
            let mss = self.mss;
            self.send_syn_ack(now_ms, config, mss, sink, tally);
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
        self.timed = None;
        tally.bump(TcpEvent::Retransmits);
        self.output(now_ms, config, sink, tally);
        if self.rto_deadline_ms == 0 {
            self.rto_deadline_ms = now_ms + self.rtt.timeout_ms();
        }
        Outcome::Open
    }

    /// The app's writable wish, for the node (after ACKs freed room).
    pub fn wants_writable(&self) -> bool {
        self.want_writable
    }

    /// What a TIME-WAIT entry must keep of this connection.
    pub fn time_wait_numbers(&self) -> (Seq, Seq, Option<u32>) {
        (
            self.snd_nxt,
            self.rcv_nxt,
            self.timestamps.then_some(self.ts_recent),
        )
    }

    /// Forgets buffers (the connection ends).
    pub fn release_buffers(&mut self) {
        self.send.clear();
        self.receive.clear();
    }
}
