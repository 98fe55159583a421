//! Per-core pools of fixed-size packet buffers carved from one region.
//!
//! A pool belongs to the core that created it. Allocation and frees on that
//! core touch only a local free stack: O(1), no atomics. A [`Packet`] dropped
//! on any other core goes back through a lock-free return queue that the
//! owner drains when its stack runs dry. The core identity that tells the two
//! apart comes from [`crate::core_id`].

use super::packet::Packet;
use super::region::DmaRegion;
use crate::core_id::{self, CoreId};
use crate::counters::Counter;
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::cell::UnsafeCell;
use core::marker::PhantomData;
use core::mem::ManuallyDrop;
use core::ptr::NonNull;
use crossbeam_queue::ArrayQueue;

/// Bytes of packet data per buffer.
pub const DATA_SIZE: usize = 2048;
/// Headroom reserved in front of the data unless configured otherwise.
pub const DEFAULT_HEADROOM: usize = 128;
/// Buffers start on cache-line boundaries.
const BUFFER_ALIGN: usize = 64;

/// How to carve a region into buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MempoolConfig {
    /// Bytes in front of the data for headers a service prepends.
    pub headroom: usize,
    /// How many buffers to make; `None` fills the region.
    pub buffer_count: Option<usize>,
}

impl Default for MempoolConfig {
    fn default() -> Self {
        Self {
            headroom: DEFAULT_HEADROOM,
            buffer_count: None,
        }
    }
}

/// Why a pool could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MempoolError {
    /// The region holds fewer buffers than asked for (or none at all).
    RegionTooSmall {
        /// Buffers asked for.
        wanted: usize,
        /// Buffers that fit.
        fits: usize,
    },
    /// Headroom over 4 KiB, which the 16-bit packet offsets cannot express
    /// together with the data.
    HeadroomTooLarge,
    /// More buffers than a packet's 24-bit index can name.
    TooManyBuffers,
    /// Headroom and data past 65535 bytes, which the 16-bit packet offsets
    /// cannot express.
    BufferTooLarge,
}

impl core::fmt::Display for MempoolError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::RegionTooSmall { wanted, fits } => {
                write!(f, "region holds {fits} buffers, {wanted} wanted")
            }
            Self::HeadroomTooLarge => write!(f, "headroom larger than 4096 bytes"),
            Self::TooManyBuffers => write!(f, "more than 2^24 buffers"),
            Self::BufferTooLarge => write!(f, "headroom and data larger than 65535 bytes"),
        }
    }
}

/// A snapshot of a pool's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MempoolStats {
    /// Buffers the pool holds in all.
    pub capacity: usize,
    /// Buffers free in the local stack right now.
    pub free_local: usize,
    /// Successful allocations.
    pub allocations: u64,
    /// Allocations that found the pool empty.
    pub exhausted: u64,
    /// Buffers that came back from other cores.
    pub remote_returns: u64,
}

/// State shared between a pool and its packets. Lives at a fixed address
/// until every buffer is back (see `Drop for Mempool`).
pub(crate) struct PoolShared {
    pub(crate) base: NonNull<u8>,
    pub(crate) phys: u64,
    pub(crate) stride: usize,
    pub(crate) headroom: u16,
    /// Headroom and data: the bytes of one buffer a packet may use.
    pub(crate) buffer_len: usize,
    capacity: usize,
    owner: Option<CoreId>,
    /// Indices of free buffers; touched only on the owner core.
    local_free: UnsafeCell<Vec<u32>>,
    /// Indices freed on other cores, drained by the owner (Vyukov's bounded
    /// queue, crossbeam's `ArrayQueue`).
    returns: ArrayQueue<u32>,
    allocations: Counter,
    exhausted: Counter,
    remote_returns: Counter,
    _region: DmaRegion,
}

