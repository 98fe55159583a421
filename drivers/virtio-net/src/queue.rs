//! One receive/transmit queue pair as a `dataplane::Nic`: the receive ring
//! kept full of mempool buffers, transmit completions reclaimed in bursts,
//! one fence and at most one doorbell per burst in each direction.

use crate::registers::{NET_HEADER_LEN, NetStatus};
use crate::transport::{Doorbell, NetConfigView};
use crate::virtqueue::SplitQueue;
use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use core::sync::atomic::{Ordering, fence};
use dataplane::{Batch, Counter, LinkInfo, MacAddr, Mempool, Nic, Packet};

/// Counters of one queue pair; shared (`Arc`) so the platform can print them
/// while the executor owns the queue. Only the owning core writes.
#[derive(Debug, Default)]
pub struct QueueStats {
    /// Frames received.
    pub rx_packets: Counter,
    /// Frame bytes received (without the virtio header).
    pub rx_bytes: Counter,
    /// Completions with a length the buffer cannot hold (dropped).
    pub rx_bad_length: Counter,
    /// Refills that found the mempool empty.
    pub rx_pool_empty: Counter,
    /// Frames handed to the device.
    pub tx_packets: Counter,
    /// Packets without headroom for the virtio header (dropped).
    pub tx_no_headroom: Counter,
    /// Transmit completions reclaimed.
    pub tx_reclaimed: Counter,
    /// Doorbells rung (both directions).
    pub notifications: Counter,
}

impl QueueStats {
    /// `(name, value)` of every counter, for dumps.
    pub fn entries(&self) -> [(&'static str, u64); 8] {
        [
            ("rx_packets", self.rx_packets.get()),
            ("rx_bytes", self.rx_bytes.get()),
            ("rx_bad_length", self.rx_bad_length.get()),
            ("rx_pool_empty", self.rx_pool_empty.get()),
            ("tx_packets", self.tx_packets.get()),
            ("tx_no_headroom", self.tx_no_headroom.get()),
            ("tx_reclaimed", self.tx_reclaimed.get()),
            ("notifications", self.notifications.get()),
        ]
    }
}

/// A virtqueue, its doorbell, and what the device holds for each
/// descriptor (every chain is one descriptor): a [`LentBuffer`] of the
/// queue's own pool.
pub(crate) struct RingWithSlots<S> {
    pub(crate) ring: SplitQueue,
    pub(crate) doorbell: Option<Doorbell>,
    /// By descriptor id; `S::default()` when the device holds nothing there.
    pub(crate) slots: Box<[S]>,
}

/// A buffer of the queue's own pool the device holds, by its pool index
/// (`Mempool::lend_bulk` for a receive buffer, `Mempool::lend` for a frame
/// sent): 4 bytes a descriptor where a [`Packet`] is 24, and no packet made
/// for a receive buffer until a frame is in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LentBuffer(u32);

impl LentBuffer {
    /// No buffer posted on this descriptor.
    const NONE: Self = Self(u32::MAX);
}

impl Default for LentBuffer {
    fn default() -> Self {
        Self::NONE
    }
}

impl<S: Default> RingWithSlots<S> {
    pub(crate) fn new(ring: SplitQueue, doorbell: Option<Doorbell>) -> Self {
        let slots = (0..ring.size()).map(|_| S::default()).collect();
        Self {
            ring,
            doorbell,
            slots,
        }
    }
}

impl<S> RingWithSlots<S> {
    /// Publishes what was pushed and rings the doorbell if the device wants it.
    fn publish(&mut self, stats: &QueueStats) {
        if self.ring.publish()
            && let Some(doorbell) = &self.doorbell
        {
            doorbell.ring();
            stats.notifications.increment();
        }
    }
}

/// Where the device writes a received frame into a buffer of `pool`: the
/// virtio header goes just in front of the pool's headroom boundary, so the
/// frame lands where a freshly allocated packet's data starts and services
/// keep their headroom. The same for every buffer of the pool, so worked
/// out once per queue.
#[derive(Debug, Clone, Copy)]
struct ReceiveLayout {
    /// Offset of the virtio header in the buffer.
    header: usize,
    /// Offset of the frame in the buffer.
    frame: usize,
    /// Bytes the device may write (header and frame).
    len: u32,
}

impl ReceiveLayout {
    fn of(pool: &Mempool) -> Self {
        let frame = pool.headroom().max(NET_HEADER_LEN);
        let header = frame - NET_HEADER_LEN;
        Self {
            header,
            frame,
            len: u32::try_from(pool.buffer_len().saturating_sub(header)).unwrap_or(u32::MAX),
        }
    }
}

/// One queue pair, polled by the core that owns its mempool.
pub struct VirtioNetQueue {
    rx: RingWithSlots<LentBuffer>,
    tx: RingWithSlots<LentBuffer>,
    /// Frames sent from other pools, by transmit descriptor id (their slot
    /// in `tx` stays empty): they go home when dropped.
    tx_foreign: Box<[Option<Packet>]>,
    pool: Mempool,
    receive: ReceiveLayout,
    mac: MacAddr,
    config: Option<NetConfigView>,
    name: String,
    stats: Arc<QueueStats>,
    /// Whether the receive queue has an interrupt vector (so that
    /// `enable_wakeup` means something).
    rx_interrupts: bool,
}

impl VirtioNetQueue {
    /// Wraps two configured rings and fills the receive ring from `pool`.
    /// Used-buffer notifications stay suppressed while the core polls.
    pub(crate) fn new(
        rx: RingWithSlots<LentBuffer>,
        tx: RingWithSlots<LentBuffer>,
        pool: Mempool,
        mac: MacAddr,
        config: Option<NetConfigView>,
        name: String,
        rx_interrupts: bool,
    ) -> Self {
        let tx_foreign = (0..tx.ring.size()).map(|_| None).collect();
        let mut queue = Self {
            rx,
            tx,
            tx_foreign,
            receive: ReceiveLayout::of(&pool),
            pool,
            mac,
            config,
            name,
            stats: Arc::new(QueueStats::default()),
            rx_interrupts,
        };
        queue.rx.ring.set_interrupts(false);
        queue.tx.ring.set_interrupts(false);
        queue.refill();
        queue
    }

