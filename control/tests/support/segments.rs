//! TCP segments a test exchanges with a core: a peer's side of a
//! connection (`Peer`), the segments it sends and the ones the core sent
//! back, parsed.

use super::{Harness, OUR_IP, OURS, PEER, PEER_IP, advance_clock};
use services::wire::ethernet::{EtherType, EthernetFrame};
use services::wire::ipv4::protocol;
use services::wire::tcp::{TcpFlags, TcpHeader, TcpOptions, parse_options};
use services::wire::{Ipv4Packet, TcpPacket};

/// The peer's initial sequence number on every connection.
pub const PEER_ISN: u32 = 0x1000_0000;

/// The peer's window field (scaled by its window scale of 7).
pub const PEER_WINDOW: u16 = 502;

/// A TCP segment the core sent, parsed out of its Ethernet frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub source_port: u16,
    pub destination_port: u16,
    pub sequence: u32,
    pub acknowledgment: u32,
    pub flags: TcpFlags,
    pub window: u16,
    pub options: TcpOptions,
    pub payload: Vec<u8>,
}

impl Segment {
    /// Parses `frame`, checking that it is TCP from us to the peer with
    /// valid IPv4 and TCP checksums.
    pub fn parse(frame: &[u8]) -> Self {
        let ethernet = EthernetFrame::new_checked(frame).unwrap();
        assert_eq!(ethernet.destination(), PEER);
        assert_eq!(ethernet.source(), OURS);
        assert_eq!(ethernet.ethertype(), EtherType::IPV4);
        let ip = Ipv4Packet::new_checked(ethernet.payload()).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!(ip.protocol(), protocol::TCP);
        assert_eq!(ip.source(), OUR_IP);
        assert_eq!(ip.destination(), PEER_IP);
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        assert!(tcp.verify_checksum(OUR_IP, PEER_IP));
        Self {
            source_port: tcp.source_port(),
            destination_port: tcp.destination_port(),
            sequence: tcp.sequence_number(),
            acknowledgment: tcp.acknowledgment_number(),
            flags: tcp.flags(),
            window: tcp.window(),
            options: parse_options(tcp.options()).unwrap(),
            payload: tcp.payload().to_vec(),
        }
    }

    /// Our timestamp value, which the peer echoes.
    pub fn timestamp(&self) -> u32 {
        self.options.timestamps.expect("timestamps").0
    }
}

/// An Ethernet frame from the peer carrying `header` and `payload`, with
/// both checksums filled.
pub fn frame(header: &TcpHeader, payload: &[u8]) -> Vec<u8> {
    let segment_length = header.header_len() + payload.len();
    let mut bytes = vec![0u8; 14 + 20 + segment_length];
    let mut ethernet = EthernetFrame::new_unchecked(&mut bytes[..]);
    ethernet.set_destination(OURS);
    ethernet.set_source(PEER);
    ethernet.set_ethertype(EtherType::IPV4);
    let segment = &mut bytes[34..];
    header.emit(segment);
    segment[header.header_len()..].copy_from_slice(payload);
    TcpPacket::new_unchecked(&mut segment[..]).fill_checksum(PEER_IP, OUR_IP);
    Ipv4Packet::new_unchecked(&mut bytes[14..]).emit_header(
        PEER_IP,
        OUR_IP,
        protocol::TCP,
        segment_length as u16,
        64,
    );
    bytes
}

/// The options of a Linux SYN: MSS 1460, window scale 7, SACK
/// permitted, timestamps with `timestamp` as the value.
pub fn syn_options(timestamp: u32) -> TcpOptions {
    TcpOptions {
        mss: Some(1460),
        window_scale: Some(7),
        sack_permitted: true,
        timestamps: Some((timestamp, 0)),
        sack_blocks: Default::default(),
    }
}

/// One end of a connection: a harness whose ARP cache knows the peer,
/// and the peer's side of the conversation on one port.
pub struct Peer {
    pub harness: Harness,
    /// The peer's port.
    pub port: u16,
    /// Our port it talks to.
    pub our_port: u16,
    /// The peer's next sequence number.
    pub sequence: u32,
    /// What the peer acknowledges: our next sequence number.
    pub acknowledgment: u32,
    /// The peer's next timestamp value (it grows by one a segment).
    pub timestamp: u32,
    /// The last timestamp value we sent, which the peer echoes.
    pub echo: u32,
}