impl PoolShared {
    /// Takes a buffer back. Called from `Drop for Packet` on any core.
    #[inline]
    pub(crate) fn release(&self, index: u32) {
        let here = core_id::current();
        if here.is_some() && here == self.owner {
            // SAFETY: we are on the owner core (core ids are unique among
            // running threads, `set_core_id_source` precondition 1), and the
            // owner core only touches `local_free` in non-reentrant methods
            // that hold no reference across calls, so this is the only access.
            let free = unsafe { &mut *self.local_free.get() };
            // Never reallocates: capacity was reserved for every buffer and a
            // buffer is free at most once.
            free.push(index);
        } else if self.returns.push(index).is_err() {
            // Impossible: the queue holds every buffer. Leaking one buffer is
            // the safe answer if it ever happened.
            debug_assert!(false, "mempool return queue overflow");
        }
    }
}

/// A per-core pool of packet buffers. Neither `Send` nor `Sync`: create it on
/// the core that uses it.
pub struct Mempool {
    shared: NonNull<PoolShared>,
    _owner_only: PhantomData<*mut ()>,
}

impl Mempool {
    /// Carves `region` into buffers of `config.headroom + 2048` bytes (rounded
    /// up to 64) and makes the calling core their owner.
    pub fn new(region: DmaRegion, config: MempoolConfig) -> Result<Self, MempoolError> {
        Self::with_data_size(region, config, DATA_SIZE)
    }

    /// [`new`](Self::new) with `data_size` bytes of data per buffer instead
    /// of 2048: large buffers for reassembled datagrams (headroom and data
    /// at most 65535 bytes).
    pub fn with_data_size(
        region: DmaRegion,
        config: MempoolConfig,
        data_size: usize,
    ) -> Result<Self, MempoolError> {
        if config.headroom > 4096 {
            return Err(MempoolError::HeadroomTooLarge);
        }
        let buffer_len = config.headroom + data_size;
        if buffer_len > usize::from(u16::MAX) {
            return Err(MempoolError::BufferTooLarge);
        }
        let stride = buffer_len.next_multiple_of(BUFFER_ALIGN);
        let fits = region.len() / stride;
        let capacity = config.buffer_count.unwrap_or(fits);
        if capacity == 0 || capacity > fits {
            return Err(MempoolError::RegionTooSmall {
                wanted: capacity.max(1),
                fits,
            });
        }
        let last_index = u32::try_from(capacity - 1)
            .ok()
            .filter(|last| *last <= super::packet::MAX_INDEX)
            .ok_or(MempoolError::TooManyBuffers)?;
        // Highest index on top, so buffers are handed out from the start.
        let local_free: Vec<u32> = (0..=last_index).rev().collect();
        let shared = Box::new(PoolShared {
            base: region.virt(),
            phys: region.phys(),
            stride,
            headroom: config.headroom as u16,
            buffer_len,
            capacity,
            owner: core_id::current(),
            local_free: UnsafeCell::new(local_free),
            returns: ArrayQueue::new(capacity),
            allocations: Counter::new(),
            exhausted: Counter::new(),
            remote_returns: Counter::new(),
            _region: region,
        });
        Ok(Self {
            shared: NonNull::from(Box::leak(shared)),
            _owner_only: PhantomData,
        })
    }

    /// A pool of `buffer_count` buffers on fresh heap memory: for hosted use
    /// and tests.
    pub fn with_heap(buffer_count: usize, headroom: usize) -> Result<Self, MempoolError> {
        Self::with_heap_data_size(buffer_count, headroom, DATA_SIZE)
    }

    /// [`with_heap`](Self::with_heap) with `data_size` bytes of data per
    /// buffer (see [`with_data_size`](Self::with_data_size)).
    pub fn with_heap_data_size(
        buffer_count: usize,
        headroom: usize,
        data_size: usize,
    ) -> Result<Self, MempoolError> {
        let stride = (headroom + data_size).next_multiple_of(BUFFER_ALIGN);
        let len = buffer_count
            .checked_mul(stride)
            .ok_or(MempoolError::TooManyBuffers)?;
        let region = DmaRegion::from_heap(len).ok_or(MempoolError::RegionTooSmall {
            wanted: buffer_count,
            fits: 0,
        })?;
        Self::with_data_size(
            region,
            MempoolConfig {
                headroom,
                buffer_count: Some(buffer_count),
            },
            data_size,
        )
    }

