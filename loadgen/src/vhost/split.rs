//! The split virtqueue's hot path: a burst of frames into a guest's receive
//! ring or out of its transmit ring, with the rings translated to host
//! pointers once per burst and each buffer by a lookup in at most eight
//! regions (no allocation, no per-packet region search through `vm-memory`'s
//! slice iterators), one used-index store per burst, and the call decision
//! (event index or no-interrupt flag) once per burst. rust-vmm's `Queue`
//! keeps the ring's addresses and indices between bursts and serves the rare
//! paths (notifications, GET_VRING_BASE).
//!
//! Guest memory is shared with QEMU's guest, outside the Rust abstract
//! machine: ring indices are read and written as atomics, ring entries and
//! descriptors with volatile accesses, and buffers are copied while the
//! device owns them (between the driver making a chain available and the
//! device returning it used, virtio 1.2 §2.7.13, the driver does not touch
//! it). A driver that breaks that rule garbles only that frame's bytes, which
//! loadgen parses with checks; every address is bounds-checked against the
//! mapped regions first, so no guest value can make loadgen touch memory
//! outside them.

use super::rings::{NET_HEADER_LEN, RingErrors};
use crate::socket::FRAME_BUFFER;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU16, Ordering, fence};
use virtio_queue::{Queue, QueueT};
use vm_memory::{GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion};

/// `VIRTQ_DESC_F_NEXT`: the chain continues at `next`.
const DESC_F_NEXT: u16 = 1;
/// `VIRTQ_DESC_F_WRITE`: the device writes this buffer.
const DESC_F_WRITE: u16 = 2;
/// `VIRTQ_DESC_F_INDIRECT`: not negotiated, so a guest mistake here.
const DESC_F_INDIRECT: u16 = 4;
/// `VRING_AVAIL_F_NO_INTERRUPT`: the driver asks not to be called.
const AVAIL_F_NO_INTERRUPT: u16 = 1;

/// Regions QEMU's SET_MEM_TABLE carries at most
/// (`VHOST_MEMORY_BASELINE_NREGIONS`).
const MAX_REGIONS: usize = 8;

/// The virtio-net header loadgen writes before every received frame: no
/// checksum or GSO work for the guest, `num_buffers` 1.
const RECEIVE_HEADER: [u8; NET_HEADER_LEN] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0];

/// One guest memory region and where it is mapped in loadgen.
#[derive(Clone, Copy)]
struct HostRegion {
    guest_start: u64,
    len: u64,
    host: *mut u8,
}

/// The guest's memory as host pointers, valid while `'a` borrows the
/// mapping they point into.
pub struct GuestMap<'a> {
    regions: [HostRegion; MAX_REGIONS],
    count: usize,
    _memory: PhantomData<&'a GuestMemoryMmap>,
}

impl<'a> GuestMap<'a> {
    /// The regions of `memory` (the first eight: QEMU sends no more).
    pub fn new(memory: &'a GuestMemoryMmap) -> Self {
        let empty = HostRegion {
            guest_start: 0,
            len: 0,
            host: std::ptr::null_mut(),
        };
        let mut regions = [empty; MAX_REGIONS];
        let mut count = 0;
        for (slot, region) in regions.iter_mut().zip(memory.iter()) {
            *slot = HostRegion {
                guest_start: region.start_addr().0,
                len: region.len(),
                host: region.as_ptr(),
            };
            count += 1;
        }
        Self {
            regions,
            count,
            _memory: PhantomData,
        }
    }

    /// Where guest-physical `[address, address + len)` is mapped, if it lies
    /// inside one region.
    fn host(&self, address: u64, len: u64) -> Option<*mut u8> {
        self.regions[..self.count].iter().find_map(|region| {
            let offset = address.checked_sub(region.guest_start)?;
            (offset <= region.len && len <= region.len - offset).then(|| {
                // SAFETY: `offset <= len` of a region mapped for `len` bytes
                // from `host`, so the result stays inside (or one past) that
                // mapping; `offset < isize::MAX` as mappings are.
                unsafe { region.host.add(offset as usize) }
            })
        })
    }
}

/// A descriptor table entry (virtio 1.2 §2.7.5), little-endian on x86.
#[derive(Clone, Copy)]
#[repr(C)]
struct Descriptor {
    /// 0x0: guest-physical buffer address.
    addr: u64,
    /// 0x8: buffer length.
    len: u32,
    /// 0xc: `DESC_F_*`.
    flags: u16,
    /// 0xe: the next descriptor when `DESC_F_NEXT`.
    next: u16,
}
const _: () = assert!(size_of::<Descriptor>() == 16);

