//! `LoopbackNic`: an in-memory NIC for tests and benchmarks.

use crate::{
    BURST_SIZE, Batch, Consumer, Counter, LinkInfo, MacAddr, Nic, Packet, Producer, SpscRing,
};
use arrayvec::ArrayVec;

/// A bounded FIFO of packets on both halves of an [`SpscRing`], so bursts
/// move in at most two `memcpy` runs instead of one packet at a time. The
/// ring is a power of two; `depth` bounds what it holds.
struct PacketQueue {
    producer: Producer<Packet>,
    consumer: Consumer<Packet>,
    depth: usize,
}

impl PacketQueue {
    fn new(depth: usize) -> Self {
        let (producer, consumer) = SpscRing::with_capacity(depth.max(1).next_power_of_two())
            .expect("a power of two is a valid ring capacity");
        Self {
            producer,
            consumer,
            depth,
        }
    }

    #[inline]
    fn len(&self) -> usize {
        self.producer.len()
    }

    #[inline]
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn push(&mut self, packet: Packet) -> Result<(), Packet> {
        if self.len() >= self.depth {
            return Err(packet);
        }
        self.producer.push(packet)
    }

    fn pop(&mut self) -> Option<Packet> {
        self.consumer.pop()
    }

    /// Moves packets from the front of `packets` while there is room;
    /// the rest stay, in order. Returns how many moved.
    #[inline]
    fn push_burst(&mut self, packets: &mut ArrayVec<Packet, BURST_SIZE>) -> usize {
        let room = self.depth.saturating_sub(self.len());
        if packets.len() <= room {
            return self.producer.push_burst(packets);
        }
        // Cold: fewer free places than packets; the ring may have more slots
        // than `depth`, so move only `room` of them.
        let mut moved = 0;
        for packet in packets.drain(..room) {
            if self.producer.push(packet).is_ok() {
                moved += 1;
            }
        }
        moved
    }

    #[inline]
    fn pop_burst(&mut self, packets: &mut ArrayVec<Packet, BURST_SIZE>) -> usize {
        self.consumer.pop_burst(packets)
    }
}

/// A NIC made of two bounded queues. In *looped* mode transmitted packets come
/// back as received ones (a wire folded onto itself); otherwise tests
/// [`inject`](Self::inject) received packets and [`take_transmitted`](Self::take_transmitted)
/// sent ones.
pub struct LoopbackNic {
    mac: MacAddr,
    looped: bool,
    received: PacketQueue,
    transmitted: PacketQueue,
    /// Packets handed out by `rx_burst`.
    pub rx_packets: Counter,
    /// Packets accepted by `tx_burst`.
    pub tx_packets: Counter,
    /// Packets `tx_burst` had no room for.
    pub tx_full: Counter,
}

impl LoopbackNic {
    /// A NIC whose queues each hold `depth` packets.
    pub fn new(mac: MacAddr, depth: usize) -> Self {
        Self {
            mac,
            looped: false,
            received: PacketQueue::new(depth),
            transmitted: PacketQueue::new(depth),
            rx_packets: Counter::new(),
            tx_packets: Counter::new(),
            tx_full: Counter::new(),
        }
    }

    /// A NIC that receives whatever it transmits.
    pub fn looped(mac: MacAddr, depth: usize) -> Self {
        Self {
            looped: true,
            ..Self::new(mac, depth)
        }
    }

    /// Queues `packet` for `rx_burst`; gives it back when the queue is full.
    pub fn inject(&mut self, packet: Packet) -> Result<(), Packet> {
        self.received.push(packet)
    }

    /// The oldest transmitted packet (non-looped mode).
    pub fn take_transmitted(&mut self) -> Option<Packet> {
        self.transmitted.pop()
    }

    /// Packets waiting to be received.
    pub fn pending_rx(&self) -> usize {
        self.received.len()
    }
}

impl Nic for LoopbackNic {
    #[inline]
    fn rx_burst(&mut self, batch: &mut Batch) -> usize {
        let count = self.received.pop_burst(batch.packets_mut());
        self.rx_packets.add(count as u64);
        count
    }

    #[inline]
    fn tx_burst(&mut self, batch: &mut Batch) -> usize {
        let queue = if self.looped {
            &mut self.received
        } else {
            &mut self.transmitted
        };
        let count = queue.push_burst(batch.packets_mut());
        self.tx_packets.add(count as u64);
        self.tx_full.add(batch.len() as u64);
        count
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
        "loopback"
    }

    /// A loopback NIC "signals" nothing; it only refuses to let the core
    /// sleep while received packets wait.
    fn enable_wakeup(&mut self) -> bool {
        self.received.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Mempool;

    #[test]
    fn looped_nic_returns_what_it_sends_and_bounds_depth() {
        let pool = Mempool::with_heap(8, 0).unwrap();
        let mut nic = LoopbackNic::looped(MacAddr([2, 0, 0, 0, 0, 1]), 4);
        let mut batch = Batch::new();
        for _ in 0..6 {
            batch.push(pool.alloc().unwrap()).unwrap();
        }
        assert_eq!(nic.tx_burst(&mut batch), 4);
        assert_eq!(batch.len(), 2);
        assert_eq!(nic.tx_full.get(), 2);
        let mut received = Batch::new();
        assert_eq!(nic.rx_burst(&mut received), 4);
        assert_eq!(nic.rx_burst(&mut received), 0);
    }

    #[test]
    fn plain_nic_separates_directions() {
        let pool = Mempool::with_heap(4, 0).unwrap();
        let mut nic = LoopbackNic::new(MacAddr::default(), 1);
        nic.inject(pool.alloc().unwrap()).unwrap();
        assert!(nic.inject(pool.alloc().unwrap()).is_err());
        let mut batch = Batch::new();
        assert_eq!(nic.rx_burst(&mut batch), 1);
        assert_eq!(nic.tx_burst(&mut batch), 1);
        assert!(nic.take_transmitted().is_some());
        assert!(nic.take_transmitted().is_none());
    }
}
