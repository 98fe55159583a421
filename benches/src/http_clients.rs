//! `HttpClients`: a NIC whose wire leads to N HTTP/1.1 keep-alive clients
//! of the appliance's `http` app (or N memcached clients of its `kv` app,
//! by [`Protocol`]), so the TCP stack can be measured per request at any
//! number of open connections.
//!
//! The clients open their connections first (every SYN, then the ACK of
//! every SYN-ACK, cookies or not), then take turns round-robin: each
//! receive burst is the next clients' requests, each transmitted response
//! is checked and acknowledged by its client's next request. A request is
//! one frame template with the port, the numbers and the checksum patched
//! in, written into a buffer the stack transmitted before: the clients'
//! cost per request is the same whatever N, and small.

use crate::frames::{OUR_IP, OUR_MAC, PEER_IP, PEER_MAC, arp_request};
use dataplane::mem::mempool::DEFAULT_HEADROOM;
use dataplane::{BURST_SIZE, Batch, LinkInfo, MacAddr, Mempool, Nic, Packet};
use services::wire::ethernet::{self, EtherType};
use services::wire::ipv4::{self, protocol};
use services::wire::tcp::{TcpFlags, TcpHeader, TcpOptions};
use services::wire::{EthernetFrame, Ipv4Packet, TcpPacket};
use std::collections::VecDeque;

/// The port the `http` app serves.
pub const HTTP_PORT: u16 = 80;
/// The port the `kv` app serves.
pub const KV_PORT: u16 = 11211;
/// The first client's port; client `i` sends from `FIRST_CLIENT_PORT + i`.
pub const FIRST_CLIENT_PORT: u16 = 10_000;
/// Most clients one NIC plays (the ports above [`FIRST_CLIENT_PORT`]).
pub const MAX_CLIENTS: usize = (u16::MAX - FIRST_CLIENT_PORT) as usize;
/// What every client asks.
pub const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: b\r\n\r\n";
/// What the app answers (`/` of [`crate::pipelines::http_spec`]), whole, in
/// one segment.
pub const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nServer: warpcore\r\nContent-Type: text/plain\r\nContent-Length: 20\r\n\r\nhello from warpcore\n";
/// The key every memcached client sets once, then gets.
pub const KV_SET: &[u8] = b"set key 0 0 32\r\n0123456789abcdef0123456789abcdef\r\n";
/// What the `kv` app answers a set.
pub const KV_STORED: &[u8] = b"STORED\r\n";
/// What every memcached client asks after its set.
pub const KV_GET: &[u8] = b"get key\r\n";
/// What the `kv` app answers the get, whole, in one segment.
pub const KV_VALUE: &[u8] = b"VALUE key 0 32\r\n0123456789abcdef0123456789abcdef\r\nEND\r\n";
/// [`KV_SET`] of another key, `kez`: of two shards, `key` is shard 0's
/// and `kez` shard 1's (the two-shard harness checks it).
pub const KV_OTHER_SET: &[u8] = b"set kez 0 0 32\r\n0123456789abcdef0123456789abcdef\r\n";
/// [`KV_GET`] of `kez`.
pub const KV_OTHER_GET: &[u8] = b"get kez\r\n";
/// [`KV_VALUE`] of `kez`.
pub const KV_OTHER_VALUE: &[u8] = b"VALUE kez 0 32\r\n0123456789abcdef0123456789abcdef\r\nEND\r\n";

/// What the clients say: the server's port, a first exchange each client
/// makes once, and the exchange it repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Protocol {
    /// The server's port.
    pub port: u16,
    /// Each client's first request and its expected response.
    pub first: (&'static [u8], &'static [u8]),
    /// Every later request and its expected response.
    pub steady: (&'static [u8], &'static [u8]),
}