/// One burst on one queue: its rings as host pointers and its indices, put
/// back into the `Queue` (and the used index published) by [`Burst::finish`].
pub struct Burst<'m, 'a> {
    map: &'m GuestMap<'a>,
    descriptors: *const Descriptor,
    avail: *const u8,
    used: *mut u8,
    size: u16,
    next_avail: u16,
    next_used: u16,
    first_used: u16,
    /// The driver's `avail.idx` as last read (read again when reached).
    avail_idx: u16,
}

impl<'m, 'a> Burst<'m, 'a> {
    /// Opens a burst on `queue`, or `None` when it is not started or its
    /// rings are not (whole and aligned) in guest memory.
    pub fn open(queue: &Queue, map: &'m GuestMap<'a>) -> Option<Self> {
        if !queue.ready() {
            return None;
        }
        let size = queue.size();
        if size == 0 || !size.is_power_of_two() {
            return None;
        }
        let entries = u64::from(size);
        let descriptors = map.host(queue.desc_table(), 16 * entries)?;
        let avail = map.host(queue.avail_ring(), 6 + 2 * entries)?;
        let used = map.host(queue.used_ring(), 6 + 8 * entries)?;
        // The alignments virtio 1.2 §2.7 requires (and the accesses below).
        if !descriptors.cast::<Descriptor>().is_aligned()
            || !avail.cast::<u16>().is_aligned()
            || !used.cast::<u32>().is_aligned()
        {
            return None;
        }
        let mut burst = Self {
            map,
            descriptors: descriptors.cast(),
            avail,
            used,
            size,
            next_avail: queue.next_avail(),
            next_used: queue.next_used(),
            first_used: queue.next_used(),
            avail_idx: 0,
        };
        burst.avail_idx = burst.load_avail_idx();
        Some(burst)
    }

    /// The driver's `avail.idx`.
    fn load_avail_idx(&self) -> u16 {
        // SAFETY: `avail + 2` is the aligned `idx` field inside the ring
        // checked in `open`; the driver writes it atomically (a 16-bit
        // aligned store).
        let index = unsafe { AtomicU16::from_ptr(self.avail.add(2).cast::<u16>().cast_mut()) };
        // Ordering: Acquire: the ring entries and descriptors the driver
        // wrote before publishing this index are read after it.
        u16::from_le(index.load(Ordering::Acquire))
    }

    /// Whether the driver made a chain available that this burst has not
    /// taken (reading `avail.idx` again if needed).
    pub fn has_available(&mut self) -> bool {
        if self.next_avail == self.avail_idx {
            self.avail_idx = self.load_avail_idx();
        }
        let ahead = self.avail_idx.wrapping_sub(self.next_avail);
        // More than a ring's worth ahead: the driver's index is garbage;
        // take nothing rather than chains it never posted.
        ahead != 0 && ahead <= self.size
    }

    /// Takes the next available chain's head.
    fn next_head(&mut self) -> Option<u16> {
        if !self.has_available() {
            return None;
        }
        let slot = usize::from(self.next_avail & (self.size - 1));
        // SAFETY: entry `slot < size` of the available ring (after `flags`
        // and `idx`), inside the range checked in `open`, 2-aligned.
        let head = unsafe { self.avail.add(4 + 2 * slot).cast::<u16>().read_volatile() };
        self.next_avail = self.next_avail.wrapping_add(1);
        Some(u16::from_le(head))
    }

    /// Descriptor `index`, if it is one of the table's.
    fn descriptor(&self, index: u16) -> Option<Descriptor> {
        (index < self.size).then(|| {
            // SAFETY: `index < size` entries of the table checked (and
            // found aligned) in `open`.
            let descriptor = unsafe { self.descriptors.add(usize::from(index)).read_volatile() };
            Descriptor {
                addr: u64::from_le(descriptor.addr),
                len: u32::from_le(descriptor.len),
                flags: u16::from_le(descriptor.flags),
                next: u16::from_le(descriptor.next),
            }
        })
    }

    /// Returns chain `head` to the driver with `len` bytes written.
    fn add_used(&mut self, head: u16, len: u32) {
        let slot = usize::from(self.next_used & (self.size - 1));
        // SAFETY: element `slot < size` of the used ring (8 bytes each after
        // `flags` and `idx`), inside the range checked in `open`, 4-aligned;
        // the driver reads it only after `idx` passes it (`finish`).
        unsafe {
            let element = self.used.add(4 + 8 * slot).cast::<u32>();
            element.write_volatile(u32::from(head).to_le());
            element.add(1).write_volatile(len.to_le());
        }
        self.next_used = self.next_used.wrapping_add(1);
    }

