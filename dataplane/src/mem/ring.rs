//! `SpscRing`: a bounded lock-free single-producer single-consumer ring with
//! burst enqueue and dequeue, split into a `Producer` and a `Consumer`.

use crate::idle::Doorbell;
use alloc::boxed::Box;
use alloc::sync::Arc;
use arrayvec::ArrayVec;
use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicUsize, Ordering};
use crossbeam_utils::CachePadded;

/// Why a ring could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingError {
    /// Capacity zero or not a power of two.
    CapacityNotPowerOfTwo(usize),
}

impl core::fmt::Display for RingError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::CapacityNotPowerOfTwo(n) => write!(f, "ring capacity {n} is not a power of two"),
        }
    }
}

/// The memory both halves share. Positions count up forever (wrapping); the
/// slot of position `p` is `p & mask`.
pub struct SpscRing<T> {
    /// Next position the consumer reads; written only by the consumer.
    head: CachePadded<AtomicUsize>,
    /// Next position the producer writes; written only by the producer.
    tail: CachePadded<AtomicUsize>,
    slots: Box<[UnsafeCell<MaybeUninit<T>>]>,
    mask: usize,
    /// The consuming core's doorbell, once the consumer set it: what
    /// [`Producer::notify`] rings when that core sleeps.
    doorbell: spin::Once<Arc<Doorbell>>,
}

// SAFETY: the halves hand each `T` from one thread to the other exactly once
// (which needs `T: Send`), and each slot is accessed by one side at a time as
// the head and tail positions say.
unsafe impl<T: Send> Sync for SpscRing<T> {}
// SAFETY: as above; the ring owns its `T`s.
unsafe impl<T: Send> Send for SpscRing<T> {}

impl<T> SpscRing<T> {
    /// Makes a ring of `capacity` slots (a power of two) and splits it.
    #[allow(clippy::new_ret_no_self)]
    pub fn with_capacity(capacity: usize) -> Result<(Producer<T>, Consumer<T>), RingError> {
        if !capacity.is_power_of_two() {
            return Err(RingError::CapacityNotPowerOfTwo(capacity));
        }
        let slots = (0..capacity)
            .map(|_| UnsafeCell::new(MaybeUninit::uninit()))
            .collect();
        let ring = Arc::new(SpscRing {
            head: CachePadded::new(AtomicUsize::new(0)),
            tail: CachePadded::new(AtomicUsize::new(0)),
            slots,
            mask: capacity - 1,
            doorbell: spin::Once::new(),
        });
        let producer = Producer {
            ring: Arc::clone(&ring),
            tail: 0,
            cached_head: 0,
        };
        let consumer = Consumer {
            ring,
            head: 0,
            cached_tail: 0,
        };
        Ok((producer, consumer))
    }

    fn capacity(&self) -> usize {
        self.mask + 1
    }

    fn slot(&self, position: usize) -> *mut MaybeUninit<T> {
        self.slots[position & self.mask].get()
    }

    /// The `count` slots from `position` as at most two contiguous runs
    /// (pointer, length): up to the end of the array, then from its start.
    /// `count` must not exceed the capacity.
    #[inline]
    fn spans(&self, position: usize, count: usize) -> ((*mut T, usize), (*mut T, usize)) {
        let start = position & self.mask;
        let first = count.min(self.capacity() - start);
        // `UnsafeCell<MaybeUninit<T>>` has the layout of `T`, and `raw_get`
        // keeps the provenance of the whole slot array for writes.
        let base = UnsafeCell::raw_get(self.slots.as_ptr()).cast::<T>();
        (((base.wrapping_add(start)), first), (base, count - first))
    }
}

impl<T> Drop for SpscRing<T> {
    fn drop(&mut self) {
        let head = *self.head.get_mut();
        let tail = *self.tail.get_mut();
        let mut position = head;
        while position != tail {
            // SAFETY: positions in `head..tail` hold values written by the
            // producer and not yet read; `&mut self` means both halves are gone.
            unsafe { (*self.slot(position)).assume_init_drop() };
            position = position.wrapping_add(1);
        }
    }
}

/// The writing half of a ring.
pub struct Producer<T> {
    ring: Arc<SpscRing<T>>,
    /// Our copy of the tail: only we write it.
    tail: usize,
    /// Last head we loaded; the consumer only moves it forward.
    cached_head: usize,
}