    fn shared(&self) -> &PoolShared {
        // SAFETY: `shared` came from `Box::leak` in `new` and is only freed in
        // `drop`, which needs `self` by value.
        unsafe { self.shared.as_ref() }
    }

    /// Runs `f` on the local free stack.
    fn with_local_free<R>(&self, f: impl FnOnce(&mut Vec<u32>) -> R) -> R {
        // SAFETY: `Mempool` is neither Send nor Sync, so we run on the core
        // that created it, the owner; `f` is crate code that frees no packet,
        // so `PoolShared::release` cannot touch the stack while this borrow
        // lives.
        f(unsafe { &mut *self.shared().local_free.get() })
    }

    /// Moves buffers that other cores returned into the local stack.
    fn drain_returns(&self) -> usize {
        let shared = self.shared();
        let drained = self.with_local_free(|free| {
            let before = free.len();
            while let Some(index) = shared.returns.pop() {
                free.push(index);
            }
            free.len() - before
        });
        shared.remote_returns.add(drained as u64);
        drained
    }

    /// One empty packet (headroom in front, no data), or `None` when every
    /// buffer is in use; exhaustion is counted.
    #[inline]
    pub fn alloc(&self) -> Option<Packet> {
        let mut index = self.with_local_free(|free| free.pop());
        if index.is_none() && self.drain_returns() > 0 {
            index = self.with_local_free(|free| free.pop());
        }
        let shared = self.shared();
        match index {
            Some(index) => {
                shared.allocations.increment();
                // SAFETY: `index` came off the free stack, so it is below
                // `capacity` and no other packet owns the buffer.
                Some(unsafe { Packet::from_pool(self.shared, index) })
            }
            None => {
                shared.exhausted.increment();
                None
            }
        }
    }

    /// Up to `count` empty packets, each handed to `each` as it leaves the
    /// free stack: a driver refilling a receive ring by the burst. Returns
    /// how many; the return queue is drained at most once and the counters
    /// are updated once for the run (a short run counts one exhaustion).
    #[inline]
    pub fn alloc_bulk(&self, count: usize, mut each: impl FnMut(Packet)) -> usize {
        if count == 0 {
            return 0;
        }
        if self.with_local_free(|free| free.len()) < count {
            self.drain_returns();
        }
        let mut taken = 0;
        while taken < count {
            // The stack is not borrowed while `each` runs (it may drop
            // packets of this pool): one pop per borrow.
            let Some(index) = self.with_local_free(|free| free.pop()) else {
                break;
            };
            // SAFETY: `index` came off the free stack, so it is below
            // `capacity` and no other packet owns the buffer.
            each(unsafe { Packet::from_pool(self.shared, index) });
            taken += 1;
        }
        let shared = self.shared();
        shared.allocations.add(taken as u64);
        if taken < count {
            shared.exhausted.increment();
        }
        taken
    }

    /// Up to `count` free buffers lent out without making packets of them,
    /// each handed to `each` as (index, physical address of the buffer's
    /// first byte) as it leaves the free stack: a driver posting receive
    /// buffers to a device by the burst keeps the 4-byte index rather than
    /// a 24-byte [`Packet`]. Each lent buffer comes back exactly once,
    /// through [`take_lent`](Self::take_lent) (as a packet) or
    /// [`return_lent`](Self::return_lent); until then the pool counts it as
    /// in use. Returns how many; counted like [`alloc_bulk`](Self::alloc_bulk).
    #[inline]
    pub fn lend_bulk(&self, count: usize, mut each: impl FnMut(u32, u64)) -> usize {
        if count == 0 {
            return 0;
        }
        if self.with_local_free(|free| free.len()) < count {
            self.drain_returns();
        }
        let shared = self.shared();
        let (phys, stride) = (shared.phys, shared.stride as u64);
        let mut taken = 0;
        while taken < count {
            // The stack is not borrowed while `each` runs (it may drop
            // packets of this pool): one pop per borrow.
            let Some(index) = self.with_local_free(|free| free.pop()) else {
                break;
            };
            each(index, phys + u64::from(index) * stride);
            taken += 1;
        }
        shared.allocations.add(taken as u64);
        if taken < count {
            shared.exhausted.increment();
        }
        taken
    }

