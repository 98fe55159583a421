//! Commands to shards: a key this core owns is served at once from its
//! store; a key another core owns becomes a [`Request`] on the ring to that
//! core, and its answer's place is kept in the connection's queue. A get
//! whose keys live on several cores is split into runs of consecutive keys
//! with one owner and reassembled in order; `stats` and `flush_all` go to
//! every shard.

use super::app::{KvApp, seconds};
use super::command::Command;
use super::operation::{self, Operation, OwnedOperation};
use super::reply::{self, Gather, Silent, Sink};
use super::session::KvSession;
use super::shard::{KEY_SEPARATOR, Message, Request, Work};
use crate::tcp::Stream;

impl KvApp {
    /// Runs a parsed command other than a storage command (whose data
    /// block the input loop gathers first).
    pub(super) fn command(
        &mut self,
        session: &mut KvSession,
        command: Command<'_>,
        io: &mut Stream<'_>,
    ) {
        match command {
            Command::Get { keys, with_cas } => self.get(session, keys.iter(), with_cas, io),
            Command::Store { .. } => {}
            Command::Delete { key, noreply } => {
                self.operation(session, key, Operation::Delete { key }, noreply, io);
            }
            Command::Arithmetic {
                key,
                delta,
                direction,
                noreply,
            } => {
                let operation = Operation::Arithmetic {
                    key,
                    delta,
                    direction,
                };
                self.operation(session, key, operation, noreply, io);
            }
            Command::Touch {
                key,
                exptime,
                noreply,
            } => {
                let operation = Operation::Touch { key, exptime };
                self.operation(session, key, operation, noreply, io);
            }
            Command::FlushAll { delay, noreply } => self.flush_all(session, delay, noreply, io),
            Command::Version => session
                .replies
                .sink(io, &mut self.buffers)
                .put(reply::VERSION),
            Command::Stats => self.stats(session, io),
            Command::Quit => session.closing = true,
        }
    }

    /// Runs `operation` on the shard that owns `key`.
    pub(super) fn operation(
        &mut self,
        session: &mut KvSession,
        key: &[u8],
        operation: Operation<'_>,
        noreply: bool,
        io: &mut Stream<'_>,
    ) {
        let owner = self.mesh.owner(key);
        if owner == self.mesh.index() {
            let now = seconds(io.now_ns());
            if noreply {
                operation::apply(&mut self.store, operation, now, &mut Silent);
            } else {
                operation::apply(
                    &mut self.store,
                    operation,
                    now,
                    &mut session.replies.sink(io, &mut self.buffers),
                );
            }
            return;
        }
        let work = Work::Operation(operation.to_owned(self.buffers.take()));
        self.send(session, owner, work, !noreply, 1, io);
    }

    /// `get`/`gets`: each key's `VALUE` from its owner, in order, then `END`.
    /// The answers of a run of keys this core owns, and the `END`, are
    /// gathered and written at once: a one-key get is one write.
    fn get<'k>(
        &mut self,
        session: &mut KvSession,
        keys: impl Iterator<Item = &'k [u8]>,
        with_cas: bool,
        io: &mut Stream<'_>,
    ) {
        let now = seconds(io.now_ns());
        let here = self.mesh.index();
        let mut keys = keys.peekable();
        loop {
            {
                let mut out = Gather::new(
                    &mut self.gather,
                    session.replies.sink(io, &mut self.buffers),
                );
                while let Some(key) = keys.next_if(|key| self.mesh.owner(key) == here) {
                    operation::get(&mut self.store, key, with_cas, now, &mut out);
                }
                if keys.peek().is_none() {
                    out.put(reply::END);
                    return;
                }
            }
            let Some(key) = keys.next() else {
                return;
            };
            let owner = self.mesh.owner(key);
            let mut run = self.buffers.take();
            run.extend_from_slice(key);
            while let Some(next) = keys.next_if(|next| self.mesh.owner(next) == owner) {
                run.push(KEY_SEPARATOR);
                run.extend_from_slice(next);
            }
            // A run that ends the get brings the `END` along: one answer
            // to write, nothing queued behind it.
            let end = keys.peek().is_none();
            let work = Work::Get {
                keys: run,
                with_cas,
                end,
            };
            self.send(session, owner, work, true, 1, io);
            if end {
                return;
            }
        }
    }

    /// `stats`: this shard's figures plus every other shard's, summed.
    fn stats(&mut self, session: &mut KvSession, io: &mut Stream<'_>) {
        let local = self.shard_stats();
        let uptime = seconds(io.now_ns());
        let shards = self.mesh.count();
        if shards == 1 {
            local.write(
                &mut session.replies.sink(io, &mut self.buffers),
                uptime,
                shards,
            );
            return;
        }
        let sequence = self.next_sequence();
        let parts = (shards - 1) as u32;
        session
            .replies
            .push_stats(sequence, parts, local, uptime, shards);
        for peer in self.mesh.peers() {
            self.post(session, peer, sequence, Work::Stats, true, io);
        }
    }

    /// `flush_all`: this shard now, the others as their rings deliver it
    /// (before any later command of this connection reaches them).
    fn flush_all(
        &mut self,
        session: &mut KvSession,
        delay: i64,
        noreply: bool,
        io: &mut Stream<'_>,
    ) {
        let now = seconds(io.now_ns());
        operation::apply(
            &mut self.store,
            Operation::FlushAll { delay },
            now,
            &mut Silent,
        );
        for peer in self.mesh.peers() {
            let work = Work::Operation(OwnedOperation::FlushAll { delay });
            self.post(session, peer, 0, work, false, io);
        }
        if !noreply {
            session.replies.sink(io, &mut self.buffers).put(reply::OK);
        }
    }

    /// Sends `work` to shard `owner`; when it answers, its answer takes
    /// the next place in the connection's queue (`parts` replies fill it).
    fn send(
        &mut self,
        session: &mut KvSession,
        owner: usize,
        work: Work,
        answer: bool,
        parts: u32,
        io: &mut Stream<'_>,
    ) {
        let sequence = if answer { self.next_sequence() } else { 0 };
        if answer {
            session.replies.push_waiting(sequence, parts);
        }
        self.post(session, owner, sequence, work, answer, io);
    }

    /// Puts a request on the ring to `owner` (or its outbox).
    fn post(
        &mut self,
        session: &KvSession,
        owner: usize,
        sequence: u64,
        work: Work,
        answer: bool,
        io: &Stream<'_>,
    ) {
        let request = Request {
            connection: session.id,
            sequence,
            now_ns: io.now_ns(),
            answer,
            work,
        };
        self.counters.remote_requests_sent += 1;
        let mut ring_full = 0;
        self.mesh
            .send(owner, Message::Request(request), &mut ring_full);
        self.counters.ring_full_retries += ring_full;
    }
}
