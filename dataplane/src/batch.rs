//! `Batch`: a fixed-capacity burst of packets, the unit everything moves in.

use crate::Packet;
use alloc::boxed::Box;
use arrayvec::ArrayVec;

/// Packets per burst: one fence and one doorbell for this many.
pub const BURST_SIZE: usize = 32;

/// Up to [`BURST_SIZE`] packets in storage allocated once, when the batch
/// is made: handing a whole burst to an empty batch is [`swap`](Self::swap),
/// an exchange of two pointers instead of a copy of every packet handle.
#[derive(Debug, Default)]
pub struct Batch {
    packets: Box<ArrayVec<Packet, BURST_SIZE>>,
}

impl Batch {
    /// An empty batch (allocates its storage: make batches at setup, not
    /// per packet).
    pub fn new() -> Self {
        Self {
            packets: Box::new(ArrayVec::new_const()),
        }
    }

    /// Exchanges the packets of `self` and `other`, in O(1): no packet
    /// handle is copied.
    #[inline]
    pub fn swap(&mut self, other: &mut Batch) {
        core::mem::swap(&mut self.packets, &mut other.packets);
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

    #[test]
    fn swap_exchanges_the_packets() {
        let pool = Mempool::with_heap(3, 0).unwrap();
        let (mut first, mut second) = (Batch::new(), Batch::new());
        first.push(pool.alloc().unwrap()).unwrap();
        second.push(pool.alloc().unwrap()).unwrap();
        second.push(pool.alloc().unwrap()).unwrap();
        first.swap(&mut second);
        assert_eq!((first.len(), second.len()), (2, 1));
        drop((first, second));
        assert_eq!(pool.available(), 3);
    }
}
