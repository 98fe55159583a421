//! A host-side stand-in for the virtio-net device: ring memory on the heap
//! (physical equals virtual) and the device's half of a split virtqueue,
//! reading and writing the rings in memory as QEMU does. The driver's unit
//! tests run against it, and so does the benchmark that counts the
//! driver's instructions (`count-driver` in `benches/`, feature
//! `simulated-device`). [`SimulatedWire`] puts a whole queue pair on it.
//! Not for the appliance: it dereferences the addresses the driver writes
//! into descriptors, which only holds where physical equals virtual.
use crate::queue::{RingWithSlots, VirtioNetQueue};
use crate::registers::{DescriptorFlags, NET_HEADER_LEN};
use crate::virtqueue::{Descriptor, RingLayout, SplitQueue, UsedElement};
use alloc::vec::Vec;
use core::ptr::NonNull;
use dataplane::{MacAddr, Mempool};

/// Ring memory on the heap, 16-byte aligned; physical == virtual.
pub(crate) struct HeapRing {
    storage: Vec<u128>,
}

impl HeapRing {
    pub(crate) fn new(size: u16) -> Self {
        Self {
            storage: alloc::vec![0u128; RingLayout::new(size).total.div_ceil(16)],
        }
    }

    pub(crate) fn queue(&mut self, size: u16) -> SplitQueue {
        let base = NonNull::new(self.storage.as_mut_ptr().cast::<u8>()).unwrap();
        // SAFETY: the storage is 16-byte aligned, large enough, owned by
        // the test and outlives the queue; physical equals virtual here.
        unsafe { SplitQueue::new(base, base.as_ptr() as u64, size) }
    }
}

/// The device side, reading and writing the rings in memory like QEMU.
pub(crate) struct SimulatedDevice {
    descriptors: *mut Descriptor,
    avail: *mut u16,
    used: *mut u8,
    size: u16,
    last_avail: u16,
    used_index: u16,
}

// The unit tests use all of it; the benchmark only what `SimulatedWire`
// needs.
#[cfg_attr(not(test), allow(dead_code))]
impl SimulatedDevice {
    pub(crate) fn attach(queue: &SplitQueue) -> Self {
        let addresses = queue.addresses();
        Self {
            descriptors: addresses.descriptors as *mut Descriptor,
            avail: addresses.driver as *mut u16,
            used: addresses.device as *mut u8,
            size: queue.size(),
            last_avail: 0,
            used_index: 0,
        }
    }

    /// The device side of `SplitQueue::skip_to`.
    pub(crate) fn skip_to(&mut self, index: u16) {
        self.last_avail = index;
        self.used_index = index;
        // SAFETY: test memory laid out by `SplitQueue`; used.idx at 2.
        unsafe { self.used.add(2).cast::<u16>().write_volatile(index) };
    }

    pub(crate) fn set_no_notify(&mut self, no_notify: bool) {
        // SAFETY: test memory laid out by `SplitQueue`; used.flags at 0.
        unsafe { self.used.cast::<u16>().write_volatile(u16::from(no_notify)) };
    }

    /// The head and first descriptor of the next available chain, if the
    /// driver published one (no allocation).
    pub(crate) fn next_head(&mut self) -> Option<(u16, Descriptor)> {
        // SAFETY: memory laid out by `SplitQueue`; avail.idx at 2.
        let published = unsafe { self.avail.add(1).read_volatile() };
        if published == self.last_avail {
            return None;
        }
        let slot = usize::from(self.last_avail % self.size);
        // SAFETY: ring entry in bounds.
        let head = unsafe { self.avail.add(2 + slot).read_volatile() };
        self.last_avail = self.last_avail.wrapping_add(1);
        // SAFETY: ids come from the driver and are below `size`.
        let descriptor = unsafe { self.descriptors.add(usize::from(head)).read() };
        Some((head, descriptor))
    }

    /// The next available chain as its descriptors, if the driver published one.
    pub(crate) fn next_chain(&mut self) -> Option<(u16, Vec<Descriptor>)> {
        // SAFETY: test memory laid out by `SplitQueue`; avail.idx at 2.
        let published = unsafe { self.avail.add(1).read_volatile() };
        if published == self.last_avail {
            return None;
        }
        let slot = usize::from(self.last_avail % self.size);
        // SAFETY: ring entry in bounds.
        let head = unsafe { self.avail.add(2 + slot).read_volatile() };
        self.last_avail = self.last_avail.wrapping_add(1);
        let mut chain = Vec::new();
        let mut id = head;
        loop {
            // SAFETY: ids come from the driver and are below `size`.
            let descriptor = unsafe { self.descriptors.add(usize::from(id)).read() };
            chain.push(descriptor);
            if descriptor.flags & DescriptorFlags::VIRTQ_DESC_F_NEXT.bits() == 0 {
                break;
            }
            id = descriptor.next;
        }
        Some((head, chain))
    }

