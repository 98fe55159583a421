//! Split virtqueue bookkeeping (virtio 1.2 section 2.7): descriptor table,
//! available ring and used ring in one DMA allocation, a free list of
//! descriptors, and index arithmetic. Knows nothing about packets.
//!
//! Descriptors are added with [`SplitQueue::push`] and become visible to the
//! device only at [`SplitQueue::publish`]: one fence for the whole burst.
//!
//! With `VIRTIO_F_IN_ORDER` negotiated ([`SplitQueue::set_in_order`], 2.7.9)
//! the device uses buffers in the order they were made available, so a
//! single-descriptor queue needs no free list: descriptor `i` stays tied to
//! ring slot `i` (the available ring holds the identity, written once), and
//! `used.idx` alone says which descriptors came back.

use crate::registers::{DescriptorFlags, VIRTQ_AVAIL_F_NO_INTERRUPT, VIRTQ_USED_F_NO_NOTIFY};
use alloc::vec::Vec;
use core::marker::PhantomData;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU16, Ordering, fence};

/// Largest queue the driver sets up; devices may offer more.
pub const MAX_QUEUE_SIZE: u16 = 256;

/// `struct virtq_desc` (2.7.5).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct Descriptor {
    /// 0x00: physical address of the buffer.
    pub addr: u64,
    /// 0x08: buffer length.
    pub len: u32,
    /// 0x0c: `DescriptorFlags`.
    pub flags: u16,
    /// 0x0e: next descriptor of the chain when `VIRTQ_DESC_F_NEXT`.
    pub next: u16,
}
const _: () = assert!(size_of::<Descriptor>() == 16);

/// `struct virtq_used_elem` (2.7.8).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct UsedElement {
    /// 0x00: head descriptor of the completed chain.
    pub id: u32,
    /// 0x04: bytes the device wrote into the chain.
    pub len: u32,
}
const _: () = assert!(size_of::<UsedElement>() == 8);

/// One buffer of a chain: device-readable or device-writable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Physical address.
    pub addr: u64,
    /// Length in bytes.
    pub len: u32,
    /// Whether the device writes it.
    pub device_writes: bool,
}

/// Byte offsets of the three parts inside one allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingLayout {
    /// Queue size (a power of two).
    pub size: u16,
    /// Offset of the available ring.
    pub avail: usize,
    /// Offset of the used ring (4-byte aligned).
    pub used: usize,
    /// Total bytes.
    pub total: usize,
}

impl RingLayout {
    /// Layout of a queue of `size` entries: descriptors (16 * size), the
    /// available ring (6 + 2 * size), the used ring (6 + 8 * size) on a
    /// 4-byte boundary.
    pub const fn new(size: u16) -> Self {
        let size_bytes = size as usize;
        let avail = 16 * size_bytes;
        let used = (avail + 6 + 2 * size_bytes).next_multiple_of(4);
        Self {
            size,
            avail,
            used,
            total: used + 6 + 8 * size_bytes,
        }
    }
}

/// Physical addresses the device is told about (`queue_desc`, `queue_driver`,
/// `queue_device`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingAddresses {
    /// Descriptor table.
    pub descriptors: u64,
    /// Available ring.
    pub driver: u64,
    /// Used ring.
    pub device: u64,
}

/// Why a chain could not be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushError {
    /// Not enough free descriptors.
    Full,
    /// An empty chain.
    Empty,
}

/// A split virtqueue's driver side.
pub struct SplitQueue {
    layout: RingLayout,
    base: NonNull<u8>,
    phys: u64,
    /// Free descriptor ids (a stack).
    free: Vec<u16>,
    /// Next free slot of the available ring (not yet visible while above
    /// `published`).
    avail_index: u16,
    /// `avail.idx` as the device last saw it.
    published: u16,
    /// Used-ring entries consumed so far.
    last_used: u16,
    /// `VIRTIO_F_IN_ORDER`: descriptor id == ring position, no free list.
    in_order: bool,
}

// SAFETY: the queue exclusively owns its ring memory (`new` precondition 1);
// moving it to another core moves that ownership. Nothing in it is tied to
// the creating core.
unsafe impl Send for SplitQueue {}

impl SplitQueue {
    /// Lays a queue of `size` entries over zeroed memory.
    ///
    /// # Safety
    /// 1. `base` points to `RingLayout::new(size).total` bytes that this
    ///    queue exclusively owns (shared only with the device) for its whole
    ///    life, aligned to 16.
    /// 2. `phys` is the physical address of `base`, physically contiguous.
    /// 3. `size` is a power of two no larger than 32768.
    pub unsafe fn new(base: NonNull<u8>, phys: u64, size: u16) -> Self {
        debug_assert!(size.is_power_of_two());
        let layout = RingLayout::new(size);
        // SAFETY: precondition 1: the memory is ours and `total` bytes long.
        unsafe { base.as_ptr().write_bytes(0, layout.total) };
        Self {
            layout,
            base,
            phys,
            free: (0..size).rev().collect(),
            avail_index: 0,
            published: 0,
            last_used: 0,
            in_order: false,
        }
    }

    /// Switches a fresh queue to in-order use (`VIRTIO_F_IN_ORDER`
    /// negotiated, 2.7.9) for single-descriptor chains ([`Self::push_single`]
    /// and [`Self::take_used_singles`]): descriptor `i` is tied to available
    /// ring slot `i`, written here once, and the descriptors of the chains
    /// the device completed are known from `used.idx` alone. Does nothing
    /// once a chain was pushed.
    pub fn set_in_order(&mut self) {
        if self.avail_index != 0 || self.last_used != 0 {
            return;
        }
        for slot in 0..self.layout.size {
            // SAFETY: ring entry `slot < size` of the available ring; nothing
            // is published yet, so the device reads none of it.
            unsafe {
                self.avail_field(4 + 2 * usize::from(slot))
                    .write_volatile(slot)
            };
        }
        self.free.clear();
        self.in_order = true;
    }

    /// Whether the queue runs in order ([`Self::set_in_order`]).
    pub fn in_order(&self) -> bool {
        self.in_order
    }

    /// Moves a fresh queue's indices to `index`, as if `index` chains had
    /// gone round already, so a test reaches the `u16` wrap in a few steps.
    #[cfg(test)]
    pub(crate) fn skip_to(&mut self, index: u16) {
        self.avail_index = index;
        self.published = index;
        self.last_used = index;
        // SAFETY: `avail.idx` at offset 2 of the available ring.
        unsafe { self.avail_field(2).write_volatile(index) };
    }

    /// Entries in the queue.
    pub fn size(&self) -> u16 {
        self.layout.size
    }

    /// Descriptors not in use.
    pub fn free_count(&self) -> usize {
        if self.in_order {
            usize::from(self.layout.size - self.avail_index.wrapping_sub(self.last_used))
        } else {
            self.free.len()
        }
    }

