//! The four single-producer single-consumer rings an XSK socket shares
//! with the kernel (fill, completion, RX, TX): an mmap'd area with a
//! producer index, a consumer index, a flags word and a power-of-two array
//! of descriptors. We produce on fill and TX and consume on RX and
//! completion; indices run free (u32 wrap-around) and are masked on use.

use core::ptr::NonNull;
use core::sync::atomic::{AtomicU32, Ordering};

/// One ring: pointers into its mapping, and our cached view of the other
/// side's index (refreshed only when the cached one says "no room" or
/// "empty", so a burst costs one shared-index load at most).
pub(crate) struct Ring<T: Copy> {
    producer: NonNull<AtomicU32>,
    consumer: NonNull<AtomicU32>,
    flags: NonNull<AtomicU32>,
    descriptors: NonNull<T>,
    size: u32,
    /// Our producer index (producer rings) or our view of the kernel's
    /// (consumer rings).
    cached_producer: u32,
    /// The kernel's consumer index as last seen (producer rings) or ours
    /// (consumer rings).
    cached_consumer: u32,
}

impl<T: Copy> Ring<T> {
    /// The ring whose producer, consumer, flags words and descriptor array
    /// are at the given byte offsets from `base`.
    ///
    /// # Safety
    /// 1. `base + offset` is valid for the lifetime of the ring for each
    ///    offset: an aligned `u32` for the three words, `size` aligned `T`s
    ///    for the descriptors (the kernel's `XDP_MMAP_OFFSETS` for a ring
    ///    of `size` entries mapped at `base`).
    /// 2. `size` is a power of two.
    /// 3. The other side accesses the index words atomically and a
    ///    descriptor only while the indices give it to that side.
    pub(crate) unsafe fn new(
        base: NonNull<u8>,
        offsets: &libc::xdp_ring_offset,
        size: u32,
    ) -> Self {
        // SAFETY: precondition 1 puts every offset inside the mapping.
        let at = |offset: u64| unsafe { base.add(offset as usize) };
        let producer = at(offsets.producer).cast::<AtomicU32>();
        let consumer = at(offsets.consumer).cast::<AtomicU32>();
        // Ordering: Relaxed: nothing is published yet; the first real use
        // reloads with Acquire.
        // SAFETY: precondition 1: aligned u32 words inside the mapping.
        let (cached_producer, cached_consumer) = unsafe {
            (
                producer.as_ref().load(Ordering::Relaxed),
                consumer.as_ref().load(Ordering::Relaxed),
            )
        };
        Self {
            producer,
            consumer,
            flags: at(offsets.flags).cast(),
            descriptors: at(offsets.desc).cast(),
            size,
            cached_producer,
            cached_consumer,
        }
    }

    fn word(&self, word: NonNull<AtomicU32>) -> &AtomicU32 {
        // SAFETY: `new` precondition 1: the word lives as long as the ring.
        unsafe { word.as_ref() }
    }

    fn slot(&self, index: u32) -> *mut T {
        // SAFETY: masked by `size - 1` (a power of two, precondition 2),
        // the slot is inside the descriptor array.
        unsafe {
            self.descriptors
                .as_ptr()
                .add((index & (self.size - 1)) as usize)
        }
    }

    /// True when the kernel set `XDP_RING_NEED_WAKEUP`: it stopped looking
    /// at this ring until a system call wakes it.
    pub(crate) fn needs_wakeup(&self) -> bool {
        // Ordering: Relaxed: a hint; the system call it triggers is the
        // synchronisation.
        self.word(self.flags).load(Ordering::Relaxed) & libc::XDP_RING_NEED_WAKEUP != 0
    }

    /// Producer side: slots free for us, at most `wanted`; reloads the
    /// kernel's consumer index only when the cached one shows too few.
    pub(crate) fn free(&mut self, wanted: u32) -> u32 {
        let free = self.size - self.cached_producer.wrapping_sub(self.cached_consumer);
        if free >= wanted {
            return wanted;
        }
        // Ordering: Acquire pairs with the kernel's release of the consumer
        // index: the slots it passed are done being read.
        self.cached_consumer = self.word(self.consumer).load(Ordering::Acquire);
        (self.size - self.cached_producer.wrapping_sub(self.cached_consumer)).min(wanted)
    }

    /// Producer side: published slots the kernel has not consumed yet.
    pub(crate) fn unconsumed(&mut self) -> u32 {
        if self.cached_producer == self.cached_consumer {
            return 0;
        }
        // Ordering: Acquire, as in `free`.
        self.cached_consumer = self.word(self.consumer).load(Ordering::Acquire);
        self.cached_producer.wrapping_sub(self.cached_consumer)
    }

    /// Producer side: writes `descriptor` into the next slot, unpublished.
    /// The caller checked with [`free`](Self::free) that there is room.
    pub(crate) fn write(&mut self, descriptor: T) {
        debug_assert!(self.cached_producer.wrapping_sub(self.cached_consumer) < self.size);
        // SAFETY: the slot is between the kernel's consumer and our
        // producer index plus the free room, so the kernel does not read
        // it until `publish` (precondition 3).
        unsafe { self.slot(self.cached_producer).write(descriptor) };
        self.cached_producer = self.cached_producer.wrapping_add(1);
    }

    /// Producer side: hands every written slot to the kernel at once.
    pub(crate) fn publish(&mut self) {
        // Ordering: Release: the descriptors written above are visible
        // before the kernel sees the index move.
        self.word(self.producer)
            .store(self.cached_producer, Ordering::Release);
    }

    /// Consumer side: entries ready for us, at most `wanted`; reloads the
    /// kernel's producer index only when the cached one shows too few.
    pub(crate) fn ready(&mut self, wanted: u32) -> u32 {
        let ready = self.cached_producer.wrapping_sub(self.cached_consumer);
        if ready >= wanted {
            return wanted;
        }
        // Ordering: Acquire pairs with the kernel's release of the producer
        // index: the descriptors it published are visible.
        self.cached_producer = self.word(self.producer).load(Ordering::Acquire);
        self.cached_producer
            .wrapping_sub(self.cached_consumer)
            .min(wanted)
    }

    /// Consumer side: the next entry; the caller checked with
    /// [`ready`](Self::ready) that there is one.
    pub(crate) fn read(&mut self) -> T {
        debug_assert!(self.cached_producer != self.cached_consumer);
        // SAFETY: the slot is between our consumer and the kernel's
        // producer index, so the kernel published it and will not write
        // it until `release` (precondition 3).
        let descriptor = unsafe { self.slot(self.cached_consumer).read() };
        self.cached_consumer = self.cached_consumer.wrapping_add(1);
        descriptor
    }

    /// Consumer side: gives every read slot back to the kernel at once.
    pub(crate) fn release(&mut self) {
        // Ordering: Release: our reads of the slots finish before the
        // kernel may overwrite them.
        self.word(self.consumer)
            .store(self.cached_consumer, Ordering::Release);
    }
}

#[cfg(test)]
mod tests;
