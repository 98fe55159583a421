//! `LoopbackNic`: an in-memory NIC for tests and benchmarks.

use crate::burst_queue::BurstQueue;
use crate::{Batch, Counter, LinkInfo, MacAddr, Nic, Packet};

/// A NIC made of two bounded queues. In *looped* mode transmitted packets come
/// back as received ones (a wire folded onto itself); otherwise tests
/// [`inject`](Self::inject) received packets and [`take_transmitted`](Self::take_transmitted)
/// sent ones.
pub struct LoopbackNic {
    mac: MacAddr,
    looped: bool,
    received: BurstQueue,
    transmitted: BurstQueue,
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
            received: BurstQueue::new(depth),
            transmitted: BurstQueue::new(depth),
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
        let count = self.received.pop_burst(batch);
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
        let count = queue.push_burst(batch);
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
    use crate::{BURST_SIZE, Mempool};

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
    fn whole_and_partial_bursts_keep_their_order() {
        let pool = Mempool::with_heap(2 * BURST_SIZE, 0).unwrap();
        let mut nic = LoopbackNic::looped(MacAddr::default(), BURST_SIZE + 8);
        let marked = |mark: u8| {
            let mut packet = pool.alloc().unwrap();
            packet.append(1).unwrap()[0] = mark;
            packet
        };
        for mark in 100..103 {
            nic.inject(marked(mark)).unwrap();
        }
        let mut batch = Batch::new();
        for mark in 0..BURST_SIZE as u8 {
            batch.push(marked(mark)).unwrap();
        }
        assert_eq!(nic.tx_burst(&mut batch), BURST_SIZE);
        assert!(batch.is_empty());
        assert_eq!(nic.pending_rx(), BURST_SIZE + 3);
        assert_eq!(nic.rx_burst(&mut batch), BURST_SIZE);
        let marks: Vec<u8> = batch.iter().map(|packet| packet.payload()[0]).collect();
        let expected: Vec<u8> = (100..103).chain(0..BURST_SIZE as u8 - 3).collect();
        assert_eq!(marks, expected);
        batch.clear();
        assert_eq!(nic.rx_burst(&mut batch), 3);
        assert_eq!(nic.take_transmitted().map(|packet| packet.len()), None);
        drop((batch, nic));
        assert_eq!(pool.available(), 2 * BURST_SIZE, "every buffer went back");
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