    /// Where the device finds the three parts.
    pub fn addresses(&self) -> RingAddresses {
        RingAddresses {
            descriptors: self.phys,
            driver: self.phys + self.layout.avail as u64,
            device: self.phys + self.layout.used as u64,
        }
    }

    fn descriptor(&self, id: u16) -> *mut Descriptor {
        debug_assert!(id < self.layout.size);
        // SAFETY: `id < size`, so the descriptor lies in the table at offset 0.
        unsafe { self.base.as_ptr().cast::<Descriptor>().add(usize::from(id)) }
    }

    /// Pointer to the `u16` at `offset` bytes into the available ring.
    fn avail_field(&self, offset: usize) -> *mut u16 {
        debug_assert!(offset + 2 <= 6 + 2 * usize::from(self.layout.size));
        // SAFETY: inside the available ring (checked above), 2-byte aligned.
        unsafe { self.base.as_ptr().add(self.layout.avail + offset).cast() }
    }

    /// Pointer to the `u16` at `offset` bytes into the used ring.
    fn used_field(&self, offset: usize) -> *mut u16 {
        // SAFETY: `flags` (0) and `idx` (2) lie at the start of the used ring.
        unsafe { self.base.as_ptr().add(self.layout.used + offset).cast() }
    }

    /// Adds a descriptor chain to the available ring, invisible to the device
    /// until `publish`. Returns the head descriptor id.
    pub fn push(&mut self, chain: &[Segment]) -> Result<u16, PushError> {
        if chain.is_empty() {
            return Err(PushError::Empty);
        }
        if self.in_order || chain.len() > self.free.len() {
            return Err(PushError::Full);
        }
        // The chain takes the top of the free stack in order, so a fresh
        // queue's first chain is descriptors 0, 1, 2… linked in table
        // order, as 2.7.9 asks of an in-order driver (the control queue's
        // one command).
        let top = self.free.len() - 1;
        for (index, segment) in chain.iter().enumerate() {
            let id = self.free[top - index];
            let mut flags = DescriptorFlags::empty();
            if segment.device_writes {
                flags |= DescriptorFlags::VIRTQ_DESC_F_WRITE;
            }
            let mut next = 0;
            if index + 1 < chain.len() {
                flags |= DescriptorFlags::VIRTQ_DESC_F_NEXT;
                next = self.free[top - index - 1];
            }
            let descriptor = Descriptor {
                addr: segment.addr,
                len: segment.len,
                flags: flags.bits(),
                next,
            };
            // SAFETY: `id` is on the free list, so the device does not own
            // the descriptor; the pointer is in bounds (`descriptor`).
            unsafe { self.descriptor(id).write_volatile(descriptor) };
        }
        let head = self.free[top];
        self.free.truncate(self.free.len() - chain.len());
        let slot = usize::from(self.avail_index & (self.layout.size - 1));
        // SAFETY: ring entry `slot < size` of the available ring; the device
        // does not read entries at or past the published `idx`.
        unsafe { self.avail_field(4 + 2 * slot).write_volatile(head) };
        self.avail_index = self.avail_index.wrapping_add(1);
        Ok(head)
    }

    /// Makes every pushed chain visible to the device with one fence and
    /// says whether the device wants a notification (`VIRTQ_USED_F_NO_NOTIFY`
    /// clear). Returns false when nothing was pushed since the last call.
    pub fn publish(&mut self) -> bool {
        if self.avail_index == self.published {
            return false;
        }
        // Ordering (virtio 1.2 2.7.13.3, updating idx): the descriptors
        // and ring entries written above must be visible before the new
        // index, a store-store ordering. Linux gives it `virtio_wmb`, which
        // for a device that is another CPU (no `VIRTIO_F_ORDER_PLATFORM`,
        // which this driver does not negotiate: its `weak_barriers`) is
        // `smp_wmb`, on x86 only a compiler barrier, x86 keeping stores in
        // order. A release store of the index says the same: an ordinary
        // store on x86, the barrier a weaker architecture needs elsewhere.
        // SAFETY: `avail.idx` at offset 2 of the available ring, 2-byte
        // aligned (`new` precondition 1); only this queue writes it, and
        // only here and in `skip_to` (tests, before any device access).
        let index = unsafe { AtomicU16::from_ptr(self.avail_field(2)) };
        index.store(self.avail_index, Ordering::Release);
        self.published = self.avail_index;
        // Ordering (2.7.13.4, notifying the device): the index store must
        // come before the load of `used.flags` below, a store-load
        // ordering, or we could miss the device re-enabling notifications:
        // a full fence, as Linux's `virtio_mb` (`smp_mb`, a locked
        // instruction on x86).
        fence(Ordering::SeqCst);
        // SAFETY: `used.flags` at offset 0 of the used ring, written by the device.
        let used_flags = unsafe { self.used_field(0).read_volatile() };
        used_flags & VIRTQ_USED_F_NO_NOTIFY == 0
    }

    /// Used-ring entries the device completed that the driver has not taken.
    pub fn used_pending(&self) -> u16 {
        // SAFETY: `used.idx` at offset 2 of the used ring, written by the device.
        let device_index = unsafe { self.used_field(2).read_volatile() };
        // Ordering: the used entries and buffer contents the device wrote
        // before advancing `idx` are read only after this load.
        fence(Ordering::Acquire);
        device_index.wrapping_sub(self.last_used)
    }

    /// Takes the oldest used entry (call only while `used_pending() > 0`),
    /// frees its chain and returns (head id, bytes written).
    pub fn take_used(&mut self) -> Option<UsedElement> {
        let slot = usize::from(self.last_used & (self.layout.size - 1));
        // SAFETY: entry `slot < size` of the used ring, after `flags` and `idx`.
        let element = unsafe {
            self.base
                .as_ptr()
                .add(self.layout.used + 4 + 8 * slot)
                .cast::<UsedElement>()
                .read_volatile()
        };
        // Consume the entry even when it is bogus, so a misbehaving device
        // cannot wedge the ring.
        self.last_used = self.last_used.wrapping_add(1);
        let head = u16::try_from(element.id)
            .ok()
            .filter(|&id| id < self.layout.size)?;
        let mut id = head;
        // A chain is never longer than the queue: bound the walk so a
        // misbehaving device cannot loop us.
        for _ in 0..self.layout.size {
            // SAFETY: `id < size`; the device handed the chain back.
            let descriptor = unsafe { self.descriptor(id).read_volatile() };
            self.free.push(id);
            if descriptor.flags & DescriptorFlags::VIRTQ_DESC_F_NEXT.bits() == 0
                || descriptor.next >= self.layout.size
            {
                break;
            }
            id = descriptor.next;
        }
        Some(element)
    }