impl Protocol {
    /// `GET /` to the `http` app, every time.
    pub const HTTP: Self = Self {
        port: HTTP_PORT,
        first: (REQUEST, RESPONSE),
        steady: (REQUEST, RESPONSE),
    };
    /// memcached's text protocol to the `kv` app: `set key` once, then
    /// `get key` (a hit, a 32-byte value).
    pub const MEMCACHE_GET: Self = Self {
        port: KV_PORT,
        first: (KV_SET, KV_STORED),
        steady: (KV_GET, KV_VALUE),
    };
    /// As [`Protocol::MEMCACHE_GET`] with the key `kez`.
    pub const MEMCACHE_GET_OTHER_KEY: Self = Self {
        port: KV_PORT,
        first: (KV_OTHER_SET, KV_STORED),
        steady: (KV_OTHER_GET, KV_OTHER_VALUE),
    };
}

/// One exchange as the clients play it: a request frame with port,
/// numbers and checksum zero, and the response expected.
#[derive(Debug, Clone)]
struct Exchange {
    template: Vec<u8>,
    /// The template's TCP checksum before it was complemented.
    base: u16,
    /// The request's payload bytes.
    request_len: u32,
    response: &'static [u8],
}

impl Exchange {
    fn new(port: u16, (request, response): (&'static [u8], &'static [u8])) -> Self {
        let template = request_template(port, request);
        let base =
            !u16::from_be_bytes([template[offset::CHECKSUM], template[offset::CHECKSUM + 1]]);
        Self {
            template,
            base,
            request_len: request.len() as u32,
            response,
        }
    }
}

/// Every client's initial sequence number.
const CLIENT_ISN: u32 = 0x1000_0000;
/// The clients' receive window (no window scale is offered).
const CLIENT_WINDOW: u16 = u16::MAX;
/// The MSS the clients offer.
const CLIENT_MSS: u16 = 1460;
/// Buffers of the clients' own pool: handshake frames and the first
/// requests (later ones reuse transmitted buffers).
const CLIENT_POOL_BUFFERS: usize = 4 * BURST_SIZE;
/// Transmitted buffers kept for reuse.
const SPARES: usize = 2 * BURST_SIZE;

/// Where a request frame's patched fields sit, from the frame start.
mod offset {
    use services::wire::{ethernet, ipv4};

    /// The TCP header.
    pub const TCP: usize = ethernet::HEADER_LEN + ipv4::HEADER_LEN;
    /// Source port.
    pub const SOURCE_PORT: usize = TCP;
    /// Sequence number.
    pub const SEQUENCE: usize = TCP + 4;
    /// Acknowledgment number.
    pub const ACKNOWLEDGMENT: usize = TCP + 8;
    /// Checksum.
    pub const CHECKSUM: usize = TCP + 16;
}

/// Where a client's connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Its SYN is not sent yet.
    New,
    /// SYN sent, waiting for the SYN-ACK.
    SynSent,
    /// SYN-ACK received, ACK not sent yet.
    AckOwed,
    /// Open, no request outstanding.
    Open,
    /// Open, a request outstanding.
    Waiting,
}

/// Which of the protocol's exchanges a client is at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Turn {
    First,
    Steady,
}

/// One client's side of its connection.
#[derive(Debug, Clone, Copy)]
struct Client {
    stage: Stage,
    /// The client's next sequence number.
    sequence: u32,
    /// What it acknowledges: the server's next sequence number.
    acknowledgment: u32,
    /// The exchange its next (or outstanding) request belongs to.
    turn: Turn,
}

/// What the clients saw.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ClientCounts {
    /// Frames handed out by `rx_burst`.
    pub received: u64,
    /// Requests among them.
    pub requests: u64,
    /// SYN-ACKs taken (cookies among them).
    pub syn_acks: u64,
    /// Correct responses taken.
    pub responses: u64,
    /// Bare ACKs of a request, before its response: a segment more per
    /// request on the wire (an answer that was not ready within the
    /// burst that brought its request).
    pub bare_acks: u64,
    /// Transmitted frames that were not IPv4 (ARP), dropped.
    pub ignored: u64,
    /// Transmitted frames that were wrong: not TCP to a client, bad
    /// checksums (when checked), unexpected flags or numbers, or a
    /// response that is not the one expected.
    pub wrong: u64,
}