    /// Lends up to `indices.len()` free buffers in one run: their indices
    /// are copied off the free stack into `indices` (one borrow of the
    /// stack, one copy), front first; the physical address of buffer `i`
    /// is [`buffers_phys`](Self::buffers_phys)` + i * `
    /// [`buffer_stride`](Self::buffer_stride). A driver posting receive
    /// buffers by the burst writes the indices straight into its slot array
    /// and then its descriptors from them. Each lent buffer comes back as
    /// for [`lend_bulk`](Self::lend_bulk); returns how many were lent,
    /// counted like [`alloc_bulk`](Self::alloc_bulk).
    #[inline]
    pub fn lend_run(&self, indices: &mut [u32]) -> usize {
        let count = indices.len();
        if count == 0 {
            return 0;
        }
        if self.with_local_free(|free| free.len()) < count {
            self.drain_returns();
        }
        let taken = self.with_local_free(|free| {
            let taken = free.len().min(count);
            let rest = free.len() - taken;
            if let Some(lent) = indices.get_mut(..taken) {
                lent.copy_from_slice(&free[rest..]);
            }
            free.truncate(rest);
            taken
        });
        let shared = self.shared();
        shared.allocations.add(taken as u64);
        if taken < count {
            shared.exhausted.increment();
        }
        taken
    }

    /// Physical address of buffer 0; buffer `i` starts
    /// [`buffer_stride`](Self::buffer_stride)` * i` bytes after it (the
    /// region is physically contiguous).
    pub fn buffers_phys(&self) -> u64 {
        self.shared().phys
    }

    /// What to add (wrapping) to the address of a byte in one of this
    /// pool's buffers to get its physical address: the region is
    /// contiguous both ways, so one offset serves every buffer (a driver
    /// writes a descriptor for a frame from its data pointer, without the
    /// multiply [`Packet::phys_addr`] does).
    pub fn phys_offset(&self) -> u64 {
        let shared = self.shared();
        shared.phys.wrapping_sub(shared.base.as_ptr() as u64)
    }