    /// Adds a chain of one descriptor (`addr`, `len`), the way the network
    /// queues use the ring, invisible to the device until `publish`: one
    /// descriptor store and one ring entry. Returns its id, or `None` when no
    /// descriptor is free.
    #[inline]
    pub fn push_single(&mut self, addr: u64, len: u32, device_writes: bool) -> Option<u16> {
        let id = if self.in_order {
            if self.avail_index.wrapping_sub(self.last_used) == self.layout.size {
                return None;
            }
            self.avail_index & (self.layout.size - 1)
        } else {
            self.free.pop()?
        };
        let flags = if device_writes {
            DescriptorFlags::VIRTQ_DESC_F_WRITE.bits()
        } else {
            0
        };
        // `len`, `flags` and `next` (0) as the descriptor's second 8 bytes,
        // little-endian as virtio 1.x lays them out: two stores for the
        // descriptor rather than four through a copy on the stack.
        let tail = (u64::from(len) | u64::from(flags) << 32).to_le();
        let descriptor = self.descriptor(id).cast::<u64>();
        // SAFETY: `id` came off the free list or is the ring slot of a chain
        // completed in order (fewer than `size` in flight), so it is below
        // `size` and the device does not own the descriptor; the table is
        // 16-byte aligned
        // (`new` precondition 1), so both halves are aligned `u64`s.
        unsafe {
            descriptor.write_volatile(addr.to_le());
            descriptor.add(1).write_volatile(tail);
        }
        if !self.in_order {
            let slot = usize::from(self.avail_index & (self.layout.size - 1));
            // SAFETY: ring entry `slot < size` of the available ring; the
            // device does not read entries at or past the published `idx`.
            unsafe { self.avail_field(4 + 2 * slot).write_volatile(id) };
        }
        self.avail_index = self.avail_index.wrapping_add(1);
        Some(id)
    }

    /// Takes up to `max` used entries, oldest first, with one load of
    /// `used.idx` for all of them: each valid one goes to `complete` as
    /// (head id, bytes written). `complete` returns true when the id named a
    /// chain of one descriptor in flight (pushed by `push_single`), which is
    /// then freed; false leaves the free list alone (an id the device
    /// returned twice or never had). Ids out of range are consumed and not
    /// passed on, so a misbehaving device cannot wedge the ring. Returns the
    /// entries consumed.
    ///
    /// In order ([`Self::set_in_order`]) the completed descriptors are the
    /// ring positions from the last one taken to `used.idx` (never more than
    /// were published), each freed whatever `complete` returns. The used
    /// entries are read only with `lengths` (a transmit queue needs none):
    /// an entry that does not name its position's descriptor (a device
    /// batching completions, which 2.7.9 allows and leaves the lengths of
    /// all but the last unknown) is passed on with length `u32::MAX`.
    #[inline]
    pub fn take_used_singles(
        &mut self,
        max: usize,
        lengths: bool,
        mut complete: impl FnMut(u16, u32) -> bool,
    ) -> usize {
        let mask = self.layout.size - 1;
        if self.in_order {
            return self.take_in_order(max, lengths, complete);
        }
        let pending = usize::from(self.used_pending()).min(max);
        // SAFETY: the used ring's entries start after its `flags` and `idx`.
        let entries = unsafe {
            self.base
                .as_ptr()
                .add(self.layout.used + 4)
                .cast::<UsedElement>()
        };
        let mut index = self.last_used;
        for _ in 0..pending {
            // SAFETY: entry `index & mask < size` of the used ring, which
            // the device completed before the `idx` `used_pending` loaded.
            let element = unsafe { entries.add(usize::from(index & mask)).read_volatile() };
            index = index.wrapping_add(1);
            if let Ok(id) = u16::try_from(element.id)
                && id < self.layout.size
                && complete(id, element.len)
            {
                self.free.push(id);
            }
        }
        self.last_used = index;
        pending
    }

    #[inline]
    fn take_in_order(
        &mut self,
        max: usize,
        lengths: bool,
        mut complete: impl FnMut(u16, u32) -> bool,
    ) -> usize {
        // A device claiming more than was published is believed only up to
        // what it holds.
        let in_flight = self.published.wrapping_sub(self.last_used);
        let pending = usize::from(self.used_pending().min(in_flight)).min(max);
        let mask = self.layout.size - 1;
        // SAFETY: the used ring's entries start after its `flags` and `idx`.
        let entries = unsafe {
            self.base
                .as_ptr()
                .add(self.layout.used + 4)
                .cast::<UsedElement>()
        };
        let mut index = self.last_used;
        for _ in 0..pending {
            let id = index & mask;
            let len = if lengths {
                // SAFETY: entry `id < size` of the used ring, which the
                // device completed before the `idx` `used_pending` loaded.
                let element = unsafe { entries.add(usize::from(id)).read_volatile() };
                if element.id == u32::from(id) {
                    element.len
                } else {
                    u32::MAX
                }
            } else {
                0
            };
            complete(id, len);
            index = index.wrapping_add(1);
        }
        self.last_used = index;
        pending
    }

    /// In order: the descriptors free for new chains, as (first id,
    /// count); the ids run up from `first`, wrapping at the queue size.
    pub fn in_order_free(&self) -> (u16, u16) {
        let mask = self.layout.size - 1;
        let free = self.layout.size - self.avail_index.wrapping_sub(self.last_used);
        (self.avail_index & mask, free)
    }

    /// In order: the descriptors the device may still hold (pushed, not
    /// yet taken back), as (first id, count), wrapping at the queue size.
    pub fn in_order_outstanding(&self) -> (u16, u16) {
        let mask = self.layout.size - 1;
        (
            self.last_used & mask,
            self.avail_index.wrapping_sub(self.last_used),
        )
    }