    /// The queue's counters.
    pub fn stats(&self) -> Arc<QueueStats> {
        self.stats.clone()
    }

    /// The mempool the receive ring refills from.
    pub fn pool(&self) -> &Mempool {
        &self.pool
    }

    /// Whether both rings run in order (`VIRTIO_F_IN_ORDER` negotiated).
    pub fn in_order(&self) -> bool {
        self.rx.ring.in_order() && self.tx.ring.in_order()
    }

    /// Buffers the device holds for reception.
    pub fn rx_posted(&self) -> usize {
        usize::from(self.rx.ring.size()) - self.rx.ring.free_count()
    }

    /// Free receive descriptors that make `rx_burst` refill: an eighth of
    /// the ring, at most a burst.
    fn refill_batch(&self) -> usize {
        (usize::from(self.rx.ring.size()) / 8).clamp(1, dataplane::BURST_SIZE)
    }

    /// Gives the device a buffer for every free receive descriptor, lent
    /// by the pool in one run (indices, no packets made); one fence and at
    /// most one doorbell.
    fn refill(&mut self) {
        let ReceiveLayout { header, len, .. } = self.receive;
        let wanted = self.rx.ring.free_count();
        let ring = &mut self.rx;
        let pool = &self.pool;
        let lent = pool.lend_bulk(wanted, |index, buffer_phys| {
            // Never `None`: `wanted` descriptors were free.
            match ring
                .ring
                .push_single(buffer_phys + header as u64, len, true)
                .and_then(|id| ring.slots.get_mut(usize::from(id)))
            {
                Some(slot) => *slot = LentBuffer(index),
                // SAFETY: `index` was just lent and is given back once.
                None => unsafe { pool.return_lent(index) },
            }
        });
        if lent < wanted {
            self.stats.rx_pool_empty.increment();
        }
        self.rx.publish(&self.stats);
    }

