//! `Windows`: TCP window tracking, whether a segment lies in the sequence
//! space its connection allows, in the manner of Linux conntrack's
//! `tcp_in_window` (the checks of Guido van Rooij's "Real Stateful TCP
//! Packet Filtering in IP Filter"), with RFC 7323 window scaling.
//!
//! Each side keeps the end of what it sent (`end`), the furthest the other
//! side's acknowledgment and window let it send (`max_end`), and the
//! largest window it advertised (`max_win`). A segment is in the window
//! when it starts no later than `max_end`, ends no earlier than a window
//! behind what was sent already, and acknowledges nothing the other side
//! has not sent nor lags more than a window (at least 66 000 bytes) behind
//! it. A segment outside is invalid and changes nothing: a RST guessed
//! from outside does not close the connection, a stale or forged segment
//! does not refresh it.

use super::Direction;
use super::flow::Segment;
use super::tcp_state::TcpState;
use crate::wire::tcp::TcpFlags;

/// How far an acknowledgment may lag behind what the other side sent, at
/// least (Linux's `MAXACKWINDOW` floor).
const MIN_ACK_WINDOW: u32 = 66_000;

/// `a` is later than `b` in sequence space.
#[inline]
fn after(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

/// `a` is earlier than `b` in sequence space.
#[inline]
fn before(a: u32, b: u32) -> bool {
    after(b, a)
}

/// One side's sequence space.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Side {
    /// The end of what it sent (sequence number plus length).
    end: u32,
    /// The furthest the other side's acknowledgment and window let it
    /// send.
    max_end: u32,
    /// The largest window it advertised, scaled; 0 until it is seen.
    max_win: u32,
    /// Its window scale (0 unless both SYNs offered scaling).
    scale: u8,
    /// Its SYN offered window scaling.
    offered_scale: bool,
}

impl Side {
    const EMPTY: Self = Self {
        end: 0,
        max_end: 0,
        max_win: 0,
        scale: 0,
        offered_scale: false,
    };

    /// The side as its SYN (or, for a side seen first mid-stream, any
    /// segment) sets it.
    fn start(segment: &Segment, end: u32) -> Self {
        let max_win = u32::from(segment.window).max(1);
        Self {
            end,
            max_end: end,
            max_win,
            scale: segment.window_scale.unwrap_or(0),
            offered_scale: segment.window_scale.is_some(),
        }
    }
}

/// Both sides of a tracked TCP connection, indexed by [`Direction`]
/// (original, reply).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Windows {
    sides: [Side; 2],
}

const fn index(direction: Direction) -> usize {
    match direction {
        Direction::Original => 0,
        Direction::Reply => 1,
    }
}

impl Windows {
    /// No side seen yet (a flow that is not TCP).
    pub const EMPTY: Self = Self {
        sides: [Side::EMPTY; 2],
    };

    /// A connection whose opener sent `syn`.
    pub fn open(syn: &Segment) -> Self {
        let end = syn.seq.wrapping_add(syn.len);
        Self {
            sides: [Side::start(syn, end), Side::default()],
        }
    }

    /// Whether `segment`, with `flags`, travelling `direction` along a
    /// connection in `state`, lies in the window; when it does, the
    /// sides move along with it.
    pub fn accept(
        &mut self,
        direction: Direction,
        flags: TcpFlags,
        state: TcpState,
        segment: &Segment,
    ) -> bool {
        let (s, r) = (index(direction), 1 - index(direction));
        let syn = flags.contains(TcpFlags::SYN);
        let acks = flags.contains(TcpFlags::ACK);
        let rst = flags.contains(TcpFlags::RST);
        let mut seq = segment.seq;
        let mut end = seq.wrapping_add(segment.len);
        let restarted_syn =
            syn && matches!(
                (state, direction),
                (TcpState::SynSent, Direction::Original) | (TcpState::SynRecv, Direction::Reply)
            ) && after(end, self.sides[s].end);
        if self.sides[s].max_win == 0 || restarted_syn {
            // The side's first segment: its SYN (the SYN-ACK for the
            // reply side), or a retransmitted SYN with a new ISN.
            let mut side = Side::start(segment, end);
            if !syn {
                side.max_win = u32::from(segment.window) << side.scale;
                side.max_win = side.max_win.max(1);
                side.max_end = end.wrapping_add(side.max_win);
            }
            self.sides[s] = side;
            if syn {
                let other = self.sides[r];
                // RFC 7323: scaling holds only when both SYNs offer it.
                if other.max_win != 0 && !(side.offered_scale && other.offered_scale) {
                    self.sides[s].scale = 0;
                    self.sides[r].scale = 0;
                }
                if !acks {
                    return true;
                }
            }
        }
        let sender = self.sides[s];
        let receiver = self.sides[r];
        let mut ack = segment.ack;
        if !acks || (rst && ack == 0) {
            // No acknowledgment (or a stack's zero one on a RST): it
            // acknowledges what the other side sent.
            ack = receiver.end;
        }
        if rst && seq == 0 && state == TcpState::SynSent {
            // A RST answering the SYN.
            seq = sender.end;
            end = sender.end;
        }
        let in_receive_window = receiver.max_win == 0
            || after(
                end,
                sender.end.wrapping_sub(receiver.max_win).wrapping_sub(1),
            );
        let max_ack_lag = sender.max_win.max(MIN_ACK_WINDOW);
        let acknowledges_sent = receiver.max_win == 0
            || (before(ack, receiver.end.wrapping_add(1))
                && after(ack, receiver.end.wrapping_sub(max_ack_lag).wrapping_sub(1)));
        if !(before(seq, sender.max_end.wrapping_add(1)) && in_receive_window && acknowledges_sent)
        {
            return false;
        }
        let window = if syn {
            u32::from(segment.window)
        } else {
            u32::from(segment.window) << sender.scale
        };
        let sender = &mut self.sides[s];
        sender.max_win = sender.max_win.max(window);
        if after(end, sender.end) {
            sender.end = end;
        }
        let sender_max_end = sender.max_end;
        let receiver = &mut self.sides[r];
        if receiver.max_win != 0 && after(end, sender_max_end) {
            // The sender went past what it was allowed: the receiver's
            // window was larger than seen.
            receiver.max_win = receiver
                .max_win
                .wrapping_add(end.wrapping_sub(sender_max_end));
        }
        let limit = ack.wrapping_add(window);
        if !before(limit, receiver.max_end) {
            receiver.max_end = limit.wrapping_add(u32::from(window == 0));
        }
        true
    }
}
