//! One receive/transmit queue pair as a `dataplane::Nic`: the receive ring
//! kept full of mempool buffers, transmit completions reclaimed in bursts,
//! one fence and at most one doorbell per burst in each direction.

use crate::registers::{NET_HEADER_LEN, NetStatus};
use crate::transport::{Doorbell, NetConfigView};
use crate::virtqueue::{InOrderRun, MAX_QUEUE_SIZE, SplitQueue, UsedRun, UsedSpan};
use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use core::mem::ManuallyDrop;
use core::sync::atomic::{Ordering, fence};
use dataplane::mem::burst::{self, append_from_fn, take_front};
use dataplane::mem::mempool::Lender;
use dataplane::{BURST_SIZE, Batch, Counter, LinkInfo, MacAddr, Mempool, Nic, Packet};

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
    /// In-order receive bursts whose last used entry named another
    /// descriptor than its position (a device misbehaving, or batching
    /// completions): their entries were each checked, and those naming
    /// another descriptor dropped as `rx_bad_length`.
    pub rx_used_id_mismatch: Counter,
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
    pub fn entries(&self) -> [(&'static str, u64); 9] {
        [
            ("rx_packets", self.rx_packets.get()),
            ("rx_bytes", self.rx_bytes.get()),
            ("rx_bad_length", self.rx_bad_length.get()),
            ("rx_pool_empty", self.rx_pool_empty.get()),
            ("rx_used_id_mismatch", self.rx_used_id_mismatch.get()),
            ("tx_packets", self.tx_packets.get()),
            ("tx_no_headroom", self.tx_no_headroom.get()),
            ("tx_reclaimed", self.tx_reclaimed.get()),
            ("notifications", self.notifications.get()),
        ]
    }
}

/// Slots of a ring's slot array: the largest queue the driver sets up, so
/// that a descriptor id reduced modulo it (`slot`) indexes the array
/// without a bounds check.
const SLOTS: usize = MAX_QUEUE_SIZE as usize;

// A receive burst's refused buffers are kept as one bit each of a `u64`.
const _: () = assert!(BURST_SIZE <= 64);

/// A slot holding no buffer of the queue's own pool.
const NO_BUFFER: u32 = u32::MAX;

/// Where descriptor `id`'s buffer is kept in a slot array: `id` itself
/// (ids are below the queue size, at most [`SLOTS`]), reduced so that the
/// index is in bounds by construction.
#[inline(always)]
fn slot(id: u16) -> usize {
    usize::from(id) % SLOTS
}

/// A virtqueue, its doorbell, and what the device holds for each
/// descriptor (every chain is one descriptor): the index of a buffer of
/// the queue's own pool lent to the device (`Mempool::lend_run` for a
/// receive buffer, `Mempool::lend` for a frame sent): 4 bytes a descriptor
/// where a [`Packet`] is 24, and no packet made for a receive buffer until
/// a frame is in it. [`NO_BUFFER`] where the device holds nothing of the
/// pool's; in order (`VIRTIO_F_IN_ORDER`) the ring's positions say which
/// slots are in flight and a slot is only written when its descriptor is
/// pushed.
pub(crate) struct RingWithSlots {
    pub(crate) ring: SplitQueue,
    pub(crate) doorbell: Option<Doorbell>,
    /// By descriptor id.
    slots: Box<[u32; SLOTS]>,
}

impl RingWithSlots {
    /// # Panics
    /// When the ring has more than [`MAX_QUEUE_SIZE`] entries (set-up code
    /// caps the size it negotiates at that).
    pub(crate) fn new(ring: SplitQueue, doorbell: Option<Doorbell>) -> Self {
        assert!(
            ring.size() <= MAX_QUEUE_SIZE,
            "queue larger than the driver's slots"
        );
        Self {
            ring,
            doorbell,
            slots: Box::new([NO_BUFFER; SLOTS]),
        }
    }

    /// Publishes what was pushed and rings the doorbell if the device wants it.
    fn publish(&mut self, stats: &QueueStats) {
        if self.ring.publish()
            && let Some(doorbell) = &self.doorbell
        {
            doorbell.ring();
            stats.notifications.increment();
        }
    }

    /// The slots of the `count` descriptors from `first` up, wrapping at
    /// the queue size: one or two runs of the slot array.
    fn slot_runs(&mut self, first: u16, count: usize) -> (&mut [u32], &mut [u32]) {
        let size = usize::from(self.ring.size());
        let first = usize::from(first).min(size);
        let count = count.min(size);
        let (wrapped, from_first) = self.slots[..size].split_at_mut(first);
        let head = count.min(from_first.len());
        (&mut from_first[..head], &mut wrapped[..count - head])
    }