    /// In order: a run of chains of one descriptor pushed at the next
    /// `count` free positions (fewer when fewer are free; none when the
    /// queue is not in order), in ring order, invisible to the device
    /// until `publish`. The run keeps the ring position and the bound in
    /// registers and stores the position once, when it ends.
    #[inline]
    pub fn in_order_run(&mut self, count: usize, device_writes: bool) -> InOrderRun<'_> {
        let count = if self.in_order {
            count.min(usize::from(self.in_order_free().1))
        } else {
            0
        };
        let flags = if device_writes {
            DescriptorFlags::VIRTQ_DESC_F_WRITE.bits()
        } else {
            0
        };
        let position = usize::from(self.avail_index);
        InOrderRun {
            table: self.base.as_ptr().cast::<u64>(),
            mask: usize::from(self.layout.size - 1),
            flags: u64::from(flags) << 32,
            position,
            end: position + count,
            queue: self,
        }
    }

    /// In order: takes up to `max` completed chains at once (one load of
    /// `used.idx`, never more than were published), ids running up from
    /// the oldest and wrapping at the queue size; the run reads the
    /// lengths the device wrote. Empty when the queue is not in order.
    #[inline]
    pub fn take_used_in_order(&mut self, max: usize) -> UsedRun<'_> {
        let count = if self.in_order {
            let in_flight = self.published.wrapping_sub(self.last_used);
            usize::from(self.used_pending().min(in_flight)).min(max)
        } else {
            0
        };
        let mask = self.layout.size - 1;
        let first = self.last_used & mask;
        self.last_used = self.last_used.wrapping_add(count as u16);
        UsedRun {
            // SAFETY: the used ring's entries start after its `flags` and
            // `idx`, inside the allocation (`RingLayout`).
            entries: unsafe {
                self.base
                    .as_ptr()
                    .add(self.layout.used + 4)
                    .cast::<UsedElement>()
            },
            first: usize::from(first),
            count,
            mask: usize::from(mask),
            _queue: PhantomData,
        }
    }

    /// Asks the device not to interrupt on used buffers (polling), or to
    /// interrupt again.
    pub fn set_interrupts(&mut self, enabled: bool) {
        let flags = if enabled {
            0
        } else {
            VIRTQ_AVAIL_F_NO_INTERRUPT
        };
        // SAFETY: `avail.flags` at offset 0 of the available ring.
        unsafe { self.avail_field(0).write_volatile(flags) };
    }
}

/// A device-writable descriptor's flags as `InOrderRun::flags` holds them
/// (`len`'s neighbours in the descriptor's second 8 bytes).
const WRITE_FLAGS: u64 = (DescriptorFlags::VIRTQ_DESC_F_WRITE.bits() as u64) << 32;

/// Chains of one descriptor being pushed in order at consecutive free
/// positions ([`SplitQueue::in_order_run`]); the queue's available index
/// moves past them when the run is dropped.
pub struct InOrderRun<'a> {
    queue: &'a mut SplitQueue,
    table: *mut u64,
    /// The queue size less one. It, the position and the end are kept as
    /// `usize` rather than the ring's `u16`: an id masked out of them needs
    /// no zero-extension before it indexes a table.
    mask: usize,
    /// The flags, `len`'s neighbours in a descriptor's second 8 bytes.
    flags: u64,
    /// The next position to push at, counted from the available index
    /// without wrapping at 2^16 (the ring's index is it modulo 2^16).
    position: usize,
    /// One past the last position the run may push at.
    end: usize,
}

impl InOrderRun<'_> {
    /// The id of the descriptor the next [`Self::push`] writes, `None` once
    /// the run is full.
    #[inline(always)]
    pub fn next_id(&self) -> Option<u16> {
        (self.position != self.end).then_some((self.position & self.mask) as u16)
    }

    /// Writes the next descriptor (`addr`, `len`); nothing once the run is
    /// full.
    #[inline(always)]
    pub fn push(&mut self, addr: u64, len: u32) {
        if self.position == self.end {
            return;
        }
        let id = self.position & self.mask;
        // SAFETY: `id = position & (size - 1) < size`, so both halves lie in
        // the descriptor table at offset 0, 16-byte aligned (`new`
        // precondition 1); the position is one of those `in_order_run`
        // found free (`position` runs from the available index to `end`,
        // no further than the free count), so the device does not own the
        // descriptor. `len`, `flags` and `next` (0) are the second 8 bytes,
        // little-endian as virtio 1.x lays them out.
        unsafe {
            let descriptor = self.table.add(2 * id);
            descriptor.write_volatile(addr.to_le());
            descriptor
                .add(1)
                .write_volatile((u64::from(len) | self.flags).to_le());
        }
        self.position += 1;
    }

    /// Pushes a chain for each of `items`, at consecutive descriptors
    /// from the next one, each (`address(item)`, `len`), up to the run's
    /// end and no further than the table's last descriptor (a span that
    /// does not wrap: the caller pushes what follows it, from descriptor
    /// 0, with another call). Returns how many it pushed. Written by one
    /// descriptor pointer bumped, with no mask or bound to check a chain:
    /// a refill writing the descriptors of a run of slots.
    #[inline(always)]
    pub fn push_span<T: Copy>(
        &mut self,
        items: &[T],
        len: u32,
        mut address: impl FnMut(T) -> u64,
    ) -> usize {
        let id = self.position & self.mask;
        let count = items
            .len()
            .min(self.end - self.position)
            .min(self.mask + 1 - id);
        let tail = (u64::from(len) | self.flags).to_le();
        // SAFETY: `id < size`, so the descriptor lies in the table at
        // offset 0 (16-byte aligned, `new` precondition 1).
        let mut descriptor = unsafe { self.table.add(2 * id) };
        for &item in &items[..count] {
            // SAFETY: the `count` descriptors from `id` lie in the table
            // (`count <= size - id`) and are among those `in_order_run`
            // found free (`count <= end - position`), so the device does
            // not own them; both halves are aligned `u64`s, `len`, `flags`
            // and `next` (0) the second, little-endian as virtio 1.x lays
            // them out.
            unsafe {
                descriptor.write_volatile(address(item).to_le());
                descriptor.add(1).write_volatile(tail);
                descriptor = descriptor.add(2);
            }
        }
        self.position += count;
        count
    }

    /// Pushes a chain for each of `side`'s items in turn, at consecutive
    /// descriptors from the next one, while `describe` gives it
    /// (`address`, `len`); stops at the first item it gives none for, at
    /// the run's end, or at the table's last descriptor (a span that does
    /// not wrap: the caller goes on from descriptor 0 with another call).
    /// `side` is what the caller keeps by descriptor, from the next one's
    /// (a driver's slots): item `k` belongs to the `k`-th descriptor
    /// pushed. Returns how many it pushed. Written by a descriptor pointer
    /// and an item pointer bumped, with no mask: a transmit burst writing
    /// each frame's descriptor and slot as it takes the frame.
    #[inline(always)]
    pub fn push_span_while<S>(
        &mut self,
        side: &mut [S],
        describe: impl FnMut(&mut S) -> Option<(u64, u32)>,
    ) -> usize {
        // The flags as a constant where they are none (a transmit run):
        // the loop then stores the length as it is.
        if self.flags == 0 {
            self.push_span_while_flagged::<0, S>(side, describe)
        } else {
            self.push_span_while_flagged::<WRITE_FLAGS, S>(side, describe)
        }
    }

    /// [`Self::push_span_while`] for a run whose `flags` are `FLAGS`.
    #[inline(always)]
    fn push_span_while_flagged<const FLAGS: u64, S>(
        &mut self,
        side: &mut [S],
        mut describe: impl FnMut(&mut S) -> Option<(u64, u32)>,
    ) -> usize {
        debug_assert_eq!(self.flags, FLAGS);
        let id = self.position & self.mask;
        let count = side
            .len()
            .min(self.end - self.position)
            .min(self.mask + 1 - id);
        // SAFETY: `id < size`, so the descriptor lies in the table at
        // offset 0 (16-byte aligned, `new` precondition 1).
        let first = unsafe { self.table.add(2 * id) };
        let mut descriptor = first;
        for item in &mut side[..count] {
            let Some((addr, len)) = describe(item) else {
                break;
            };
            // SAFETY: as in `push_span`: at most `count` descriptors from
            // `id` are written, which lie in the table and are among those
            // `in_order_run` found free.
            unsafe {
                descriptor.write_volatile(addr.to_le());
                descriptor
                    .add(1)
                    .write_volatile((u64::from(len) | FLAGS).to_le());
                descriptor = descriptor.add(2);
            }
        }
        // SAFETY: both in the table, `descriptor` moved 2 `u64`s a chain.
        let pushed = unsafe { descriptor.offset_from(first) } as usize / 2;
        self.position += pushed;
        pushed
    }

    /// Chains pushed so far.
    pub fn pushed(&self) -> usize {
        self.position - usize::from(self.queue.avail_index)
    }
}