impl<T> Producer<T> {
    /// Free slots, refreshing the cached head when fewer than `wanted` seem free.
    #[inline]
    fn free_slots(&mut self, wanted: usize) -> usize {
        let capacity = self.ring.capacity();
        let mut free = capacity - self.tail.wrapping_sub(self.cached_head);
        if free < wanted {
            // Ordering: Acquire pairs with the consumer's Release store of
            // head, so its reads of those slots finished before we reuse them.
            self.cached_head = self.ring.head.load(Ordering::Acquire);
            free = capacity - self.tail.wrapping_sub(self.cached_head);
        }
        free
    }

    /// Enqueues one item, or gives it back when the ring is full.
    #[inline]
    pub fn push(&mut self, item: T) -> Result<(), T> {
        if self.free_slots(1) == 0 {
            return Err(item);
        }
        // SAFETY: the slot at `tail` is free (consumer's head is past it) and
        // only the producer writes free slots.
        unsafe { (*self.ring.slot(self.tail)).write(item) };
        self.tail = self.tail.wrapping_add(1);
        // Ordering: Release publishes the slot write to the consumer's Acquire.
        self.ring.tail.store(self.tail, Ordering::Release);
        Ok(())
    }

    /// Moves as many items as fit from the front of `items` into the ring,
    /// with one release store; returns how many moved. The rest stay in
    /// `items`, in order.
    #[inline]
    pub fn push_burst<const N: usize>(&mut self, items: &mut ArrayVec<T, N>) -> usize {
        let count = items.len().min(self.free_slots(items.len()));
        if count == 0 {
            return 0;
        }
        let (first, second) = self.ring.spans(self.tail, count);
        let remaining = items.len() - count;
        let source = items.as_mut_ptr();
        // SAFETY: `count` slots from `tail` are free (the consumer's head is
        // past them) and only the producer writes free slots; `spans` splits
        // them into two in-bounds runs. The first `count` items are moved
        // out bitwise and `set_len` forgets them, then the rest slide to the
        // front, so every item is owned exactly once.
        unsafe {
            core::ptr::copy_nonoverlapping(source, first.0, first.1);
            // The branches skip `memcpy` calls for nothing, the common case
            // (no wrap, whole burst taken).
            if second.1 > 0 {
                core::ptr::copy_nonoverlapping(source.add(first.1), second.0, second.1);
            }
            if remaining > 0 {
                core::ptr::copy(source.add(count), source, remaining);
            }
            items.set_len(remaining);
        }
        self.tail = self.tail.wrapping_add(count);
        // Ordering: Release publishes all `count` slot writes at once.
        self.ring.tail.store(self.tail, Ordering::Release);
        count
    }

    /// Slots in the ring.
    pub fn capacity(&self) -> usize {
        self.ring.capacity()
    }

    /// Items the ring holds, as last seen (may be more by the time you read it).
    pub fn len(&self) -> usize {
        // Ordering: a snapshot for statistics.
        self.tail
            .wrapping_sub(self.ring.head.load(Ordering::Relaxed))
    }

    /// True when the consumer has taken everything.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// After pushing: wakes the consumer's core if it sleeps (or is about
    /// to), through the doorbell the consumer set. Call once per burst of
    /// pushes, not per item: it costs a full fence. Returns true when it
    /// rang; without a doorbell it does nothing (the consumer never sleeps
    /// or polls on a timer).
    #[inline]
    pub fn notify(&self) -> bool {
        self.ring
            .doorbell
            .get()
            .is_some_and(|doorbell| doorbell.notify())
    }
}

/// The reading half of a ring.
pub struct Consumer<T> {
    ring: Arc<SpscRing<T>>,
    /// Our copy of the head: only we write it.
    head: usize,
    /// Last tail we loaded; the producer only moves it forward.
    cached_tail: usize,
}

impl<T> Consumer<T> {
    #[inline]
    fn ready_slots(&mut self, wanted: usize) -> usize {
        let mut ready = self.cached_tail.wrapping_sub(self.head);
        if ready < wanted {
            // Ordering: Acquire pairs with the producer's Release store of
            // tail, so the slot writes before it are visible.
            self.cached_tail = self.ring.tail.load(Ordering::Acquire);
            ready = self.cached_tail.wrapping_sub(self.head);
        }
        ready
    }

    /// Dequeues one item.
    #[inline]
    pub fn pop(&mut self) -> Option<T> {
        if self.ready_slots(1) == 0 {
            return None;
        }
        // SAFETY: the slot at `head` was written and published by the
        // producer and not read yet; reading moves the value out once.
        let item = unsafe { (*self.ring.slot(self.head)).assume_init_read() };
        self.head = self.head.wrapping_add(1);
        // Ordering: Release hands the slot back after our read completed.
        self.ring.head.store(self.head, Ordering::Release);
        Some(item)
    }

