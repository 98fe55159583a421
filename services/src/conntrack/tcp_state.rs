//! `TcpState`: the TCP connection states a firewall needs, the transition
//! each segment makes, and `Timeouts`: how long a flow lives idle in each
//! state, Linux conntrack's defaults unless the spec says otherwise.

use super::Direction;
use crate::wire::tcp::TcpFlags;

/// Where a tracked TCP connection is (the names of Linux conntrack).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpState {
    /// The opener's SYN went out; no SYN-ACK yet.
    SynSent,
    /// The SYN-ACK came back; the opener's ACK not yet.
    SynRecv,
    /// The handshake completed.
    Established,
    /// One side sent FIN.
    FinWait,
    /// The other side acknowledged that FIN (half-closed).
    CloseWait,
    /// Both sides sent FIN; the last ACK not yet.
    LastAck,
    /// The last FIN was acknowledged.
    TimeWait,
    /// A RST closed the connection.
    Close,
}

/// What a segment means for the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpStep {
    /// The connection moves to (or stays in) this state.
    To(TcpState),
    /// The segment does not fit the connection (a SYN-ACK from the
    /// opener, data before the handshake): it is invalid, and the state
    /// stays.
    Invalid,
}

impl TcpState {
    /// The state a connection starts in from its first segment: only a
    /// plain SYN opens one (no mid-stream pickup: a firewall that started
    /// after the handshake drops the connection's segments as invalid).
    pub fn open(flags: TcpFlags) -> Option<Self> {
        let opening = flags.contains(TcpFlags::SYN)
            && !flags.intersects(TcpFlags::ACK | TcpFlags::RST | TcpFlags::FIN);
        opening.then_some(Self::SynSent)
    }

    /// The step segment `flags` travelling `direction` makes; `fin_by`
    /// is the direction that sent the first FIN (in FIN-WAIT and later).
    pub fn step(self, flags: TcpFlags, direction: Direction, fin_by: Direction) -> TcpStep {
        use Direction::{Original, Reply};
        use TcpState::*;
        if flags.contains(TcpFlags::RST) {
            return TcpStep::To(Close);
        }
        let syn = flags.contains(TcpFlags::SYN);
        let ack = flags.contains(TcpFlags::ACK);
        let fin = flags.contains(TcpFlags::FIN);
        let step = match (self, direction) {
            // A new SYN after the old connection closed reopens the flow.
            (TimeWait | Close, Original) if syn && !ack => SynSent,
            (_, _) if syn && ack && direction == Original => return TcpStep::Invalid,
            (SynSent, Original) if syn => SynSent,
            (SynSent, Reply) if syn => SynRecv,
            (SynSent, _) => return TcpStep::Invalid,
            (SynRecv, Reply) if syn => SynRecv,
            (SynRecv, Original) if fin => FinWait,
            (SynRecv, Original) if ack => Established,
            (SynRecv, _) => return TcpStep::Invalid,
            // A retransmitted SYN-ACK whose final ACK was lost.
            (Established, Reply) if syn && ack => Established,
            (_, _) if syn => return TcpStep::Invalid,
            (Established, _) if fin => FinWait,
            (Established, _) => Established,
            (FinWait | CloseWait, side) if fin && side != fin_by => LastAck,
            (FinWait, side) if ack && side != fin_by => CloseWait,
            (LastAck, side) if ack && side == fin_by => TimeWait,
            (state, _) => state,
        };
        TcpStep::To(step)
    }
}

/// Idle timeouts per state, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP SYN-SENT (Linux: 120).
    pub tcp_syn_sent: u32,
    /// TCP SYN-RECV (Linux: 60).
    pub tcp_syn_recv: u32,
    /// TCP ESTABLISHED (Linux: 432000, five days).
    pub tcp_established: u32,
    /// TCP FIN-WAIT (Linux: 120).
    pub tcp_fin_wait: u32,
    /// TCP CLOSE-WAIT (Linux: 60).
    pub tcp_close_wait: u32,
    /// TCP LAST-ACK (Linux: 30).
    pub tcp_last_ack: u32,
    /// TCP TIME-WAIT (Linux: 120).
    pub tcp_time_wait: u32,
    /// TCP CLOSE, after a RST (Linux: 10).
    pub tcp_close: u32,
    /// UDP before a reply (Linux: 30).
    pub udp: u32,
    /// UDP once both sides spoke (Linux `udp_timeout_stream`: 120).
    pub udp_stream: u32,
    /// ICMP echo (Linux: 30).
    pub icmp: u32,
    /// Any other protocol (Linux `generic_timeout`: 600).
    pub generic: u32,
}

impl Timeouts {
    /// Linux conntrack's defaults (`nf_conntrack_*_timeout*` sysctls).
    pub const LINUX: Self = Self {
        tcp_syn_sent: 120,
        tcp_syn_recv: 60,
        tcp_established: 432_000,
        tcp_fin_wait: 120,
        tcp_close_wait: 60,
        tcp_last_ack: 30,
        tcp_time_wait: 120,
        tcp_close: 10,
        udp: 30,
        udp_stream: 120,
        icmp: 30,
        generic: 600,
    };

    /// The timeout of TCP state `state`, in seconds.
    pub const fn tcp(&self, state: TcpState) -> u32 {
        match state {
            TcpState::SynSent => self.tcp_syn_sent,
            TcpState::SynRecv => self.tcp_syn_recv,
            TcpState::Established => self.tcp_established,
            TcpState::FinWait => self.tcp_fin_wait,
            TcpState::CloseWait => self.tcp_close_wait,
            TcpState::LastAck => self.tcp_last_ack,
            TcpState::TimeWait => self.tcp_time_wait,
            TcpState::Close => self.tcp_close,
        }
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Self::LINUX
    }
}