    /// Gives `pool` back every buffer of its the device still holds.
    fn return_all(&mut self, pool: &Mempool) {
        if self.ring.in_order() {
            let (first, count) = self.ring.in_order_outstanding();
            let (head, wrapped) = self.slot_runs(first, usize::from(count));
            for lent in head.iter_mut().chain(wrapped) {
                if *lent != NO_BUFFER {
                    // SAFETY: the descriptor is outstanding, and its slot
                    // was written with the index lent when it was pushed;
                    // emptied here, so it comes back once.
                    unsafe { pool.return_lent(core::mem::replace(lent, NO_BUFFER)) };
                }
            }
        } else {
            for lent in self.slots.iter_mut() {
                if *lent != NO_BUFFER {
                    // SAFETY: out of order a slot holds an index exactly
                    // while the device holds its descriptor (emptied when
                    // taken back, and here), so it comes back once.
                    unsafe { pool.return_lent(core::mem::replace(lent, NO_BUFFER)) };
                }
            }
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

/// Makes room for the virtio header in front of `packet`'s frame and
/// writes it (no offloads: an all-zero header, flags 0, `GSO_NONE`, as two
/// stores rather than a call to `memset`); returns where the device reads
/// header and frame, or `None` without the headroom.
#[inline(always)]
fn frame_with_header(packet: &mut Packet) -> Option<(u64, u32)> {
    let header = packet.prepend(NET_HEADER_LEN).ok()?;
    if let Ok(header) = <&mut [u8; NET_HEADER_LEN]>::try_from(header) {
        *header = [0; NET_HEADER_LEN];
    }
    Some((packet.phys_addr(), packet.len() as u32))
}

/// [`frame_with_header`] for a frame of a pool whose physical addresses
/// are its virtual ones moved by `phys_offset` (`Mempool::phys_offset`):
/// no multiply by the buffer stride.
#[inline(always)]
fn frame_with_header_at(packet: &mut Packet, phys_offset: u64) -> Option<(u64, u32)> {
    let header = packet.prepend(NET_HEADER_LEN).ok()?;
    if let Ok(header) = <&mut [u8; NET_HEADER_LEN]>::try_from(header) {
        *header = [0; NET_HEADER_LEN];
    }
    let start = packet.payload().as_ptr() as u64;
    Some((start.wrapping_add(phys_offset), packet.len() as u32))
}

/// The in-order receive loop: makes a packet of each buffer of `used`
/// (their indices in `slots`, by descriptor id) and appends it to
/// `batch`, which has room for them all (`take_used_in_order(room)`);
/// returns (packets made, their bytes, the offsets in the run of the
/// buffers with a bad length, one bit each). Those stay lent, for the
/// caller to return after the loop, which so makes no call and keeps its
/// values in registers. The run is walked by its one or two spans of
/// consecutive descriptors ([`UsedRun::spans`]): a span's used entries
/// and slots are read at one index, with no mask. With `CHECK_IDS` a used
/// entry naming another descriptor than its position counts as a bad
/// length (its length is unknown); without, the caller checked the run's
/// first and last entries once ([`UsedRun::ends_in_place`]).
#[inline(always)]
fn receive_in_order<const CHECK_IDS: bool>(
    batch: &mut Batch,
    used: &UsedRun<'_>,
    slots: &[u32; SLOTS],
    pool: &Mempool,
    frame: usize,
    largest_frame: u32,
) -> (usize, u64, u64) {
    let [head, wrapped] = used.spans();
    let (mut received, mut bytes, mut refused) =
        receive_span::<CHECK_IDS>(batch, &head, 0, slots, pool, frame, largest_frame);
    if !wrapped.is_empty() {
        let (more, more_bytes, more_refused) = receive_span::<CHECK_IDS>(
            batch,
            &wrapped,
            head.len(),
            slots,
            pool,
            frame,
            largest_frame,
        );
        received += more;
        bytes += more_bytes;
        refused |= more_refused;
    }
    (received, bytes, refused)
}

/// [`receive_in_order`] over one span of the run, which starts
/// `run_offset` entries into it: the span's used entries and slots read
/// at one index.
#[inline(always)]
fn receive_span<const CHECK_IDS: bool>(
    batch: &mut Batch,
    span: &UsedSpan<'_>,
    run_offset: usize,
    slots: &[u32; SLOTS],
    pool: &Mempool,
    frame: usize,
    largest_frame: u32,
) -> (usize, u64, u64) {
    // A span's ids lie below the queue size, at most `SLOTS`
    // (`RingWithSlots::new`), so the slice is never empty for want of
    // room; were it, the span's buffers would stay lent (leaked, never
    // reused), not misread.
    let lent = slots
        .get(span.first()..span.first() + span.len())
        .unwrap_or(&[]);
    // A burst's bytes fit 32 bits (at most 64 frames below 64 KiB).
    let (mut bytes, mut refused) = (0u32, 0u64);
    // Written by index into the batch's spare room, its length stored once.
    let received = append_from_fn(batch.packets_mut(), lent.len(), |k| {
        let written = if CHECK_IDS {
            span.written(k)
        } else {
            // SAFETY: `k < lent.len()`, which is the span's length (or 0).
            unsafe { span.written_in_place(k) }
        };
        // One comparison for both bounds: below the header wraps to a
        // huge frame length.
        let frame_len = written.wrapping_sub(NET_HEADER_LEN as u32);
        if frame_len > largest_frame {
            refused |= 1 << (run_offset + k);
            return None;
        }
        bytes = bytes.wrapping_add(frame_len);
        // SAFETY: `refill` lent the index in the slot of this descriptor,
        // which the device completed and which is taken once
        // (`take_used_in_order` moved past it); the frame ends at `frame +
        // frame_len = header + written <= header + len <= buffer_len`
        // (`ReceiveLayout::of`).
        Some(unsafe { pool.take_lent(lent[k], frame, frame_len as usize) })
    });
    (received, u64::from(bytes), refused)
}

/// Keeps another pool's `packet`, sent on transmit descriptor `id`, until
/// the device is done with it; returns where the device reads it. Out of
/// line and cold: the in-order transmit loop keeps its registers for
/// frames of the queue's own pool.
#[cold]
#[inline(never)]
fn hold_foreign(
    tx_foreign: &mut [Option<Packet>],
    in_flight: &mut usize,
    id: u16,
    packet: Packet,
) -> u64 {
    let addr = packet.phys_addr();
    if let Some(held) = tx_foreign.get_mut(usize::from(id)) {
        *held = Some(packet);
        *in_flight += 1;
    }
    addr
}

/// What the in-order transmit loop works with: the transmit slots (the
/// queue size of them), the queue's pool as a [`Lender`], and where
/// another pool's frames are held.
struct InOrderSend<'a> {
    slots: &'a mut [u32],
    /// The slots' address, from which a slot's descriptor id is worked out.
    slots_start: usize,
    lender: Lender<'a>,
    phys_offset: u64,
    tx_foreign: &'a mut [Option<Packet>],
    tx_foreign_in_flight: &'a mut usize,
    /// Frames dropped for want of headroom.
    no_headroom: u64,
}

type Front<'b> = burst::Front<'b, Packet, BURST_SIZE>;

impl InOrderSend<'_> {
    /// Sends the queue's own frames with headroom from the front of
    /// `packets`, each slot and descriptor written as the frame is taken,
    /// from the run's next descriptor up to the table's end at most; stops
    /// at the first other frame. Not inlined: alone in its function, the
    /// loop has every register for itself.
    #[inline(never)]
    fn span(&mut self, run: &mut InOrderRun<'_>, packets: &mut Front<'_>) {
        let Some(id) = run.next_id() else {
            return;
        };
        let id = usize::from(id);
        // No more slots than frames left, so that the span's bound is the
        // front's too.
        let end = (id + packets.len()).min(self.slots.len());
        let Some(span) = self.slots.get_mut(id..end) else {
            return;
        };
        let Self {
            slots_start,
            lender,
            phys_offset,
            tx_foreign,
            tx_foreign_in_flight,
            no_headroom,
            ..
        } = self;
        let (lender, phys_offset, slots_start) = (*lender, *phys_offset, *slots_start);
        // The front's items read in place, the position kept here and
        // moved past those taken once the span ends.
        let next = packets.as_ptr();
        let mut taken = 0;
        // Nothing in the closure may panic: the front moves past the items
        // read out only after the span (`skip_taken`), so an unwinding
        // closure would leave `Front`'s drop to return those packets to
        // the pool a second time. (Nothing in it can panic today:
        // `hold_foreign` and `frame_with_header_at` do not.)
        run.push_span_while(span, |slot| {
            // SAFETY: the span calls this at most once a slot and stops at
            // the first call that takes no frame; each earlier call took
            // one, and there were no more slots than frames, so `taken <
            // packets.len()`: an item of the front not read out yet.
            // Read once, so that the checks look at a value in registers;
            // while not wanted its bits stay where they are, the front's
            // (the copy is forgotten).
            let packet = ManuallyDrop::new(unsafe { next.add(taken).read() });
            if !(lender.owns(&packet) && packet.headroom() >= NET_HEADER_LEN) {
                return None;
            }
            // Taken: read out once (`taken` moves past it), for
            // `skip_taken` below.
            let mut packet = ManuallyDrop::into_inner(packet);
            taken += 1;
            // Never `None` nor `Err`: the headroom and the pool were just
            // looked at; counted and kept whole all the same.
            let Some((addr, len)) = frame_with_header_at(&mut packet, phys_offset) else {
                *no_headroom += 1;
                return None;
            };
            let (index, addr) = match lender.lend(packet) {
                Ok(index) => (index, addr),
                Err(packet) => {
                    let id = (core::ptr::from_mut(slot).addr() - slots_start) / size_of::<u32>();
                    let addr = hold_foreign(tx_foreign, tx_foreign_in_flight, id as u16, packet);
                    (NO_BUFFER, addr)
                }
            };
            *slot = index;
            Some((addr, len))
        });
        // SAFETY: the first `taken` items were each read out once, above.
        unsafe { packets.skip_taken(taken) };
    }

    /// Sends what [`Self::span`] left of the front: span after span, each
    /// stopped at the table's end (the next starts at descriptor 0), at the
    /// run's or the burst's end, or at a frame of another pool (sent apart,
    /// held whole) or without headroom (dropped, counted).
    #[cold]
    #[inline(never)]
    fn rest(&mut self, run: &mut InOrderRun<'_>, packets: &mut Front<'_>, pool: &Mempool) {
        let lender = self.lender;
        loop {
            let Some(mut packet) = packets
                .next_if(|packet| !lender.owns(packet) || packet.headroom() < NET_HEADER_LEN)
            else {
                if packets.is_empty() || run.next_id().is_none() {
                    return;
                }
                self.span(run, packets);
                continue;
            };
            let Some((addr, len)) = frame_with_header(&mut packet) else {
                self.no_headroom += 1;
                continue;
            };
            let Some(id) = run.next_id() else {
                return;
            };
            self.slots[slot(id)] = match pool.lend(packet) {
                Ok(index) => index,
                Err(packet) => {
                    hold_foreign(self.tx_foreign, self.tx_foreign_in_flight, id, packet);
                    NO_BUFFER
                }
            };
            run.push(addr, len);
        }
    }
}

/// One queue pair, polled by the core that owns its mempool.
pub struct VirtioNetQueue {
    rx: RingWithSlots,
    tx: RingWithSlots,
    /// Frames sent from other pools, by transmit descriptor id (their slot
    /// in `tx` holds [`NO_BUFFER`]): they go home when dropped.
    tx_foreign: Box<[Option<Packet>]>,
    /// How many of `tx_foreign` are in flight: while none are, an in-order
    /// reclaim returns the completed slots to the pool as one run.
    tx_foreign_in_flight: usize,
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
        rx: RingWithSlots,
        tx: RingWithSlots,
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
            tx_foreign_in_flight: 0,
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