/// A NIC playing `connections` HTTP/1.1 clients from 10.0.0.1 (ports from
/// [`FIRST_CLIENT_PORT`], or another first port) to the appliance's port
/// 80, or the clients of another [`Protocol`].
pub struct HttpClients {
    mac: MacAddr,
    clients: Vec<Client>,
    /// Client `i` sends from `first_port + i`.
    first_port: u16,
    /// The ARP request that teaches the stack the clients' MAC, sent alone
    /// first.
    arp: Option<Vec<u8>>,
    /// Clients whose SYN is sent: the next SYN is client `syns_sent`.
    syns_sent: usize,
    /// Clients that owe the ACK of their SYN-ACK.
    acks_owed: VecDeque<u32>,
    /// Clients whose ACK is sent.
    opened: usize,
    /// The client whose turn is next.
    cursor: usize,
    /// Most requests in one receive burst.
    burst: usize,
    /// The server's port.
    port: u16,
    /// Each client's first exchange, and the one it repeats.
    first: Exchange,
    steady: Exchange,
    /// Transmitted buffers, written over for the next requests.
    spare: Vec<Packet>,
    /// Buffers for the handshake and the first requests.
    pool: Mempool,
    /// Verify both checksums of every transmitted frame (off when counting
    /// instructions: a client's checksums are not the stack's cost).
    verify_checksums: bool,
    counts: ClientCounts,
}

impl HttpClients {
    /// `connections` clients (at most [`MAX_CLIENTS`]) that send at most
    /// `burst` requests per receive burst (at most [`BURST_SIZE`]; with
    /// one request outstanding per client, at most `connections`).
    pub fn new(connections: usize, burst: usize) -> Self {
        Self::with_protocol(connections, burst, Protocol::HTTP)
    }

    /// As [`HttpClients::new`], the clients speaking `protocol`.
    pub fn with_protocol(connections: usize, burst: usize, protocol: Protocol) -> Self {
        assert!(
            (1..=MAX_CLIENTS).contains(&connections),
            "1 to {MAX_CLIENTS} clients"
        );
        assert!((1..=BURST_SIZE).contains(&burst), "1 to {BURST_SIZE}");
        let clients = (0..connections)
            .map(|_| Client {
                stage: Stage::New,
                sequence: CLIENT_ISN,
                acknowledgment: 0,
                turn: Turn::First,
            })
            .collect();
        Self {
            mac: OUR_MAC,
            clients,
            first_port: FIRST_CLIENT_PORT,
            arp: Some(arp_request()),
            syns_sent: 0,
            acks_owed: VecDeque::with_capacity(connections),
            opened: 0,
            cursor: 0,
            burst,
            port: protocol.port,
            first: Exchange::new(protocol.port, protocol.first),
            steady: Exchange::new(protocol.port, protocol.steady),
            spare: Vec::with_capacity(SPARES),
            pool: Mempool::with_heap(CLIENT_POOL_BUFFERS, DEFAULT_HEADROOM).expect("heap pool"),
            verify_checksums: false,
            counts: ClientCounts::default(),
        }
    }

    /// The same clients sending from `first_port` up (clients of two
    /// cores' NICs must not share a 4-tuple); panics when the last
    /// client's port would pass 65 535.
    pub fn with_first_port(mut self, first_port: u16) -> Self {
        assert!(
            usize::from(first_port) + self.clients.len() <= usize::from(u16::MAX),
            "ports from {first_port} for {} clients",
            self.clients.len()
        );
        self.first_port = first_port;
        self
    }

    /// Checks both checksums of every transmitted frame from now on.
    pub fn verify_checksums(&mut self, verify: bool) {
        self.verify_checksums = verify;
    }

    /// How many clients play.
    pub fn connections(&self) -> usize {
        self.clients.len()
    }

    /// Requests per receive burst once every connection is open.
    pub fn burst(&self) -> usize {
        self.burst.min(self.clients.len())
    }

    /// True once every client sent the ACK of its SYN-ACK.
    pub fn all_open(&self) -> bool {
        self.opened == self.clients.len()
    }

    /// Requests sent and not answered yet.
    pub fn outstanding(&self) -> usize {
        (self.counts.requests - self.counts.responses) as usize
    }

