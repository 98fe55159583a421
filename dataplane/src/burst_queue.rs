//! `BurstQueue`: a bounded packet FIFO kept as whole bursts, the queue
//! behind in-memory NICs (`LoopbackNic`, the benches' reflector).

use crate::mem::burst::append_burst;
use crate::{BURST_SIZE, Batch, Packet};
use alloc::collections::VecDeque;
use alloc::vec::Vec;

/// A bounded FIFO of packets kept as whole bursts, oldest first, so that a
/// transmitted burst that fits and a received burst taken into an empty
/// batch move by [`Batch::swap`] (two pointers), as the executor's own node
/// queues move them; only partial bursts copy packet handles.
pub struct BurstQueue {
    /// The bursts waiting; none is empty.
    bursts: VecDeque<Batch>,
    /// Empty bursts for `bursts` to grow into (made up front: moving
    /// packets never allocates).
    spare: Vec<Batch>,
    /// Packets in `bursts`.
    packets: usize,
    depth: usize,
}

impl BurstQueue {
    /// An empty queue that holds at most `depth` packets (its spare
    /// bursts are made here: moving packets never allocates).
    pub fn new(depth: usize) -> Self {
        // Every queued burst holds a packet, and one more is swapped out
        // by a whole-burst move: never more than this many exist.
        let bursts = depth.min(64 * BURST_SIZE) + 1;
        Self {
            bursts: VecDeque::with_capacity(bursts),
            spare: (0..bursts.min(depth.div_ceil(BURST_SIZE) + 2))
                .map(|_| Batch::new())
                .collect(),
            packets: 0,
            depth,
        }
    }

    /// Packets waiting.
    #[inline]
    pub fn len(&self) -> usize {
        self.packets
    }

    /// True when no packet waits.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.packets == 0
    }

    /// The packets waiting, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &Packet> {
        self.bursts.iter().flat_map(Batch::iter)
    }

    /// An empty burst from the spares.
    fn spare_burst(&mut self) -> Batch {
        self.spare.pop().unwrap_or_default()
    }

    /// Queues `packet` behind the others; gives it back when the queue
    /// is full.
    pub fn push(&mut self, packet: Packet) -> Result<(), Packet> {
        if self.packets >= self.depth {
            return Err(packet);
        }
        self.packets += 1;
        if let Some(tail) = self.bursts.back_mut().filter(|tail| !tail.is_full()) {
            // Cannot fail: the burst has room.
            let _ = tail.push(packet);
            return Ok(());
        }
        let mut burst = self.spare_burst();
        // Cannot fail: a spare burst is empty.
        let _ = burst.push(packet);
        self.bursts.push_back(burst);
        Ok(())
    }

    /// Takes the oldest packet.
    pub fn pop(&mut self) -> Option<Packet> {
        let front = self.bursts.front_mut()?;
        let packet = front.packets_mut().remove(0);
        if front.is_empty()
            && let Some(empty) = self.bursts.pop_front()
        {
            self.spare.push(empty);
        }
        self.packets -= 1;
        Some(packet)
    }

    /// Queues what fits of `batch` (its first packets), leaving the rest in
    /// it; returns how many were queued.
    #[inline]
    pub fn push_burst(&mut self, batch: &mut Batch) -> usize {
        let count = batch.len();
        if count == 0 {
            return 0;
        }
        if count > self.depth.saturating_sub(self.packets) {
            return self.push_some(batch);
        }
        self.packets += count;
        match self.bursts.back_mut() {
            Some(tail) if tail.remaining_capacity() >= count => {
                append_burst(batch.packets_mut(), tail.packets_mut());
            }
            _ => {
                let mut burst = self.spare_burst();
                burst.swap(batch);
                self.bursts.push_back(burst);
            }
        }
        count
    }

    /// Cold: fewer free places than packets; moves only those that fit.
    #[cold]
    #[inline(never)]
    fn push_some(&mut self, batch: &mut Batch) -> usize {
        let room = self.depth.saturating_sub(self.packets);
        let mut moved = 0;
        for packet in batch.packets_mut().drain(..room) {
            if self.push(packet).is_ok() {
                moved += 1;
            }
        }
        moved
    }

    /// Moves the oldest packets into `batch`, as many as it has room for.
    #[inline]
    pub fn pop_burst(&mut self, batch: &mut Batch) -> usize {
        let mut count = 0;
        while let Some(front) = self.bursts.front_mut() {
            let room = batch.remaining_capacity();
            if room == 0 {
                break;
            }
            let moved = if batch.is_empty() && front.len() <= room {
                batch.swap(front);
                batch.len()
            } else {
                let moved = room.min(front.len());
                batch
                    .packets_mut()
                    .extend(front.packets_mut().drain(..moved));
                moved
            };
            count += moved;
            if front.is_empty()
                && let Some(empty) = self.bursts.pop_front()
            {
                self.spare.push(empty);
            }
        }
        self.packets -= count;
        count
    }
}
