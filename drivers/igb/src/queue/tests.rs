//! The data path against a simulated 82576: a register file (tails,
//! heads, clear-on-read statistics) and a device side that writes received
//! frames into the offered buffers and writes transmit descriptors back,
//! as the datasheet's descriptor rings say.

use super::*;
use crate::descriptors::RxStatusError;
use crate::registers::{CTRL, Ctrl, Rah, rah, ral, rx_queue, stats, tx_queue};
use alloc::rc::Rc;
use core::cell::RefCell;
use std::collections::BTreeMap;

/// The register file, shared between the driver's handle and the test.
#[derive(Default)]
struct RegisterFile {
    values: BTreeMap<u32, u32>,
    /// Every write to a tail register, in order.
    tail_writes: Vec<(u32, u32)>,
}

#[derive(Clone, Default)]
struct SimulatedRegisters(Rc<RefCell<RegisterFile>>);

const CLEAR_ON_READ: [u32; 16] = [
    crate::registers::ICR,
    stats::pqgprc(0),
    stats::pqgptc(0),
    stats::rqdpc(0),
    stats::pqgprc(1),
    stats::pqgptc(1),
    stats::rqdpc(1),
    stats::GPRC,
    stats::GPTC,
    stats::GORCL,
    stats::GORCH,
    stats::GOTCL,
    stats::GOTCH,
    stats::MPC,
    stats::RNBC,
    stats::CRCERRS,
];

// SAFETY: a simulation; there is no device to reach.
unsafe impl Registers for SimulatedRegisters {
    fn read(&self, offset: u32) -> u32 {
        let mut file = self.0.borrow_mut();
        let value = file.values.get(&offset).copied().unwrap_or(0);
        if offset == CTRL {
            // The reset completes at once.
            return value & !Ctrl::RST.bits();
        }
        if CLEAR_ON_READ.contains(&offset) {
            file.values.remove(&offset);
        }
        value
    }

    fn write(&mut self, offset: u32, value: u32) {
        let mut file = self.0.borrow_mut();
        if offset == rx_queue::rdt(0) || offset == tx_queue::tdt(0) {
            file.tail_writes.push((offset, value));
        }
        file.values.insert(offset, value);
    }

    fn delay_us(&mut self, _micros: u32) {}
}

/// Leaked, zeroed, 128-byte aligned ring memory (phys = virt, as the
/// heap mempools have it).
fn ring_memory(descriptors: u16) -> RingMemory {
    let layout = std::alloc::Layout::from_size_align(RingMemory::bytes(descriptors), 128).unwrap();
    // SAFETY: the layout has a non-zero size.
    let virt = NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) }).unwrap();
    // SAFETY: fresh, never freed, aligned, and "the device" reaches it at
    // the same address.
    unsafe { RingMemory::new(virt, virt.as_ptr() as u64, descriptors) }
}

struct Rig {
    registers: SimulatedRegisters,
    rx_ring: *mut RxDescriptor,
    tx_ring: *mut TxDescriptor,
    size: u32,
    queue: IgbQueue<SimulatedRegisters>,
}

const NO_MSIX: crate::PairOptions = crate::PairOptions {
    msix: false,
    link_interrupt: false,
};

const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];

fn rig(descriptors: u16, buffers: usize) -> Rig {
    let registers = SimulatedRegisters::default();
    {
        let mut file = registers.0.borrow_mut();
        file.values
            .insert(ral(0), u32::from_le_bytes([MAC[0], MAC[1], MAC[2], MAC[3]]));
        file.values.insert(
            rah(0),
            u32::from_le_bytes([MAC[4], MAC[5], 0, 0]) | Rah::AV.bits(),
        );
    }
    let device = Igb::reset(registers.clone()).unwrap();
    let rx = ring_memory(descriptors);
    let tx = ring_memory(descriptors);
    let (rx_ring, tx_ring) = (rx.virt.as_ptr().cast(), tx.virt.as_ptr().cast());
    let pool = Mempool::with_heap(buffers, 128).unwrap();
    let queue = crate::program_queue_pairs(device, vec![(rx, tx)], "igb0", NO_MSIX)
        .unwrap()
        .remove(0)
        .start(pool)
        .unwrap();
    Rig {
        registers,
        rx_ring,
        tx_ring,
        size: u32::from(descriptors),
        queue,
    }
}