    /// What the clients saw so far.
    pub fn counts(&self) -> ClientCounts {
        self.counts
    }

    /// A buffer to write a frame into: a transmitted one, or a fresh one.
    fn buffer(&mut self) -> Option<Packet> {
        self.spare.pop().or_else(|| self.pool.alloc())
    }

    /// Queues `bytes` as a received frame; false when no buffer is left.
    fn push_frame(&mut self, batch: &mut Batch, bytes: &[u8]) -> bool {
        let Some(mut packet) = self.buffer() else {
            return false;
        };
        if packet.set_range(DEFAULT_HEADROOM, bytes.len()).is_err() {
            return false;
        }
        packet.payload_mut().copy_from_slice(bytes);
        batch.push(packet).is_ok()
    }

    /// Fills `batch` with SYNs, then with the ACKs of SYN-ACKs.
    fn handshake_burst(&mut self, batch: &mut Batch) -> usize {
        let mut count = 0;
        while !batch.is_full() && self.syns_sent < self.clients.len() {
            let index = self.syns_sent;
            let options = TcpOptions {
                mss: Some(CLIENT_MSS),
                ..TcpOptions::default()
            };
            let frame = self.handshake_frame(index, TcpFlags::SYN, options);
            if !self.push_frame(batch, &frame) {
                return count;
            }
            let client = &mut self.clients[index];
            client.stage = Stage::SynSent;
            client.sequence = CLIENT_ISN.wrapping_add(1);
            self.syns_sent += 1;
            count += 1;
        }
        while !batch.is_full()
            && let Some(&index) = self.acks_owed.front()
        {
            let frame = self.handshake_frame(index as usize, TcpFlags::ACK, TcpOptions::default());
            if !self.push_frame(batch, &frame) {
                return count;
            }
            self.acks_owed.pop_front();
            self.clients[index as usize].stage = Stage::Open;
            self.opened += 1;
            count += 1;
        }
        count
    }

    /// A SYN or ACK from client `index` at its numbers, checksums filled.
    fn handshake_frame(&self, index: usize, flags: TcpFlags, options: TcpOptions) -> Vec<u8> {
        let client = &self.clients[index];
        let header = TcpHeader {
            source_port: client_port(self.first_port, index),
            destination_port: self.port,
            sequence: if flags.contains(TcpFlags::SYN) {
                CLIENT_ISN
            } else {
                client.sequence
            },
            acknowledgment: if flags.contains(TcpFlags::ACK) {
                client.acknowledgment
            } else {
                0
            },
            flags,
            window: CLIENT_WINDOW,
            options,
        };
        frame(&header, b"")
    }

    /// Fills `batch` with the next clients' requests, round-robin, up to
    /// the burst; stops at a client still waiting for its response.
    fn request_burst(&mut self, batch: &mut Batch) -> usize {
        let room = batch.remaining_capacity().min(self.burst);
        let mut count = 0;
        while count < room {
            let index = self.cursor;
            if self.clients[index].stage != Stage::Open {
                break;
            }
            let Some(mut packet) = self.buffer() else {
                break;
            };
            let exchange = match self.clients[index].turn {
                Turn::First => &self.first,
                Turn::Steady => &self.steady,
            };
            if packet
                .set_range(DEFAULT_HEADROOM, exchange.template.len())
                .is_err()
            {
                break;
            }
            let client = &mut self.clients[index];
            write_request(
                packet.payload_mut(),
                exchange,
                client,
                client_port(self.first_port, index),
            );
            client.sequence = client.sequence.wrapping_add(exchange.request_len);
            client.stage = Stage::Waiting;
            // Cannot fail: `room` is within the batch's capacity.
            let _ = batch.push(packet);
            self.cursor = if index + 1 == self.clients.len() {
                0
            } else {
                index + 1
            };
            count += 1;
        }
        self.counts.requests += count as u64;
        count
    }

