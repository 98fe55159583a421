//! One receive/transmit queue pair as a `dataplane::Nic`: the receive ring
//! kept full of mempool buffers (the device writes frames into them, no
//! copy), transmit completions reclaimed in bursts, one fence and at most
//! one tail write per burst in each direction.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::ptr::NonNull;
use core::sync::atomic::{Ordering, fence};

use dataplane::{Batch, Counter, LinkInfo, MacAddr, Mempool, Nic, NicCounters, Packet};

use crate::descriptors::{DESCRIPTOR_BYTES, RxDescriptor, TxDescriptor};
use crate::device::{DeviceStats, Igb, QueueRings, Registers, link_state};
use crate::error::IgbError;
use crate::registers::{EICR, EIMC, EIMS, rx_queue, stats, tx_queue};

/// Receive bursts between two reads of the device's statistics registers
/// (they clear on read and are 32 bits wide: at 1.5 Mpps, 1024 bursts come
/// long before one wraps).
const STATS_INTERVAL: u32 = 1024;
/// Transmit descriptors reclaimed at once: `tx_burst` looks at the last
/// descriptor of the oldest run of this many (the device completes in
/// order), so one descriptor read frees up to a burst.
const TX_CLEAN_BATCH: usize = 32;
/// Receive buffer size programmed into `SRRCTL` (1 KiB granularity): the
/// frame must fit a mempool buffer after its headroom.
pub const RX_BUFFER_BYTES: u32 = 2048;
/// The largest frame one transmit descriptor takes here (a jumbo frame;
/// mempool buffers are smaller anyway).
const MAX_TX_BYTES: u16 = 9_728;

/// Counters of one queue pair and of the device behind it; shared (`Arc`)
/// so the platform can print them while the executor owns the queue. Only
/// the owning core writes.
#[derive(Debug, Default)]
pub struct QueueStats {
    /// Frames received.
    pub rx_packets: Counter,
    /// Frame bytes received.
    pub rx_bytes: Counter,
    /// Written-back descriptors with an error, or a frame spanning buffers
    /// (dropped).
    pub rx_errors: Counter,
    /// Refills that found the mempool empty.
    pub rx_pool_empty: Counter,
    /// Frames handed to the device.
    pub tx_packets: Counter,
    /// Packets of no or too many bytes for one descriptor (dropped).
    pub tx_bad_length: Counter,
    /// Transmit completions reclaimed.
    pub tx_reclaimed: Counter,
    /// Tail registers written (both directions).
    pub doorbells: Counter,
    /// Device: good packets received (`GPRC`).
    pub device_rx_good_packets: Counter,
    /// Device: good packets transmitted (`GPTC`).
    pub device_tx_good_packets: Counter,
    /// Device: good octets received (`GORC`).
    pub device_rx_good_octets: Counter,
    /// Device: good octets transmitted (`GOTC`).
    pub device_tx_good_octets: Counter,
    /// Device: packets missed, receive FIFO full (`MPC`).
    pub device_rx_missed: Counter,
    /// Device: receptions that found no buffer (`RNBC`).
    pub device_rx_no_buffers: Counter,
    /// Device: frames with CRC errors (`CRCERRS`).
    pub device_rx_crc_errors: Counter,
    /// Device, this queue: good packets received (`PQGPRC[n]`).
    pub device_queue_rx_packets: Counter,
    /// Device, this queue: good packets transmitted (`PQGPTC[n]`).
    pub device_queue_tx_packets: Counter,
    /// Device, this queue: frames dropped for want of a descriptor
    /// (`RQDPC[n]`).
    pub device_queue_rx_drops: Counter,
    /// Link state changes the device signalled (`ICR.LSC` on the link
    /// vector; pair 0 only).
    pub link_changes: Counter,
    /// 1 while the link is up, as of the last statistics read (a gauge;
    /// pair 0 only).
    pub link_up: Counter,
}