impl Peer {
    /// A core for `spec` with the clock past zero and the peer learnt.
    pub fn new(spec: &str, port: u16, our_port: u16) -> Self {
        Self::with_harness(Harness::new(spec), port, our_port)
    }

    /// [`Peer::new`] on a core built by the caller.
    pub fn with_harness(mut harness: Harness, port: u16, our_port: u16) -> Self {
        advance_clock(5_000_000_000);
        harness.learn((PEER, PEER_IP));
        Self {
            harness,
            port,
            our_port,
            sequence: PEER_ISN,
            acknowledgment: 0,
            timestamp: 1000,
            echo: 0,
        }
    }

    /// The header of a segment from the peer with `flags` and
    /// `options`, at the peer's current numbers.
    pub fn header(&self, flags: TcpFlags, options: TcpOptions) -> TcpHeader {
        TcpHeader {
            source_port: self.port,
            destination_port: self.our_port,
            sequence: self.sequence,
            acknowledgment: if flags.contains(TcpFlags::ACK) {
                self.acknowledgment
            } else {
                0
            },
            flags,
            window: PEER_WINDOW,
            options,
        }
    }

    /// The options of a segment after the handshake: timestamps.
    pub fn options(&mut self) -> TcpOptions {
        self.timestamp += 1;
        TcpOptions {
            timestamps: Some((self.timestamp, self.echo)),
            ..TcpOptions::default()
        }
    }

    /// Injects `header` with `payload`, polls once and returns every
    /// segment sent back, in order.
    pub fn exchange(&mut self, header: &TcpHeader, payload: &[u8]) -> Vec<Segment> {
        self.harness.inject(0, &frame(header, payload));
        self.harness.executor.poll_once();
        self.transmitted()
    }

    /// Every segment transmitted since the last look, in order.
    pub fn transmitted(&mut self) -> Vec<Segment> {
        let segments: Vec<Segment> = core::iter::from_fn(|| self.harness.take(0))
            .map(|frame| Segment::parse(&frame))
            .collect();
        if let Some(last) = segments.last()
            && let Some((value, _)) = last.options.timestamps
        {
            self.echo = value;
        }
        segments
    }

    /// Sends a segment with `flags` (and timestamps) carrying
    /// `payload` at the peer's numbers, which move past it.
    pub fn send(&mut self, flags: TcpFlags, payload: &[u8]) -> Vec<Segment> {
        let options = self.options();
        let header = self.header(flags, options);
        self.sequence = self
            .sequence
            .wrapping_add(payload.len() as u32)
            .wrapping_add(u32::from(flags.contains(TcpFlags::FIN)));
        self.exchange(&header, payload)
    }

    /// Sends the SYN and returns our one SYN-ACK.
    pub fn syn(&mut self) -> Segment {
        let header = self.header(TcpFlags::SYN, syn_options(self.timestamp));
        self.sequence = self.sequence.wrapping_add(1);
        let mut replies = self.exchange(&header, b"");
        assert_eq!(replies.len(), 1, "{replies:?}");
        let syn_ack = replies.remove(0);
        self.acknowledgment = syn_ack.sequence.wrapping_add(1);
        syn_ack
    }

    /// The whole handshake: SYN, our SYN-ACK, the peer's ACK (which
    /// gets no reply).
    pub fn connect(&mut self) -> Segment {
        let syn_ack = self.syn();
        assert!(self.send(TcpFlags::ACK, b"").is_empty());
        syn_ack
    }

    /// A counter of the `tcp` node's events.
    pub fn event(&self, name: &str) -> u64 {
        self.harness.counters().node_events("tcp", name)
    }

    /// A counter of the `tcp` node's drops.
    pub fn drops(&self, reason: &str) -> u64 {
        self.harness.counters().node_drops("tcp", reason)
    }
}
