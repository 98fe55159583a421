//! A bounded lock-free queue of buffer indices that other cores free into and
//! the owning core drains (Vyukov's bounded MPMC queue; safe code only).

use alloc::boxed::Box;
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use crossbeam_utils::CachePadded;

struct Slot {
    /// Position stamp: `pos` when free for the producer at `pos`, `pos + 1`
    /// when it holds the value for the consumer at `pos`.
    stamp: AtomicUsize,
    index: AtomicU32,
}

/// Buffers returned to a pool from cores that do not own it.
pub(crate) struct ReturnQueue {
    slots: Box<[Slot]>,
    mask: usize,
    enqueue_pos: CachePadded<AtomicUsize>,
    dequeue_pos: CachePadded<AtomicUsize>,
}

impl ReturnQueue {
    /// A queue that holds at least `capacity` indices.
    pub(crate) fn new(capacity: usize) -> Self {
        let size = capacity.max(2).next_power_of_two();
        let slots = (0..size)
            .map(|pos| Slot {
                stamp: AtomicUsize::new(pos),
                index: AtomicU32::new(0),
            })
            .collect();
        Self {
            slots,
            mask: size - 1,
            enqueue_pos: CachePadded::new(AtomicUsize::new(0)),
            dequeue_pos: CachePadded::new(AtomicUsize::new(0)),
        }
    }

    /// Adds `index`; gives it back when the queue is full.
    pub(crate) fn push(&self, index: u32) -> Result<(), u32> {
        // Ordering: the position is only a ticket; the slot's stamp carries
        // the synchronisation.
        let mut pos = self.enqueue_pos.load(Ordering::Relaxed);
        loop {
            let slot = &self.slots[pos & self.mask];
            // Ordering: Acquire pairs with the consumer's Release that freed
            // the slot, so our write below cannot overtake its read.
            let stamp = slot.stamp.load(Ordering::Acquire);
            let diff = stamp as isize - pos as isize;
            if diff == 0 {
                match self.enqueue_pos.compare_exchange_weak(
                    pos,
                    pos.wrapping_add(1),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        slot.index.store(index, Ordering::Relaxed);
                        // Ordering: Release publishes the index to the
                        // consumer's Acquire load of the stamp.
                        slot.stamp.store(pos.wrapping_add(1), Ordering::Release);
                        return Ok(());
                    }
                    Err(current) => pos = current,
                }
            } else if diff < 0 {
                return Err(index);
            } else {
                pos = self.enqueue_pos.load(Ordering::Relaxed);
            }
        }
    }

    /// Takes the oldest index, if any.
    pub(crate) fn pop(&self) -> Option<u32> {
        let mut pos = self.dequeue_pos.load(Ordering::Relaxed);
        loop {
            let slot = &self.slots[pos & self.mask];
            // Ordering: Acquire pairs with the producer's Release of the stamp,
            // making its index store visible.
            let stamp = slot.stamp.load(Ordering::Acquire);
            let diff = stamp as isize - pos.wrapping_add(1) as isize;
            if diff == 0 {
                match self.dequeue_pos.compare_exchange_weak(
                    pos,
                    pos.wrapping_add(1),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        let index = slot.index.load(Ordering::Relaxed);
                        // Ordering: Release hands the slot back to the
                        // producer one lap later.
                        slot.stamp
                            .store(pos.wrapping_add(self.mask + 1), Ordering::Release);
                        return Some(index);
                    }
                    Err(current) => pos = current,
                }
            } else if diff < 0 {
                return None;
            } else {
                pos = self.dequeue_pos.load(Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn fifo_and_bounded() {
        let queue = ReturnQueue::new(3);
        for i in 0..4 {
            queue.push(i).unwrap();
        }
        assert_eq!(queue.push(9), Err(9));
        assert_eq!(queue.pop(), Some(0));
        queue.push(4).unwrap();
        assert_eq!(
            (1..5).map(|_| queue.pop().unwrap()).collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
        assert_eq!(queue.pop(), None);
    }

    #[test]
    fn many_producers_lose_nothing() {
        let per_thread = if cfg!(miri) { 50 } else { 20_000 };
        let queue = Arc::new(ReturnQueue::new(4 * per_thread));
        let producers: Vec<_> = (0..4u32)
            .map(|t| {
                let queue = Arc::clone(&queue);
                std::thread::spawn(move || {
                    for i in 0..per_thread as u32 {
                        queue.push(t * 1_000_000 + i).unwrap();
                    }
                })
            })
            .collect();
        producers.into_iter().for_each(|p| p.join().unwrap());
        let mut seen: Vec<u32> = core::iter::from_fn(|| queue.pop()).collect();
        seen.sort_unstable();
        let mut expected: Vec<u32> = (0..4u32)
            .flat_map(|t| (0..per_thread as u32).map(move |i| t * 1_000_000 + i))
            .collect();
        expected.sort_unstable();
        assert_eq!(seen, expected);
    }
}