    /// Writes the receive header and `frame` into the next available chain
    /// that can hold them. Chains that cannot (too small, read-only, out of
    /// guest memory) are returned empty and counted. `false`: the driver
    /// has no buffer left.
    pub fn push_frame(&mut self, frame: &[u8], errors: &mut RingErrors) -> bool {
        loop {
            let Some(head) = self.next_head() else {
                return false;
            };
            let written = self.write_chain(head, frame);
            self.add_used(head, written.unwrap_or(0));
            if written.is_some() {
                return true;
            }
            errors.bad_receive_buffers += 1;
        }
    }

    /// Copies header and frame into chain `head`; the bytes written, or
    /// `None` when the chain cannot hold them.
    fn write_chain(&self, head: u16, frame: &[u8]) -> Option<u32> {
        let total = NET_HEADER_LEN + frame.len();
        let mut done = 0;
        let mut index = head;
        // A chain has at most `size` descriptors: bound the walk so a loop
        // in the guest's table cannot hold loadgen.
        for _ in 0..self.size {
            let descriptor = self.descriptor(index)?;
            if descriptor.flags & DESC_F_WRITE == 0 || descriptor.flags & DESC_F_INDIRECT != 0 {
                return None;
            }
            let take = (descriptor.len as usize).min(total - done);
            let host = self.map.host(descriptor.addr, take as u64)?;
            let mut copied = 0;
            while copied < take {
                let at = done + copied;
                let source = if at < NET_HEADER_LEN {
                    &RECEIVE_HEADER[at..]
                } else {
                    &frame[at - NET_HEADER_LEN..]
                };
                let count = source.len().min(take - copied);
                // SAFETY: `host` maps `take` bytes of guest memory (checked
                // by `GuestMap::host`), `copied + count <= take`; the device
                // owns the buffer until it is used (module docs); a local
                // slice never overlaps guest memory.
                unsafe {
                    std::ptr::copy_nonoverlapping(source.as_ptr(), host.add(copied), count);
                }
                copied += count;
            }
            done += take;
            if done == total {
                return Some(total as u32);
            }
            if descriptor.flags & DESC_F_NEXT == 0 {
                return None;
            }
            index = descriptor.next;
        }
        None
    }

    /// Takes the next frame the guest transmitted into `buffer`: `None` when
    /// the ring is empty, `Some(None)` for a chain that held no frame
    /// (counted: no header, larger than a frame buffer, writable, out of
    /// guest memory).
    pub fn pop_frame(
        &mut self,
        buffer: &mut [u8; FRAME_BUFFER],
        errors: &mut RingErrors,
    ) -> Option<Option<usize>> {
        let head = self.next_head()?;
        let length = self.read_chain(head, buffer);
        self.add_used(head, 0);
        if length.is_none() {
            errors.bad_transmit_chains += 1;
        }
        Some(length)
    }

    /// Copies chain `head` past its virtio-net header into `buffer`.
    fn read_chain(&self, head: u16, buffer: &mut [u8; FRAME_BUFFER]) -> Option<usize> {
        let mut seen = 0usize;
        let mut length = 0usize;
        let mut index = head;
        for _ in 0..self.size {
            let descriptor = self.descriptor(index)?;
            if descriptor.flags & (DESC_F_WRITE | DESC_F_INDIRECT) != 0 {
                return None;
            }
            let len = descriptor.len as usize;
            let host = self.map.host(descriptor.addr, len as u64)?;
            // The header's bytes in this descriptor are skipped.
            let skip = NET_HEADER_LEN.saturating_sub(seen).min(len);
            let count = len - skip;
            if length + count > FRAME_BUFFER {
                return None;
            }
            // SAFETY: `host` maps `len` bytes (checked by `GuestMap::host`)
            // and `skip + count == len`; `buffer` has room for `count` more
            // (checked above); the driver does not write a buffer it made
            // available (module docs).
            unsafe {
                std::ptr::copy_nonoverlapping(
                    host.add(skip),
                    buffer.as_mut_ptr().add(length),
                    count,
                );
            }
            seen += len;
            length += count;
            if descriptor.flags & DESC_F_NEXT == 0 {
                return (seen >= NET_HEADER_LEN).then_some(length);
            }
            index = descriptor.next;
        }
        None
    }

