//! `Stream::hold_ack` on one connection driven segment by segment: the
//! two-segment rule with timestamps, a FIN, a filled gap and the deadline.

use super::{Connection, FourTuple, Incoming, Outgoing, SegmentSink};
use crate::tcp::app::{ConnectionId, Stream, TcpApp};
use crate::tcp::buffer::SendBuffer;
use crate::tcp::config::TcpConfig;
use crate::tcp::events::{Tally, TcpEvent};
use crate::tcp::listener::Hosted;
use crate::tcp::seq::Seq;
use crate::wire::tcp::{TcpFlags, TcpOptions};
use alloc::vec::Vec;
use core::net::{Ipv4Addr, SocketAddrV4};

/// Takes every byte and asks to hold the ACK, as kv does while answers
/// come from another core.
struct Holder;

impl TcpApp for Holder {
    type Session = ();

    fn accept(&mut self, _peer: SocketAddrV4, _io: &mut Stream<'_>) -> Option<()> {
        Some(())
    }

    fn data(&mut self, _session: &mut (), data: &[u8], io: &mut Stream<'_>) -> usize {
        io.hold_ack();
        data.len()
    }

    /// Stays open: a FIN's ACK goes alone, not with ours.
    fn read_closed(&mut self, _session: &mut (), _io: &mut Stream<'_>) {}
}

/// The segments sent: (flags, ack, payload length).
#[derive(Default)]
struct Sent(Vec<(TcpFlags, Seq, usize)>);

impl SegmentSink for Sent {
    fn send(&mut self, _tuple: &FourTuple, segment: &Outgoing, _send: &SendBuffer) -> bool {
        self.0
            .push((segment.flags, segment.ack, segment.payload_len));
        true
    }
}

const PEER_ISS: u32 = 1000;
const MSS: u16 = 1460;

struct Harness {
    connection: Connection,
    app: Hosted<Holder>,
    config: TcpConfig,
    sent: Sent,
    tally: Tally,
    now_ms: u64,
}

fn options() -> TcpOptions {
    TcpOptions {
        timestamps: Some((1, 1)),
        ..TcpOptions::default()
    }
}

impl Harness {
    /// An established connection whose peer sends timestamps.
    fn new() -> Self {
        let config = TcpConfig::default();
        let tuple = FourTuple {
            local: SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 11211),
            remote: SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 40000),
        };
        let syn = Incoming {
            seq: Seq(PEER_ISS),
            ack: Seq(0),
            flags: TcpFlags::SYN,
            window: 65535,
            options: TcpOptions {
                mss: Some(MSS),
                timestamps: Some((1, 0)),
                ..TcpOptions::default()
            },
            payload: &[],
        };
        let id = ConnectionId {
            slot: 0,
            generation: 0,
        };
        let connection = Connection::passive(tuple, id, 0, &syn, Seq(5000), MSS, &config);
        let mut harness = Self {
            connection,
            app: Hosted::new("holder", Holder),
            config,
            sent: Sent::default(),
            tally: Tally::default(),
            now_ms: 1_000,
        };
        harness.segment(PEER_ISS + 1, TcpFlags::ACK, &[]);
        assert!(
            harness
                .connection
                .accept(&mut harness.app, 0, &mut harness.tally)
        );
        harness.sent.0.clear();
        harness
    }

    /// The peer's segment at `seq`, then the output pass that ends a burst.
    fn segment(&mut self, seq: u32, flags: TcpFlags, payload: &[u8]) {
        let segment = Incoming {
            seq: Seq(seq),
            ack: Seq(5001),
            flags,
            window: 65535,
            options: options(),
            payload,
        };
        let now_ns = self.now_ms * 1_000_000;
        self.connection.on_segment(
            &segment,
            self.now_ms,
            now_ns,
            &self.config,
            &mut self.app,
            &mut self.sent,
            &mut self.tally,
        );
        self.output();
    }

    fn output(&mut self) {
        self.connection
            .output(self.now_ms, &self.config, &mut self.sent, &mut self.tally);
    }

    /// Bare ACKs sent so far, taken.
    fn bare_acks(&mut self) -> Vec<u32> {
        self.sent
            .0
            .drain(..)
            .filter(|(_, _, length)| *length == 0)
            .map(|(_, ack, _)| ack.0)
            .collect()
    }

    fn count(&self, event: TcpEvent) -> u64 {
        self.tally.get(event)
    }
}