    /// The pool's identity as a copyable value, for a loop that lends
    /// packets ([`Lender`]).
    #[inline(always)]
    pub fn lender(&self) -> Lender<'_> {
        Lender {
            shared: self.shared,
            _pool: PhantomData,
        }
    }

    /// Lends `packet`'s buffer out by its index when it is this pool's (a
    /// driver's transmit slot keeps 4 bytes rather than the packet until
    /// the device is done, then [`return_lent`](Self::return_lent)); a
    /// packet of another pool comes back as it is.
    #[inline]
    pub fn lend(&self, packet: Packet) -> Result<u32, Packet> {
        self.lender().lend(packet)
    }

    /// Buffer `index`, lent by [`lend_bulk`](Self::lend_bulk) or
    /// [`lend_run`](Self::lend_run), as a packet
    /// whose data is the `len` bytes at `offset` from the buffer's start
    /// (where the device wrote a frame).
    ///
    /// # Safety
    /// 1. `index` was lent by this pool's `lend_bulk` or `lend_run` and has
    ///    not come back since (neither `take_lent` nor `return_lent` on it).
    /// 2. `offset + len <= self.buffer_len()`.
    #[inline]
    pub unsafe fn take_lent(&self, index: u32, offset: usize, len: usize) -> Packet {
        debug_assert!(offset + len <= self.buffer_len());
        // SAFETY: the pool outlives its packets (it is freed only once every
        // buffer is back, `Drop for Mempool`); precondition 1 makes the
        // buffer ours alone and `index` below capacity; precondition 2 is
        // `from_pool_range`'s bound.
        unsafe { Packet::from_pool_range(self.shared, index, offset as u16, (offset + len) as u16) }
    }

    /// Gives back buffer `index`, lent by [`lend_bulk`](Self::lend_bulk),
    /// [`lend_run`](Self::lend_run) or [`lend`](Self::lend), without
    /// making a packet of it (a sent
    /// frame, a receive buffer the device filled with something unusable,
    /// or one still posted when the driver goes).
    ///
    /// # Safety
    /// `index` was lent by this pool's `lend_bulk`, `lend_run` or `lend`
    /// and has not come back since.
    #[inline]
    pub unsafe fn return_lent(&self, index: u32) {
        // Never reallocates: capacity was reserved for every buffer, and
        // this one was out (the precondition), so it is not on the stack.
        self.with_local_free(|free| free.push(index));
    }

    /// [`return_lent`](Self::return_lent) for a run of indices, appended
    /// to the free stack with one borrow and one copy: a driver reclaiming
    /// the transmit slots an in-order device completed.
    ///
    /// # Safety
    /// Every index of `indices` was lent by this pool (`lend_bulk`,
    /// `lend_run` or `lend`) and has not come back since; none appears
    /// twice.
    #[inline]
    pub unsafe fn return_lent_run(&self, indices: &[u32]) {
        // Never reallocates: capacity was reserved for every buffer, and
        // these were out and distinct (the precondition), so none is on the
        // stack.
        self.with_local_free(|free| free.extend_from_slice(indices));
    }

    /// Gives `packet` back without the core look-up a drop makes: a packet
    /// of this pool goes straight onto the free stack (the pool is neither
    /// `Send` nor `Sync`, so this runs on its owner core); a packet of
    /// another pool drops as usual and goes home on its own. For drivers
    /// returning a burst of completions (see [`free_bulk`](Self::free_bulk)).
    #[inline]
    pub fn free(&self, packet: Packet) {
        if packet.pool_ptr() != self.shared {
            drop(packet);
            return;
        }
        let packet = ManuallyDrop::new(packet);
        // Never reallocates: capacity was reserved for every buffer, and
        // this one was out, so it is not on the stack.
        self.with_local_free(|free| free.push(packet.index()));
    }

    /// [`free`](Self::free) for every packet of a run. The stack is
    /// borrowed once per packet, never while the caller's iterator runs (it
    /// may drop packets of this pool).
    #[inline]
    pub fn free_bulk(&self, packets: impl IntoIterator<Item = Packet>) {
        for packet in packets {
            self.free(packet);
        }
    }

    /// Buffers in the pool.
    pub fn capacity(&self) -> usize {
        self.shared().capacity
    }

    /// Buffers free right now, counting those returned by other cores.
    pub fn available(&self) -> usize {
        self.drain_returns();
        self.with_local_free(|free| free.len())
    }

    /// Bytes of headroom in front of a freshly allocated packet's data.
    pub fn headroom(&self) -> usize {
        usize::from(self.shared().headroom)
    }

    /// Bytes of headroom and data one packet of this pool may use.
    pub fn buffer_len(&self) -> usize {
        self.shared().buffer_len
    }

    /// Bytes between the start of one buffer and the next.
    pub fn buffer_stride(&self) -> usize {
        self.shared().stride
    }

    /// The pool's counters.
    pub fn stats(&self) -> MempoolStats {
        let shared = self.shared();
        MempoolStats {
            capacity: shared.capacity,
            free_local: self.with_local_free(|free| free.len()),
            allocations: shared.allocations.get(),
            exhausted: shared.exhausted.get(),
            remote_returns: shared.remote_returns.get(),
        }
    }
}

/// A pool's identity copied out of it ([`Mempool::lender`]): a driver's
/// transmit loop asks of each packet whether it is the pool's and lends
/// its buffer by index, with the pool's address in a register. Through
/// `&Mempool` it is loaded again after every store the loop makes (the
/// frame headers it writes), which the compiler cannot tell from writes
/// to the pool.
#[derive(Clone, Copy)]
pub struct Lender<'a> {
    shared: NonNull<PoolShared>,
    _pool: PhantomData<&'a Mempool>,
}