impl Rig {
    fn register(&self, offset: u32) -> u32 {
        self.registers
            .0
            .borrow()
            .values
            .get(&offset)
            .copied()
            .unwrap_or(0)
    }

    fn set_register(&self, offset: u32, value: u32) {
        self.registers.0.borrow_mut().values.insert(offset, value);
    }

    fn tail_writes(&self) -> Vec<(u32, u32)> {
        core::mem::take(&mut self.registers.0.borrow_mut().tail_writes)
    }

    /// The device receives `frame` with write-back `status` (DD is added):
    /// false when the ring has no buffer (head == tail).
    fn deliver_with(&self, frame: &[u8], status: RxStatusError) -> bool {
        let head = self.register(rx_queue::rdh(0));
        if head == self.register(rx_queue::rdt(0)) {
            return false;
        }
        // SAFETY: head < size; the ring and the buffers are heap memory
        // at their "physical" addresses.
        unsafe {
            let descriptor = self.rx_ring.add(head as usize);
            let buffer = (*descriptor).packet_address as *mut u8;
            core::ptr::copy_nonoverlapping(frame.as_ptr(), buffer, frame.len());
            let upper = (status | RxStatusError::DD).bits() as u64 | ((frame.len() as u64) << 32);
            core::ptr::addr_of_mut!((*descriptor).header_address).write_volatile(upper);
        }
        self.set_register(rx_queue::rdh(0), (head + 1) % self.size);
        true
    }

    fn deliver(&self, frame: &[u8]) -> bool {
        self.deliver_with(frame, RxStatusError::EOP)
    }

    /// The device sends every descriptor up to the tail; returns the frames.
    fn transmit(&self) -> Vec<Vec<u8>> {
        let mut head = self.register(tx_queue::tdh(0));
        let tail = self.register(tx_queue::tdt(0));
        let mut frames = Vec::new();
        while head != tail {
            // SAFETY: head < size; heap memory as in `deliver_with`.
            unsafe {
                let descriptor = self.tx_ring.add(head as usize);
                let length = ((*descriptor).command_type_length & 0xffff) as usize;
                let data = (*descriptor).buffer_address as *const u8;
                frames.push(core::slice::from_raw_parts(data, length).to_vec());
                (*descriptor).offload_status |= crate::descriptors::TX_STATUS_DD;
            }
            head = (head + 1) % self.size;
        }
        self.set_register(tx_queue::tdh(0), head);
        frames
    }
}

fn frame(tag: u8, len: usize) -> Vec<u8> {
    (0..len).map(|index| tag ^ index as u8).collect()
}

#[test]
fn start_offers_every_descriptor_but_one_with_one_tail_write() {
    let rig = rig(64, 256);
    assert_eq!(rig.queue.rx_posted(), 63);
    // Configuration zeroes both tails; then the one doorbell.
    assert_eq!(
        rig.tail_writes(),
        vec![
            (rx_queue::rdt(0), 0),
            (tx_queue::tdt(0), 0),
            (rx_queue::rdt(0), 63)
        ]
    );
    assert_eq!(rig.queue.mac(), MacAddr(MAC));
}

#[test]
fn received_frames_arrive_in_order_in_the_buffers_the_device_wrote() {
    let mut rig = rig(64, 256);
    rig.tail_writes();
    for tag in 0..5 {
        assert!(rig.deliver(&frame(tag, 60 + usize::from(tag))));
    }
    let mut batch = Batch::new();
    assert_eq!(rig.queue.rx_burst(&mut batch), 5);
    for (tag, packet) in batch.packets_mut().iter().enumerate() {
        assert_eq!(packet.payload(), frame(tag as u8, 60 + tag).as_slice());
    }
    let stats = rig.queue.stats();
    assert_eq!(stats.rx_packets.get(), 5);
    assert_eq!(stats.rx_bytes.get(), (60..65).sum::<u64>());
    // Five free descriptors are under the refill threshold (64 / 8): no
    // tail write yet.
    assert!(rig.tail_writes().is_empty());
    assert_eq!(rig.queue.rx_burst(&mut Batch::new()), 0);
}