impl QueueStats {
    /// `(name, value)` of every counter, for dumps.
    pub fn entries(&self) -> [(&'static str, u64); 20] {
        [
            ("rx_packets", self.rx_packets.get()),
            ("rx_bytes", self.rx_bytes.get()),
            ("rx_errors", self.rx_errors.get()),
            ("rx_pool_empty", self.rx_pool_empty.get()),
            ("tx_packets", self.tx_packets.get()),
            ("tx_bad_length", self.tx_bad_length.get()),
            ("tx_reclaimed", self.tx_reclaimed.get()),
            ("doorbells", self.doorbells.get()),
            ("device_rx_good_packets", self.device_rx_good_packets.get()),
            ("device_tx_good_packets", self.device_tx_good_packets.get()),
            ("device_rx_good_octets", self.device_rx_good_octets.get()),
            ("device_tx_good_octets", self.device_tx_good_octets.get()),
            ("device_rx_missed", self.device_rx_missed.get()),
            ("device_rx_no_buffers", self.device_rx_no_buffers.get()),
            ("device_rx_crc_errors", self.device_rx_crc_errors.get()),
            (
                "device_queue_rx_packets",
                self.device_queue_rx_packets.get(),
            ),
            (
                "device_queue_tx_packets",
                self.device_queue_tx_packets.get(),
            ),
            ("device_queue_rx_drops", self.device_queue_rx_drops.get()),
            ("link_changes", self.link_changes.get()),
            ("link_up", self.link_up.get()),
        ]
    }

    /// Copies the device's running totals into the counters.
    fn set_device(&self, totals: DeviceStats) {
        let set = |counter: &Counter, total: u64| counter.add(total - counter.get());
        set(&self.device_rx_good_packets, totals.rx_good_packets);
        set(&self.device_tx_good_packets, totals.tx_good_packets);
        set(&self.device_rx_good_octets, totals.rx_good_octets);
        set(&self.device_tx_good_octets, totals.tx_good_octets);
        set(&self.device_rx_missed, totals.rx_missed);
        set(&self.device_rx_no_buffers, totals.rx_no_buffers);
        set(&self.device_rx_crc_errors, totals.rx_crc_errors);
    }
}

impl NicCounters for QueueStats {
    fn counter_entries(&self) -> Vec<(&'static str, u64)> {
        self.entries().to_vec()
    }
}

/// Descriptor ring memory the platform gives a queue: DMA-able, zeroed,
/// 128-byte aligned, seen by the CPU at `virt` and by the device at `phys`.
#[derive(Debug)]
pub struct RingMemory {
    virt: NonNull<u8>,
    phys: u64,
    descriptors: u16,
}

impl RingMemory {
    /// Wraps `descriptors` descriptors of ring memory.
    ///
    /// # Safety
    /// 1. `virt` points to `descriptors * 16` bytes that nothing else uses,
    ///    valid for the rest of the program, aligned to 128 bytes.
    /// 2. The device reaches the same bytes at `phys` (cache coherent).
    pub unsafe fn new(virt: NonNull<u8>, phys: u64, descriptors: u16) -> Self {
        Self {
            virt,
            phys,
            descriptors,
        }
    }

    fn rings(&self) -> QueueRings {
        QueueRings {
            physical_address: self.phys,
            descriptors: self.descriptors,
        }
    }

    /// Bytes of ring memory `descriptors` descriptors need.
    pub const fn bytes(descriptors: u16) -> usize {
        descriptors as usize * DESCRIPTOR_BYTES
    }
}

// SAFETY: the ring memory is owned by one queue (precondition 1 of
// `new`): moving the handle to the core that polls the queue moves that
// ownership with it.
unsafe impl Send for RingMemory {}

/// One programmed queue pair waiting for the core that polls it: the
/// device's queues, RSS and interrupts are set up ([`crate::program_queue_pairs`]);
/// the receive ring gets its buffers from that core's mempool in `start`.
pub struct QueuePairSetup<R: Registers> {
    /// This pair's queue index (and MSI-X vector).
    queue: u16,
    /// The registers, for this queue's tails and interrupt bit.
    registers: R,
    /// The device itself, on pair 0 only: its statistics registers are
    /// device-wide and clear on read, so one queue reads them.
    device: Option<Igb<R>>,
    rx: RingMemory,
    tx: RingMemory,
    mac: MacAddr,
    interrupts: bool,
    name: String,
}

impl<R: Registers> QueuePairSetup<R> {
    /// A programmed pair (see [`crate::program_queue_pairs`]).
    pub(crate) fn new(parts: PairParts<R>) -> Self {
        Self {
            queue: parts.queue,
            registers: parts.registers,
            device: parts.device,
            rx: parts.rx,
            tx: parts.tx,
            mac: parts.mac,
            interrupts: parts.interrupts,
            name: parts.name,
        }
    }

    /// The pair's queue index: the core that should poll it, when the
    /// function has one pair per core.
    pub fn queue(&self) -> u16 {
        self.queue
    }