    /// Moves up to the free space of `out` items from the ring into it, with
    /// one release store; returns how many moved.
    #[inline]
    pub fn pop_burst<const N: usize>(&mut self, out: &mut ArrayVec<T, N>) -> usize {
        let room = out.remaining_capacity();
        let count = room.min(self.ready_slots(room));
        if count == 0 {
            return 0;
        }
        let (first, second) = self.ring.spans(self.head, count);
        let length = out.len();
        // SAFETY: `count` slots from `head` hold published, unread values;
        // they are moved bitwise into `out`'s spare capacity (`count <= room`)
        // and `set_len` takes ownership of them; advancing head below makes
        // the ring forget them.
        unsafe {
            let destination = out.as_mut_ptr().add(length);
            core::ptr::copy_nonoverlapping(first.0, destination, first.1);
            // No `memcpy` call for nothing when the run does not wrap.
            if second.1 > 0 {
                core::ptr::copy_nonoverlapping(second.0, destination.add(first.1), second.1);
            }
            out.set_len(length + count);
        }
        self.head = self.head.wrapping_add(count);
        // Ordering: Release hands all `count` slots back at once.
        self.ring.head.store(self.head, Ordering::Release);
        count
    }

    /// Slots in the ring.
    pub fn capacity(&self) -> usize {
        self.ring.capacity()
    }

    /// Items waiting, as last seen.
    pub fn len(&self) -> usize {
        // Ordering: a snapshot for statistics, and for the look before
        // sleeping: there `Doorbell::announce_sleep`'s SeqCst fence orders
        // this load after the flag store (see `crate::idle`).
        self.ring
            .tail
            .load(Ordering::Relaxed)
            .wrapping_sub(self.head)
    }

