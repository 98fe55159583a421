//! `ReflectorNic`: a NIC whose wire leads to a peer that answers every echo
//! reply with the next request, so a UDP echo pipeline can run forever on a
//! fixed set of buffers.

use crate::frames::turn_around;
use dataplane::{Batch, BurstQueue, LinkInfo, MacAddr, Nic, Packet};

/// What a [`ReflectorNic`] saw.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReflectorCounts {
    /// Frames handed out by `rx_burst`.
    pub received: u64,
    /// Transmitted UDP frames turned around into the receive queue.
    pub reflected: u64,
    /// Transmitted frames that were not IPv4/UDP (ARP), dropped.
    pub ignored: u64,
    /// Transmitted UDP frames dropped because the receive queue was full.
    pub overflowed: u64,
}

/// A NIC with one receive queue: every IPv4/UDP frame it transmits comes
/// back as received with MACs, addresses and ports swapped
/// ([`turn_around`]); anything else is dropped. Moving a packet is moving
/// its handle: no copy, no allocation after construction. The queue is
/// kept in bursts, so a transmitted burst that comes back whole, and a
/// whole burst received into an empty batch, move by [`Batch::swap`], as
/// the executor's own queues move them.
///
/// A whole burst that turns while nothing waits skips the queue: it waits
/// in `ready`, one burst swapped in by `tx_burst` and out by `rx_burst`
/// (the busy path of an echo loop with one burst in flight), with none of
/// the queue's bookkeeping.
pub struct ReflectorNic {
    mac: MacAddr,
    /// A whole turned burst, received before anything in `queue`. Holds
    /// packets only while `queue` is empty and never more than `depth`:
    /// every push into `queue` first moves it there (`spill_ready`), so
    /// the two together stay within `depth`, oldest first.
    ready: Batch,
    /// The receive queue (the bounded burst FIFO `LoopbackNic` keeps too).
    queue: BurstQueue,
    /// Most packets `ready` and `queue` hold together.
    depth: usize,
    counts: ReflectorCounts,
}

impl ReflectorNic {
    /// A NIC with `mac` whose receive queue holds `depth` packets.
    pub fn new(mac: MacAddr, depth: usize) -> Self {
        Self {
            mac,
            ready: Batch::new(),
            queue: BurstQueue::new(depth),
            depth,
            counts: ReflectorCounts::default(),
        }
    }

    /// Queues `packet` for `rx_burst` as it is; gives it back when the queue
    /// is full.
    pub fn inject(&mut self, packet: Packet) -> Result<(), Packet> {
        self.spill_ready();
        self.queue.push(packet)
    }

    /// The packets waiting to be received, oldest first.
    pub fn waiting(&self) -> impl Iterator<Item = &Packet> {
        self.ready.iter().chain(self.queue.iter())
    }

    /// Moves the `ready` burst into the (then empty) queue, so that what is
    /// pushed next waits behind it and within `depth`. Cannot overflow:
    /// `ready` holds packets only while the queue is empty, and at most
    /// `depth` of them.
    #[inline]
    fn spill_ready(&mut self) {
        if !self.ready.is_empty() {
            self.spill_ready_now();
        }
    }

    #[cold]
    #[inline(never)]
    fn spill_ready_now(&mut self) {
        let count = self.ready.len();
        let queued = self.queue.push_burst(&mut self.ready);
        debug_assert_eq!(queued, count, "ready waits only on an empty queue");
        // Unreachable by the invariant above; counted, not lost, if not.
        self.counts.overflowed += self.ready.len() as u64;
        self.ready.clear();
    }

    /// What the NIC saw so far.
    pub fn counts(&self) -> ReflectorCounts {
        self.counts
    }