    /// Takes back every frame the device finished sending, in one pass
    /// over the used ring: a buffer of the queue's own pool straight onto
    /// its free stack (`Mempool::return_lent`), another pool's packet
    /// dropped (it goes home).
    fn reclaim_tx(&mut self) {
        let slots = &mut self.tx.slots;
        let foreign = &mut self.tx_foreign;
        let pool = &self.pool;
        let mut reclaimed = 0u64;
        self.tx.ring.take_used_singles(usize::MAX, false, |id, _| {
            let Some(slot) = slots.get_mut(usize::from(id)) else {
                return false;
            };
            let lent = core::mem::take(slot);
            if lent != LentBuffer::NONE {
                // SAFETY: `tx_burst` lent it and put it in this slot,
                // emptied above: it comes back once.
                unsafe { pool.return_lent(lent.0) };
            } else if foreign
                .get_mut(usize::from(id))
                .and_then(Option::take)
                .is_none()
            {
                // Nothing in flight on this descriptor: the device
                // returned it twice or never had it.
                return false;
            }
            reclaimed += 1;
            true
        });
        self.stats.tx_reclaimed.add(reclaimed);
    }
}

impl Drop for VirtioNetQueue {
    /// Gives the pool back the buffers the device still holds (other
    /// pools' packets go home as `tx_foreign` drops).
    fn drop(&mut self) {
        for slot in self.rx.slots.iter_mut().chain(self.tx.slots.iter_mut()) {
            let lent = core::mem::take(slot);
            if lent != LentBuffer::NONE {
                // SAFETY: `refill` or `tx_burst` lent it and put it in
                // this slot, emptied above: it comes back once.
                unsafe { self.pool.return_lent(lent.0) };
            }
        }
    }
}

impl Nic for VirtioNetQueue {
    fn rx_burst(&mut self, batch: &mut Batch) -> usize {
        let slots = &mut self.rx.slots;
        let pool = &self.pool;
        let ReceiveLayout { frame, len, .. } = self.receive;
        let (mut received, mut bytes, mut bad) = (0usize, 0u64, 0u64);
        let room = batch.remaining_capacity();
        self.rx.ring.take_used_singles(room, true, |id, written| {
            let Some(slot) = slots.get_mut(usize::from(id)) else {
                return false;
            };
            let lent = core::mem::take(slot);
            if lent == LentBuffer::NONE {
                return false;
            }
            // Shorter than the header or longer than the buffer posted (or
            // unknown, `u32::MAX`: a batched in-order completion): the
            // buffer goes back to the pool.
            if !(NET_HEADER_LEN as u32..=len).contains(&written) {
                // SAFETY: `refill` lent `lent.0` and put it in this slot,
                // emptied above: it comes back once.
                unsafe { pool.return_lent(lent.0) };
                bad += 1;
                return true;
            }
            let frame_len = written as usize - NET_HEADER_LEN;
            // SAFETY: as for `return_lent` above; the frame ends at
            // `header + written <= header + len <= buffer_len`
            // (`ReceiveLayout::of`).
            let packet = unsafe { pool.take_lent(lent.0, frame, frame_len) };
            bytes += frame_len as u64;
            // Never refused: `room` bounds the entries taken.
            if batch.push(packet).is_ok() {
                received += 1;
            }
            true
        });
        self.stats.rx_packets.add(received as u64);
        self.stats.rx_bytes.add(bytes);
        if bad > 0 {
            self.stats.rx_bad_length.add(bad);
        }
        // Refill in batches: each refill may cost a doorbell (a trap into
        // the hypervisor), and the device still holds 7/8 of the ring.
        if self.rx.ring.free_count() >= self.refill_batch() {
            self.refill();
        }
        received
    }

    fn tx_burst(&mut self, batch: &mut Batch) -> usize {
        self.reclaim_tx();
        let room = self.tx.ring.free_count().min(batch.len());
        let (mut sent, mut no_headroom) = (0u64, 0u64);
        for mut packet in batch.packets_mut().drain(..room) {
            let Ok(header) = packet.prepend(NET_HEADER_LEN) else {
                no_headroom += 1;
                continue;
            };
            // No offloads: an all-zero header (flags 0, GSO_NONE), written
            // as two stores rather than a call to `memset`.
            if let Ok(header) = <&mut [u8; NET_HEADER_LEN]>::try_from(header) {
                *header = [0; NET_HEADER_LEN];
            }
            // Never `None`: `room` descriptors were free.
            let Some(id) = self
                .tx
                .ring
                .push_single(packet.phys_addr(), packet.len() as u32, false)
            else {
                continue;
            };
            let id = usize::from(id);
            match self.pool.lend(packet) {
                Ok(index) => {
                    if let Some(slot) = self.tx.slots.get_mut(id) {
                        *slot = LentBuffer(index);
                    }
                }
                Err(packet) => {
                    if let Some(slot) = self.tx_foreign.get_mut(id) {
                        *slot = Some(packet);
                    }
                }
            }
            sent += 1;
        }
        self.stats.tx_packets.add(sent);
        if no_headroom > 0 {
            self.stats.tx_no_headroom.add(no_headroom);
        }
        self.tx.publish(&self.stats);
        room
    }

