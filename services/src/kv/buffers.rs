//! `Buffers`: one core's spare byte buffers for the messages between
//! shards, so that a get that crosses cores allocates nothing once the
//! cores are warm.
//!
//! A remote get carries two buffers: its keys, written by the origin and
//! emptied by the owner, and its answer, written by the owner and emptied
//! by the origin when the answer reaches the client. Each core keeps the
//! buffers that end their trip with it and writes the next message into
//! one of them: the keys the owner served become its next answers, the
//! answers the origin wrote out its next keys. A remote set, incr or
//! delete that wants an answer carries its key in one of these buffers
//! too, and the owner keeps it for its next answer, so both pools
//! balance. The heap (one allocator behind one lock for every core on
//! bare metal) is touched only while the spares grow to the traffic in
//! flight, and for a remote operation sent with `noreply` (its key buffer
//! ends with the owner and nothing comes back).
//!
//! The spares are bounded in bytes, not only in number: a buffer that
//! grew past [`MAX_KEPT_CAPACITY`] (a large answer) goes back to the heap,
//! and at most [`MAX_SPARE_BYTES`] of capacity is kept, whatever a core
//! is given back.

use alloc::vec::Vec;

/// Bytes a fresh buffer starts with: a key run or a small item's answer.
const FRESH_CAPACITY: usize = 256;
/// A buffer larger than this (a large item's answer) goes back to the
/// heap instead of being kept: reused as a few-byte key run it would hold
/// memory for nothing.
pub const MAX_KEPT_CAPACITY: usize = 2 * 1024;
/// Capacity kept in spares at most, per core (the kernel heap serves
/// every core from 4 MiB up).
pub const MAX_SPARE_BYTES: usize = 256 * 1024;

/// One core's spare buffers.
#[derive(Debug, Default)]
pub struct Buffers {
    spare: Vec<Vec<u8>>,
    /// The spares' capacity summed.
    spare_bytes: usize,
    /// Buffers taken from the heap because no spare was left.
    allocated: u64,
}

impl Buffers {
    /// An empty buffer: a spare, else a fresh one from the heap.
    pub fn take(&mut self) -> Vec<u8> {
        match self.spare.pop() {
            Some(buffer) => {
                self.spare_bytes -= buffer.capacity();
                buffer
            }
            None => {
                self.allocated += 1;
                Vec::with_capacity(FRESH_CAPACITY)
            }
        }
    }

    /// Keeps `buffer` (emptied) for a later message, unless it is large
    /// or enough bytes are kept already: then it goes back to the heap.
    pub fn give(&mut self, mut buffer: Vec<u8>) {
        let capacity = buffer.capacity();
        if capacity == 0
            || capacity > MAX_KEPT_CAPACITY
            || self.spare_bytes + capacity > MAX_SPARE_BYTES
        {
            return;
        }
        buffer.clear();
        self.spare_bytes += capacity;
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

    /// The spares' capacity summed, in bytes.
    pub fn spare_bytes(&self) -> usize {
        self.spare_bytes
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
        buffers.give(Vec::with_capacity(16 * 1024));
        assert_eq!(buffers.spare(), 1, "a 16 KiB answer is not kept");
    }

    #[test]
    fn spares_are_bounded_in_bytes() {
        let mut buffers = Buffers::default();
        for _ in 0..2048 {
            buffers.give(Vec::with_capacity(MAX_KEPT_CAPACITY));
        }
        assert_eq!(buffers.spare(), MAX_SPARE_BYTES / MAX_KEPT_CAPACITY);
        assert_eq!(buffers.spare_bytes(), MAX_SPARE_BYTES);
        let taken = buffers.take();
        assert_eq!(buffers.spare_bytes(), MAX_SPARE_BYTES - taken.capacity());
        assert_eq!(buffers.allocated(), 0);
    }
}