    /// `tx_burst` when a frame is not IPv4/UDP or the queue has no room
    /// for the whole burst: `batch` holds what `push_burst` left of it (all
    /// of it when a frame did not turn), and its first `first_unturned`
    /// frames of the burst were turned; the frame at that index did not
    /// turn, and those behind it were not tried yet. One frame at a time,
    /// in order: each turned frame queued if there is room (else counted
    /// as overflowed), every other one dropped as ignored.
    #[cold]
    #[inline(never)]
    fn tx_rest(&mut self, batch: &mut Batch, first_unturned: usize) {
        let taken = first_unturned.max(batch.len());
        // Frames `push_burst` already queued (only when all turned).
        let queued = taken - batch.len();
        self.counts.reflected += queued as u64;
        for (index, mut packet) in (queued..).zip(batch.drain()) {
            let turned = match index.cmp(&first_unturned) {
                core::cmp::Ordering::Less => true,
                core::cmp::Ordering::Equal => false,
                core::cmp::Ordering::Greater => turn_around(packet.payload_mut()),
            };
            if !turned {
                self.counts.ignored += 1;
            } else if self.queue.push(packet).is_ok() {
                self.counts.reflected += 1;
            } else {
                self.counts.overflowed += 1;
            }
        }
    }
}

impl Nic for ReflectorNic {
    #[inline]
    fn rx_burst(&mut self, batch: &mut Batch) -> usize {
        let count = if batch.is_empty() && !self.ready.is_empty() {
            // The queue is empty (see `ready`): the ready burst is all
            // there is, and fits an empty batch whole.
            batch.swap(&mut self.ready);
            batch.len()
        } else {
            self.spill_ready();
            self.queue.pop_burst(batch)
        };
        self.counts.received += count as u64;
        count
    }

    #[inline]
    fn tx_burst(&mut self, batch: &mut Batch) -> usize {
        let taken = batch.len();
        // Every frame turned in one tight loop that stops at the first
        // one that is not IPv4/UDP: no per-frame bookkeeping of which
        // frames turned when all of them do (the common case).
        // (`all` rather than `position`: no index kept in the loop; the
        // index is worked out from what is left once a frame fails.)
        let mut frames = batch.iter_mut();
        let all_turned = frames.all(|packet| turn_around(packet.payload_mut()));
        let first_unturned = if all_turned {
            taken
        } else {
            taken - frames.len() - 1
        };
        if all_turned && self.ready.is_empty() && self.queue.is_empty() && taken <= self.depth {
            // Nothing waits: the burst comes back whole as the ready one.
            self.ready.swap(batch);
            self.counts.reflected += taken as u64;
            return taken;
        }
        self.spill_ready();
        if all_turned && self.queue.push_burst(batch) == taken {
            // The whole burst comes back, moved as a burst.
            self.counts.reflected += taken as u64;
            return taken;
        }
        self.tx_rest(batch, first_unturned);
        taken
    }

    fn mac(&self) -> MacAddr {
        self.mac
    }

    fn link(&self) -> LinkInfo {
        LinkInfo {
            up: true,
            speed_mbps: 0,
            mtu: 1500,
        }
    }