impl Lender<'_> {
    /// Whether `packet`'s buffer is one of the pool's (so that
    /// [`lend`](Self::lend) takes it).
    #[inline(always)]
    pub fn owns(&self, packet: &Packet) -> bool {
        packet.pool_ptr() == self.shared
    }

    /// [`Mempool::lend`].
    #[inline(always)]
    pub fn lend(&self, packet: Packet) -> Result<u32, Packet> {
        if !self.owns(&packet) {
            return Err(packet);
        }
        Ok(ManuallyDrop::new(packet).index())
    }
}

impl Drop for Mempool {
    fn drop(&mut self) {
        // Packets still out keep pointing at the pool: leak it then, which is
        // safe, and free it only once every buffer is back.
        if self.available() == self.capacity() {
            // SAFETY: every buffer is free, so no packet refers to the pool;
            // the pointer came from `Box::leak` and is freed once, here.
            drop(unsafe { Box::from_raw(self.shared.as_ptr()) });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exhaustion_is_counted_and_refill_reuses_every_buffer() {
        let pool = Mempool::with_heap(8, 64).unwrap();
        let packets: Vec<Packet> = (0..8).map(|_| pool.alloc().unwrap()).collect();
        assert!(pool.alloc().is_none());
        assert!(pool.alloc().is_none());
        assert_eq!(pool.stats().exhausted, 2);
        drop(packets);
        assert_eq!(pool.available(), 8);
        let again: Vec<Packet> = (0..8).map(|_| pool.alloc().unwrap()).collect();
        assert_eq!(again.len(), 8);
        assert_eq!(pool.stats().allocations, 16);
    }

    #[test]
    fn buffers_are_distinct() {
        let pool = Mempool::with_heap(16, 0).unwrap();
        let mut addresses: Vec<u64> = (0..16).map(|_| pool.alloc().unwrap().phys_addr()).collect();
        // Each packet was dropped right away, so the same buffer came back.
        addresses.dedup();
        assert_eq!(addresses.len(), 1);
        let held: Vec<Packet> = (0..16).map(|_| pool.alloc().unwrap()).collect();
        let mut distinct: Vec<u64> = held.iter().map(|p| p.phys_addr()).collect();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), 16);
        assert!(
            distinct
                .windows(2)
                .all(|w| w[1] - w[0] >= pool.buffer_stride() as u64)
        );
    }

    #[test]
    fn packets_freed_on_another_thread_come_home() {
        let pool = Mempool::with_heap(64, 0).unwrap();
        let packets: Vec<Packet> = (0..64).map(|_| pool.alloc().unwrap()).collect();
        std::thread::spawn(move || drop(packets)).join().unwrap();
        assert_eq!(pool.available(), 64);
        assert_eq!(pool.stats().remote_returns, 64);
        assert!(pool.alloc().is_some());
    }

    /// Four threads free at once into the return queue: every buffer comes
    /// home exactly once (what the queue's own tests checked before it was
    /// crossbeam's `ArrayQueue`).
    #[test]
    fn many_threads_free_at_once_and_lose_nothing() {
        let per_thread = if cfg!(miri) { 8 } else { 256 };
        let pool = Mempool::with_heap(4 * per_thread, 0).unwrap();
        let batches: Vec<Vec<Packet>> = (0..4)
            .map(|_| (0..per_thread).map(|_| pool.alloc().unwrap()).collect())
            .collect();
        let mut expected: Vec<u64> = batches.iter().flatten().map(Packet::phys_addr).collect();
        let droppers: Vec<_> = batches
            .into_iter()
            .map(|batch| std::thread::spawn(move || drop(batch)))
            .collect();
        droppers
            .into_iter()
            .for_each(|dropper| dropper.join().unwrap());
        assert_eq!(pool.available(), 4 * per_thread);
        assert_eq!(pool.stats().remote_returns, 4 * per_thread as u64);
        let again: Vec<Packet> = (0..4 * per_thread).map(|_| pool.alloc().unwrap()).collect();
        let mut seen: Vec<u64> = again.iter().map(Packet::phys_addr).collect();
        seen.sort_unstable();
        expected.sort_unstable();
        assert_eq!(seen, expected, "each buffer once, none lost");
        assert!(pool.alloc().is_none());
    }