    /// Lets the receive queue interrupt, then looks at the used ring once
    /// more: a frame the device completed before it could see the flag
    /// would otherwise raise no interrupt and wait for the next tick.
    fn enable_wakeup(&mut self) -> bool {
        if self.rx_interrupts {
            self.rx.ring.set_interrupts(true);
            // Ordering: store (avail.flags) then load (used.idx) needs a full
            // fence. The device stores used.idx, then loads avail.flags (with
            // a full barrier in between, as QEMU's virtio_should_notify
            // does): at least one side sees the other's store, so either we
            // find the frame below or the device interrupts.
            fence(Ordering::SeqCst);
        }
        if self.rx.ring.used_pending() > 0 {
            self.disable_wakeup();
            return false;
        }
        true
    }

    fn disable_wakeup(&mut self) {
        if self.rx_interrupts {
            self.rx.ring.set_interrupts(false);
        }
    }

    fn mac(&self) -> MacAddr {
        self.mac
    }

    fn link(&self) -> LinkInfo {
        let up = self.config.is_none_or(|config| {
            NetStatus::from_bits_retain(config.status()).contains(NetStatus::VIRTIO_NET_S_LINK_UP)
        });
        LinkInfo {
            up,
            speed_mbps: 0,
            mtu: 1500,
        }
    }

