//! `NodeQueue`: a node's input, a ring of whole bursts that packets enter and
//! leave in bulk.

use crate::mem::burst::{append_burst, append_tail};
use crate::{BURST_SIZE, Batch};

/// Bursts a node's input queue holds (several, for fan-in).
pub const QUEUE_BURSTS: usize = 8;
/// Packets a node's input queue holds.
pub const NODE_QUEUE_DEPTH: usize = QUEUE_BURSTS * BURST_SIZE;

/// Up to [`NODE_QUEUE_DEPTH`] packets in [`QUEUE_BURSTS`] bursts. Packets
/// join the last burst until it is full, so every burst but the last is
/// full and taking the first burst takes the oldest `BURST_SIZE` packets (or
/// all of them), as a packet FIFO would.
pub(crate) struct NodeQueue {
    bursts: [Batch; QUEUE_BURSTS],
    /// Index of the oldest burst.
    head: usize,
    /// Bursts in use, from `head` on (wrapping).
    bursts_used: usize,
    /// Packets held.
    packets: usize,
}

impl NodeQueue {
    /// An empty queue.
    pub(crate) fn new() -> Self {
        Self {
            bursts: core::array::from_fn(|_| Batch::new()),
            head: 0,
            bursts_used: 0,
            packets: 0,
        }
    }

    /// True when no packet waits.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.packets == 0
    }

    /// Moves every packet of `from` behind the queued ones, in order, and
    /// leaves `from` empty. Packets beyond the queue's depth (the last ones)
    /// are dropped; returns how many. Into an empty queue, the burst moves
    /// by [`Batch::swap`], without copying a packet handle.
    #[inline]
    pub(crate) fn append(&mut self, from: &mut Batch) -> usize {
        if self.bursts_used == 0 {
            // Every burst of an empty queue is empty, and one burst holds
            // all of `from`: no overflow.
            self.packets = from.len();
            if from.is_empty() {
                return 0;
            }
            self.bursts[self.head].swap(from);
            self.bursts_used = 1;
            return 0;
        }
        let from = from.packets_mut();
        let room = NODE_QUEUE_DEPTH - self.packets;
        let overflow = from.len().saturating_sub(room);
        if overflow > 0 {
            from.truncate(from.len() - overflow);
        }
        if from.is_empty() {
            return overflow;
        }
        self.packets += from.len();
        let tail = (self.head + self.bursts_used - 1) % QUEUE_BURSTS;
        let fits = self.bursts[tail].remaining_capacity();
        if from.len() > fits {
            // The dense layout keeps a free burst behind the tail: `room`
            // counted the tail's spare places and the whole free bursts.
            let next = (tail + 1) % QUEUE_BURSTS;
            let spill = from.len() - fits;
            append_tail(from, self.bursts[next].packets_mut(), spill);
            self.bursts_used += 1;
        }
        append_burst(from, self.bursts[tail].packets_mut());
        overflow
    }

    /// Moves the oldest burst into `to` and returns how many packets
    /// moved; 0 when the queue is empty. An empty `to` takes the burst by
    /// [`Batch::swap`] and leaves its empty storage in the queue.
    #[inline]
    pub(crate) fn pop_burst(&mut self, to: &mut Batch) -> usize {
        if self.bursts_used == 0 {
            return 0;
        }
        let head = &mut self.bursts[self.head];
        let moved = head.len();
        if to.is_empty() {
            head.swap(to);
        } else {
            append_burst(head.packets_mut(), to.packets_mut());
        }
        self.head = (self.head + 1) % QUEUE_BURSTS;
        self.bursts_used -= 1;
        self.packets -= moved;
        moved
    }

    /// Drops every queued packet; returns how many.
    pub(crate) fn clear(&mut self) -> usize {
        let dropped = self.packets;
        for burst in &mut self.bursts {
            burst.clear();
        }
        self.head = 0;
        self.bursts_used = 0;
        self.packets = 0;
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Mempool;

    fn burst_of(pool: &Mempool, first: u8, count: usize) -> Batch {
        let mut burst = Batch::new();
        for index in 0..count {
            let mut packet = pool.alloc().unwrap();
            packet.append(1).unwrap()[0] = first.wrapping_add(index as u8);
            burst.push(packet).unwrap();
        }
        burst
    }

    #[test]
    fn keeps_fifo_order_in_whole_bursts_and_bounds_depth() {
        let pool = Mempool::with_heap(NODE_QUEUE_DEPTH + 64, 0).unwrap();
        let mut queue = NodeQueue::new();
        assert!(queue.is_empty());
        // 20 + 20 packets: the first burst fills to 32, 8 spill behind.
        assert_eq!(queue.append(&mut burst_of(&pool, 0, 20)), 0);
        let mut from = burst_of(&pool, 20, 20);
        assert_eq!(queue.append(&mut from), 0);
        assert!(from.is_empty());
        let mut out = Batch::new();
        assert_eq!(queue.pop_burst(&mut out), BURST_SIZE);
        let bytes: alloc::vec::Vec<u8> = out.iter().map(|p| p.payload()[0]).collect();
        assert_eq!(bytes, (0..32).collect::<alloc::vec::Vec<u8>>());
        out.clear();
        assert_eq!(queue.pop_burst(&mut out), 8);
        assert_eq!(out.iter().next().unwrap().payload()[0], 32);
        out.clear();
        assert!(queue.is_empty());
        assert_eq!(queue.pop_burst(&mut out), 0);

        // Fill past the depth: the excess is dropped, wrapping the ring.
        let mut dropped = 0;
        for round in 0..QUEUE_BURSTS + 1 {
            dropped += queue.append(&mut burst_of(&pool, round as u8, 30));
        }
        assert_eq!(dropped, (QUEUE_BURSTS + 1) * 30 - NODE_QUEUE_DEPTH);
        let mut total = 0;
        while queue.pop_burst(&mut out) > 0 {
            assert_eq!(out.len(), BURST_SIZE);
            total += out.len();
            out.clear();
        }
        assert_eq!(total, NODE_QUEUE_DEPTH);
        queue.append(&mut burst_of(&pool, 0, 5));
        assert_eq!(queue.clear(), 5);
        assert!(queue.is_empty());
        assert_eq!(pool.available(), NODE_QUEUE_DEPTH + 64);
    }
}