    /// Whether the queue raises its MSI-X vector when armed (otherwise
    /// the core must wake on a timer to look).
    pub fn rx_interrupts(&self) -> bool {
        self.interrupts
    }

    /// Fills the receive ring from `pool` (created on the calling core,
    /// with at least [`RX_BUFFER_BYTES`] of buffer after the headroom),
    /// one tail write, and hands the pair to the caller to poll.
    pub fn start(self, pool: Mempool) -> Result<IgbQueue<R>, IgbError> {
        if let Some(packet) = pool.alloc() {
            let (_, capacity) = packet.buffer_phys();
            let room = capacity.saturating_sub(packet.headroom());
            if room < RX_BUFFER_BYTES as usize {
                return Err(IgbError::BufferTooSmall(room));
            }
        }
        Ok(IgbQueue::new(self, pool))
    }
}

/// What [`QueuePairSetup::new`] is made of.
pub(crate) struct PairParts<R: Registers> {
    pub(crate) queue: u16,
    pub(crate) registers: R,
    pub(crate) device: Option<Igb<R>>,
    pub(crate) rx: RingMemory,
    pub(crate) tx: RingMemory,
    pub(crate) mac: MacAddr,
    pub(crate) interrupts: bool,
    pub(crate) name: String,
}

impl RingMemory {
    /// The ring as the device is told about it.
    pub(crate) fn device_rings(&self) -> QueueRings {
        self.rings()
    }
}

/// One queue pair, polled by the core that owns its mempool.
pub struct IgbQueue<R: Registers> {
    /// This pair's queue index (and MSI-X vector).
    queue: u16,
    registers: R,
    /// The device, on the pair that reads its statistics registers.
    device: Option<Igb<R>>,
    /// The queue's MSI-X vector is routed to this core.
    interrupts: bool,
    rx_ring: NonNull<RxDescriptor>,
    /// Packet lent to the device, by receive descriptor.
    rx_slots: Vec<Option<Packet>>,
    /// Next descriptor the device will write back.
    rx_next: usize,
    /// Descriptors holding a buffer (at most size - 1: head == tail is empty).
    rx_posted: usize,
    tx_ring: NonNull<TxDescriptor>,
    /// Packet the device is sending, by transmit descriptor.
    tx_slots: Vec<Option<Packet>>,
    /// Oldest descriptor not yet reclaimed.
    tx_clean: usize,
    /// Next free descriptor (the tail).
    tx_tail: usize,
    /// Descriptors between `tx_clean` and `tx_tail`.
    tx_in_flight: usize,
    size: usize,
    pool: Mempool,
    mac: MacAddr,
    name: String,
    stats: Arc<QueueStats>,
    bursts_since_stats: u32,
}

impl<R: Registers> IgbQueue<R> {
    fn new(setup: QueuePairSetup<R>, pool: Mempool) -> Self {
        let QueuePairSetup {
            queue,
            registers,
            device,
            rx,
            tx,
            mac,
            interrupts,
            name,
        } = setup;
        let size = usize::from(rx.descriptors.min(tx.descriptors));
        let mut queue = Self {
            queue,
            registers,
            device,
            interrupts,
            rx_ring: rx.virt.cast(),
            rx_slots: (0..size).map(|_| None).collect(),
            rx_next: 0,
            rx_posted: 0,
            tx_ring: tx.virt.cast(),
            tx_slots: (0..size).map(|_| None).collect(),
            tx_clean: 0,
            tx_tail: 0,
            tx_in_flight: 0,
            size,
            pool,
            mac,
            name,
            stats: Arc::new(QueueStats::default()),
            bursts_since_stats: 0,
        };
        queue.refill();
        queue
    }

    /// The queue's counters.
    pub fn stats(&self) -> Arc<QueueStats> {
        self.stats.clone()
    }

    /// Buffers the device holds for reception.
    pub fn rx_posted(&self) -> usize {
        self.rx_posted
    }

    /// Frames handed to the device and not reclaimed yet.
    pub fn tx_in_flight(&self) -> usize {
        self.tx_in_flight
    }