    /// Gives the device a buffer for every free receive descriptor; one
    /// fence and at most one doorbell. In order, the free descriptors are
    /// consecutive: the pool lends their buffers' indices straight into
    /// their slots (`Mempool::lend_run`, one copy off its free stack), and
    /// the descriptors are written from the slots in one run.
    fn refill(&mut self) {
        let ReceiveLayout { header, len, .. } = self.receive;
        let (wanted, lent) = if self.rx.ring.in_order() {
            let RingWithSlots { ring, slots, .. } = &mut self.rx;
            let pool = &self.pool;
            let (base, stride) = (
                pool.buffers_phys() + header as u64,
                pool.buffer_stride() as u64,
            );
            let address = |index: u32| base + u64::from(index) * stride;
            // The free descriptors' slots, in one or two spans (before and
            // after the table's end): the pool lends into each, and the
            // descriptors are written from it.
            let (first, free) = ring.in_order_free();
            let (first, free) = (usize::from(first), usize::from(free));
            let size = usize::from(ring.size());
            let (wrapped, from_first) = slots[..size].split_at_mut(first);
            let head = free.min(from_first.len());
            let (head, rest) = (&mut from_first[..head], &mut wrapped[..free - head]);
            let mut run = ring.in_order_run(free, true);
            let mut lent = pool.lend_run(head);
            run.push_span(&head[..lent], len, address);
            if lent == head.len() && !rest.is_empty() {
                let more = pool.lend_run(rest);
                run.push_span(&rest[..more], len, address);
                lent += more;
            }
            debug_assert_eq!(run.pushed(), lent, "`free` descriptors were free");
            (free, lent)
        } else {
            let wanted = self.rx.ring.free_count();
            let ring = &mut self.rx;
            let pool = &self.pool;
            let lent = pool.lend_bulk(wanted, |index, buffer_phys| {
                // Never `None`: `wanted` descriptors were free.
                match ring
                    .ring
                    .push_single(buffer_phys + header as u64, len, true)
                {
                    Some(id) => ring.slots[slot(id)] = index,
                    // SAFETY: `index` was just lent and is given back once.
                    None => unsafe { pool.return_lent(index) },
                }
            });
            (wanted, lent)
        };
        if lent < wanted {
            self.stats.rx_pool_empty.increment();
        }
        self.rx.publish(&self.stats);
    }

