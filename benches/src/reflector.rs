//! `ReflectorNic`: a NIC whose wire leads to a peer that answers every echo
//! reply with the next request, so a UDP echo pipeline can run forever on a
//! fixed set of buffers.

use crate::frames::turn_around;
use dataplane::{Batch, LinkInfo, MacAddr, Nic, Packet};
use std::collections::VecDeque;

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
/// its handle: no copy, no allocation after construction.
pub struct ReflectorNic {
    mac: MacAddr,
    depth: usize,
    received: VecDeque<Packet>,
    counts: ReflectorCounts,
}

impl ReflectorNic {
    /// A NIC with `mac` whose receive queue holds `depth` packets.
    pub fn new(mac: MacAddr, depth: usize) -> Self {
        Self {
            mac,
            depth,
            received: VecDeque::with_capacity(depth),
            counts: ReflectorCounts::default(),
        }
    }

    /// Queues `packet` for `rx_burst` as it is; gives it back when the queue
    /// is full.
    pub fn inject(&mut self, packet: Packet) -> Result<(), Packet> {
        if self.received.len() >= self.depth {
            return Err(packet);
        }
        self.received.push_back(packet);
        Ok(())
    }

    /// The packets waiting to be received, oldest first.
    pub fn waiting(&self) -> impl Iterator<Item = &Packet> {
        self.received.iter()
    }

    /// What the NIC saw so far.
    pub fn counts(&self) -> ReflectorCounts {
        self.counts
    }
}

impl Nic for ReflectorNic {
    #[inline]
    fn rx_burst(&mut self, batch: &mut Batch) -> usize {
        let count = batch.remaining_capacity().min(self.received.len());
        batch.packets_mut().extend(self.received.drain(..count));
        self.counts.received += count as u64;
        count
    }

    #[inline]
    fn tx_burst(&mut self, batch: &mut Batch) -> usize {
        let taken = batch.len();
        for mut packet in batch.drain() {
            if !turn_around(packet.payload_mut()) {
                self.counts.ignored += 1;
            } else if self.received.len() < self.depth {
                self.received.push_back(packet);
                self.counts.reflected += 1;
            } else {
                self.counts.overflowed += 1;
            }
        }
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
    use dataplane::Mempool;

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
}