    /// True when nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Has producers ring `doorbell` (the consuming core's) after they
    /// push ([`Producer::notify`]), so that the core may sleep while the
    /// ring is empty. Set once, on the consuming core before it first
    /// sleeps; later calls change nothing.
    pub fn set_doorbell(&self, doorbell: Arc<Doorbell>) {
        self.ring.doorbell.call_once(|| doorbell);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::VecDeque;
    use std::rc::Rc;

    #[test]
    fn capacity_must_be_a_power_of_two() {
        assert!(matches!(
            SpscRing::<u8>::with_capacity(0),
            Err(RingError::CapacityNotPowerOfTwo(0))
        ));
        assert!(SpscRing::<u8>::with_capacity(6).is_err());
        assert!(SpscRing::<u8>::with_capacity(8).is_ok());
    }

    #[test]
    fn full_ring_gives_items_back() {
        let (mut producer, mut consumer) = SpscRing::with_capacity(2).unwrap();
        producer.push(1).unwrap();
        producer.push(2).unwrap();
        assert_eq!(producer.push(3), Err(3));
        let mut burst: ArrayVec<i32, 4> = [4, 5, 6].into_iter().collect();
        assert_eq!(producer.push_burst(&mut burst), 0);
        assert_eq!(consumer.pop(), Some(1));
        assert_eq!(producer.push_burst(&mut burst), 1);
        assert_eq!(burst.as_slice(), &[5, 6]);
        let mut out: ArrayVec<i32, 4> = ArrayVec::new();
        assert_eq!(consumer.pop_burst(&mut out), 2);
        assert_eq!(out.as_slice(), &[2, 4]);
        assert!(consumer.is_empty());
    }

    #[test]
    fn items_left_in_the_ring_are_dropped() {
        let marker = Rc::new(());
        let (mut producer, consumer) = SpscRing::with_capacity(4).unwrap();
        producer.push(Rc::clone(&marker)).unwrap();
        producer.push(Rc::clone(&marker)).unwrap();
        drop(producer);
        drop(consumer);
        assert_eq!(Rc::strong_count(&marker), 1);
    }

    #[test]
    fn bursts_cross_threads_in_order() {
        let items: u32 = if cfg!(miri) { 500 } else { 100_000 };
        let (mut producer, mut consumer) = SpscRing::<Box<u32>>::with_capacity(8).unwrap();
        let sender = std::thread::spawn(move || {
            let mut next = 0;
            let mut burst: ArrayVec<Box<u32>, 5> = ArrayVec::new();
            while next < items || !burst.is_empty() {
                while !burst.is_full() && next < items {
                    burst.push(Box::new(next));
                    next += 1;
                }
                if producer.push_burst(&mut burst) == 0 {
                    std::thread::yield_now();
                }
            }
        });
        let mut expected = 0;
        let mut burst: ArrayVec<Box<u32>, 3> = ArrayVec::new();
        while expected < items {
            if consumer.pop_burst(&mut burst) == 0 {
                std::thread::yield_now();
            }
            for item in burst.drain(..) {
                assert_eq!(*item, expected);
                expected += 1;
            }
        }
        sender.join().unwrap();
    }

    /// A consumer that sleeps (parks) whenever its ring is empty is woken
    /// for every item: the doorbell handshake loses no wake-up. A park
    /// that ends by its timeout with an item waiting would be a lost one;
    /// the timeout only bounds the test if the handshake were broken.
    #[test]
    fn a_sleeping_consumer_is_woken_for_every_item() {
        use std::time::Duration;
        let items: u32 = if cfg!(miri) { 200 } else { 20_000 };
        let (mut producer, mut consumer) = SpscRing::<u32>::with_capacity(4).unwrap();
        let sleeper = std::thread::current();
        consumer.set_doorbell(Arc::new(Doorbell::new(move || sleeper.unpark())));
        let sender = std::thread::spawn(move || {
            for item in 0..items {
                while producer.push(item).is_err() {
                    std::thread::yield_now();
                }
                producer.notify();
            }
        });
        let doorbell = Arc::clone(consumer.ring.doorbell.get().unwrap());
        let (mut expected, mut sleeps, mut lost) = (0, 0u32, 0u32);
        while expected < items {
            if let Some(item) = consumer.pop() {
                assert_eq!(item, expected);
                expected += 1;
                continue;
            }
            doorbell.announce_sleep();
            if consumer.is_empty() {
                sleeps += 1;
                let before = std::time::Instant::now();
                std::thread::park_timeout(Duration::from_secs(10));
                if before.elapsed() >= Duration::from_secs(10) && !consumer.is_empty() {
                    lost += 1;
                }
            }
            doorbell.awake();
        }
        sender.join().unwrap();
        assert_eq!(lost, 0, "{lost} of {sleeps} sleeps missed their wake-up");
    }

    #[derive(Debug, Clone)]
    enum Op {
        Push,
        PushBurst(u8),
        Pop,
        PopBurst(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            Just(Op::Push),
            (0u8..12).prop_map(Op::PushBurst),
            Just(Op::Pop),
            (0u8..12).prop_map(Op::PopBurst),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: if cfg!(miri) { 4 } else { 512 },
            // Miri has no file system; failures print their seed instead.
            failure_persistence: None,
            ..ProptestConfig::default()
        })]
        /// The ring behaves like a bounded `VecDeque`.
        #[test]
        fn ring_matches_vecdeque_model(capacity_log2 in 0u32..5, ops in proptest::collection::vec(op(), 0..200)) {
            let capacity = 1usize << capacity_log2;
            let (mut producer, mut consumer) = SpscRing::<u32>::with_capacity(capacity).unwrap();
            let mut model: VecDeque<u32> = VecDeque::new();
            let mut next = 0u32;
            for op in ops {
                match op {
                    Op::Push => {
                        let result = producer.push(next);
                        if model.len() < capacity {
                            prop_assert_eq!(result, Ok(()));
                            model.push_back(next);
                        } else {
                            prop_assert_eq!(result, Err(next));
                        }
                        next += 1;
                    }
                    Op::PushBurst(n) => {
                        let mut burst: ArrayVec<u32, 16> = (next..next + u32::from(n)).collect();
                        next += u32::from(n);
                        let expected = burst.len().min(capacity - model.len());
                        let moved = producer.push_burst(&mut burst);
                        prop_assert_eq!(moved, expected);
                        let all: Vec<u32> = (next - u32::from(n)..next).collect();
                        model.extend(&all[..moved]);
                        prop_assert_eq!(burst.as_slice(), &all[moved..]);
                    }
                    Op::Pop => prop_assert_eq!(consumer.pop(), model.pop_front()),
                    Op::PopBurst(n) => {
                        let room = usize::from(n);
                        let mut out: ArrayVec<u32, 16> = core::iter::repeat_n(u32::MAX, 16 - room).collect();
                        let got = consumer.pop_burst(&mut out);
                        prop_assert_eq!(got, room.min(model.len()));
                        let expected: Vec<u32> = model.drain(..got).collect();
                        prop_assert_eq!(&out[16 - room..], expected.as_slice());
                    }
                }
                prop_assert_eq!(producer.len(), model.len());
                prop_assert_eq!(consumer.len(), model.len());
            }
        }
    }
}
