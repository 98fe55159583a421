//! `KvApp`: the memcached-protocol key-value server of one core, as a
//! [`TcpApp`]: its shard of the store, its connections, and (on several
//! cores) the mesh to the other shards, served from [`TcpApp::poll`].

use super::buffers::Buffers;
use super::counters::KvCounters;
use super::operation;
use super::replies::Flushed;
use super::reply::{self, GATHER_BYTES, Silent};
use super::session::KvSession;
use super::shard::{Answer, KEY_SEPARATOR, Mesh, Message, Reply, Request, ShardEnd, Work};
use super::stats::ShardStats;
use super::store::Store;
use crate::tcp::{CloseReason, ConnectionId, Stream, TcpApp};
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::net::SocketAddrV4;

/// Queued answer bytes of one connection above which it stops reading
/// (its receive window closes) until the send buffer takes them.
pub(super) const OUTPUT_HIGH_WATER: usize = 256 * 1024;
/// Remote answers one connection may await before it stops reading.
pub(super) const MAX_WAITING_PARTS: usize = 256;

/// Nanoseconds in a second.
const NANOSECONDS: u64 = 1_000_000_000;

/// The store's clock: whole seconds since boot.
pub(super) fn seconds(now_ns: u64) -> u64 {
    now_ns / NANOSECONDS
}

/// One core's kv server.
#[derive(Debug)]
pub struct KvApp {
    pub(super) store: Store,
    pub(super) mesh: Mesh,
    pub(super) counters: KvCounters,
    /// The largest item (key, value, overhead), for the early check.
    pub(super) max_item_bytes: usize,
    /// Last sequence number given to a remote request.
    sequence: u64,
    /// Answers with a lower sequence number were asked for by the failed
    /// app this one replaced: thrown away (counted as orphans).
    stale_below: u64,
    /// Remote answers received, until their connection is resumed.
    arrivals: Vec<Reply>,
    /// Connections that closed awaiting remote answers: how many more to
    /// throw away for each.
    orphans: Vec<(ConnectionId, usize)>,
    pub(super) connections: u64,
    pub(super) total_connections: u64,
    /// Where a get's answer is gathered before it is written.
    pub(super) gather: Box<[u8; GATHER_BYTES]>,
    /// Spare buffers for remote gets' keys and answers.
    pub(super) buffers: Buffers,
}

impl KvApp {
    /// A server whose shard holds up to `memory_bytes`, items up to
    /// `max_item_bytes`; `end` links it to the other cores' shards (none:
    /// it holds every key). On a core that sleeps when idle, give the mesh
    /// the core's doorbell ([`KvApp::wake_with`]).
    pub fn new(memory_bytes: usize, max_item_bytes: usize, end: Option<ShardEnd>) -> Self {
        Self {
            store: Store::new(memory_bytes, max_item_bytes),
            mesh: end.map_or_else(Mesh::alone, Mesh::new),
            counters: KvCounters::default(),
            max_item_bytes,
            sequence: 0,
            stale_below: 0,
            arrivals: Vec::new(),
            orphans: Vec::new(),
            connections: 0,
            total_connections: 0,
            gather: Box::new([0; GATHER_BYTES]),
            buffers: Buffers::default(),
        }
    }

    /// Has the other shards ring `doorbell` (this core's) when they send
    /// it requests or answers, so that the core may sleep meanwhile.
    pub fn wake_with(self, doorbell: Option<&alloc::sync::Arc<dataplane::Doorbell>>) -> Self {
        if let Some(doorbell) = doorbell {
            self.mesh.set_doorbell(doorbell);
        }
        self
    }

    /// This core's counters (its shard's and its connections').
    pub fn counters(&self) -> KvCounters {
        let store = self.store.counters();
        KvCounters {
            cmd_get: store.cmd_get,
            get_hits: store.get_hits,
            get_misses: store.get_misses,
            cmd_set: store.cmd_set,
            evictions: store.evictions,
            message_buffers_allocated: self.buffers.allocated(),
            ..self.counters
        }
    }