    /// Takes back every frame the device finished sending: a buffer of the
    /// queue's own pool straight onto its free stack, another pool's
    /// packet dropped (it goes home). In order, the completed descriptors
    /// are consecutive, and while no other pool's packet is among those in
    /// flight their slots go back to the pool as one run
    /// (`Mempool::return_lent_run`), with no look at each.
    fn reclaim_tx(&mut self) {
        if self.tx.ring.in_order() {
            let used = self.tx.ring.take_used_in_order(usize::MAX);
            let (first, count) = (used.first(), used.len());
            if count == 0 {
                return;
            }
            let pool = &self.pool;
            if self.tx_foreign_in_flight == 0 {
                let (head, wrapped) = self.tx.slot_runs(first, count);
                // SAFETY: the completed descriptors were each pushed once
                // by `tx_burst` with the index of a buffer it lent (no
                // other pool's packet in flight) written in its slot, and
                // are taken back once (`take_used_in_order` moved past
                // them); distinct descriptors hold distinct buffers.
                unsafe {
                    pool.return_lent_run(head);
                    if !wrapped.is_empty() {
                        pool.return_lent_run(wrapped);
                    }
                }
            } else {
                let mask = self.tx.ring.size() - 1;
                for offset in 0..count {
                    let id = first.wrapping_add(offset as u16) & mask;
                    let lent = self.tx.slots[slot(id)];
                    if lent != NO_BUFFER {
                        // SAFETY: as above, one descriptor at a time.
                        unsafe { pool.return_lent(lent) };
                    } else if let Some(packet) = self
                        .tx_foreign
                        .get_mut(usize::from(id))
                        .and_then(Option::take)
                    {
                        drop(packet);
                        self.tx_foreign_in_flight -= 1;
                    }
                }
            }
            self.stats.tx_reclaimed.add(count as u64);
            return;
        }
        let slots = &mut self.tx.slots;
        let foreign = &mut self.tx_foreign;
        let foreign_in_flight = &mut self.tx_foreign_in_flight;
        let pool = &self.pool;
        let mut reclaimed = 0u64;
        self.tx.ring.take_used_singles(usize::MAX, false, |id, _| {
            let lent = core::mem::replace(&mut slots[slot(id)], NO_BUFFER);
            if lent != NO_BUFFER {
                // SAFETY: `tx_burst` lent it and put it in this slot,
                // emptied above: it comes back once.
                unsafe { pool.return_lent(lent) };
            } else if foreign
                .get_mut(usize::from(id))
                .and_then(Option::take)
                .is_some()
            {
                *foreign_in_flight -= 1;
            } else {
                // Nothing in flight on this descriptor: the device
                // returned it twice or never had it.
                return false;
            }
            reclaimed += 1;
            true
        });
        self.stats.tx_reclaimed.add(reclaimed);
    }