impl Drop for InOrderRun<'_> {
    fn drop(&mut self) {
        // Modulo 2^16, as the ring counts.
        self.queue.avail_index = self.position as u16;
    }
}

/// Chains of one descriptor the device completed in order, taken from the
/// used ring at once ([`SplitQueue::take_used_in_order`]).
pub struct UsedRun<'a> {
    entries: *const UsedElement,
    /// The first id, and the queue size less one, as `usize` (see
    /// [`InOrderRun`]'s `mask`).
    first: usize,
    count: usize,
    mask: usize,
    _queue: PhantomData<&'a SplitQueue>,
}

impl UsedRun<'_> {
    /// Chains in the run.
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when the device completed none.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The id of the first descriptor; the others follow, wrapping at the
    /// queue size.
    #[inline(always)]
    pub fn first(&self) -> u16 {
        self.first as u16
    }

    /// The id of the `offset`-th descriptor of the run.
    #[inline(always)]
    pub fn id(&self, offset: usize) -> u16 {
        ((self.first + offset) & self.mask) as u16
    }

    /// The used entry at descriptor `id`'s position.
    #[inline(always)]
    fn entry(&self, id: usize) -> UsedElement {
        // SAFETY: entry `id & mask < size` of the used ring; the device
        // completed it before the `idx` that `take_used_in_order` loaded
        // (whose acquire fence orders this read after that load) and does
        // not write it again before the descriptor is published anew,
        // which the borrow of the queue held by the run rules out.
        unsafe { self.entries.add(id & self.mask).read_volatile() }
    }

    /// Whether the run's first and last used entries name their own
    /// descriptors, as the entries of an in-order device that completes
    /// buffers one by one do: checked once a run, so that the lengths can
    /// be read with [`Self::written_in_place`]. Entry `p` of the ring
    /// names descriptor `p` on every lap of such a device, so checking
    /// each entry's id tells no more about it. What the check is for is a
    /// device that batches completions, which 2.7.10 allows: it writes one
    /// entry, at the batch's first position, naming the batch's last
    /// buffer, and moves `used.idx` past the whole batch, leaving the
    /// other lengths unknown (the entries behind the first still hold the
    /// last lap's, which name their own descriptors). A batch that starts
    /// at the run's first entry shows there, and a device writing other
    /// ids (misbehaving) at either end shows too; a batch that starts
    /// inside the run is not seen here (the per-entry check,
    /// [`Self::written`], sees its first entry and refuses it). QEMU's
    /// virtio-net and the simulated device complete receive buffers one
    /// by one. An empty run is in place.
    #[inline(always)]
    pub fn ends_in_place(&self) -> bool {
        if self.count == 0 {
            return true;
        }
        let last = self.first + self.count - 1;
        self.entry(self.first).id as usize == self.first & self.mask
            && self.entry(last).id as usize == last & self.mask
    }

    /// The bytes the device wrote into descriptor `id`'s buffer, from the
    /// used entry at its position; `u32::MAX` when the entry names another
    /// descriptor (a device batching completions, which 2.7.9 allows and
    /// leaves the lengths of all but the last unknown).
    #[inline(always)]
    pub fn written(&self, id: u16) -> u32 {
        let id = usize::from(id) & self.mask;
        let element = self.entry(id);
        if element.id as usize == id {
            element.len
        } else {
            u32::MAX
        }
    }

    /// [`Self::written`] without the look at the entry's id, for a run
    /// whose [`Self::ends_in_place`] held: one load a packet.
    #[inline(always)]
    pub fn written_in_place(&self, id: u16) -> u32 {
        let id = usize::from(id);
        // SAFETY: as in `entry`; `len` at offset 4 of the 8-byte entry.
        unsafe {
            self.entries
                .add(id & self.mask)
                .cast::<u32>()
                .add(1)
                .read_volatile()
        }
    }

    /// The run as its one or two spans of consecutive descriptors, in
    /// order: the first from the run's first descriptor up to the table's
    /// end at most, the second from descriptor 0 (empty unless the run
    /// crosses the table's end). A receive loop walks each with one
    /// index, no mask: entry `k` of a span and the `k`-th of the caller's
    /// slots from the span's first id.
    #[inline(always)]
    pub fn spans(&self) -> [UsedSpan<'_>; 2] {
        // `first <= mask`, so the table has `mask + 1 - first` entries from it.
        let head = self.count.min(self.mask + 1 - self.first);
        [
            UsedSpan {
                // SAFETY: `first <= mask`: inside the used ring.
                entries: unsafe { self.entries.add(self.first) },
                first: self.first,
                count: head,
                _run: PhantomData,
            },
            UsedSpan {
                entries: self.entries,
                first: 0,
                count: self.count - head,
                _run: PhantomData,
            },
        ]
    }
}

/// Consecutive entries of a [`UsedRun`] that do not cross the table's
/// end ([`UsedRun::spans`]): entry `k` is descriptor `first + k`'s.
pub struct UsedSpan<'a> {
    /// The used ring's entry at the span's first descriptor.
    entries: *const UsedElement,
    first: usize,
    count: usize,
    _run: PhantomData<&'a UsedRun<'a>>,
}