    /// Items in this core's shard.
    pub fn items(&self) -> usize {
        self.store.len()
    }

    /// This shard's figures for `stats`.
    pub(super) fn shard_stats(&self) -> ShardStats {
        ShardStats::of(&self.store, self.connections, self.total_connections)
    }

    /// A new sequence number for a remote request.
    pub(super) fn next_sequence(&mut self) -> u64 {
        self.sequence += 1;
        self.sequence
    }

    /// Writes what the queue can (keeping the written answers' buffers
    /// in `buffers`), closes when asked and drained, and pauses or resumes
    /// reading as the queue fills or drains.
    pub(super) fn settle(session: &mut KvSession, io: &mut Stream<'_>, buffers: &mut Buffers) {
        let flushed = session.replies.flush(io, buffers);
        if flushed == Flushed::Blocked {
            io.want_writable();
        }
        if session.closing && flushed == Flushed::Drained {
            io.close();
        }
        let congested = session.replies.queued_bytes() > OUTPUT_HIGH_WATER
            || session.replies.waiting_parts() >= MAX_WAITING_PARTS;
        if congested != session.paused {
            session.paused = congested;
            io.pause_reading(congested);
        }
    }

    /// Runs a request from another core on this shard; the answer, if the
    /// request wants one.
    fn serve(&mut self, request: Request) -> Option<Reply> {
        self.counters.remote_requests_served += 1;
        let now = seconds(request.now_ns);
        let answer = match request.work {
            Work::Get {
                keys,
                with_cas,
                end,
            } => {
                let mut bytes = self.buffers.take();
                for key in keys.split(|byte| *byte == KEY_SEPARATOR) {
                    operation::get(&mut self.store, key, with_cas, now, &mut bytes);
                }
                if end {
                    bytes.extend_from_slice(reply::END);
                }
                self.buffers.give(keys);
                Answer::Bytes(bytes)
            }
            Work::Operation(operation) if request.answer => {
                let mut bytes = self.buffers.take();
                operation::apply(&mut self.store, operation.borrow(), now, &mut bytes);
                // The key's buffer stays here for the next answer: the
                // origin keeps this answer's, so both pools balance.
                if let Some(key) = operation.into_key() {
                    self.buffers.give(key);
                }
                Answer::Bytes(bytes)
            }
            Work::Operation(operation) => {
                operation::apply(&mut self.store, operation.borrow(), now, &mut Silent);
                if let Some(key) = operation.into_key() {
                    self.buffers.give(key);
                }
                return None;
            }
            Work::Stats => Answer::Stats(self.shard_stats()),
        };
        request.answer.then_some(Reply {
            connection: request.connection,
            sequence: request.sequence,
            answer,
        })
    }

    /// Keeps a remote answer for its connection, unless it closed.
    fn arrive(&mut self, reply: Reply, ready: &mut Vec<ConnectionId>) {
        if reply.sequence < self.stale_below {
            self.counters.orphan_replies += 1;
            return;
        }
        if let Some(at) = self
            .orphans
            .iter()
            .position(|(connection, _)| *connection == reply.connection)
        {
            self.counters.orphan_replies += 1;
            self.orphans[at].1 -= 1;
            if self.orphans[at].1 == 0 {
                self.orphans.swap_remove(at);
            }
            return;
        }
        if !ready.contains(&reply.connection) {
            ready.push(reply.connection);
        }
        self.arrivals.push(reply);
    }
}

/// What a failed `kv` app hands the one rebuilt from its spec: its mesh
/// (the rings to the other shards, with the messages waiting for room in
/// them) and the last sequence number it gave, so that answers to its
/// requests that arrive later are told apart and thrown away.
struct KvLinks {
    mesh: Mesh,
    sequence: u64,
}

impl TcpApp for KvApp {
    type Session = KvSession;

