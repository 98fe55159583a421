//! `ReplyQueue`: one connection's answers in request order. An answer
//! from another core, or one the send buffer had no room for, waits here;
//! answers behind it wait too, so the client reads them in the order it
//! asked. When nothing waits, answers go straight into the send buffer.

use super::buffers::Buffers;
use super::reply::Sink;
use super::shard::Answer;
use super::stats::ShardStats;
use crate::tcp::Stream;
use alloc::collections::VecDeque;
use alloc::vec::Vec;

/// The figures of a `stats` waiting for other shards.
#[derive(Debug)]
struct StatsSum {
    total: ShardStats,
    uptime: u64,
    shards: usize,
}

/// One answer in the queue.
#[derive(Debug)]
struct Slot {
    /// The sequence number remote parts are matched by (0 for local).
    sequence: u64,
    /// Remote parts still awaited.
    waiting: u32,
    /// The bytes so far.
    bytes: Vec<u8>,
    /// A `stats` being summed.
    stats: Option<StatsSum>,
}

/// How far [`ReplyQueue::flush`] got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flushed {
    /// Everything was written.
    Drained,
    /// The send buffer is full.
    Blocked,
    /// The first answer waits for another core.
    Waiting,
}

/// One connection's answers not yet written, in request order.
#[derive(Debug, Default)]
pub struct ReplyQueue {
    slots: VecDeque<Slot>,
    /// Bytes of the first slot already written.
    written: usize,
    /// Bytes held in ready slots.
    queued: usize,
    /// Remote parts awaited over all slots.
    waiting: usize,
}

impl ReplyQueue {
    /// True when no answer waits.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Bytes held that the send buffer had no room for (or that wait
    /// behind a remote answer).
    pub fn queued_bytes(&self) -> usize {
        self.queued
    }

    /// Remote answers (parts) awaited.
    pub fn waiting_parts(&self) -> usize {
        self.waiting
    }

    /// Makes room for an answer that `parts` remote replies complete.
    pub fn push_waiting(&mut self, sequence: u64, parts: u32) {
        self.slots.push_back(Slot {
            sequence,
            waiting: parts,
            bytes: Vec::new(),
            stats: None,
        });
        self.waiting += parts as usize;
    }

    /// Makes room for a `stats` answer: `local` plus `parts` remote
    /// figures, written once all are in.
    pub fn push_stats(
        &mut self,
        sequence: u64,
        parts: u32,
        local: ShardStats,
        uptime: u64,
        shards: usize,
    ) {
        self.push_waiting(sequence, parts);
        if let Some(slot) = self.slots.back_mut() {
            slot.stats = Some(StatsSum {
                total: local,
                uptime,
                shards,
            });
        }
    }

    /// Puts a remote answer in its place; false when no slot has that
    /// sequence number (a bug, or an answer to a connection that closed).
    /// An answer's buffer becomes the slot's, or goes to `buffers` once
    /// copied.
    pub fn fill(&mut self, sequence: u64, answer: Answer, buffers: &mut Buffers) -> bool {
        let Some(slot) = self
            .slots
            .iter_mut()
            .find(|slot| slot.sequence == sequence && slot.waiting > 0)
        else {
            return false;
        };
        slot.waiting -= 1;
        self.waiting -= 1;
        match (answer, &mut slot.stats) {
            (Answer::Bytes(bytes), _) => {
                self.queued += bytes.len();
                if slot.bytes.is_empty() {
                    buffers.give(core::mem::replace(&mut slot.bytes, bytes));
                } else {
                    slot.bytes.extend_from_slice(&bytes);
                    buffers.give(bytes);
                }
            }
            (Answer::Stats(figures), Some(sum)) => sum.total.add(&figures),
            (Answer::Stats(_), None) => {}
        }
        if slot.waiting == 0
            && let Some(sum) = slot.stats.take()
        {
            let before = slot.bytes.len();
            sum.total.write(&mut slot.bytes, sum.uptime, sum.shards);
            self.queued += slot.bytes.len() - before;
        }
        true
    }

    /// Writes ready answers from the front into the send buffer; the
    /// buffers of those written go to `buffers`.
    #[inline]
    pub fn flush(&mut self, io: &mut Stream<'_>, buffers: &mut Buffers) -> Flushed {
        // Nothing queued, the common case of a local answer: no call.
        if self.slots.is_empty() {
            return Flushed::Drained;
        }
        self.flush_slots(io, buffers)
    }

    /// [`ReplyQueue::flush`] with answers queued.
    fn flush_slots(&mut self, io: &mut Stream<'_>, buffers: &mut Buffers) -> Flushed {
        while let Some(front) = self.slots.front() {
            if front.waiting > 0 {
                return Flushed::Waiting;
            }
            let written = io.write(&front.bytes[self.written..]);
            self.written += written;
            self.queued -= written;
            if self.written < front.bytes.len() {
                return Flushed::Blocked;
            }
            if let Some(done) = self.slots.pop_front() {
                buffers.give(done.bytes);
            }
            self.written = 0;
        }
        Flushed::Drained
    }

    /// A sink that writes through this queue into `io`.
    /// A slot it starts takes its buffer from `buffers`.
    pub fn sink<'q, 's>(
        &'q mut self,
        io: &'q mut Stream<'s>,
        buffers: &'q mut Buffers,
    ) -> QueueSink<'q, 's> {
        QueueSink {
            queue: self,
            io,
            buffers,
        }
    }

    /// Appends `bytes` as (part of) a ready answer at the back; a new
    /// slot's buffer comes from `buffers` (it goes back there once
    /// written).
    fn push_ready(&mut self, bytes: &[u8], buffers: &mut Buffers) {
        self.queued += bytes.len();
        match self.slots.back_mut() {
            Some(last) if last.waiting == 0 && last.stats.is_none() => {
                last.bytes.extend_from_slice(bytes)
            }
            _ => {
                let mut buffer = buffers.take();
                buffer.extend_from_slice(bytes);
                self.slots.push_back(Slot {
                    sequence: 0,
                    waiting: 0,
                    bytes: buffer,
                    stats: None,
                });
            }
        }
    }
}

/// Writes answers in order: straight into the send buffer while nothing
/// waits, else behind what waits.
#[derive(Debug)]
pub struct QueueSink<'q, 's> {
    queue: &'q mut ReplyQueue,
    io: &'q mut Stream<'s>,
    buffers: &'q mut Buffers,
}

impl Sink for QueueSink<'_, '_> {
    fn put(&mut self, bytes: &[u8]) {
        let rest = if self.queue.is_empty() {
            let written = self.io.write(bytes);
            &bytes[written..]
        } else {
            bytes
        };
        if !rest.is_empty() {
            self.queue.push_ready(rest, self.buffers);
        }
    }
}