    fn name(&self) -> &str {
        &self.name
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulated::{HeapRing, SimulatedDevice};
    use crate::transport::Doorbell;

    struct Rig {
        _rx_memory: HeapRing,
        _tx_memory: HeapRing,
        rx_device: SimulatedDevice,
        tx_device: SimulatedDevice,
        queue: VirtioNetQueue,
    }

    fn rig(size: u16, buffers: usize) -> Rig {
        let mut rx_memory = HeapRing::new(size);
        let mut tx_memory = HeapRing::new(size);
        let rx = rx_memory.queue(size);
        let tx = tx_memory.queue(size);
        let rx_device = SimulatedDevice::attach(&rx);
        let tx_device = SimulatedDevice::attach(&tx);
        let pool = Mempool::with_heap(buffers, 128).unwrap();
        let queue = VirtioNetQueue::new(
            RingWithSlots::new(rx, None),
            RingWithSlots::new(tx, None),
            pool,
            MacAddr([2, 0, 0, 0, 0, 1]),
            None,
            "virtio0.q0".into(),
            true,
        );
        Rig {
            _rx_memory: rx_memory,
            _tx_memory: tx_memory,
            rx_device,
            tx_device,
            queue,
        }
    }

    /// Plays the device receiving `frame`: writes header + frame into the
    /// next posted buffer and completes it.
    fn deliver(device: &mut SimulatedDevice, frame: &[u8]) {
        let (head, chain) = device.next_chain().expect("a posted receive buffer");
        assert!(chain[0].len as usize >= NET_HEADER_LEN + frame.len());
        let target = chain[0].addr as *mut u8;
        // SAFETY: the descriptor points into a heap mempool buffer (physical
        // equals virtual in host tests) of at least `len` bytes.
        unsafe {
            target.write_bytes(0xee, NET_HEADER_LEN);
            target
                .add(NET_HEADER_LEN)
                .copy_from_nonoverlapping(frame.as_ptr(), frame.len());
        }
        device.complete(head, (NET_HEADER_LEN + frame.len()) as u32);
    }

    #[test]
    fn receive_ring_starts_full_and_stays_full() {
        let mut rig = rig(8, 64);
        assert_eq!(rig.queue.rx_posted(), 8);
        assert_eq!(rig.queue.pool().available(), 56);
        for index in 0..5u8 {
            deliver(&mut rig.rx_device, &[index; 60]);
        }
        let mut batch = Batch::new();
        assert_eq!(rig.queue.rx_burst(&mut batch), 5);
        assert_eq!(rig.queue.rx_posted(), 8, "refilled");
        for (index, packet) in batch.iter().enumerate() {
            assert_eq!(packet.payload(), &[index as u8; 60]);
            assert_eq!(
                packet.headroom(),
                128,
                "frame lands at the headroom boundary"
            );
        }
        assert_eq!(rig.queue.stats().rx_packets.get(), 5);
        assert_eq!(rig.queue.stats().rx_bytes.get(), 300);
        drop(batch);
        assert_eq!(rig.queue.pool().available(), 56);
    }

    #[test]
    fn receive_ring_is_refilled_in_batches() {
        let mut rig = rig(64, 256);
        let mut register = alloc::boxed::Box::new(0xffffu16);
        let address = core::ptr::NonNull::from(&mut *register);
        rig.queue.rx.doorbell = Some(Doorbell::at(address, 0));
        let mut batch = Batch::new();
        for _ in 0..7 {
            deliver(&mut rig.rx_device, &[1; 60]);
            assert_eq!(rig.queue.rx_burst(&mut batch), 1);
            batch.clear();
        }
        assert_eq!(rig.queue.rx_posted(), 57, "below an eighth free: no refill");
        assert_eq!(rig.queue.stats().notifications.get(), 0);
        deliver(&mut rig.rx_device, &[1; 60]);
        assert_eq!(rig.queue.rx_burst(&mut batch), 1);
        assert_eq!(rig.queue.rx_posted(), 64, "refilled at an eighth");
        assert_eq!(rig.queue.stats().notifications.get(), 1, "one doorbell");
        drop(register);
    }

    #[test]
    fn receive_burst_is_bounded_by_the_batch_and_bad_lengths_drop() {
        let mut rig = rig(64, 256);
        for _ in 0..40 {
            deliver(&mut rig.rx_device, &[1; 64]);
        }
        let (head, _) = rig.rx_device.next_chain().unwrap();
        rig.rx_device.complete(head, 3); // shorter than the virtio header
        let (head, _) = rig.rx_device.next_chain().unwrap();
        rig.rx_device.complete(head, 60_000); // longer than the buffer
        let mut batch = Batch::new();
        assert_eq!(rig.queue.rx_burst(&mut batch), dataplane::BURST_SIZE);
        batch.clear();
        assert_eq!(rig.queue.rx_burst(&mut batch), 8);
        assert_eq!(rig.queue.stats().rx_bad_length.get(), 2);
        assert_eq!(rig.queue.rx_posted(), 64);
        batch.clear();
        assert_eq!(rig.queue.rx_burst(&mut batch), 0);
    }

    #[test]
    fn transmit_prepends_a_zero_header_and_reclaims_in_bursts() {
        let mut rig = rig(4, 64);
        let sender = Mempool::with_heap(16, 128).unwrap();
        let mut batch = Batch::new();
        for index in 0..6u8 {
            let mut packet = sender.alloc().unwrap();
            packet.append(42).unwrap().fill(index);
            batch.push(packet).unwrap();
        }
        assert_eq!(rig.queue.tx_burst(&mut batch), 4, "ring holds four");
        assert_eq!(batch.len(), 2, "the rest stays in the batch, in order");
        assert_eq!(batch.iter().next().unwrap().payload()[0], 4);
        for index in 0..4u8 {
            let (head, chain) = rig.tx_device.next_chain().unwrap();
            assert_eq!(chain.len(), 1);
            assert_eq!(chain[0].len as usize, NET_HEADER_LEN + 42);
            // SAFETY: heap buffer, physical equals virtual in host tests.
            let bytes = unsafe {
                core::slice::from_raw_parts(chain[0].addr as *const u8, chain[0].len as usize)
            };
            assert_eq!(&bytes[..NET_HEADER_LEN], &[0; NET_HEADER_LEN]);
            assert!(bytes[NET_HEADER_LEN..].iter().all(|&byte| byte == index));
            rig.tx_device.complete(head, 0);
        }
        assert!(rig.tx_device.next_chain().is_none());
        assert_eq!(sender.available(), 10, "in flight until reclaimed");
        assert_eq!(rig.queue.tx_burst(&mut batch), 2);
        assert_eq!(sender.available(), 14, "four reclaimed in one burst");
        assert_eq!(rig.queue.stats().tx_reclaimed.get(), 4);
        assert_eq!(rig.queue.stats().tx_packets.get(), 6);
        // The queue gives the two still in flight back when it goes, so the
        // sender's pool is whole again and is freed (no leak) after it.
        drop(rig);
        assert_eq!(sender.available(), 16);
    }

    #[test]
    fn own_pool_frames_sent_come_back_once_and_posted_buffers_on_drop() {
        let mut rig = rig(8, 32);
        assert_eq!(rig.queue.pool().available(), 24, "eight posted");
        for index in 0..3u8 {
            deliver(&mut rig.rx_device, &[index; 60]);
        }
        let mut batch = Batch::new();
        assert_eq!(rig.queue.rx_burst(&mut batch), 3);
        assert_eq!(rig.queue.pool().available(), 21, "three out, ring full");
        assert_eq!(rig.queue.tx_burst(&mut batch), 3);
        assert_eq!(rig.queue.pool().available(), 21, "lent to the device");
        let (first, chain) = rig.tx_device.next_chain().unwrap();
        // SAFETY: heap buffer, physical equals virtual in host tests.
        let sent = unsafe { *(chain[0].addr as *const u8).add(NET_HEADER_LEN) };
        assert_eq!(sent, 0, "the first frame received goes first");
        rig.tx_device.complete(first, 0);
        rig.tx_device.complete(first, 0); // returned twice
        rig.tx_device.complete(200, 0); // never posted
        assert_eq!(rig.queue.tx_burst(&mut batch), 0);
        assert_eq!(rig.queue.pool().available(), 22, "freed once");
        assert_eq!(rig.queue.stats().tx_reclaimed.get(), 1);
        // Dropping the queue gives back the eight posted buffers and the
        // two frames still lent for sending; the pool's state is freed only
        // when all 32 are back, which Miri's leak check sees.
        drop(batch);
        drop(rig);
    }

    #[test]
    fn transmit_without_headroom_is_dropped_and_counted() {
        let mut rig = rig(4, 16);
        let sender = Mempool::with_heap(4, 0).unwrap();
        let mut batch = Batch::new();
        let mut packet = sender.alloc().unwrap();
        packet.append(60).unwrap();
        batch.push(packet).unwrap();
        assert_eq!(rig.queue.tx_burst(&mut batch), 1);
        assert_eq!(rig.queue.stats().tx_no_headroom.get(), 1);
        assert_eq!(rig.queue.stats().tx_packets.get(), 0);
        assert!(rig.tx_device.next_chain().is_none());
        assert_eq!(sender.available(), 4);
    }

    #[test]
    fn wakeup_enables_interrupts_only_while_nothing_is_pending() {
        let mut rig = rig(8, 64);
        assert_eq!(
            rig.rx_device.avail_flags(),
            crate::registers::VIRTQ_AVAIL_F_NO_INTERRUPT,
            "suppressed while polling"
        );
        assert!(rig.queue.enable_wakeup(), "nothing pending: may sleep");
        assert_eq!(rig.rx_device.avail_flags(), 0, "the device may interrupt");
        rig.queue.disable_wakeup();
        assert_eq!(
            rig.rx_device.avail_flags(),
            crate::registers::VIRTQ_AVAIL_F_NO_INTERRUPT
        );
        deliver(&mut rig.rx_device, &[7; 60]);
        assert!(
            !rig.queue.enable_wakeup(),
            "a completed frame means poll, not sleep"
        );
        assert_eq!(
            rig.rx_device.avail_flags(),
            crate::registers::VIRTQ_AVAIL_F_NO_INTERRUPT,
            "refused wake-up leaves interrupts off"
        );
        let mut batch = Batch::new();
        assert_eq!(rig.queue.rx_burst(&mut batch), 1);
        assert!(rig.queue.enable_wakeup());
    }

    #[test]
    fn doorbell_rings_once_per_burst_unless_suppressed() {
        let mut rig = rig(8, 64);
        let mut register = alloc::boxed::Box::new(0xffffu16);
        let address = core::ptr::NonNull::from(&mut *register);
        rig.queue.tx.doorbell = Some(Doorbell::at(address, 1));
        let send = |queue: &mut VirtioNetQueue, count: usize| {
            let mut batch = Batch::new();
            for _ in 0..count {
                let mut packet = queue.pool().alloc().unwrap();
                packet.append(60).unwrap();
                batch.push(packet).unwrap();
            }
            queue.tx_burst(&mut batch)
        };
        assert_eq!(send(&mut rig.queue, 3), 3);
        assert_eq!(
            rig.queue.stats().notifications.get(),
            1,
            "one doorbell for three"
        );
        // SAFETY: the box outlives this read; the queue wrote through the pointer.
        let written = unsafe { address.as_ptr().read_volatile() };
        assert_eq!(written, 1, "queue index written");
        rig.tx_device.set_no_notify(true);
        assert_eq!(send(&mut rig.queue, 2), 2);
        assert_eq!(
            rig.queue.stats().notifications.get(),
            1,
            "suppressed by the device"
        );
        assert_eq!(send(&mut rig.queue, 0), 0);
        assert_eq!(
            rig.queue.stats().notifications.get(),
            1,
            "nothing to publish"
        );
        drop(register);
    }
}