    #[test]
    fn bulk_alloc_and_free_reuse_every_buffer_once() {
        let pool = Mempool::with_heap(40, 32).unwrap();
        let mut burst: Vec<Packet> = Vec::new();
        assert_eq!(pool.alloc_bulk(0, |packet| burst.push(packet)), 0);
        assert_eq!(pool.alloc_bulk(20, |packet| burst.push(packet)), 20);
        assert_eq!(pool.alloc_bulk(12, |packet| burst.push(packet)), 12);
        assert_eq!(pool.available(), 8);
        assert!(burst.iter().all(|packet| packet.headroom() == 32));
        let mut addresses: Vec<u64> = burst.iter().map(Packet::phys_addr).collect();
        addresses.sort_unstable();
        addresses.dedup();
        assert_eq!(addresses.len(), 32, "distinct buffers");
        let mut rest: Vec<Packet> = Vec::new();
        assert_eq!(
            pool.alloc_bulk(32, |packet| rest.push(packet)),
            8,
            "short: the pool ran dry"
        );
        let stats = pool.stats();
        assert_eq!((stats.allocations, stats.exhausted), (40, 1));
        pool.free_bulk(burst.drain(..));
        assert_eq!(pool.available(), 32);
        // A foreign packet in the run goes home to its own pool.
        let other = Mempool::with_heap(2, 0).unwrap();
        let stranger = other.alloc().unwrap();
        pool.free_bulk(rest.drain(..).chain(core::iter::once(stranger)));
        assert_eq!(pool.available(), 40);
        assert_eq!(other.available(), 2);
        // A packet dropped while the run is handed out comes back in time
        // to be handed out again.
        let mut again: Vec<Packet> = Vec::new();
        assert_eq!(pool.alloc_bulk(41, |packet| again.push(packet)), 40);
        again.truncate(39);
        let mut handed = 0;
        assert_eq!(
            pool.alloc_bulk(2, |packet| {
                handed += 1;
                drop(packet)
            }),
            2
        );
        assert_eq!(handed, 2);
        assert_eq!(pool.available(), 1);
    }

    #[test]
    fn lent_buffers_come_back_as_packets_or_indices() {
        let pool = Mempool::with_heap(4, 64).unwrap();
        let stride = pool.buffer_stride() as u64;
        let mut lent = Vec::new();
        assert_eq!(pool.lend_bulk(6, |index, phys| lent.push((index, phys))), 4);
        assert_eq!(pool.stats().exhausted, 1, "a short run counts once");
        assert_eq!(pool.available(), 0);
        let (first_index, first_phys) = lent[0];
        assert_eq!(
            lent[1].1 - first_phys,
            stride * u64::from(lent[1].0 - first_index)
        );
        // SAFETY: lent just above, taken back once; 64 + 60 fits.
        let mut packet = unsafe { pool.take_lent(first_index, 64, 60) };
        assert_eq!((packet.headroom(), packet.len()), (64, 60));
        assert_eq!(packet.buffer_phys().0, first_phys);
        packet.payload_mut().fill(7);
        // Lent again for sending, then given back as an index.
        let index = pool.lend(packet).unwrap();
        assert_eq!(index, first_index);
        // SAFETY: lent by `lend` above, comes back once.
        unsafe { pool.return_lent(index) };
        for &(index, _) in &lent[1..] {
            // SAFETY: lent by `lend_bulk`, comes back once.
            unsafe { pool.return_lent(index) };
        }
        assert_eq!(pool.available(), 4);
        let other = Mempool::with_heap(1, 0).unwrap();
        let stranger = other.alloc().unwrap();
        assert!(
            pool.lend(stranger).is_err(),
            "another pool's packet stays one"
        );
        assert_eq!(other.available(), 1, "and went home when dropped");
    }