#[test]
fn refill_is_batched_and_the_ring_keeps_receiving_past_its_size() {
    let mut rig = rig(64, 512);
    rig.tail_writes();
    let mut total = 0;
    for round in 0..10 {
        let mut delivered = 0;
        while delivered < 20 && rig.deliver(&frame(round, 64)) {
            delivered += 1;
        }
        assert_eq!(delivered, 20, "round {round}: the ring ran dry");
        let mut batch = Batch::new();
        total += rig.queue.rx_burst(&mut batch);
    }
    assert_eq!(total, 200);
    // One tail write per burst at most, each after at least 8 free.
    let writes = rig.tail_writes();
    assert!(writes.len() <= 10, "{writes:?}");
    assert!(writes.iter().all(|(offset, _)| *offset == rx_queue::rdt(0)));
    assert_eq!(rig.queue.rx_posted(), 63);
}

#[test]
fn errored_and_multi_buffer_frames_are_counted_drops() {
    let mut rig = rig(64, 256);
    assert!(rig.deliver_with(&frame(1, 64), RxStatusError::EOP | RxStatusError::RXE));
    // No EOP: the frame would continue in the next descriptor.
    assert!(rig.deliver_with(&frame(2, 64), RxStatusError::empty()));
    assert!(rig.deliver(&frame(3, 64)));
    let mut batch = Batch::new();
    assert_eq!(rig.queue.rx_burst(&mut batch), 1);
    assert_eq!(batch.packets_mut()[0].payload(), frame(3, 64).as_slice());
    assert_eq!(rig.queue.stats().rx_errors.get(), 2);
}

#[test]
fn an_empty_pool_leaves_the_ring_short_and_is_counted() {
    // 20 buffers for a ring of 63 usable descriptors.
    let mut rig = rig(64, 20);
    assert_eq!(rig.queue.rx_posted(), 20);
    assert!(rig.queue.stats().rx_pool_empty.get() >= 1);
    for tag in 0..20 {
        assert!(rig.deliver(&frame(tag, 64)));
    }
    assert!(!rig.deliver(&frame(99, 64)), "head caught up with the tail");
    let mut batch = Batch::new();
    assert_eq!(rig.queue.rx_burst(&mut batch), 20);
    // Once the packets go back to the pool, the ring fills again.
    drop(batch);
    rig.queue.rx_burst(&mut Batch::new());
    assert_eq!(rig.queue.rx_posted(), 20);
    assert!(rig.deliver(&frame(7, 64)));
}

#[test]
fn transmit_writes_one_tail_per_burst_and_reclaims_in_runs() {
    let mut rig = rig(64, 512);
    let pool = Mempool::with_heap(256, 128).unwrap();
    rig.tail_writes();
    let mut sent = Vec::new();
    for round in 0..8u8 {
        let mut batch = Batch::new();
        for index in 0..20u8 {
            let mut packet = pool.alloc().unwrap();
            let bytes = frame(round.wrapping_mul(31) ^ index, 60 + usize::from(index));
            packet.append(bytes.len()).unwrap().copy_from_slice(&bytes);
            sent.push(bytes);
            batch.push(packet).unwrap();
        }
        assert_eq!(rig.queue.tx_burst(&mut batch), 20, "round {round}");
        assert!(batch.is_empty());
        let writes = rig.tail_writes();
        assert_eq!(writes.len(), 1, "round {round}: {writes:?}");
        assert_eq!(writes[0].0, tx_queue::tdt(0));
        let frames = rig.transmit();
        assert_eq!(frames.as_slice(), &sent[sent.len() - 20..]);
    }
    let stats = rig.queue.stats();
    assert_eq!(stats.tx_packets.get(), 160);
    // 160 frames through a 63-descriptor ring: reclaimed as it filled.
    assert!(stats.tx_reclaimed.get() >= 160 - 63);
    assert_eq!(
        stats.tx_reclaimed.get() + rig.queue.tx_in_flight() as u64,
        160
    );
    assert_eq!(
        pool.available() + rig.queue.tx_in_flight(),
        256,
        "reclaimed packets went back to their pool"
    );
}