const DATA: u32 = PEER_ISS + 1;

#[test]
fn a_held_ack_goes_at_two_full_segments_with_timestamps() {
    let mut harness = Harness::new();
    // With timestamps a full segment carries 1460 - 12 = 1448 bytes.
    let full = [b'x'; 1448];
    harness.segment(DATA, TcpFlags::ACK, &full);
    assert_eq!(harness.bare_acks(), Vec::<u32>::new(), "one segment: held");
    // Output passes while held count the hold once.
    harness.output();
    harness.output();
    assert_eq!(harness.count(TcpEvent::AcksHeld), 1);
    harness.segment(DATA + 1448, TcpFlags::ACK, &full);
    assert_eq!(
        harness.bare_acks(),
        [DATA + 2896],
        "two full segments: ACK now"
    );
    assert_eq!(harness.count(TcpEvent::AcksHeldReleased), 1);
    assert_eq!(harness.count(TcpEvent::AcksHeldExpired), 0);
}

#[test]
fn a_fin_is_acked_at_once() {
    let mut harness = Harness::new();
    harness.segment(DATA, TcpFlags::ACK, b"get k\r\n");
    assert!(harness.bare_acks().is_empty());
    harness.segment(DATA + 7, TcpFlags::ACK | TcpFlags::FIN, &[]);
    assert_eq!(harness.bare_acks(), [DATA + 8]);
    assert_eq!(harness.count(TcpEvent::AcksHeld), 1);
    assert_eq!(harness.count(TcpEvent::AcksHeldReleased), 1);
}

#[test]
fn out_of_order_data_and_a_filled_gap_are_acked_at_once() {
    let mut harness = Harness::new();
    // A segment past a gap: its duplicate ACK (with SACK) goes at once.
    harness.segment(DATA + 10, TcpFlags::ACK, &[b'b'; 10]);
    assert_eq!(harness.bare_acks(), [DATA]);
    // The gap filled: everything is ACKed at once (RFC 5681 4.2), though
    // the app asked to hold.
    harness.segment(DATA, TcpFlags::ACK, &[b'a'; 10]);
    assert_eq!(harness.bare_acks(), [DATA + 20]);
    assert_eq!(harness.count(TcpEvent::AcksHeld), 0);
    // In order again with nothing missing: held.
    harness.segment(DATA + 20, TcpFlags::ACK, &[b'c'; 10]);
    assert!(harness.bare_acks().is_empty());
    assert_eq!(harness.count(TcpEvent::AcksHeld), 1);
}

#[test]
fn a_held_ack_goes_alone_at_its_deadline() {
    let mut harness = Harness::new();
    harness.segment(DATA, TcpFlags::ACK, b"get k\r\n");
    assert!(harness.bare_acks().is_empty());
    harness.now_ms += super::ACK_HOLD_MS - 1;
    harness.output();
    assert!(harness.bare_acks().is_empty(), "not yet");
    harness.now_ms += 1;
    assert_eq!(harness.connection.next_deadline_ms(), harness.now_ms);
    harness.output();
    assert_eq!(harness.bare_acks(), [DATA + 7]);
    assert_eq!(harness.count(TcpEvent::AcksHeld), 1);
    assert_eq!(harness.count(TcpEvent::AcksHeldExpired), 1);
    assert_eq!(harness.count(TcpEvent::AcksHeldReleased), 0);
}
