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
use crate::wire::tcp::{SackBlocks, TcpFlags, TcpOptions};
use arrayvec::ArrayVec;
use core::net::SocketAddrV4;

mod active;
mod arrival;
#[cfg(test)]
mod hold_tests;
mod sack;
mod sending;
mod timers;

/// Where a connection stands (LISTEN and CLOSED have no connection; a
/// connection entering TIME-WAIT leaves the table for a smaller entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// We opened it: our SYN is out, the peer's SYN-ACK not in yet.
    SynSent,
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
    /// For a connection we opened: the app's token, until it is told the
    /// connection opened or failed.
    pub token: Option<u64>,
    /// A connection the app asked for during a call ([`Stream::connect`]),
    /// for the node to open.
    pub connect_request: Option<(SocketAddrV4, u64)>,
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
    /// The peer permitted SACK: our ACKs carry SACK blocks (RFC 2018; as a
    /// sender we take none, which the RFC allows).
    sack: bool,
    ts_recent: u32,
    // Congestion control.
    cwnd: u32,
    ssthresh: u32,
    duplicate_acks: u32,
    /// NewReno: the highest sequence number sent when recovery began.
    recover: Seq,
    in_recovery: bool,
    /// What the peer holds beyond `snd_una`, from its SACK blocks.
    sacked: ArrayVec<(Seq, Seq), { sack::SCOREBOARD_RANGES }>,
    /// Where the next hole retransmission starts looking.
    retransmit_next: Seq,
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
    /// Tail loss probe deadline (RFC 8985): when the last segments of a
    /// flight may be lost with nothing behind them to tell.
    pub probe_deadline_ms: u64,
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
    /// Until when the ACK owed waits for the app's answer to carry it
    /// ([`Stream::hold_ack`](crate::tcp::Stream::hold_ack)); 0: not held.
    pub ack_hold_deadline_ms: u64,
    /// The hold now armed was counted (`acks-held`).
    ack_hold_counted: bool,
    /// What the last ACK we sent acknowledged.
    rcv_acked: Seq,
    /// On the node's list of connections to visit after the burst.
    pub dirty: bool,
}

/// The MSS we offer and send with at most: the link MTU less the IPv4 and
/// TCP headers (every interface has the Ethernet MTU).
pub const LOCAL_MSS: u16 = (crate::fragment::MTU - 40) as u16;

/// Longest an ACK is held for the app's answer ([`Stream::hold_ack`]):
/// sent alone once this many milliseconds (of the platform clock, so
/// between one less and this many) have passed. Far below the 200 ms
/// of a delayed ACK, so the peer's timers never notice.
///
/// [`Stream::hold_ack`]: crate::tcp::Stream::hold_ack
pub const ACK_HOLD_MS: u64 = 2;

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
        connection.sack = syn.options.sack_permitted;
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
        (peer_window_scale, sack): (Option<u8>, bool),
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
            connection.sack = sack;
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
            token: None,
            connect_request: None,
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
            sack: false,
            ts_recent: 0,
            cwnd: 0,
            ssthresh: u32::MAX,
            duplicate_acks: 0,
            recover: iss,
            in_recovery: false,
            sacked: ArrayVec::new(),
            retransmit_next: iss,
            rtt: RttEstimator::new(config),
            timed: None,
            retries: 0,
            rto_deadline_ms: 0,
            app_deadline_ms: 0,
            probe_deadline_ms: 0,
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
            ack_hold_deadline_ms: 0,
            ack_hold_counted: false,
            rcv_acked: Seq(0),
            dirty: false,
        }
    }

    /// The earliest armed deadline, 0 for none.
    pub fn next_deadline_ms(&self) -> u64 {
        [
            self.rto_deadline_ms,
            self.app_deadline_ms,
            self.probe_deadline_ms,
            self.linger_deadline_ms,
            self.ack_hold_deadline_ms,
        ]
        .into_iter()
        .filter(|deadline| *deadline != 0)
        .min()
        .unwrap_or(0)
    }

    /// The receive window we can offer now, in bytes.
    pub(super) fn receive_window(&self, config: &TcpConfig) -> u32 {
        let free = config.receive_buffer.saturating_sub(self.receive.held());
        // Never more than the scaled 16-bit field can say.
        free.min(usize::from(u16::MAX) << self.rcv_scale) as u32
    }

    /// The window field for a segment we send (SYN-ACKs are unscaled).
    pub(super) fn window_field(&mut self, config: &TcpConfig, syn: bool) -> u16 {
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
    pub(super) fn options(&self, now_ms: u64) -> TcpOptions {
        TcpOptions {
            timestamps: self.timestamps.then_some((now_ms as u32, self.ts_recent)),
            sack_blocks: if self.sack && self.receive.has_gaps() {
                self.receive.sack_blocks()
            } else {
                SackBlocks::default()
            },
            ..TcpOptions::default()
        }
    }

    /// Payload bytes a segment can carry now: the MSS less the options we
    /// put on it (RFC 6691: the MSS counts options, so that a segment with
    /// timestamps and SACK blocks still fits the link).
    pub(super) fn payload_room(&self) -> usize {
        usize::from(self.mss)
            .saturating_sub(self.options(0).written_len())
            .max(1)
    }

    /// Sends our SYN-ACK (again), with the options the SYN asked for.
    pub fn send_syn_ack(
        &mut self,
        now_ms: u64,
        config: &TcpConfig,
        sink: &mut dyn SegmentSink,
        tally: &mut Tally,
    ) {
        let options = TcpOptions {
            mss: Some(LOCAL_MSS),
            window_scale: (self.rcv_scale != 0 || self.snd_scale != 0 || self.offered_scale())
                .then_some(self.rcv_scale),
            sack_permitted: self.sack,
            timestamps: self.timestamps.then_some((now_ms as u32, self.ts_recent)),
            sack_blocks: Default::default(),
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
    pub(super) fn transmit(
        &mut self,
        segment: &Outgoing,
        sink: &mut dyn SegmentSink,
        tally: &mut Tally,
    ) {
        if sink.send(&self.tuple, segment, &self.send) {
            tally.bump(TcpEvent::SegmentsOut);
            tally.add(TcpEvent::BytesOut, segment.payload_len as u64);
            if segment.flags.contains(TcpFlags::ACK) {
                self.ack_pending = false;
                self.ack_hold_deadline_ms = 0;
                self.ack_hold_counted = false;
                self.rcv_acked = segment.ack;
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

    /// True when the app aborted the connection during a call.
    pub fn aborted(&self) -> bool {
        self.state == State::Closed
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