#[test]
fn a_full_ring_leaves_packets_in_the_batch() {
    let mut rig = rig(16, 64);
    let pool = Mempool::with_heap(64, 128).unwrap();
    let mut batch = Batch::new();
    for _ in 0..20 {
        let mut packet = pool.alloc().unwrap();
        packet.append(60).unwrap().fill(0xab);
        batch.push(packet).unwrap();
    }
    // 15 usable descriptors, nothing sent back yet.
    assert_eq!(rig.queue.tx_burst(&mut batch), 15);
    assert_eq!(batch.len(), 5);
    assert_eq!(rig.queue.tx_burst(&mut batch), 0);
    assert_eq!(rig.transmit().len(), 15);
    assert_eq!(rig.queue.tx_burst(&mut batch), 5);
    assert!(batch.is_empty());
}

#[test]
fn empty_packets_are_counted_drops() {
    let mut rig = rig(16, 64);
    let pool = Mempool::with_heap(8, 128).unwrap();
    rig.tail_writes();
    let mut batch = Batch::new();
    batch.push(pool.alloc().unwrap()).unwrap();
    assert_eq!(rig.queue.tx_burst(&mut batch), 1);
    assert_eq!(rig.queue.stats().tx_bad_length.get(), 1);
    assert!(
        rig.tail_writes()
            .iter()
            .all(|(offset, _)| *offset != tx_queue::tdt(0))
    );
}

#[test]
fn device_statistics_are_summed_into_the_counters() {
    let mut rig = rig(16, 64);
    rig.set_register(stats::GPRC, 7);
    rig.set_register(stats::MPC, 2);
    rig.queue.refresh_device_stats();
    rig.set_register(stats::GPRC, 5);
    rig.set_register(stats::GORCL, 640);
    rig.queue.refresh_device_stats();
    let stats = rig.queue.stats();
    assert_eq!(stats.device_rx_good_packets.get(), 12);
    assert_eq!(stats.device_rx_good_octets.get(), 640);
    assert_eq!(stats.device_rx_missed.get(), 2);
    let entries = stats.entries();
    assert!(entries.contains(&("device_rx_good_packets", 12)));
}

#[test]
fn small_buffers_are_refused() {
    let registers = SimulatedRegisters::default();
    registers.0.borrow_mut().values.insert(ral(0), 0x0012_5452);
    registers
        .0
        .borrow_mut()
        .values
        .insert(rah(0), 0x5634 | Rah::AV.bits());
    let device = Igb::reset(registers).unwrap();
    let pool = Mempool::with_heap_data_size(8, 128, 1024).unwrap();
    let result = crate::program_queue_pairs(
        device,
        vec![(ring_memory(16), ring_memory(16))],
        "igb0",
        NO_MSIX,
    )
    .unwrap()
    .remove(0)
    .start(pool);
    assert!(matches!(result, Err(IgbError::BufferTooSmall(1024))));
}

/// Two pairs with MSI-X on one simulated function: what the device is
/// told, and pair 1 driving its own queue's registers only.
fn two_pairs() -> (SimulatedRegisters, Vec<IgbQueue<SimulatedRegisters>>) {
    let registers = SimulatedRegisters::default();
    registers.0.borrow_mut().values.insert(ral(0), 0x0012_5452);
    registers
        .0
        .borrow_mut()
        .values
        .insert(rah(0), 0x5634 | Rah::AV.bits());
    let device = Igb::reset(registers.clone()).unwrap();
    let rings = (0..2).map(|_| (ring_memory(16), ring_memory(16))).collect();
    let options = crate::PairOptions {
        msix: true,
        link_interrupt: true,
    };
    let setups = crate::program_queue_pairs(device, rings, "igb0", options).unwrap();
    assert_eq!(setups.len(), 2);
    assert!(setups.iter().all(QueuePairSetup::rx_interrupts));
    let queues = setups
        .into_iter()
        .map(|setup| setup.start(Mempool::with_heap(64, 128).unwrap()).unwrap())
        .collect();
    (registers, queues)
}