    /// Takes one transmitted frame; false when it was wrong.
    fn take(&mut self, frame: &[u8]) -> Taken {
        let Ok(ethernet) = EthernetFrame::new_checked(frame) else {
            return Taken::Wrong;
        };
        if ethernet.ethertype() != EtherType::IPV4 {
            return Taken::Ignored;
        }
        let Ok(ip) = Ipv4Packet::new_checked(ethernet.payload()) else {
            return Taken::Wrong;
        };
        if ip.protocol() != protocol::TCP || ethernet.destination() != PEER_MAC {
            return Taken::Wrong;
        }
        let Ok(segment) = TcpPacket::new_checked(ip.payload()) else {
            return Taken::Wrong;
        };
        if self.verify_checksums
            && !(ip.verify_checksum() && segment.verify_checksum(OUR_IP, PEER_IP))
        {
            return Taken::Wrong;
        }
        let index = usize::from(segment.destination_port().wrapping_sub(self.first_port));
        let Some(client) = self.clients.get_mut(index) else {
            return Taken::Wrong;
        };
        if segment.source_port() != self.port {
            return Taken::Wrong;
        }
        let flags = segment.flags();
        let expected = match client.turn {
            Turn::First => self.first.response,
            Turn::Steady => self.steady.response,
        };
        match client.stage {
            Stage::SynSent
                if flags == TcpFlags::SYN | TcpFlags::ACK
                    && segment.acknowledgment_number() == client.sequence =>
            {
                client.acknowledgment = segment.sequence_number().wrapping_add(1);
                client.stage = Stage::AckOwed;
                self.acks_owed.push_back(index as u32);
                Taken::SynAck
            }
            Stage::Waiting
                if flags.contains(TcpFlags::ACK)
                    && !flags.intersects(TcpFlags::SYN | TcpFlags::FIN | TcpFlags::RST)
                    && segment.sequence_number() == client.acknowledgment
                    && segment.acknowledgment_number() == client.sequence
                    && segment.payload() == expected =>
            {
                client.acknowledgment = client.acknowledgment.wrapping_add(expected.len() as u32);
                client.stage = Stage::Open;
                client.turn = Turn::Steady;
                Taken::Response
            }
            Stage::Waiting
                if flags == TcpFlags::ACK
                    && segment.payload().is_empty()
                    && segment.sequence_number() == client.acknowledgment
                    && segment.acknowledgment_number() == client.sequence =>
            {
                Taken::BareAck
            }
            _ => Taken::Wrong,
        }
    }
}

/// What one transmitted frame was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Taken {
    SynAck,
    Response,
    BareAck,
    Ignored,
    Wrong,
}

/// The port of client `index` of clients from `first_port`.
fn client_port(first_port: u16, index: usize) -> u16 {
    first_port + index as u16
}

/// Folds a ones' complement sum to 16 bits.
#[inline]
fn fold(mut sum: u32) -> u16 {
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum as u16
}

/// Writes the next request of `client`, sending from `port`, into `frame`
/// (a copy of the exchange's template with its port, numbers and checksum
/// patched in).
#[inline]
fn write_request(frame: &mut [u8], exchange: &Exchange, client: &Client, port: u16) {
    frame.copy_from_slice(&exchange.template);
    let (sequence, acknowledgment) = (client.sequence, client.acknowledgment);
    let sum = u32::from(exchange.base)
        + u32::from(port)
        + (sequence >> 16)
        + (sequence & 0xffff)
        + (acknowledgment >> 16)
        + (acknowledgment & 0xffff);
    frame[offset::SOURCE_PORT..offset::SOURCE_PORT + 2].copy_from_slice(&port.to_be_bytes());
    frame[offset::SEQUENCE..offset::SEQUENCE + 4].copy_from_slice(&sequence.to_be_bytes());
    frame[offset::ACKNOWLEDGMENT..offset::ACKNOWLEDGMENT + 4]
        .copy_from_slice(&acknowledgment.to_be_bytes());
    frame[offset::CHECKSUM..offset::CHECKSUM + 2].copy_from_slice(&(!fold(sum)).to_be_bytes());
}