    /// Publishes the used entries with one index store, puts the indices
    /// back into `queue`, and says whether the driver wants a call for
    /// them: by its used-event index with `event_idx`, by
    /// `VRING_AVAIL_F_NO_INTERRUPT` otherwise.
    pub fn finish(self, queue: &mut Queue, event_idx: bool) -> bool {
        queue.set_next_avail(self.next_avail);
        queue.set_next_used(self.next_used);
        let added = self.next_used.wrapping_sub(self.first_used);
        if added == 0 {
            return false;
        }
        // SAFETY: `used + 2` is the aligned `idx` field inside the ring
        // checked in `open`; the driver reads it atomically.
        let index = unsafe { AtomicU16::from_ptr(self.used.add(2).cast::<u16>()) };
        // Ordering: Release: the used elements and the buffer contents
        // written above are visible before the new index.
        index.store(self.next_used.to_le(), Ordering::Release);
        // Ordering: SeqCst: the index store must be ordered before the
        // load of the driver's event index or flags (store then load), or a
        // driver that just re-enabled interrupts could miss this burst (the
        // virtio memory-barrier rule; the driver fences the other way).
        fence(Ordering::SeqCst);
        if event_idx {
            let offset = 4 + 2 * usize::from(self.size);
            // SAFETY: `used_event` follows the available ring's `size`
            // entries, inside the `6 + 2 * size` bytes checked in `open`,
            // 2-aligned.
            let used_event =
                u16::from_le(unsafe { self.avail.add(offset).cast::<u16>().read_volatile() });
            // virtio 1.2 §2.7.10: call when `used_event` lies among the
            // entries added (`vring_need_event`).
            self.next_used.wrapping_sub(used_event).wrapping_sub(1) < added
        } else {
            // SAFETY: `flags` at the start of the available ring checked in
            // `open`, 2-aligned.
            let flags = u16::from_le(unsafe { self.avail.cast::<u16>().read_volatile() });
            flags & AVAIL_F_NO_INTERRUPT == 0
        }
    }
}

/// A guest driver in miniature over real (anonymous) guest memory: it lays
/// out a split ring, posts buffers and chains, and reads what the device
/// returned, so each path of [`Burst`] runs against the bytes a virtio
/// driver would see.
#[cfg(test)]
mod tests {
    use super::*;
    use vm_memory::{Address, Bytes, GuestAddress};

    const SIZE: u16 = 8;
    const DESCRIPTORS: u64 = 0x1000;
    const AVAIL: u64 = 0x2000;
    const USED: u64 = 0x3000;
    const BUFFERS: u64 = 0x10000;
    const MEMORY: usize = 0x40000;

    struct Driver {
        memory: GuestMemoryMmap,
        queue: Queue,
        avail_idx: u16,
    }

    impl Driver {
        fn new() -> Self {
            let memory =
                GuestMemoryMmap::from_ranges(&[(GuestAddress(0), MEMORY)]).expect("anonymous map");
            let mut queue = Queue::new(SIZE).unwrap();
            queue.set_desc_table_address(Some(DESCRIPTORS as u32), Some(0));
            queue.set_avail_ring_address(Some(AVAIL as u32), Some(0));
            queue.set_used_ring_address(Some(USED as u32), Some(0));
            queue.set_ready(true);
            Self {
                memory,
                queue,
                avail_idx: 0,
            }
        }

        fn descriptor(&self, index: u16, addr: u64, len: u32, flags: u16, next: u16) {
            let at = GuestAddress(DESCRIPTORS + 16 * u64::from(index));
            self.memory.write_obj(addr, at).unwrap();
            self.memory.write_obj(len, at.unchecked_add(8)).unwrap();
            self.memory.write_obj(flags, at.unchecked_add(12)).unwrap();
            self.memory.write_obj(next, at.unchecked_add(14)).unwrap();
        }

        /// Makes chain `head` available.
        fn post(&mut self, head: u16) {
            let slot = u64::from(self.avail_idx % SIZE);
            self.memory
                .write_obj(head, GuestAddress(AVAIL + 4 + 2 * slot))
                .unwrap();
            self.avail_idx = self.avail_idx.wrapping_add(1);
            self.memory
                .write_obj(self.avail_idx, GuestAddress(AVAIL + 2))
                .unwrap();
        }

        fn used_idx(&self) -> u16 {
            self.memory.read_obj(GuestAddress(USED + 2)).unwrap()
        }