#[test]
fn two_pairs_get_rss_with_our_key_and_a_vector_each() {
    use crate::registers::{GPIE, Gpie, IVAR0, MRQC, RETA, RSSRK};
    let (registers, queues) = two_pairs();
    let read = |offset| {
        registers
            .0
            .borrow()
            .values
            .get(&offset)
            .copied()
            .unwrap_or(0)
    };
    assert_eq!(read(MRQC) & 3, crate::registers::MRQC_ENABLE_RSS);
    assert_eq!(read(RSSRK), 0x5a6d_5a6d);
    assert_eq!(read(RETA), 0x0100_0100);
    assert!(Gpie::from_bits_retain(read(GPIE)).contains(Gpie::MSIX_MODE));
    // Queue 0 on vector 0, queue 1 on vector 1, receive and transmit.
    assert_eq!(read(IVAR0) & 0xffff, 0x8080);
    assert_eq!(read(IVAR0 + 4) & 0xffff, 0x8181);
    // Link Status Change on vector 2, the one after the queues', left
    // unmasked and auto-cleared; only LSC enabled among the other causes.
    assert_eq!(read(crate::registers::EIAC), 0b111);
    assert_eq!(read(crate::registers::IVAR_MISC), 0x82 << 8);
    assert_eq!(read(crate::registers::IMS), crate::registers::ICR_LSC);
    assert_eq!(read(crate::registers::EIMS), 0b100);
    // Each pair filled its own ring: one doorbell each.
    assert_eq!(read(rx_queue::rdt(0)), 15);
    assert_eq!(read(rx_queue::rdt(1)), 15);
    assert_eq!(queues[1].queue(), 1);
    assert_eq!(queues[1].name(), "igb0.q1");
}

#[test]
fn a_pair_arms_its_own_vector_and_declines_to_sleep_on_a_pending_frame() {
    use crate::registers::{EIMC, EIMS};
    let (registers, mut queues) = two_pairs();
    let read = |offset| {
        registers
            .0
            .borrow()
            .values
            .get(&offset)
            .copied()
            .unwrap_or(0)
    };
    assert!(queues[1].enable_wakeup());
    assert_eq!(read(EIMS), 0b10);
    queues[1].disable_wakeup();
    assert_eq!(read(EIMC), 0b10);
    // A frame written back before the arm: the queue says "do not sleep"
    // and masks its vector again.
    // SAFETY: pair 1's receive ring is heap memory at its "physical"
    // address; descriptor 0 holds a buffer.
    unsafe {
        let ring = queues[1].rx_ring.as_ptr();
        let upper = (RxStatusError::DD | RxStatusError::EOP).bits() as u64 | (60u64 << 32);
        core::ptr::addr_of_mut!((*ring).header_address).write_volatile(upper);
    }
    registers.0.borrow_mut().values.remove(&EIMC);
    assert!(!queues[1].enable_wakeup());
    assert_eq!(read(EIMC), 0b10);
    let mut batch = Batch::new();
    assert_eq!(queues[1].rx_burst(&mut batch), 1);
}

#[test]
fn per_queue_registers_and_link_changes_are_counted() {
    use crate::registers::{ICR, ICR_LSC, STATUS, Status};
    let (registers, mut queues) = two_pairs();
    let set = |offset, value| {
        registers.0.borrow_mut().values.insert(offset, value);
    };
    set(stats::pqgprc(1), 9);
    set(stats::pqgptc(1), 4);
    set(stats::rqdpc(1), 2);
    set(stats::pqgprc(0), 5);
    queues[1].refresh_device_stats();
    queues[1].refresh_device_stats();
    let pair1 = queues[1].stats();
    assert_eq!(
        (
            pair1.device_queue_rx_packets.get(),
            pair1.device_queue_tx_packets.get(),
            pair1.device_queue_rx_drops.get(),
        ),
        (9, 4, 2)
    );
    // Pair 1 does not read the device-wide causes or link.
    assert_eq!(pair1.link_changes.get(), 0);
    // The link goes down: the device sets ICR.LSC and clears STATUS.LU.
    set(ICR, ICR_LSC);
    set(STATUS, 0);
    queues[0].refresh_device_stats();
    let pair0 = queues[0].stats();
    assert_eq!(pair0.device_queue_rx_packets.get(), 5);
    assert_eq!((pair0.link_changes.get(), pair0.link_up.get()), (1, 0));
    // Read once: ICR cleared, nothing new.
    queues[0].refresh_device_stats();
    assert_eq!(pair0.link_changes.get(), 1);
    // And up again.
    set(ICR, ICR_LSC);
    set(STATUS, Status::LU.bits());
    queues[0].refresh_device_stats();
    assert_eq!((pair0.link_changes.get(), pair0.link_up.get()), (2, 1));
    assert!(pair0.entries().contains(&("link_changes", 2)));
}
