//! `Buffers`: one core's spare byte buffers for the messages between
//! shards, so that a get that crosses cores allocates nothing once the
//! cores are warm.
//!
//! A remote get carries two buffers: its keys, written by the origin and
//! emptied by the owner, and its answer, written by the owner and emptied
//! by the origin when the answer reaches the client. Each core keeps the
//! buffers that end their trip with it and writes the next message into
//! one of them: the keys the owner served become its next answers, the
//! answers the origin wrote out its next keys. The heap (one allocator
//! behind one lock for every core on bare metal) is touched only while
//! the spares grow to the traffic in flight.

use alloc::vec::Vec;

/// Bytes a fresh buffer starts with: a key run or a small item's answer.
const FRESH_CAPACITY: usize = 256;
/// A buffer larger than this (a large item's answer) goes back to the
/// heap instead of being kept.
const MAX_KEPT_CAPACITY: usize = 16 * 1024;
/// Spare buffers kept at most (a ring's worth in flight each way).
const MAX_SPARE: usize = 2 * super::shard::RING_CAPACITY;

/// One core's spare buffers.
#[derive(Debug, Default)]
pub struct Buffers {
    spare: Vec<Vec<u8>>,
    /// Buffers taken from the heap because no spare was left.
    allocated: u64,
}

impl Buffers {
    /// An empty buffer: a spare, else a fresh one from the heap.
    pub fn take(&mut self) -> Vec<u8> {
        match self.spare.pop() {
            Some(buffer) => buffer,
            None => {
                self.allocated += 1;
                Vec::with_capacity(FRESH_CAPACITY)
            }
        }
    }

    /// Keeps `buffer` (emptied) for a later message, unless it is large
    /// or enough are kept already: then it goes back to the heap.
    pub fn give(&mut self, mut buffer: Vec<u8>) {
        if buffer.capacity() == 0
            || buffer.capacity() > MAX_KEPT_CAPACITY
            || self.spare.len() >= MAX_SPARE
        {
            return;
        }
        buffer.clear();
        self.spare.push(buffer);
    }

    /// Buffers taken from the heap so far.
    pub fn allocated(&self) -> u64 {
        self.allocated
    }

    /// Spare buffers kept now.
    pub fn spare(&self) -> usize {
        self.spare.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_reused_and_large_ones_returned() {
        let mut buffers = Buffers::default();
        let mut first = buffers.take();
        first.extend_from_slice(b"VALUE k 0 1\r\nx\r\n");
        assert_eq!(buffers.allocated(), 1);
        buffers.give(first);
        let again = buffers.take();
        assert!(again.is_empty(), "a spare comes back empty");
        assert_eq!(buffers.allocated(), 1, "the spare was reused");
        buffers.give(again);
        buffers.give(Vec::with_capacity(MAX_KEPT_CAPACITY + 1));
        buffers.give(Vec::new());
        assert_eq!(buffers.spare(), 1, "large and empty buffers are not kept");
        for _ in 0..MAX_SPARE + 5 {
            buffers.give(Vec::with_capacity(8));
        }
        assert_eq!(buffers.spare(), MAX_SPARE);
    }
}
