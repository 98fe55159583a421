//! `Batch`: a fixed-capacity burst of packets, the unit everything moves in.

use crate::Packet;
use arrayvec::ArrayVec;

/// Packets per burst: one fence and one doorbell for this many.
pub const BURST_SIZE: usize = 32;

/// Up to [`BURST_SIZE`] packets, stored inline (no allocation).
#[derive(Debug, Default)]
pub struct Batch {
    packets: ArrayVec<Packet, BURST_SIZE>,
}

impl Batch {
    /// An empty batch.
    pub const fn new() -> Self {
        Self {
            packets: ArrayVec::new_const(),
        }
    }

    /// Adds a packet; gives it back when the batch is full.
    #[inline]
    pub fn push(&mut self, packet: Packet) -> Result<(), Packet> {
        self.packets
            .try_push(packet)
            .map_err(|error| error.element())
    }

    /// Packets in the batch.
    #[inline]
    pub fn len(&self) -> usize {
        self.packets.len()
    }

    /// True when the batch holds no packet.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }

    /// True when no packet fits any more.
    #[inline]
    pub fn is_full(&self) -> bool {
        self.packets.is_full()
    }

    /// Packets that still fit.
    #[inline]
    pub fn remaining_capacity(&self) -> usize {
        self.packets.remaining_capacity()
    }

    /// Takes every packet out, in order.
    #[inline]
    pub fn drain(&mut self) -> arrayvec::Drain<'_, Packet, BURST_SIZE> {
        self.packets.drain(..)
    }

    /// The packets, for reading.
    #[inline]
    pub fn iter(&self) -> core::slice::Iter<'_, Packet> {
        self.packets.iter()
    }

    /// The packets, for rewriting in place.
    #[inline]
    pub fn iter_mut(&mut self) -> core::slice::IterMut<'_, Packet> {
        self.packets.iter_mut()
    }

    /// Drops every packet (each goes back to its pool).
    #[inline]
    pub fn clear(&mut self) {
        self.packets.clear();
    }

    /// The storage, for rings and drivers that move packets in bulk.
    #[inline]
    pub fn packets_mut(&mut self) -> &mut ArrayVec<Packet, BURST_SIZE> {
        &mut self.packets
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Mempool;

    #[test]
    fn holds_a_burst_and_refuses_more() {
        let pool = Mempool::with_heap(BURST_SIZE + 1, 0).unwrap();
        let mut batch = Batch::new();
        for _ in 0..BURST_SIZE {
            batch.push(pool.alloc().unwrap()).unwrap();
        }
        assert!(batch.is_full());
        assert!(batch.push(pool.alloc().unwrap()).is_err());
        assert_eq!(pool.available(), 1);
        assert_eq!(batch.drain().count(), BURST_SIZE);
        assert!(batch.is_empty());
        assert_eq!(pool.available(), BURST_SIZE + 1);
    }
}