    /// Keeps what the device now holds on transmit descriptor `id`: the
    /// index of a buffer of the queue's own pool, or another pool's packet
    /// whole.
    #[inline(always)]
    fn hold_sent(&mut self, id: u16, packet: Packet) {
        match self.pool.lend(packet) {
            Ok(index) => self.tx.slots[slot(id)] = index,
            Err(packet) => {
                self.tx.slots[slot(id)] = NO_BUFFER;
                if let Some(held) = self.tx_foreign.get_mut(usize::from(id)) {
                    *held = Some(packet);
                    self.tx_foreign_in_flight += 1;
                }
            }
        }
    }
}

impl Drop for VirtioNetQueue {
    /// Gives the pool back the buffers the device still holds (other
    /// pools' packets go home as `tx_foreign` drops).
    fn drop(&mut self) {
        self.rx.return_all(&self.pool);
        self.tx.return_all(&self.pool);
    }
}

impl Nic for VirtioNetQueue {
    fn rx_burst(&mut self, batch: &mut Batch) -> usize {
        let pool = &self.pool;
        let ReceiveLayout { frame, len, .. } = self.receive;
        let (mut received, mut bytes, mut bad) = (0usize, 0u64, 0u64);
        let room = batch.remaining_capacity();
        // Shorter than the header or longer than the buffer posted (or
        // unknown, `u32::MAX`: a batched in-order completion): the buffer
        // goes back to the pool.
        let usable = NET_HEADER_LEN as u32..=len;
        let largest_frame = len.saturating_sub(NET_HEADER_LEN as u32);
        if self.rx.ring.in_order() {
            let used = self.rx.ring.take_used_in_order(room);
            let slots = &self.rx.slots;
            // The run's lengths trusted after one look at its first and last
            // entries' ids, or each entry's id checked when that failed.
            let mut refused;
            (received, bytes, refused) = if used.ends_in_place() {
                receive_in_order::<false>(batch, &used, slots, pool, frame, largest_frame)
            } else {
                self.stats.rx_used_id_mismatch.increment();
                receive_in_order::<true>(batch, &used, slots, pool, frame, largest_frame)
            };
            // Counted only when there are any: `count_ones` is a dozen
            // instructions on the baseline x86-64 (no `popcnt`).
            if refused != 0 {
                bad = u64::from(refused.count_ones());
            }
            while refused != 0 {
                let offset = refused.trailing_zeros() as usize;
                refused &= refused - 1;
                // SAFETY: `refill` lent the index in this descriptor's
                // slot, which the device completed and `take_used_in_order`
                // moved past; a refused buffer was not made a packet
                // (`receive_in_order`), so it comes back once, here.
                unsafe { pool.return_lent(slots[slot(used.id(offset))]) };
            }
        } else {
            let slots = &mut self.rx.slots;
            self.rx.ring.take_used_singles(room, true, |id, written| {
                let lent = core::mem::replace(&mut slots[slot(id)], NO_BUFFER);
                if lent == NO_BUFFER {
                    return false;
                }
                if !usable.contains(&written) {
                    // SAFETY: `refill` lent `lent` and put it in this slot,
                    // emptied above: it comes back once.
                    unsafe { pool.return_lent(lent) };
                    bad += 1;
                    return true;
                }
                let frame_len = written as usize - NET_HEADER_LEN;
                // SAFETY: as for `return_lent` above; the frame ends at
                // `header + written <= header + len <= buffer_len`
                // (`ReceiveLayout::of`).
                let packet = unsafe { pool.take_lent(lent, frame, frame_len) };
                bytes += frame_len as u64;
                // Never refused: `room` bounds the entries taken.
                if batch.push(packet).is_ok() {
                    received += 1;
                }
                true
            });
        }
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
        if self.tx.ring.in_order() {
            let Self {
                tx,
                tx_foreign,
                tx_foreign_in_flight,
                pool,
                ..
            } = &mut *self;
            let size = usize::from(tx.ring.size());
            let slots = &mut tx.slots[..size];
            let mut send = InOrderSend {
                slots_start: slots.as_ptr().addr(),
                slots,
                lender: pool.lender(),
                // A frame of the queue's own pool: its physical address is
                // its virtual one moved by the pool's fixed offset.
                phys_offset: pool.phys_offset(),
                tx_foreign,
                tx_foreign_in_flight,
                no_headroom: 0,
            };
            let mut packets = take_front(batch.packets_mut(), room);
            let mut run = tx.ring.in_order_run(room, false);
            // The common burst goes out whole in the first span; the rest
            // (the table's end crossed, a frame of another pool or without
            // headroom) out of line, so that the first span's loop keeps
            // its values in registers.
            send.span(&mut run, &mut packets);
            if !packets.is_empty() {
                send.rest(&mut run, &mut packets, pool);
            }
            no_headroom = send.no_headroom;
            sent = run.pushed() as u64;
        } else {
            let mut packets = batch.packets_mut().drain(..room);
            for mut packet in packets.by_ref() {
                let Some((addr, len)) = frame_with_header(&mut packet) else {
                    no_headroom += 1;
                    continue;
                };
                // Never `None`: `room` descriptors were free.
                let Some(id) = self.tx.ring.push_single(addr, len, false) else {
                    continue;
                };
                self.hold_sent(id, packet);
                sent += 1;
            }
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

    /// A queue pair of `size`-entry rings on simulated devices, in order
    /// (`VIRTIO_F_IN_ORDER`) or on the free-list path, receiving into a
    /// pool of `buffers`.
    fn rig_in(size: u16, buffers: usize, in_order: bool) -> Rig {
        let mut rx_memory = HeapRing::new(size);
        let mut tx_memory = HeapRing::new(size);
        let mut rx = rx_memory.queue(size);
        let mut tx = tx_memory.queue(size);
        if in_order {
            rx.set_in_order();
            tx.set_in_order();
        }
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
        for in_order in [false, true] {
            let mut rig = rig_in(8, 64, in_order);
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
    }

    #[test]
    fn receive_ring_is_refilled_in_batches() {
        for in_order in [false, true] {
            let mut rig = rig_in(64, 256, in_order);
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
    }

    #[test]
    fn receive_burst_is_bounded_by_the_batch_and_bad_lengths_drop() {
        for in_order in [false, true] {
            let mut rig = rig_in(64, 256, in_order);
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
    }

    #[test]
    fn bad_lengths_between_good_frames_go_back_and_the_rest_keep_order() {
        for in_order in [false, true] {
            let mut rig = rig_in(16, 64, in_order);
            for index in 0..7u8 {
                if index % 3 == 1 {
                    let (head, _) = rig.rx_device.next_chain().unwrap();
                    // Alternately shorter than the header and longer than
                    // the buffer.
                    let written = if index == 1 { 5 } else { 60_000 };
                    rig.rx_device.complete(head, written);
                } else {
                    deliver(&mut rig.rx_device, &[index; 60]);
                }
            }
            let mut batch = Batch::new();
            assert_eq!(rig.queue.rx_burst(&mut batch), 5);
            let first_bytes: Vec<u8> = batch.iter().map(|packet| packet.payload()[0]).collect();
            assert_eq!(first_bytes, [0, 2, 3, 5, 6]);
            assert_eq!(rig.queue.stats().rx_bad_length.get(), 2);
            assert_eq!(rig.queue.stats().rx_bytes.get(), 300);
            // 16 posted again, five out as packets: the two refused
            // buffers went back to the pool.
            assert_eq!(rig.queue.rx_posted(), 16);
            assert_eq!(rig.queue.pool().available(), 64 - 16 - 5);
            drop(batch);
            assert_eq!(rig.queue.pool().available(), 64 - 16);
        }
    }

    #[test]
    fn in_order_receive_across_the_table_end_refuses_bad_lengths_in_both_spans() {
        // Twice: the second time the run's last used entry names another
        // descriptor, so each entry is checked, in both spans.
        for last_mismatched in [false, true] {
            let mut rig = rig_in(8, 32, true);
            // Five frames taken first: the next run starts at descriptor 5.
            for _ in 0..5 {
                deliver(&mut rig.rx_device, &[0; 60]);
            }
            let mut batch = Batch::new();
            assert_eq!(rig.queue.rx_burst(&mut batch), 5);
            batch.clear();
            // Descriptors 5, 6, 7 | 0, 1, 2, 3: a bad length in each span
            // (6 shorter than the header, 1 longer than the buffer).
            for index in 0..7u8 {
                let (head, chain) = rig.rx_device.next_chain().unwrap();
                assert_eq!(head, (5 + u16::from(index)) % 8);
                match index {
                    1 => rig.rx_device.complete(head, 5),
                    4 => rig.rx_device.complete(head, 60_000),
                    6 if last_mismatched => rig
                        .rx_device
                        .complete(head - 1, (NET_HEADER_LEN + 60) as u32),
                    _ => {
                        assert!(chain[0].len as usize >= NET_HEADER_LEN + 60);
                        // SAFETY: heap buffer, physical equals virtual in
                        // host tests; the posted buffer holds 12 + 60 bytes.
                        unsafe {
                            let target = chain[0].addr as *mut u8;
                            target
                                .add(NET_HEADER_LEN)
                                .write_bytes(10 + index, 60 - usize::from(index));
                        }
                        let len = NET_HEADER_LEN + 60 - usize::from(index);
                        rig.rx_device.complete(head, len as u32);
                    }
                }
            }
            let expected: &[u8] = if last_mismatched {
                &[10, 12, 13, 15]
            } else {
                &[10, 12, 13, 15, 16]
            };
            assert_eq!(rig.queue.rx_burst(&mut batch), expected.len());
            let seen: Vec<(u8, usize)> = batch
                .iter()
                .map(|packet| (packet.payload()[0], packet.len()))
                .collect();
            let wanted: Vec<(u8, usize)> = expected
                .iter()
                .map(|&first| (first, 60 - usize::from(first - 10)))
                .collect();
            assert_eq!(seen, wanted, "in order across the table's end");
            let stats = rig.queue.stats();
            let refused = 2 + u64::from(last_mismatched);
            assert_eq!(stats.rx_bad_length.get(), refused);
            assert_eq!(stats.rx_used_id_mismatch.get(), u64::from(last_mismatched));
            let bytes: usize = wanted.iter().map(|(_, len)| len).sum();
            assert_eq!(stats.rx_bytes.get(), 5 * 60 + bytes as u64);
            // The refused buffers went back to the pool and were posted
            // again: the ring is full, the packets are the only ones out.
            assert_eq!(rig.queue.rx_posted(), 8);
            assert_eq!(rig.queue.pool().available(), 32 - 8 - expected.len());
            drop(batch);
            assert_eq!(rig.queue.pool().available(), 32 - 8);
        }
    }

    #[test]
    fn in_order_burst_whose_last_entry_names_another_descriptor_is_checked_entry_by_entry() {
        let mut rig = rig_in(8, 32, true);
        deliver(&mut rig.rx_device, &[1; 60]);
        deliver(&mut rig.rx_device, &[2; 60]);
        // The third buffer's used entry names the descriptor after it.
        let (head, _) = rig.rx_device.next_chain().unwrap();
        rig.rx_device
            .complete((head + 1) % 8, (NET_HEADER_LEN + 60) as u32);
        let mut batch = Batch::new();
        assert_eq!(rig.queue.rx_burst(&mut batch), 2);
        let first_bytes: Vec<u8> = batch.iter().map(|packet| packet.payload()[0]).collect();
        assert_eq!(first_bytes, [1, 2]);
        let stats = rig.queue.stats();
        assert_eq!(stats.rx_used_id_mismatch.get(), 1);
        assert_eq!(stats.rx_bad_length.get(), 1, "its length is unknown");
        batch.clear();
        // An honest burst after it is trusted again.
        deliver(&mut rig.rx_device, &[3; 60]);
        assert_eq!(rig.queue.rx_burst(&mut batch), 1);
        assert_eq!(batch.iter().next().unwrap().payload(), &[3; 60]);
        assert_eq!(stats.rx_used_id_mismatch.get(), 1);
        assert_eq!(stats.rx_bad_length.get(), 1);
        drop(batch);
        assert_eq!(rig.queue.pool().available(), 32 - 8);
    }

    #[test]
    fn transmit_prepends_a_zero_header_and_reclaims_in_bursts() {
        for in_order in [false, true] {
            let mut rig = rig_in(4, 64, in_order);
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
    }

    #[test]
    fn own_pool_frames_sent_come_back_once_and_posted_buffers_on_drop() {
        let mut rig = rig_in(8, 32, false);
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
        for in_order in [false, true] {
            let mut rig = rig_in(4, 16, in_order);
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
    }

    #[test]
    fn wakeup_enables_interrupts_only_while_nothing_is_pending() {
        for in_order in [false, true] {
            let mut rig = rig_in(8, 64, in_order);
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
    }

    #[test]
    fn doorbell_rings_once_per_burst_unless_suppressed() {
        for in_order in [false, true] {
            let mut rig = rig_in(8, 64, in_order);
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

    /// Reads the frame (after the virtio header) of the next chain the
    /// driver transmitted, completes it, and returns its first byte.
    fn take_sent(device: &mut SimulatedDevice) -> u8 {
        let (head, chain) = device.next_chain().expect("a transmitted frame");
        assert_eq!(chain.len(), 1);
        // SAFETY: heap buffer, physical equals virtual in host tests.
        let bytes = unsafe {
            core::slice::from_raw_parts(chain[0].addr as *const u8, chain[0].len as usize)
        };
        assert_eq!(&bytes[..NET_HEADER_LEN], &[0; NET_HEADER_LEN]);
        device.complete(head, 0);
        bytes[NET_HEADER_LEN]
    }

    #[test]
    fn in_order_runs_wrap_the_ring_and_mix_pools() {
        let mut rig = rig_in(8, 24, true);
        assert!(rig.queue.in_order());
        let sender = Mempool::with_heap(8, 128).unwrap();
        let mut batch = Batch::new();
        for round in 0..5u8 {
            for offset in 0..5 {
                deliver(&mut rig.rx_device, &[round * 8 + offset; 60]);
            }
            assert_eq!(rig.queue.rx_burst(&mut batch), 5);
            assert_eq!(rig.queue.rx_posted(), 8, "refilled across the wrap");
            // Another pool's frame in every other round: the reclaim
            // after it looks at each slot, the one after a round without
            // returns the run at once.
            let with_foreign = round % 2 == 0;
            if with_foreign {
                let mut foreign = sender.alloc().unwrap();
                foreign.append(42).unwrap().fill(0xf0 + round);
                batch.push(foreign).unwrap();
            }
            let count = 5 + usize::from(with_foreign);
            // The completed frames of the round before go back first.
            assert_eq!(rig.queue.tx_burst(&mut batch), count);
            assert!(batch.is_empty());
            assert_eq!(rig.queue.pool().available(), 11, "five frames lent");
            assert_eq!(sender.available(), 8 - usize::from(with_foreign));
            let sent: Vec<u8> = (0..count).map(|_| take_sent(&mut rig.tx_device)).collect();
            let mut expected: Vec<u8> = (0..5).map(|offset| round * 8 + offset).collect();
            if with_foreign {
                expected.push(0xf0 + round);
            }
            assert_eq!(sent, expected, "in order, across the wrap");
        }
        // A device claiming one completion more than it was given frees
        // nothing it does not hold.
        rig.tx_device.complete(0, 0);
        assert_eq!(rig.queue.tx_burst(&mut batch), 0);
        assert_eq!(rig.queue.pool().available(), 16);
        assert_eq!(sender.available(), 8);
        assert_eq!(rig.queue.stats().tx_reclaimed.get(), 28);
        assert_eq!(rig.queue.stats().tx_packets.get(), 28);
        // Frames still in flight when the queue goes come back then (the
        // pools' state is freed only once whole, which Miri's leak check
        // sees).
        for offset in 0..3 {
            deliver(&mut rig.rx_device, &[offset; 60]);
        }
        assert_eq!(rig.queue.rx_burst(&mut batch), 3);
        let mut foreign = sender.alloc().unwrap();
        foreign.append(42).unwrap();
        batch.push(foreign).unwrap();
        assert_eq!(rig.queue.tx_burst(&mut batch), 4);
        drop(rig);
        assert_eq!(sender.available(), 8);
    }

    #[test]
    fn in_order_transmit_goes_round_other_pools_and_short_headroom_in_order() {
        let mut rig = rig_in(8, 24, true);
        let sender = Mempool::with_heap(8, 128).unwrap();
        let mut batch = Batch::new();
        for round in 0..4u8 {
            // Ten frames for eight free descriptors: the first of the
            // queue's pool, the second too but without headroom, the
            // third another pool's, the rest the queue's; the last two
            // stay in the batch. Each round starts further round the ring.
            for position in 0..10u8 {
                let pool = if position == 2 {
                    &sender
                } else {
                    rig.queue.pool()
                };
                let mut packet = pool.alloc().unwrap();
                if position == 1 {
                    let headroom = packet.headroom();
                    packet.prepend(headroom).unwrap();
                }
                packet.append(60).unwrap().fill(round * 16 + position);
                batch.push(packet).unwrap();
            }
            assert_eq!(rig.queue.tx_burst(&mut batch), 8);
            let left: Vec<u8> = batch.iter().map(|packet| packet.payload()[0]).collect();
            assert_eq!(left, [round * 16 + 8, round * 16 + 9], "kept, in order");
            batch.clear();
            let sent: Vec<u8> = (0..7).map(|_| take_sent(&mut rig.tx_device)).collect();
            let expected: Vec<u8> = [0, 2, 3, 4, 5, 6, 7]
                .iter()
                .map(|p| round * 16 + p)
                .collect();
            assert_eq!(sent, expected, "in order, round the rest");
            assert!(rig.tx_device.next_chain().is_none());
            assert_eq!(sender.available(), 7, "held until reclaimed");
            // The next round's reclaim (or the queue's drop) sends them home.
        }
        let stats = rig.queue.stats();
        assert_eq!(stats.tx_no_headroom.get(), 4);
        assert_eq!(stats.tx_packets.get(), 28);
        drop(rig);
        assert_eq!(sender.available(), 8);
    }

    #[test]
    fn in_order_refill_short_of_buffers_counts_and_catches_up() {
        let mut rig = rig_in(8, 10, true);
        assert_eq!(rig.queue.pool().available(), 2);
        for index in 0..5u8 {
            deliver(&mut rig.rx_device, &[index; 60]);
        }
        let mut batch = Batch::new();
        assert_eq!(rig.queue.rx_burst(&mut batch), 5);
        assert_eq!(rig.queue.rx_posted(), 5, "two of five refilled");
        assert_eq!(rig.queue.stats().rx_pool_empty.get(), 1);
        drop(batch);
        let mut batch = Batch::new();
        assert_eq!(rig.queue.rx_burst(&mut batch), 0);
        assert_eq!(rig.queue.rx_posted(), 8, "the rest, across the wrap");
        for index in 0..8u8 {
            deliver(&mut rig.rx_device, &[index + 10; 60]);
        }
        assert_eq!(rig.queue.rx_burst(&mut batch), 8);
        let first_bytes: Vec<u8> = batch.iter().map(|packet| packet.payload()[0]).collect();
        assert_eq!(first_bytes, (10..18).collect::<Vec<u8>>());
        assert_eq!(rig.queue.rx_posted(), 2, "the pool had two left");
        drop(batch);
        drop(rig);
    }
}