        /// Used element `n`: (head, bytes written).
        fn used(&self, n: u16) -> (u32, u32) {
            let at = USED + 4 + 8 * u64::from(n % SIZE);
            (
                self.memory.read_obj(GuestAddress(at)).unwrap(),
                self.memory.read_obj(GuestAddress(at + 4)).unwrap(),
            )
        }

        fn set_used_event(&self, value: u16) {
            self.memory
                .write_obj(value, GuestAddress(AVAIL + 4 + 2 * u64::from(SIZE)))
                .unwrap();
        }

        fn bytes(&self, address: u64, len: usize) -> Vec<u8> {
            let mut bytes = vec![0; len];
            self.memory
                .read_slice(&mut bytes, GuestAddress(address))
                .unwrap();
            bytes
        }

        /// Runs one burst: `work` on it, then `finish`; returns the call
        /// decision.
        fn burst(
            &mut self,
            event_idx: bool,
            work: impl FnOnce(&mut Burst<'_, '_>, &mut RingErrors),
        ) -> (bool, RingErrors) {
            let map = GuestMap::new(&self.memory);
            let mut burst = Burst::open(&self.queue, &map).expect("rings in guest memory");
            let mut errors = RingErrors::default();
            work(&mut burst, &mut errors);
            (burst.finish(&mut self.queue, event_idx), errors)
        }
    }

    #[test]
    fn receive_buffers_get_header_and_frame_and_one_used_index_per_burst() {
        let mut driver = Driver::new();
        // A one-descriptor buffer, and a chain: 12 header bytes, then 64.
        driver.descriptor(0, BUFFERS, 2048, DESC_F_WRITE, 0);
        driver.descriptor(1, BUFFERS + 0x1000, 12, DESC_F_WRITE | DESC_F_NEXT, 2);
        driver.descriptor(2, BUFFERS + 0x2000, 64, DESC_F_WRITE, 0);
        driver.post(0);
        driver.post(1);
        let frame: Vec<u8> = (0..60).collect();
        let (call, errors) = driver.burst(false, |burst, errors| {
            assert!(burst.push_frame(&frame, errors));
            assert!(burst.push_frame(&frame, errors));
            assert!(!burst.push_frame(&frame, errors), "no buffer left");
        });
        assert_eq!(errors, RingErrors::default());
        assert!(call, "no VRING_AVAIL_F_NO_INTERRUPT: call");
        assert_eq!(driver.used_idx(), 2);
        assert_eq!(driver.used(0), (0, 72));
        assert_eq!(driver.used(1), (1, 72));
        assert_eq!(driver.bytes(BUFFERS, 12), RECEIVE_HEADER);
        assert_eq!(driver.bytes(BUFFERS + 12, 60), frame);
        assert_eq!(driver.bytes(BUFFERS + 0x1000, 12), RECEIVE_HEADER);
        assert_eq!(driver.bytes(BUFFERS + 0x2000, 60), frame);
        assert_eq!(
            (driver.queue.next_avail(), driver.queue.next_used()),
            (2, 2)
        );
    }

    #[test]
    fn bad_receive_buffers_are_returned_empty_and_counted() {
        let mut driver = Driver::new();
        driver.descriptor(0, BUFFERS, 2048, 0, 0); // read-only
        driver.descriptor(1, BUFFERS, 40, DESC_F_WRITE, 0); // too small
        driver.descriptor(2, MEMORY as u64 - 16, 2048, DESC_F_WRITE, 0); // past memory
        driver.descriptor(3, BUFFERS, 8, DESC_F_WRITE | DESC_F_NEXT, 3); // a loop
        driver.descriptor(4, BUFFERS, 2048, DESC_F_WRITE | DESC_F_INDIRECT, 0);
        driver.descriptor(5, BUFFERS + 0x1000, 2048, DESC_F_WRITE, 0); // good
        for head in [0, 1, 2, 3, 4, 9, 5] {
            driver.post(head); // 9: not a descriptor of the table
        }
        let (_, errors) = driver.burst(false, |burst, errors| {
            assert!(burst.push_frame(&[7; 60], errors));
        });
        assert_eq!(errors.bad_receive_buffers, 6);
        assert_eq!(driver.used_idx(), 7);
        for n in 0..6 {
            assert_eq!(driver.used(n).1, 0, "bad buffer {n} returned empty");
        }
        assert_eq!(driver.used(6), (5, 72));
    }