    fn name(&self) -> &str {
        "reflector"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frames::{PEER_MAC, UdpSummary, arp_request, echo_payload, udp_echo_request};
    use dataplane::{BURST_SIZE, Mempool};

    fn packet(pool: &Mempool, bytes: &[u8]) -> Packet {
        let mut packet = pool.alloc().unwrap();
        packet.append(bytes.len()).unwrap().copy_from_slice(bytes);
        packet
    }

    #[test]
    fn reflects_udp_drops_the_rest_and_bounds_depth() {
        let pool = Mempool::with_heap(8, 128).unwrap();
        let mut nic = ReflectorNic::new(PEER_MAC, 2);
        let request = udp_echo_request(&echo_payload());
        let mut reply = request.clone();
        assert!(turn_around(&mut reply));
        let mut batch = Batch::new();
        for bytes in [&reply, &arp_request(), &reply, &reply] {
            batch.push(packet(&pool, bytes)).unwrap();
        }
        assert_eq!(nic.tx_burst(&mut batch), 4);
        assert!(batch.is_empty());
        assert_eq!(
            nic.counts(),
            ReflectorCounts {
                received: 0,
                reflected: 2,
                ignored: 1,
                overflowed: 1
            }
        );
        assert!(nic.waiting().all(|packet| packet.payload() == request));
        assert_eq!(
            UdpSummary::of(nic.waiting().next().unwrap().payload()),
            UdpSummary::of(&request)
        );
        assert_eq!(nic.rx_burst(&mut batch), 2);
        assert_eq!(nic.rx_burst(&mut batch), 0);
        assert_eq!(nic.counts().received, 2);
        drop(batch);
        assert_eq!(pool.available(), 8, "dropped frames went back to the pool");
    }

    #[test]
    fn whole_bursts_come_back_in_order_and_split_to_fit() {
        let pool = Mempool::with_heap(2 * BURST_SIZE, 128).unwrap();
        let mut nic = ReflectorNic::new(PEER_MAC, BURST_SIZE + 4);
        let mut reply = udp_echo_request(&echo_payload());
        assert!(turn_around(&mut reply));
        let marked = |index: usize| {
            let mut bytes = reply.clone();
            *bytes.last_mut().unwrap() = index as u8;
            bytes
        };
        let last_byte = |packet: &Packet| usize::from(*packet.payload().last().unwrap());
        assert!(nic.inject(packet(&pool, &marked(100))).is_ok());
        let mut batch = Batch::new();
        for index in 0..BURST_SIZE {
            batch.push(packet(&pool, &marked(index))).unwrap();
        }
        assert_eq!(nic.tx_burst(&mut batch), BURST_SIZE);
        assert!(batch.is_empty());
        assert_eq!(nic.counts().reflected, BURST_SIZE as u64);
        let order: Vec<usize> = nic.waiting().map(last_byte).collect();
        let expected: Vec<usize> = core::iter::once(100).chain(0..BURST_SIZE).collect();
        assert_eq!(order, expected);

        // Two packets already in the batch: 30 fit, across both bursts.
        for index in [200, 201] {
            batch.push(packet(&pool, &marked(index))).unwrap();
        }
        assert_eq!(nic.rx_burst(&mut batch), BURST_SIZE - 2);
        let received: Vec<usize> = batch.iter().map(last_byte).collect();
        let expected: Vec<usize> = [200, 201, 100].into_iter().chain(0..29).collect();
        assert_eq!(received, expected);
        batch.clear();
        assert_eq!(nic.rx_burst(&mut batch), 3);
        assert_eq!(
            batch.iter().map(last_byte).collect::<Vec<_>>(),
            [29, 30, 31]
        );
        assert_eq!(nic.rx_burst(&mut batch), 0);
        assert_eq!(nic.counts().received, BURST_SIZE as u64 + 1);

        // A full burst with the queue already holding some overflows by
        // the packets that do not fit, in order.
        let mut burst = Batch::new();
        for index in 0..BURST_SIZE {
            burst.push(packet(&pool, &marked(index))).unwrap();
        }
        batch.clear();
        for index in 0..8 {
            batch.push(packet(&pool, &marked(index))).unwrap();
        }
        assert_eq!(nic.tx_burst(&mut batch), 8);
        assert_eq!(nic.tx_burst(&mut burst), BURST_SIZE);
        assert_eq!(nic.counts().overflowed, 4);
        assert_eq!(nic.waiting().count(), BURST_SIZE + 4);
        let order: Vec<usize> = nic.waiting().map(last_byte).collect();
        let expected: Vec<usize> = (0..8).chain(0..BURST_SIZE - 4).collect();
        assert_eq!(order, expected);
        drop((batch, burst, nic));
        assert_eq!(pool.available(), 2 * BURST_SIZE);
    }

    #[test]
    fn a_ready_burst_keeps_its_place_and_counts_in_the_depth() {
        let pool = Mempool::with_heap(32, 128).unwrap();
        let mut nic = ReflectorNic::new(PEER_MAC, 6);
        let mut reply = udp_echo_request(&echo_payload());
        assert!(turn_around(&mut reply));
        let marked = |index: usize| {
            let mut bytes = reply.clone();
            *bytes.last_mut().unwrap() = index as u8;
            packet(&pool, &bytes)
        };
        let last_byte = |packet: &Packet| usize::from(*packet.payload().last().unwrap());
        let burst = |indices: &[usize]| {
            let mut batch = Batch::new();
            for &index in indices {
                batch.push(marked(index)).unwrap();
            }
            batch
        };
        let waiting = |nic: &ReflectorNic| nic.waiting().map(last_byte).collect::<Vec<_>>();

        // Nothing waits: the burst is the ready one; what comes after it,
        // injected or transmitted, waits behind it, and the two together
        // hold at most 6.
        assert_eq!(nic.tx_burst(&mut burst(&[0, 1, 2, 3])), 4);
        assert_eq!(waiting(&nic), [0, 1, 2, 3]);
        assert!(nic.inject(marked(100)).is_ok());
        assert_eq!(waiting(&nic), [0, 1, 2, 3, 100]);
        assert_eq!(nic.tx_burst(&mut burst(&[10, 11, 12])), 3);
        assert_eq!(waiting(&nic), [0, 1, 2, 3, 100, 10]);
        assert_eq!(
            nic.counts(),
            ReflectorCounts {
                received: 0,
                reflected: 5,
                ignored: 0,
                overflowed: 2
            }
        );
        let mut batch = Batch::new();
        assert_eq!(nic.rx_burst(&mut batch), 6);
        assert_eq!(
            batch.iter().map(last_byte).collect::<Vec<_>>(),
            [0, 1, 2, 3, 100, 10]
        );
        assert_eq!(nic.rx_burst(&mut Batch::new()), 0);
        batch.clear();

        // Ready, then received whole into an empty batch, then nothing.
        assert_eq!(nic.tx_burst(&mut burst(&[20, 21])), 2);
        assert_eq!(nic.rx_burst(&mut batch), 2);
        assert_eq!(batch.iter().map(last_byte).collect::<Vec<_>>(), [20, 21]);
        assert_eq!(nic.rx_burst(&mut Batch::new()), 0);

        // Ready, received into a batch that holds a packet already: behind it.
        assert_eq!(nic.tx_burst(&mut burst(&[30, 31])), 2);
        let mut partial = burst(&[99]);
        assert_eq!(nic.rx_burst(&mut partial), 2);
        assert_eq!(
            partial.iter().map(last_byte).collect::<Vec<_>>(),
            [99, 30, 31]
        );
        assert_eq!(nic.waiting().count(), 0);

        // More than the depth with nothing waiting: not ready, the queue
        // takes what fits and the rest overflows.
        let overflowed = nic.counts().overflowed;
        assert_eq!(
            nic.tx_burst(&mut burst(&[40, 41, 42, 43, 44, 45, 46, 47])),
            8
        );
        assert_eq!(waiting(&nic), [40, 41, 42, 43, 44, 45]);
        assert_eq!(nic.counts().overflowed, overflowed + 2);

        // A ready burst ahead of a burst with an ARP frame in it.
        let mut drained = Batch::new();
        assert_eq!(nic.rx_burst(&mut drained), 6);
        assert_eq!(nic.tx_burst(&mut burst(&[50])), 1);
        let mut mixed = burst(&[51]);
        mixed.push(packet(&pool, &arp_request())).unwrap();
        mixed.push(marked(52)).unwrap();
        assert_eq!(nic.tx_burst(&mut mixed), 3);
        assert_eq!(waiting(&nic), [50, 51, 52]);
        assert_eq!(nic.counts().ignored, 1);
        assert_eq!(nic.counts().received, 6 + 2 + 2 + 6);
        drop((batch, partial, drained, mixed, nic));
        assert_eq!(pool.available(), 32);
    }
}