    /// Completes chain `head` with `len` bytes written.
    pub(crate) fn complete(&mut self, head: u16, len: u32) {
        let slot = usize::from(self.used_index % self.size);
        // SAFETY: used ring entry and idx in bounds of the test memory.
        unsafe {
            self.used
                .add(4 + 8 * slot)
                .cast::<UsedElement>()
                .write_volatile(UsedElement {
                    id: u32::from(head),
                    len,
                });
            self.used_index = self.used_index.wrapping_add(1);
            self.used
                .add(2)
                .cast::<u16>()
                .write_volatile(self.used_index);
        }
    }

    /// Completes the `count` chains before and up to `last_head` as one
    /// batch, as an in-order device may (virtio 1.2 2.7.10): one used
    /// entry, at the batch's first position, naming `last_head`, and
    /// `used.idx` moved past the whole batch.
    pub(crate) fn complete_batch(&mut self, last_head: u16, count: u16, len: u32) {
        self.complete(last_head, len);
        self.used_index = self.used_index.wrapping_add(count - 1);
        // SAFETY: used.idx at offset 2 of the test memory.
        unsafe {
            self.used
                .add(2)
                .cast::<u16>()
                .write_volatile(self.used_index)
        };
    }

    /// `avail.flags` as the driver set it.
    pub(crate) fn avail_flags(&self) -> u16 {
        // SAFETY: avail.flags at offset 0.
        unsafe { self.avail.read_volatile() }
    }
}

/// A queue pair of the driver on simulated devices, and the far end of its
/// wire: what the driver transmits can be handed back as received
/// ([`Self::reflect`]), as a peer or a loop cable would.
pub struct SimulatedWire {
    rx: SimulatedDevice,
    tx: SimulatedDevice,
    /// A receive buffer taken for a frame `turn` refused, kept for the
    /// next frame rather than completed empty.
    held: Option<(u16, Descriptor)>,
    /// The rings' memory, which the driver's queue points into: its
    /// heap storage does not move with the wire.
    _rx_memory: HeapRing,
    _tx_memory: HeapRing,
}

impl SimulatedWire {
    /// A [`VirtioNetQueue`] with `size`-entry rings on simulated devices,
    /// refilling from `pool`, and its wire. The wire owns the rings'
    /// memory and the driver keeps raw pointers into it: keep the wire for
    /// as long as the queue is used. The devices complete every buffer in
    /// the order it was made available and offer `VIRTIO_F_IN_ORDER`,
    /// which the queue uses.
    pub fn pair(size: u16, pool: Mempool, mac: MacAddr) -> (VirtioNetQueue, Self) {
        Self::pair_with(size, pool, mac, true)
    }

    /// [`Self::pair`] on devices that do not offer `VIRTIO_F_IN_ORDER`:
    /// the driver's free-list path.
    pub fn pair_out_of_order(size: u16, pool: Mempool, mac: MacAddr) -> (VirtioNetQueue, Self) {
        Self::pair_with(size, pool, mac, false)
    }

    fn pair_with(size: u16, pool: Mempool, mac: MacAddr, in_order: bool) -> (VirtioNetQueue, Self) {
        let mut rx_memory = HeapRing::new(size);
        let mut tx_memory = HeapRing::new(size);
        let mut rx = rx_memory.queue(size);
        let mut tx = tx_memory.queue(size);
        if in_order {
            rx.set_in_order();
            tx.set_in_order();
        }
        let wire = Self {
            rx: SimulatedDevice::attach(&rx),
            tx: SimulatedDevice::attach(&tx),
            held: None,
            _rx_memory: rx_memory,
            _tx_memory: tx_memory,
        };
        let queue = VirtioNetQueue::new(
            RingWithSlots::new(rx, None),
            RingWithSlots::new(tx, None),
            pool,
            mac,
            None,
            "simulated0.q0".into(),
            false,
        );
        (queue, wire)
    }