/// A frame carrying `request` to `port` from port 0 with numbers 0,
/// checksums filled: what [`write_request`] patches.
fn request_template(port: u16, request: &[u8]) -> Vec<u8> {
    let header = TcpHeader {
        source_port: 0,
        destination_port: port,
        sequence: 0,
        acknowledgment: 0,
        flags: TcpFlags::PSH | TcpFlags::ACK,
        window: CLIENT_WINDOW,
        options: TcpOptions::default(),
    };
    frame(&header, request)
}

/// An Ethernet frame from the clients carrying `header` and `payload`, with
/// both checksums filled.
fn frame(header: &TcpHeader, payload: &[u8]) -> Vec<u8> {
    let segment_length = header.header_len() + payload.len();
    let mut bytes = vec![0u8; offset::TCP + segment_length];
    let mut frame = EthernetFrame::new_unchecked(&mut bytes[..]);
    frame.set_destination(OUR_MAC);
    frame.set_source(PEER_MAC);
    frame.set_ethertype(EtherType::IPV4);
    let segment = &mut bytes[offset::TCP..];
    header.emit(segment);
    segment[header.header_len()..].copy_from_slice(payload);
    TcpPacket::new_unchecked(&mut segment[..]).fill_checksum(PEER_IP, OUR_IP);
    Ipv4Packet::new_unchecked(&mut bytes[ethernet::HEADER_LEN..]).emit_header(
        PEER_IP,
        OUR_IP,
        protocol::TCP,
        segment_length as u16,
        ipv4::DEFAULT_TTL,
    );
    bytes
}

impl Nic for HttpClients {
    fn rx_burst(&mut self, batch: &mut Batch) -> usize {
        let count = if let Some(arp) = self.arp.take() {
            // Alone, so the stack knows our MAC before it answers a SYN.
            usize::from(self.push_frame(batch, &arp))
        } else if !self.all_open() {
            self.handshake_burst(batch)
        } else {
            self.request_burst(batch)
        };
        self.counts.received += count as u64;
        count
    }

    fn tx_burst(&mut self, batch: &mut Batch) -> usize {
        let taken = batch.len();
        for packet in batch.drain() {
            match self.take(packet.payload()) {
                Taken::SynAck => self.counts.syn_acks += 1,
                Taken::Response => self.counts.responses += 1,
                Taken::BareAck => self.counts.bare_acks += 1,
                Taken::Ignored => self.counts.ignored += 1,
                Taken::Wrong => self.counts.wrong += 1,
            }
            if self.spare.len() < SPARES {
                self.spare.push(packet);
            }
        }
        taken
    }

    fn mac(&self) -> MacAddr {
        self.mac
    }

    fn link(&self) -> LinkInfo {
        LinkInfo {
            up: true,
            speed_mbps: 0,
            mtu: 1500,
        }
    }

    fn name(&self) -> &str {
        "http-clients"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patched_requests_carry_valid_checksums() {
        let exchange = Exchange::new(HTTP_PORT, (REQUEST, RESPONSE));
        for (index, sequence, acknowledgment) in [
            (0, 0, 0),
            (7, CLIENT_ISN, 0xffff_ffff),
            (9999, 0xdead_beef, 0x0001_0000),
            (MAX_CLIENTS - 1, 0xffff_0000, 0x1234_5678),
        ] {
            let client = Client {
                stage: Stage::Open,
                sequence,
                acknowledgment,
                turn: Turn::Steady,
            };
            let mut frame = vec![0u8; exchange.template.len()];
            let port = client_port(FIRST_CLIENT_PORT, index);
            write_request(&mut frame, &exchange, &client, port);
            let ip = Ipv4Packet::new_checked(&frame[ethernet::HEADER_LEN..]).unwrap();
            assert!(ip.verify_checksum());
            let segment = TcpPacket::new_checked(ip.payload()).unwrap();
            assert!(segment.verify_checksum(PEER_IP, OUR_IP), "{index}");
            assert_eq!(segment.source_port(), port);
            assert_eq!(segment.sequence_number(), sequence);
            assert_eq!(segment.acknowledgment_number(), acknowledgment);
            assert_eq!(segment.payload(), REQUEST);
        }
    }
}
