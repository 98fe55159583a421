//! What the `tcp` node counts: its drop reasons and its events, and the
//! per-burst tally the connections add to.

use dataplane::{drop_reasons, events};

drop_reasons! {
    /// Why the `tcp` node drops a segment (counted; a reply, if any, is
    /// said beside each).
    TcpDrop {
        /// Shorter than the 20-byte header.
        Truncated = "truncated",
        /// Data offset below 5 or beyond the segment.
        BadDataOffset = "bad-data-offset",
        /// Checksum mismatch.
        BadChecksum = "bad-checksum",
        /// A flag mix no valid segment has (SYN+FIN, SYN+RST, none of
        /// SYN, ACK, RST).
        BadFlags = "bad-flags",
        /// An option with a bad length.
        BadOptions = "bad-options",
        /// To or from a broadcast or multicast address (RFC 1122 4.2.3.10).
        NotUnicast = "not-unicast",
        /// No app on the port: answered with RST.
        PortClosed = "port-closed",
        /// No connection and not a SYN: answered with RST.
        NoConnection = "no-connection",
        /// Outside the receive window: answered with an ACK.
        OutOfWindow = "out-of-window",
        /// Its timestamp is older than the connection's (RFC 7323 PAWS).
        Paws = "paws",
        /// Acknowledges nothing we sent, or a SYN or RST where it cannot
        /// be (answered as RFC 9293 and RFC 5961 say).
        BadAck = "bad-ack",
        /// For a connection in TIME-WAIT (answered with an ACK).
        TimeWait = "time-wait",
        /// The completing ACK of a handshake with no room for the
        /// connection (the peer retransmits it).
        ListenOverflow = "listen-overflow",
        /// A SYN cookie that does not check out: answered with RST.
        BadCookie = "bad-cookie",
        /// An out-of-order segment with no room to hold it.
        NoRoom = "no-room",
        /// Not a SYN, for a connection another core owns (the NIC's
        /// steering sent it astray): dropped, not reset.
        WrongCore = "wrong-core",
        /// For the port of an app that failed and waits for its restart
        /// (supervision): answered with RST.
        AppDown = "app-down",
    }
}

events! {
    /// What the `tcp` node counts besides drops.
    TcpEvent {
        /// Segments that carried data or control into a connection.
        SegmentsIn = "segments-in",
        /// Segments sent.
        SegmentsOut = "segments-out",
        /// Payload bytes received in order.
        BytesIn = "bytes-in",
        /// Payload bytes sent (retransmissions included).
        BytesOut = "bytes-out",
        /// Connections established and handed to their app.
        Accepted = "connections-accepted",
        /// Connections closed cleanly (both FINs acknowledged).
        Closed = "connections-closed",
        /// Connections reset by the peer.
        ResetByPeer = "connections-reset",
        /// Connections the app aborted or refused.
        Aborted = "connections-aborted",
        /// Connections given up after unanswered retransmissions.
        TimedOut = "connections-timed-out",
        /// RSTs sent.
        ResetsSent = "resets-sent",
        /// Segments retransmitted after a timeout.
        Retransmits = "retransmits",
        /// Segments retransmitted after three duplicate ACKs.
        FastRetransmits = "fast-retransmits",
        /// Retransmission timeouts.
        Timeouts = "rto-expired",
        /// SYN-ACKs sent with a cookie (the SYN queue was full).
        CookiesSent = "syn-cookies-sent",
        /// Connections established from a valid cookie.
        CookiesAccepted = "syn-cookies-accepted",
        /// Connections that entered TIME-WAIT.
        TimeWaitEntered = "time-wait-entered",
        /// TIME-WAIT entries reused early because the table was full.
        TimeWaitRecycled = "time-wait-recycled",
        /// Segments that arrived ahead of a gap.
        OutOfOrder = "out-of-order",
        /// Challenge ACKs (RFC 5961) sent.
        ChallengeAcks = "challenge-acks",
        /// Zero-window probes sent.
        WindowProbes = "window-probes",
        /// Segments not sent because the pool was dry.
        NoBuffer = "no-buffer",
        /// Tail loss probes sent (RFC 8985 7).
        TailLossProbes = "tail-loss-probes",
        /// Connections we opened (an app's `connect`) that got established.
        Connected = "connections-opened",
        /// Connections we opened that the peer refused with RST.
        ConnectsRefused = "connections-refused",
        /// Connections an app asked for that could not even be tried (no
        /// route, no free ephemeral port, the table full).
        ConnectsFailed = "connects-failed",
        /// Segments that arrived on this core for a connection another
        /// core owns, passed to that core over the cores' TCP rings.
        HandedOff = "segments-handed-off",
        /// Segments other cores passed here for connections of this core.
        HandedIn = "segments-handed-in",
        /// Connections reset because their app failed (supervision).
        ResetAppFailed = "connections-reset-app-failed",
        /// Bare ACKs held back because the app's answer was on its way
        /// ([`Stream::hold_ack`](super::Stream::hold_ack)): the ACK goes
        /// with the answer, one segment instead of two.
        AcksHeld = "acks-held",
        /// Held ACKs sent alone after all, the answer not written within
        /// [`ACK_HOLD_MS`](super::connection::ACK_HOLD_MS).
        AcksHeldExpired = "acks-held-expired",
        /// Held ACKs sent before their deadline without an answer: a FIN
        /// or state change, two full-sized segments unacknowledged, or
        /// data out of order.
        AcksHeldReleased = "acks-held-released",
    }
}

/// Event counts of one burst, added to the node's counters once at its end.
#[derive(Debug, Default, Clone)]
pub struct Tally([u64; TcpEvent::NAMES.len()]);

impl Tally {
    /// Counts one `event`.
    #[inline]
    pub fn bump(&mut self, event: TcpEvent) {
        self.0[event as usize] += 1;
    }

    /// Counts `n` of `event`.
    #[inline]
    pub fn add(&mut self, event: TcpEvent, n: u64) {
        self.0[event as usize] += n;
    }

    /// The count of `event` so far.
    pub fn get(&self, event: TcpEvent) -> u64 {
        self.0[event as usize]
    }

    /// Every (event index, count) not zero, and resets the tally.
    pub fn drain(&mut self) -> impl Iterator<Item = (usize, u64)> + '_ {
        self.0
            .iter_mut()
            .enumerate()
            .filter(|(_, count)| **count != 0)
            .map(|(index, count)| (index, core::mem::take(count)))
    }
}

// Every event must have a counter slot, or it is silently not counted.
const _: () = assert!(TcpEvent::NAMES.len() <= dataplane::stats::MAX_EVENTS);
const _: () = assert!(TcpDrop::NAMES.len() <= dataplane::stats::MAX_DROP_REASONS);