    /// Reads the statistics registers into the counters: every pair its
    /// own queue's (`PQGPRC`, `PQGPTC`, `RQDPC`, clear on read), pair 0
    /// also the device-wide ones, a link change the device signalled and
    /// the link state.
    pub fn refresh_device_stats(&mut self) {
        let read = |registers: &R, offset| u64::from(registers.read(offset));
        self.stats
            .device_queue_rx_packets
            .add(read(&self.registers, stats::pqgprc(self.queue)));
        self.stats
            .device_queue_tx_packets
            .add(read(&self.registers, stats::pqgptc(self.queue)));
        self.stats
            .device_queue_rx_drops
            .add(read(&self.registers, stats::rqdpc(self.queue)));
        if let Some(device) = &mut self.device {
            let totals = device.update_stats();
            self.stats.set_device(totals);
            if device.take_link_change() {
                self.stats.link_changes.increment();
            }
            let up = u64::from(link_state(&self.registers).up);
            self.stats
                .link_up
                .add(up.wrapping_sub(self.stats.link_up.get()));
        }
        self.bursts_since_stats = 0;
    }

    /// This pair's queue index.
    pub fn queue(&self) -> u16 {
        self.queue
    }

    /// This queue's bit in `EICR` / `EIMS` / `EIMC` (its MSI-X vector).
    fn vector_bit(&self) -> u32 {
        1 << self.queue
    }

    /// Whether the device has written back the next receive descriptor.
    fn rx_pending(&self) -> bool {
        if self.rx_posted == 0 {
            return false;
        }
        // SAFETY: inside the ring; volatile because the device writes it.
        let descriptor = unsafe { self.rx_descriptor(self.rx_next).read_volatile() };
        descriptor.write_back().done()
    }

    /// The receive descriptor at `index`.
    fn rx_descriptor(&self, index: usize) -> *mut RxDescriptor {
        debug_assert!(index < self.size);
        // SAFETY: `index < size`, and the ring holds `size` descriptors
        // (`RingMemory::new` precondition 1).
        unsafe { self.rx_ring.as_ptr().add(index) }
    }

    /// The transmit descriptor at `index`.
    fn tx_descriptor(&self, index: usize) -> *mut TxDescriptor {
        debug_assert!(index < self.size);
        // SAFETY: as in `rx_descriptor`.
        unsafe { self.tx_ring.as_ptr().add(index) }
    }

    /// Offers a buffer in every free receive descriptor, then one fence and
    /// one tail write.
    fn refill(&mut self) {
        let mut offered = 0;
        while self.rx_posted < self.size - 1 {
            let Some(packet) = self.pool.alloc() else {
                self.stats.rx_pool_empty.increment();
                break;
            };
            let index = (self.rx_next + self.rx_posted) % self.size;
            let (buffer_phys, _) = packet.buffer_phys();
            let descriptor = RxDescriptor::offer(buffer_phys + packet.headroom() as u64);
            // SAFETY: the descriptor is the driver's (past the tail), inside
            // the ring; a volatile write because the device reads it.
            unsafe { self.rx_descriptor(index).write_volatile(descriptor) };
            self.rx_slots[index] = Some(packet);
            self.rx_posted += 1;
            offered += 1;
        }
        if offered > 0 {
            // Ordering: the descriptors must be in memory before the device
            // sees the tail move (the tail write is an uncached MMIO store).
            fence(Ordering::SeqCst);
            let tail = (self.rx_next + self.rx_posted) % self.size;
            self.registers.write(rx_queue::rdt(self.queue), tail as u32);
            self.stats.doorbells.increment();
        }
    }