    /// Plays the device receiving `frame`: writes a zero virtio header and
    /// the frame into the next posted receive buffer and completes it.
    /// False when no buffer is posted or the frame does not fit.
    pub fn deliver(&mut self, frame: &[u8]) -> bool {
        let Some((head, first)) = self.rx.next_head() else {
            return false;
        };
        let needed = NET_HEADER_LEN + frame.len();
        if (first.len as usize) < needed {
            self.rx.complete(head, 0);
            return false;
        }
        let target = first.addr as *mut u8;
        // SAFETY: the descriptor points into a heap mempool buffer of at
        // least `first.len` bytes (physical equals virtual on the host),
        // which the driver lent to the device until completion.
        unsafe {
            target.write_bytes(0, NET_HEADER_LEN);
            target
                .add(NET_HEADER_LEN)
                .copy_from_nonoverlapping(frame.as_ptr(), frame.len());
        }
        self.rx.complete(head, needed as u32);
        true
    }

    /// Moves every frame the driver transmitted into the next posted
    /// receive buffer (a copy, as a device does), after `turn` rewrote it
    /// in the receive buffer; a frame `turn` refuses (false) is consumed
    /// and not received, and the buffer it was copied into waits for the
    /// next frame. Returns the frames received. Never inlined, so that a
    /// profile can tell the device's instructions from the driver's
    /// (`count-driver` counts both and the driver alone).
    #[inline(never)]
    pub fn reflect(&mut self, mut turn: impl FnMut(&mut [u8]) -> bool) -> usize {
        let mut received = 0;
        while let Some((tx_head, sent)) = self.tx.next_head() {
            // A transmit chain is one descriptor: header and frame.
            let frame_len = (sent.len as usize).saturating_sub(NET_HEADER_LEN);
            let Some((rx_head, posted)) = self.held.take().or_else(|| self.rx.next_head()) else {
                self.tx.complete(tx_head, 0);
                continue;
            };
            if (posted.len as usize) < NET_HEADER_LEN + frame_len {
                self.rx.complete(rx_head, 0);
                self.tx.complete(tx_head, 0);
                continue;
            }
            // SAFETY: both descriptors point into heap mempool buffers lent
            // to the device (physical equals virtual on the host), `sent`
            // holding `sent.len` bytes, `posted` at least as many; two
            // different buffers, so the ranges do not overlap.
            let frame = unsafe {
                let source = (sent.addr as *const u8).add(NET_HEADER_LEN);
                let target = posted.addr as *mut u8;
                target.write_bytes(0, NET_HEADER_LEN);
                let frame = target.add(NET_HEADER_LEN);
                frame.copy_from_nonoverlapping(source, frame_len);
                core::slice::from_raw_parts_mut(frame, frame_len)
            };
            self.tx.complete(tx_head, 0);
            if turn(frame) {
                self.rx
                    .complete(rx_head, (NET_HEADER_LEN + frame_len) as u32);
                received += 1;
            } else {
                self.held = Some((rx_head, posted));
            }
        }
        received
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::{Batch, Nic};

    const MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);

    fn frame(marker: u8) -> [u8; 60] {
        let mut frame = [0u8; 60];
        frame[..6].copy_from_slice(&MAC.0);
        frame[14] = marker;
        frame
    }

    #[test]
    fn wire_delivers_and_reflects_through_the_driver() {
        for in_order in [true, false] {
            let pool = Mempool::with_heap(64, 128).unwrap();
            let (queue, wire) = SimulatedWire::pair_with(16, pool, MAC, in_order);
            assert_eq!(queue.in_order(), in_order);
            delivers_and_reflects(queue, wire);
        }
    }

    fn delivers_and_reflects(mut queue: VirtioNetQueue, mut wire: SimulatedWire) {
        assert!(wire.deliver(&frame(1)));
        assert!(wire.deliver(&frame(2)));
        let mut batch = Batch::new();
        assert_eq!(queue.rx_burst(&mut batch), 2);
        assert_eq!(batch.iter().next().unwrap().payload(), &frame(1)[..]);

        // Frame 1 is refused by the far end; frame 2 comes back in the
        // buffer frame 1 was copied into, rewritten.
        assert_eq!(queue.tx_burst(&mut batch), 2);
        let received = wire.reflect(|bytes| {
            bytes[15] = 0xee;
            bytes[14] != 1
        });
        assert_eq!(received, 1);
        let mut back = Batch::new();
        assert_eq!(queue.rx_burst(&mut back), 1);
        let packet = back.iter().next().unwrap();
        assert_eq!(packet.payload()[14..16], [2, 0xee]);
        let stats = queue.stats();
        assert_eq!(stats.rx_bad_length.get(), 0, "a refused frame is no error");
        assert_eq!(stats.tx_packets.get(), 2);

        // A frame larger than a posted buffer is not delivered.
        assert!(!wire.deliver(&[0u8; 4096]));
    }
}