    #[test]
    fn transmitted_chains_lose_their_header_and_bad_ones_are_counted() {
        let mut driver = Driver::new();
        let frame: Vec<u8> = (0..100).map(|byte| byte as u8).collect();
        let mut with_header = vec![0xee; 12];
        with_header.extend_from_slice(&frame);
        driver
            .memory
            .write_slice(&with_header, GuestAddress(BUFFERS))
            .unwrap();
        driver.descriptor(0, BUFFERS, 112, 0, 0);
        // Split mid-header: 5 bytes, then the rest.
        driver.descriptor(1, BUFFERS, 5, DESC_F_NEXT, 2);
        driver.descriptor(2, BUFFERS + 5, 107, 0, 0);
        driver.descriptor(3, BUFFERS, 8, 0, 0); // shorter than a header
        driver.descriptor(4, BUFFERS, 4000, 0, 0); // longer than a frame buffer
        driver.descriptor(5, BUFFERS, 112, DESC_F_WRITE, 0); // device-writable
        for head in [0, 1, 3, 4, 5] {
            driver.post(head);
        }
        let mut buffer = [0u8; FRAME_BUFFER];
        let (_, errors) = driver.burst(false, |burst, errors| {
            assert_eq!(burst.pop_frame(&mut buffer, errors), Some(Some(100)));
            assert_eq!(&buffer[..100], &frame[..]);
            buffer.fill(0);
            assert_eq!(burst.pop_frame(&mut buffer, errors), Some(Some(100)));
            assert_eq!(&buffer[..100], &frame[..]);
            for _ in 0..3 {
                assert_eq!(burst.pop_frame(&mut buffer, errors), Some(None));
            }
            assert_eq!(burst.pop_frame(&mut buffer, errors), None);
        });
        assert_eq!(errors.bad_transmit_chains, 3);
        assert_eq!(driver.used_idx(), 5);
        assert_eq!(driver.used(1), (1, 0));
    }

    #[test]
    fn calls_honour_the_used_event_index() {
        let mut driver = Driver::new();
        for index in 0..SIZE {
            driver.descriptor(
                index,
                BUFFERS + 0x800 * u64::from(index),
                2048,
                DESC_F_WRITE,
                0,
            );
        }
        for head in 0..4 {
            driver.post(head);
        }
        // The driver wants a call once entry 2 is used: a burst of two
        // (entries 0, 1) does not reach it, the next one does.
        driver.set_used_event(2);
        let push_two = |burst: &mut Burst<'_, '_>, errors: &mut RingErrors| {
            assert!(burst.push_frame(&[1; 60], errors));
            assert!(burst.push_frame(&[1; 60], errors));
        };
        assert!(!driver.burst(true, push_two).0);
        assert!(driver.burst(true, push_two).0);
        // Nothing added: no call, whatever the index says.
        driver.set_used_event(4);
        assert!(!driver.burst(true, |_, _| {}).0);
    }

    #[test]
    fn no_interrupt_flag_silences_calls_without_event_indices() {
        let mut driver = Driver::new();
        driver.descriptor(0, BUFFERS, 2048, DESC_F_WRITE, 0);
        driver.post(0);
        driver
            .memory
            .write_obj(AVAIL_F_NO_INTERRUPT, GuestAddress(AVAIL))
            .unwrap();
        let (call, _) = driver.burst(false, |burst, errors| {
            assert!(burst.push_frame(&[1; 60], errors));
        });
        assert!(!call);
        assert_eq!(driver.used_idx(), 1, "published all the same");
    }

    #[test]
    fn garbage_indices_and_rings_outside_memory_take_nothing() {
        let mut driver = Driver::new();
        // An available index more than a ring ahead: nothing is taken.
        driver
            .memory
            .write_obj(SIZE + 3, GuestAddress(AVAIL + 2))
            .unwrap();
        let (_, errors) = driver.burst(false, |burst, errors| {
            assert!(!burst.push_frame(&[1; 60], errors));
        });
        assert_eq!(errors, RingErrors::default());
        assert_eq!(driver.used_idx(), 0);
        // A used ring past the end of guest memory, or misaligned: no burst.
        let map = GuestMap::new(&driver.memory);
        driver
            .queue
            .set_used_ring_address(Some(MEMORY as u32 - 8), Some(0));
        assert!(Burst::open(&driver.queue, &map).is_none());
        driver
            .queue
            .set_used_ring_address(Some(USED as u32 + 2), Some(0));
        assert!(Burst::open(&driver.queue, &map).is_none());
    }
}