    /// Frees the oldest run of sent frames when the device is done with its
    /// last descriptor; returns how many.
    fn reclaim_tx(&mut self) -> usize {
        let mut reclaimed = 0;
        while self.tx_in_flight > 0 {
            let run = self.tx_in_flight.min(TX_CLEAN_BATCH);
            let last = (self.tx_clean + run - 1) % self.size;
            // SAFETY: inside the ring; volatile because the device writes
            // the status back.
            let descriptor = unsafe { self.tx_descriptor(last).read_volatile() };
            if !descriptor.done() {
                break;
            }
            // Ordering: the write-back was seen; nothing of the frames is
            // read, but keep the slot reuse after it.
            fence(Ordering::Acquire);
            for _ in 0..run {
                drop(self.tx_slots[self.tx_clean].take());
                self.tx_clean = (self.tx_clean + 1) % self.size;
            }
            self.tx_in_flight -= run;
            reclaimed += run;
        }
        self.stats.tx_reclaimed.add(reclaimed as u64);
        reclaimed
    }
}

impl<R: Registers + 'static> Nic for IgbQueue<R> {
    fn rx_burst(&mut self, batch: &mut Batch) -> usize {
        let mut received = 0;
        let mut bytes = 0u64;
        while batch.remaining_capacity() > 0 && self.rx_posted > 0 {
            let index = self.rx_next;
            // SAFETY: inside the ring; volatile because the device writes
            // the descriptor back.
            let descriptor = unsafe { self.rx_descriptor(index).read_volatile() };
            let write_back = descriptor.write_back();
            if !write_back.done() {
                break;
            }
            // Ordering: the frame's bytes are read after its DD bit.
            fence(Ordering::Acquire);
            self.rx_next = (index + 1) % self.size;
            self.rx_posted -= 1;
            let Some(mut packet) = self.rx_slots[index].take() else {
                continue;
            };
            if !write_back.good_single_buffer() {
                self.stats.rx_errors.increment();
                continue;
            }
            let length = usize::from(write_back.length);
            if packet.set_range(packet.headroom(), length).is_err() {
                self.stats.rx_errors.increment();
                continue;
            }
            bytes += length as u64;
            if let Err(packet) = batch.push(packet) {
                // Impossible: the loop checked the batch's room.
                drop(packet);
                continue;
            }
            received += 1;
        }
        self.stats.rx_packets.add(received as u64);
        self.stats.rx_bytes.add(bytes);
        // Refill an eighth of the ring at a time, at most a burst: one tail
        // write each.
        let threshold = (self.size / 8).clamp(1, dataplane::BURST_SIZE);
        if self.size - 1 - self.rx_posted >= threshold {
            self.refill();
        }
        self.bursts_since_stats += 1;
        if self.bursts_since_stats >= STATS_INTERVAL {
            self.refresh_device_stats();
        }
        received
    }

    fn tx_burst(&mut self, batch: &mut Batch) -> usize {
        if self.size - 1 - self.tx_in_flight < batch.len() {
            self.reclaim_tx();
        }
        let room = (self.size - 1 - self.tx_in_flight).min(batch.len());
        let mut sent = 0;
        for packet in batch.packets_mut().drain(..room) {
            let Ok(length) = u16::try_from(packet.len()) else {
                self.stats.tx_bad_length.increment();
                continue;
            };
            if length == 0 || length > MAX_TX_BYTES {
                self.stats.tx_bad_length.increment();
                continue;
            }
            let descriptor = TxDescriptor::single_buffer(packet.phys_addr(), length);
            // SAFETY: the descriptor is the driver's (not in flight), inside
            // the ring; volatile because the device reads it.
            unsafe { self.tx_descriptor(self.tx_tail).write_volatile(descriptor) };
            self.tx_slots[self.tx_tail] = Some(packet);
            self.tx_tail = (self.tx_tail + 1) % self.size;
            self.tx_in_flight += 1;
            sent += 1;
        }
        if sent > 0 {
            // Ordering: descriptors and frames in memory before the tail
            // write lets the device fetch them.
            fence(Ordering::SeqCst);
            self.registers
                .write(tx_queue::tdt(self.queue), self.tx_tail as u32);
            self.stats.doorbells.increment();
        }
        self.stats.tx_packets.add(sent as u64);
        room
    }

    /// Brings the device's counters up to date, then, when the queue has
    /// its MSI-X vector, arms it: the stale cause cleared, the vector
    /// unmasked, and the ring looked at once more, since a frame written
    /// back before the unmask raised nothing (`EICR` bits only interrupt
    /// when they rise under `EIMS`).
    fn enable_wakeup(&mut self) -> bool {
        self.refresh_device_stats();
        if !self.interrupts {
            return true;
        }
        let bit = self.vector_bit();
        self.registers.write(EICR, bit);
        self.registers.write(EIMS, bit);
        // Ordering: the unmask (an uncached store) before the load of the
        // descriptor: either the device wrote the descriptor back before
        // it saw the unmask, and we see it below, or it raises the vector.
        fence(Ordering::SeqCst);
        if self.rx_pending() {
            self.disable_wakeup();
            return false;
        }
        true
    }

    /// Masks the queue's vector again: a polling core takes no interrupts.
    fn disable_wakeup(&mut self) {
        if self.interrupts {
            self.registers.write(EIMC, self.vector_bit());
        }
    }

    fn mac(&self) -> MacAddr {
        self.mac
    }

    fn link(&self) -> LinkInfo {
        let link = link_state(&self.registers);
        LinkInfo {
            up: link.up,
            speed_mbps: if link.up { link.speed_mbps } else { 0 },
            mtu: 1500,
        }
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn counters(&self) -> Option<Arc<dyn NicCounters>> {
        Some(self.stats.clone())
    }
}

#[cfg(test)]
mod tests;