    #[test]
    fn runs_lent_and_returned_keep_every_buffer_once() {
        let pool = Mempool::with_heap(6, 64).unwrap();
        let stride = pool.buffer_stride() as u64;
        let mut first = [u32::MAX; 4];
        assert_eq!(pool.lend_run(&mut first), 4);
        assert_eq!(pool.available(), 2);
        let mut second = [u32::MAX; 4];
        assert_eq!(pool.lend_run(&mut second), 2, "short: two were left");
        assert_eq!(second[2..], [u32::MAX; 2], "the rest left alone");
        let stats = pool.stats();
        assert_eq!((stats.allocations, stats.exhausted), (6, 1));
        assert_eq!(pool.lend_run(&mut []), 0);
        let mut all: Vec<u32> = first.iter().chain(&second[..2]).copied().collect();
        all.sort_unstable();
        assert_eq!(all, [0, 1, 2, 3, 4, 5], "each buffer once");
        // SAFETY: lent by `lend_run` above, taken back once; 64 + 60 fits.
        let packet = unsafe { pool.take_lent(first[0], 64, 60) };
        assert_eq!(
            packet.buffer_phys().0,
            pool.buffers_phys() + stride * u64::from(first[0])
        );
        assert_eq!(
            (packet.payload().as_ptr() as u64).wrapping_add(pool.phys_offset()),
            packet.phys_addr()
        );
        drop(packet);
        // SAFETY: lent by `lend_run`, distinct, each given back once.
        unsafe {
            pool.return_lent_run(&first[1..]);
            pool.return_lent_run(&second[..2]);
        }
        assert_eq!(pool.available(), 6);
        let mut again = [0; 8];
        assert_eq!(pool.lend_run(&mut again), 6);
        // SAFETY: as above.
        unsafe { pool.return_lent_run(&again[..6]) };
    }

    #[test]
    fn bad_configs_are_errors() {
        let region = DmaRegion::from_heap(1024).unwrap();
        assert_eq!(
            Mempool::new(region, MempoolConfig::default()).err(),
            Some(MempoolError::RegionTooSmall { wanted: 1, fits: 0 })
        );
        let region = DmaRegion::from_heap(4096).unwrap();
        let config = MempoolConfig {
            headroom: 0,
            buffer_count: Some(3),
        };
        assert_eq!(
            Mempool::new(region, config).err(),
            Some(MempoolError::RegionTooSmall { wanted: 3, fits: 2 })
        );
        let region = DmaRegion::from_heap(4096).unwrap();
        let config = MempoolConfig {
            headroom: 5000,
            buffer_count: None,
        };
        assert_eq!(
            Mempool::new(region, config).err(),
            Some(MempoolError::HeadroomTooLarge)
        );
        assert!(Mempool::with_heap(0, 0).is_err());
    }

    #[test]
    fn large_buffers_hold_a_whole_ipv4_datagram() {
        let pool = Mempool::with_heap_data_size(2, 0, 65535).unwrap();
        assert_eq!(pool.buffer_len(), 65535);
        let mut packet = pool.alloc().unwrap();
        assert_eq!(packet.tailroom(), 65535);
        packet.append(65535).unwrap().fill(9);
        assert_eq!(packet.len(), 65535);
        assert_eq!(packet.append(1).err(), Some(crate::PacketError::NoTailroom));
        packet.set_range(100, 65435).unwrap();
        assert_eq!(packet.payload()[65434], 9);
        assert_eq!(
            Mempool::with_heap_data_size(1, 64, 65535).err(),
            Some(MempoolError::BufferTooLarge)
        );
    }

    #[test]
    fn pool_dropped_with_packets_out_stays_valid() {
        let pool = Mempool::with_heap(4, 0).unwrap();
        let mut packet = pool.alloc().unwrap();
        drop(pool);
        packet.append(10).unwrap().fill(7);
        assert_eq!(packet.payload(), &[7; 10]);
    }
}