    fn take_links(&mut self) -> Option<Box<dyn core::any::Any>> {
        if self.mesh.count() <= 1 {
            return None;
        }
        let mesh = core::mem::replace(&mut self.mesh, Mesh::alone());
        Some(Box::new(KvLinks {
            mesh,
            sequence: self.sequence,
        }))
    }

    fn adopt_links(&mut self, links: Box<dyn core::any::Any>) {
        if let Ok(links) = links.downcast::<KvLinks>() {
            let KvLinks { mesh, sequence } = *links;
            self.mesh = mesh;
            self.sequence = sequence;
            self.stale_below = sequence.saturating_add(1);
        }
    }

    fn accept(&mut self, _peer: SocketAddrV4, io: &mut Stream<'_>) -> Option<KvSession> {
        self.connections += 1;
        self.total_connections += 1;
        Some(KvSession::new(io.id()))
    }

    fn data(&mut self, session: &mut KvSession, data: &[u8], io: &mut Stream<'_>) -> usize {
        session.replies.flush(io, &mut self.buffers);
        let consumed = self.consume(session, data, io);
        Self::settle(session, io, &mut self.buffers);
        if session.replies.waiting_parts() > 0 {
            // Answers come from another core within the next polls: the
            // ACK of this request goes with them, not in a segment of
            // its own.
            io.hold_ack();
        }
        consumed
    }

    fn writable(&mut self, session: &mut KvSession, io: &mut Stream<'_>) {
        Self::settle(session, io, &mut self.buffers);
    }

    /// The client sent all it will (`printf ... | nc` half-closes at once):
    /// answers still awaited from other cores must reach it first, so the
    /// connection closes once its queue drains, as after `quit` (the
    /// default would close now and orphan them).
    fn read_closed(&mut self, session: &mut KvSession, io: &mut Stream<'_>) {
        session.closing = true;
        Self::settle(session, io, &mut self.buffers);
    }

    fn resume(&mut self, session: &mut KvSession, io: &mut Stream<'_>) {
        let mut at = 0;
        while at < self.arrivals.len() {
            if self.arrivals[at].connection == session.id {
                let reply = self.arrivals.swap_remove(at);
                session
                    .replies
                    .fill(reply.sequence, reply.answer, &mut self.buffers);
            } else {
                at += 1;
            }
        }
        Self::settle(session, io, &mut self.buffers);
    }

    fn poll(&mut self, ready: &mut Vec<ConnectionId>) {
        let mut ring_full = 0;
        self.mesh.flush_outboxes(&mut ring_full);
        for peer in self.mesh.peers() {
            for _ in 0..Mesh::receive_burst() {
                let Some(message) = self.mesh.receive(peer) else {
                    break;
                };
                match message {
                    Message::Request(request) => {
                        if let Some(reply) = self.serve(request) {
                            self.mesh.send(peer, Message::Reply(reply), &mut ring_full);
                        }
                    }
                    Message::Reply(reply) => self.arrive(reply, ready),
                }
            }
        }
        // What `data` sent during the burst and the replies just sent.
        self.mesh.notify_peers();
        self.counters.ring_full_retries += ring_full;
    }

    /// Now when a peer's ring holds messages or ours wait for room in one
    /// (the core must not sleep on them); peers ring this core's doorbell
    /// for what they send later.
    fn next_poll_ns(&self) -> Option<u64> {
        self.mesh.has_work().then_some(0)
    }

    fn closed(&mut self, session: KvSession, _reason: CloseReason) {
        self.connections -= 1;
        let before = self.arrivals.len();
        self.arrivals.retain(|reply| reply.connection != session.id);
        let arrived = before - self.arrivals.len();
        self.counters.orphan_replies += arrived as u64;
        let outstanding = session.replies.waiting_parts() - arrived;
        if outstanding > 0 {
            self.orphans.push((session.id, outstanding));
        }
    }
}