impl UsedSpan<'_> {
    /// The id of the span's first descriptor; entry `k` is descriptor
    /// `first() + k`'s.
    #[inline(always)]
    pub fn first(&self) -> usize {
        self.first
    }

    /// Entries in the span.
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when the span has no entry.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// [`UsedRun::written`] of the span's `k`-th entry: the bytes the
    /// device wrote into descriptor `first() + k`'s buffer, or `u32::MAX`
    /// when the entry names another descriptor or `k` is past the span.
    #[inline(always)]
    pub fn written(&self, k: usize) -> u32 {
        if k >= self.count {
            return u32::MAX;
        }
        // SAFETY: `k < count`, so the entry is one of the run's, inside the
        // used ring (`spans` stops at the table's end), completed by the
        // device before the `idx` `take_used_in_order` loaded and not
        // written again while the run borrows the queue (as in
        // `UsedRun::entry`).
        let element = unsafe { self.entries.add(k).read_volatile() };
        if element.id as usize == self.first + k {
            element.len
        } else {
            u32::MAX
        }
    }

    /// [`Self::written`] without the look at the entry's id, for a run
    /// whose [`UsedRun::ends_in_place`] held: one load a packet, no bound
    /// checked.
    ///
    /// # Safety
    /// `k < self.len()`.
    #[inline(always)]
    pub unsafe fn written_in_place(&self, k: usize) -> u32 {
        debug_assert!(k < self.count);
        // SAFETY: as in `written`, `k < count` being the precondition;
        // `len` at offset 4 of the 8-byte entry.
        unsafe { self.entries.add(k).cast::<u32>().add(1).read_volatile() }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) use crate::simulated::{HeapRing, SimulatedDevice};

    fn segment(addr: u64, len: u32, device_writes: bool) -> Segment {
        Segment {
            addr,
            len,
            device_writes,
        }
    }

    #[test]
    fn layout_matches_the_spec_formulas() {
        let layout = RingLayout::new(256);
        assert_eq!(layout.avail, 4096);
        assert_eq!(layout.used, 4096 + 6 + 512 + 2); // rounded up to 4
        assert_eq!(layout.total, layout.used + 6 + 8 * 256);
        assert_eq!(RingLayout::new(4).used % 4, 0);
    }

    #[test]
    fn chains_are_invisible_until_published_and_come_back_freed() {
        let mut memory = HeapRing::new(8);
        let mut queue = memory.queue(8);
        let mut device = SimulatedDevice::attach(&queue);
        let head = queue
            .push(&[segment(0x1000, 12, false), segment(0x2000, 100, false)])
            .unwrap();
        assert_eq!(queue.free_count(), 6);
        assert!(device.next_chain().is_none(), "seen before publish");
        assert!(queue.publish(), "device wants notifications by default");
        assert!(!queue.publish(), "nothing new to publish");
        let (seen, chain) = device.next_chain().unwrap();
        assert_eq!(seen, head);
        assert_eq!(chain.len(), 2);
        assert_eq!((chain[0].addr, chain[0].len), (0x1000, 12));
        assert_eq!((chain[1].addr, chain[1].len), (0x2000, 100));
        assert_eq!(
            chain[1].flags & DescriptorFlags::VIRTQ_DESC_F_WRITE.bits(),
            0
        );
        assert_eq!(queue.used_pending(), 0);
        device.complete(head, 0);
        assert_eq!(queue.used_pending(), 1);
        let used = queue.take_used().unwrap();
        assert_eq!(used.id, u32::from(head));
        assert_eq!(queue.used_pending(), 0);
        assert_eq!(queue.free_count(), 8, "both descriptors freed");
    }

    #[test]
    fn no_notify_is_honoured_and_full_queue_refuses() {
        let mut memory = HeapRing::new(4);
        let mut queue = memory.queue(4);
        let mut device = SimulatedDevice::attach(&queue);
        device.set_no_notify(true);
        for index in 0..4 {
            queue.push(&[segment(index * 0x800, 2048, true)]).unwrap();
        }
        assert_eq!(
            queue.push(&[segment(0, 1, true)]),
            Err(PushError::Full),
            "a fifth buffer in a 4-entry queue"
        );
        assert_eq!(queue.push(&[]), Err(PushError::Empty));
        assert!(!queue.publish(), "device said NO_NOTIFY");
        device.set_no_notify(false);
        queue.set_interrupts(false);
        assert_eq!(device.avail_flags(), VIRTQ_AVAIL_F_NO_INTERRUPT);
        let chain = device.next_chain().unwrap().1;
        assert_ne!(
            chain[0].flags & DescriptorFlags::VIRTQ_DESC_F_WRITE.bits(),
            0
        );
    }

    #[test]
    fn indices_wrap_around_u16_and_out_of_order_completion_works() {
        let mut memory = HeapRing::new(4);
        let mut queue = memory.queue(4);
        let mut device = SimulatedDevice::attach(&queue);
        // 70_000 round trips from 0 (under Miri 100 from just below the
        // wrap): avail and used indices wrap past 65535.
        let (start, rounds) = if cfg!(miri) {
            (65_450, 100)
        } else {
            (0, 70_000u32)
        };
        queue.skip_to(start);
        device.skip_to(start);
        for round in 0..rounds {
            let first = queue.push(&[segment(u64::from(round), 1, true)]).unwrap();
            let second = queue
                .push(&[segment(u64::from(round) + 1, 2, true)])
                .unwrap();
            queue.publish();
            let (a, _) = device.next_chain().unwrap();
            let (b, chain) = device.next_chain().unwrap();
            assert_eq!((a, b), (first, second));
            assert_eq!(chain[0].addr, u64::from(round) + 1);
            // Complete the second one first.
            device.complete(b, 7);
            device.complete(a, 9);
            assert_eq!(queue.used_pending(), 2);
            let done = [queue.take_used().unwrap(), queue.take_used().unwrap()];
            assert_eq!((done[0].id, done[0].len), (u32::from(second), 7));
            assert_eq!((done[1].id, done[1].len), (u32::from(first), 9));
            assert_eq!(queue.free_count(), 4);
        }
    }

    #[test]
    fn single_descriptor_bursts_free_only_what_was_in_flight() {
        let mut memory = HeapRing::new(4);
        let mut queue = memory.queue(4);
        let mut device = SimulatedDevice::attach(&queue);
        let first = queue.push_single(0x1000, 64, true).unwrap();
        let second = queue.push_single(0x2000, 32, false).unwrap();
        assert_eq!(queue.free_count(), 2);
        assert!(queue.publish());
        let (seen, chain) = device.next_chain().unwrap();
        assert_eq!((seen, chain.len()), (first, 1));
        assert_eq!((chain[0].addr, chain[0].len), (0x1000, 64));
        assert_eq!(chain[0].flags, DescriptorFlags::VIRTQ_DESC_F_WRITE.bits());
        let (_, chain) = device.next_chain().unwrap();
        assert_eq!(
            (chain[0].addr, chain[0].len, chain[0].flags),
            (0x2000, 32, 0)
        );
        // `first` twice, an id past the ring, then `second`.
        device.complete(first, 10);
        device.complete(first, 10);
        device.complete(17, 1);
        device.complete(second, 20);
        let mut in_flight = [true; 4];
        let mut seen = Vec::new();
        let consumed = queue.take_used_singles(3, true, |id, len| {
            seen.push((id, len));
            core::mem::take(&mut in_flight[usize::from(id)])
        });
        assert_eq!(consumed, 3, "bounded by `max`");
        assert_eq!(
            seen,
            [(first, 10), (first, 10)],
            "the bogus id is not passed on"
        );
        assert_eq!(queue.free_count(), 3, "`first` freed once");
        let consumed = queue.take_used_singles(usize::MAX, true, |id, len| {
            seen.push((id, len));
            core::mem::take(&mut in_flight[usize::from(id)])
        });
        assert_eq!(consumed, 1);
        assert_eq!(seen.last(), Some(&(second, 20)));
        assert_eq!(queue.free_count(), 4);
        assert_eq!(queue.used_pending(), 0);
    }

    #[test]
    fn in_order_ties_descriptors_to_ring_slots_across_the_wrap() {
        let mut memory = HeapRing::new(4);
        let mut queue = memory.queue(4);
        let mut device = SimulatedDevice::attach(&queue);
        queue.set_in_order();
        assert!(queue.in_order());
        assert_eq!(queue.push(&[segment(0, 1, true)]), Err(PushError::Full));
        let (start, rounds) = if cfg!(miri) {
            (65_530, 20)
        } else {
            (65_000, 1_000u32)
        };
        queue.skip_to(start);
        device.skip_to(start);
        for round in 0..rounds {
            let ids: Vec<u16> = (0..3)
                .map(|k| {
                    queue
                        .push_single(u64::from(round) * 8 + k, 60, true)
                        .unwrap()
                })
                .collect();
            assert_eq!(queue.free_count(), 1);
            queue.publish();
            for (k, &id) in ids.iter().enumerate() {
                let (head, descriptor) = device.next_head().unwrap();
                assert_eq!(head, id, "descriptor id is the ring slot");
                assert_eq!(descriptor.addr, u64::from(round) * 8 + k as u64);
                device.complete(head, u32::from(id) + 100);
            }
            let mut seen = Vec::new();
            let taken = queue.take_used_singles(usize::MAX, true, |id, len| {
                seen.push((id, len));
                false
            });
            assert_eq!(taken, 3);
            let lengths: Vec<(u16, u32)> =
                ids.iter().map(|&id| (id, u32::from(id) + 100)).collect();
            assert_eq!(seen, lengths);
            assert_eq!(queue.free_count(), 4, "freed whatever `complete` said");
        }
    }

    #[test]
    fn in_order_runs_cross_the_u16_wrap_of_the_ring_indices() {
        let mut memory = HeapRing::new(4);
        let mut queue = memory.queue(4);
        let mut device = SimulatedDevice::attach(&queue);
        queue.set_in_order();
        // Runs of three from just below 65536: the runs count positions
        // in `usize`, which the ring's `u16` indices must follow.
        queue.skip_to(65_530);
        device.skip_to(65_530);
        for round in 0..8u64 {
            let mut run = queue.in_order_run(3, true);
            let mut ids = Vec::new();
            while let Some(id) = run.next_id() {
                ids.push(id);
                run.push(round * 8 + ids.len() as u64, 60);
            }
            assert_eq!(run.pushed(), 3);
            drop(run);
            assert_eq!(queue.in_order_free().1, 1);
            queue.publish();
            for (k, &id) in ids.iter().enumerate() {
                let (head, descriptor) = device.next_head().unwrap();
                assert_eq!(head, id, "descriptor id is the ring slot");
                assert_eq!(descriptor.addr, round * 8 + k as u64 + 1);
                device.complete(head, u32::from(id) + 100);
            }
            let used = queue.take_used_in_order(usize::MAX);
            assert_eq!(used.len(), 3);
            assert_eq!(used.first(), ids[0]);
            assert!(used.ends_in_place());
            for (offset, &id) in ids.iter().enumerate() {
                assert_eq!(used.id(offset), id);
                assert_eq!(used.written(id), u32::from(id) + 100);
                assert_eq!(used.written_in_place(id), u32::from(id) + 100);
            }
            assert_eq!(queue.in_order_free().1, 4);
        }
    }

    #[test]
    fn in_order_bounds_what_a_misbehaving_device_claims() {
        let mut memory = HeapRing::new(4);
        let mut queue = memory.queue(4);
        let mut device = SimulatedDevice::attach(&queue);
        queue.set_in_order();
        let first = queue.push_single(0x1000, 60, true).unwrap();
        let second = queue.push_single(0x2000, 60, true).unwrap();
        queue.publish();
        // One used entry for both buffers, naming the last (a batch, as
        // 2.7.9 allows), then an entry for a buffer never published.
        device.next_head().unwrap();
        device.next_head().unwrap();
        device.complete(second, 42);
        device.complete(second, 42);
        device.complete(3, 1);
        let mut seen = Vec::new();
        let taken = queue.take_used_singles(usize::MAX, true, |id, len| {
            seen.push((id, len));
            true
        });
        assert_eq!(taken, 2, "only the two published");
        assert_eq!(seen, [(first, u32::MAX), (second, 42)]);
        assert_eq!(queue.free_count(), 4);
        // Without lengths (transmit) the used entries are not read.
        let third = queue.push_single(0x3000, 60, false).unwrap();
        queue.publish();
        let taken = queue.take_used_singles(usize::MAX, false, |id, len| {
            seen.push((id, len));
            true
        });
        assert_eq!(taken, 1, "the device's index was already past it");
        assert_eq!(seen.last(), Some(&(third, 0)));
    }

    #[test]
    fn a_batch_completed_with_one_entry_at_the_run_start_is_not_in_place() {
        let mut memory = HeapRing::new(4);
        let mut queue = memory.queue(4);
        let mut device = SimulatedDevice::attach(&queue);
        queue.set_in_order();
        // A lap completed one by one: every entry names its descriptor.
        for lap in 0..2 {
            let mut run = queue.in_order_run(4, true);
            for buffer in 0..4u64 {
                run.push(0x1000 * (buffer + 1), 60);
            }
            drop(run);
            queue.publish();
            for _ in 0..4 {
                device.next_head().unwrap();
            }
            if lap == 0 {
                for id in 0..4 {
                    device.complete(id, 10 + u32::from(id));
                }
                let used = queue.take_used_in_order(usize::MAX);
                assert!(used.ends_in_place());
                continue;
            }
            // The next lap as one batch: entry 0 names descriptor 3 and
            // entries 1-3 still hold the first lap's, which name their
            // own descriptors.
            device.complete_batch(3, 4, 99);
            let used = queue.take_used_in_order(usize::MAX);
            assert_eq!(used.len(), 4);
            assert!(!used.ends_in_place(), "the batch shows at the run's start");
            assert_eq!(used.written(0), u32::MAX, "its length is unknown");
        }
    }

    #[test]
    fn a_used_run_whose_last_entry_names_another_descriptor_is_not_in_place_at_its_ends() {
        let mut memory = HeapRing::new(4);
        let mut queue = memory.queue(4);
        let mut device = SimulatedDevice::attach(&queue);
        queue.set_in_order();
        assert!(
            queue.take_used_in_order(usize::MAX).ends_in_place(),
            "empty"
        );
        let mut run = queue.in_order_run(2, true);
        run.push(0x1000, 60);
        run.push(0x2000, 60);
        drop(run);
        queue.publish();
        device.next_head().unwrap();
        device.next_head().unwrap();
        device.complete(0, 10);
        device.complete(0, 20);
        let used = queue.take_used_in_order(usize::MAX);
        assert_eq!(used.len(), 2);
        assert!(!used.ends_in_place());
        assert_eq!(used.written(0), 10);
        assert_eq!(used.written(1), u32::MAX, "the entry names descriptor 0");
        assert_eq!(
            used.written_in_place(1),
            20,
            "read without a look at the id"
        );
    }

    #[test]
    fn a_used_run_splits_into_spans_at_the_table_end() {
        let mut memory = HeapRing::new(4);
        let mut queue = memory.queue(4);
        let mut device = SimulatedDevice::attach(&queue);
        queue.set_in_order();
        // Three positions on: the run covers descriptors 3, 0 and 1.
        queue.skip_to(3);
        device.skip_to(3);
        let mut run = queue.in_order_run(3, true);
        for buffer in 0..3u64 {
            run.push(0x1000 * (buffer + 1), 60);
        }
        drop(run);
        queue.publish();
        for (id, written) in [(3, 13), (0, 10), (1, 11)] {
            assert_eq!(device.next_head().unwrap().0, id);
            device.complete(id, written);
        }
        let used = queue.take_used_in_order(usize::MAX);
        assert!(used.ends_in_place());
        let [head, wrapped] = used.spans();
        assert_eq!((head.first(), head.len()), (3, 1));
        assert_eq!((wrapped.first(), wrapped.len()), (0, 2));
        assert_eq!(head.written(0), 13);
        assert_eq!(head.written(1), u32::MAX, "past the span");
        assert_eq!((wrapped.written(0), wrapped.written(1)), (10, 11));
        // SAFETY: both below the span's length.
        let in_place = unsafe { (wrapped.written_in_place(0), wrapped.written_in_place(1)) };
        assert_eq!(in_place, (10, 11));
        // A run that does not cross the table's end is one span.
        let mut run = queue.in_order_run(2, true);
        run.push(0x1000, 60);
        run.push(0x2000, 60);
        drop(run);
        queue.publish();
        device.next_head().unwrap();
        device.next_head().unwrap();
        device.complete(2, 20);
        // Names descriptor 2 again: seen by `written`, not by the in-place read.
        device.complete(2, 21);
        let used = queue.take_used_in_order(usize::MAX);
        let [head, wrapped] = used.spans();
        assert_eq!((head.first(), head.len()), (2, 2));
        assert!(wrapped.is_empty());
        assert_eq!((head.written(0), head.written(1)), (20, u32::MAX));
        // SAFETY: below the span's length.
        assert_eq!(unsafe { head.written_in_place(1) }, 21);
    }

    #[test]
    fn spans_stop_at_the_table_end_and_at_the_run_end() {
        let mut memory = HeapRing::new(4);
        let mut queue = memory.queue(4);
        let mut device = SimulatedDevice::attach(&queue);
        queue.set_in_order();
        // Three positions on: the next descriptor is the table's last.
        queue.skip_to(3);
        device.skip_to(3);
        let mut run = queue.in_order_run(3, true);
        let address = |item: u64| item * 0x1000;
        assert_eq!(
            run.push_span(&[1, 2, 3], 60, address),
            1,
            "to the table's end"
        );
        assert_eq!(
            run.push_span(&[2, 3, 4], 60, address),
            2,
            "to the run's end"
        );
        assert_eq!(run.push_span(&[4], 60, address), 0);
        assert_eq!(run.pushed(), 3);
        drop(run);
        queue.publish();
        for (id, item) in [(3, 1), (0, 2), (1, 3)] {
            let (head, descriptor) = device.next_head().unwrap();
            assert_eq!(
                (head, descriptor.addr, descriptor.len),
                (id, item * 0x1000, 60)
            );
            assert_eq!(descriptor.flags, DescriptorFlags::VIRTQ_DESC_F_WRITE.bits());
        }
        assert!(device.next_head().is_none());
    }

    #[test]
    fn spans_pushed_while_described_carry_the_runs_flags() {
        for device_writes in [false, true] {
            let mut memory = HeapRing::new(4);
            let mut queue = memory.queue(4);
            let mut device = SimulatedDevice::attach(&queue);
            queue.set_in_order();
            let mut run = queue.in_order_run(4, device_writes);
            let mut side = [0u32; 4];
            let mut described = 0u64;
            // The third item gives no descriptor: the span stops there.
            let pushed = run.push_span_while(&mut side, |item| {
                described += 1;
                *item = described as u32;
                (described < 3).then_some((0x1000 * described, 60 + described as u32))
            });
            assert_eq!(pushed, 2);
            assert_eq!(run.pushed(), 2);
            drop(run);
            queue.publish();
            assert_eq!(side, [1, 2, 3, 0]);
            let flags = if device_writes {
                DescriptorFlags::VIRTQ_DESC_F_WRITE.bits()
            } else {
                0
            };
            for id in 0..2u16 {
                let (head, descriptor) = device.next_head().unwrap();
                assert_eq!(head, id);
                let expected = (0x1000 * u64::from(id + 1), 61 + u32::from(id), flags);
                assert_eq!(
                    (descriptor.addr, descriptor.len, descriptor.flags),
                    expected
                );
            }
            assert!(device.next_head().is_none());
        }
    }

    #[test]
    fn bogus_used_ids_are_refused() {
        let mut memory = HeapRing::new(4);
        let mut queue = memory.queue(4);
        let mut device = SimulatedDevice::attach(&queue);
        queue.push(&[segment(0, 1, true)]).unwrap();
        queue.publish();
        device.next_chain().unwrap();
        device.complete(17, 1);
        assert_eq!(queue.used_pending(), 1);
        assert!(queue.take_used().is_none());
        assert_eq!(queue.used_pending(), 0, "the bogus entry was consumed");
        assert_eq!(queue.free_count(), 3, "nothing freed for a bogus id");
    }
}
