//! `TcpHandoff`: brings a TCP address and port that one core serves alone
//! (the management plane, on `[management] core`) to that core, whichever
//! core the NIC's steering (RSS, a multi-queue tap) sends its segments to.
//!
//! On every other core a `tcp-handoff` node sits between `ipv4` (behind
//! the `ipv4:proto:6` chain) and the core's TCP stack: a segment for the
//! served address and port goes onto a ring to the serving core
//! (`handoff`, counted as `handed-over`), the rest on to the stack
//! (`pass`). On the serving core the rings feed its TCP stack directly:
//! the segments have passed `ipv4` already. The serving core's replies go
//! out through its own queue; the executor flushes each ring once per
//! burst and rings the serving core's doorbell, so a sleeping serving core
//! wakes for a handed segment. No lock, no shared table: one
//! single-producer ring per other core, and the packet buffer itself moves
//! (it goes back to its own core's pool when the serving core drops it).
//!
//! The node looks at two fields, the destination address and port, and
//! checks nothing else: the serving core's stack checks the segment
//! (checksum, flags, options) and counts what is wrong with it.

use crate::wire::Ipv4Packet;
use alloc::vec::Vec;
use core::net::SocketAddrV4;
use dataplane::{
    Batch, Consumer, Nanoservice, Outputs, Packet, Producer, SpscRing, events, outputs,
};

/// Slots of each ring to the serving core. A management connection sends
/// a few segments at a time; a burst of new connections beyond this waits
/// for the client's SYN retransmission (counted in the executor's
/// `ring_full_drops`).
pub const HANDOFF_RING_CAPACITY: usize = 512;

outputs! {
    /// Where the `tcp-handoff` node sends a segment.
    HandoffOutput {
        /// On to this core's TCP stack.
        Pass = "pass",
        /// Onto the ring to the core that serves the address and port.
        Handoff = "handoff",
    }
}

events! {
    /// What the `tcp-handoff` node counts.
    HandoffEvent {
        /// Segments put on the ring to the serving core.
        HandedOver = "handed-over",
    }
}

/// A core's end of the ring to the serving core: taken by the core's
/// pipeline build, which puts a [`TcpHandoff`] node in front of its stack.
pub struct HandoffSender {
    /// The address and port the serving core serves alone; an unspecified
    /// address stands for every local address.
    pub listen: SocketAddrV4,
    /// The ring to the serving core.
    pub producer: Producer<Packet>,
}

/// The serving core's end of the ring from one other core: its packets
/// enter the serving core's TCP stack.
pub struct HandoffReceiver {
    /// The ring from the other core.
    pub consumer: Consumer<Packet>,
}

impl core::fmt::Debug for HandoffSender {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "HandoffSender({})", self.listen)
    }
}

impl core::fmt::Debug for HandoffReceiver {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("HandoffReceiver")
    }
}

/// The rings that bring `listen`'s segments from every core of `cores`
/// but `owner` to `owner`: per other core, its index, its sender and the
/// receiver that goes to `owner`. Empty for one core.
pub fn link_handoff(
    cores: usize,
    owner: usize,
    listen: SocketAddrV4,
) -> Vec<(usize, HandoffSender, HandoffReceiver)> {
    (0..cores)
        .filter(|core| *core != owner)
        .map(|core| {
            let Ok((producer, consumer)) = SpscRing::with_capacity(HANDOFF_RING_CAPACITY) else {
                unreachable!("a power of two")
            };
            (
                core,
                HandoffSender { listen, producer },
                HandoffReceiver { consumer },
            )
        })
        .collect()
}

/// The node in front of a core's TCP stack that hands one address and
/// port over to the core serving it.
#[derive(Debug, Clone)]
pub struct TcpHandoff {
    listen: SocketAddrV4,
}

impl TcpHandoff {
    /// Hands over the segments for `listen` (any local address when its
    /// address is unspecified).
    pub fn new(listen: SocketAddrV4) -> Self {
        Self { listen }
    }

    /// True when `packet` (an IPv4 packet carrying TCP, from `ipv4`) is
    /// for the served address and port. Too short to tell: false (the
    /// stack here counts it as truncated).
    #[inline]
    fn for_server(&self, packet: &Packet) -> bool {
        let Ok(ip) = Ipv4Packet::new_checked(packet.payload()) else {
            return false;
        };
        let Some(ports) = ip.payload().first_chunk::<4>() else {
            return false;
        };
        let port = u16::from_be_bytes([ports[2], ports[3]]);
        port == self.listen.port()
            && (self.listen.ip().is_unspecified() || ip.destination() == *self.listen.ip())
    }
}

impl Nanoservice for TcpHandoff {
    fn name(&self) -> &'static str {
        "tcp-handoff"
    }

    fn outputs(&self) -> &'static [&'static str] {
        HandoffOutput::NAMES
    }

    fn events(&self) -> &'static [&'static str] {
        HandoffEvent::NAMES
    }

    fn process(&mut self, batch: &mut Batch, out: &mut Outputs<'_>) {
        let mut handed = 0;
        for packet in batch.drain() {
            if self.for_server(&packet) {
                handed += 1;
                out.emit(HandoffOutput::Handoff.into(), packet);
            } else {
                out.emit(HandoffOutput::Pass.into(), packet);
            }
        }
        if handed > 0 {
            out.count(HandoffEvent::HandedOver.into(), handed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ipv4::protocol;
    use core::net::Ipv4Addr;
    use dataplane::Mempool;

    const OURS: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
    const LISTEN: SocketAddrV4 = SocketAddrV4::new(OURS, 8080);

    /// An IPv4 packet to `destination` carrying `tcp` (a segment's first
    /// bytes) in a buffer of `pool`.
    fn segment(pool: &Mempool, destination: Ipv4Addr, tcp: &[u8]) -> Packet {
        let mut packet = pool.alloc().unwrap();
        let bytes = packet.append(20 + tcp.len()).unwrap();
        let (header, payload) = bytes.split_at_mut(20);
        payload.copy_from_slice(tcp);
        let source = Ipv4Addr::new(10, 0, 0, 1);
        Ipv4Packet::new_unchecked(header).emit_header(
            source,
            destination,
            protocol::TCP,
            tcp.len() as u16,
            64,
        );
        packet
    }

    /// The first four bytes of a segment from port 40000 to `port`.
    fn ports(port: u16) -> [u8; 4] {
        let [high, low] = port.to_be_bytes();
        [0x9c, 0x40, high, low]
    }

    #[test]
    fn hands_over_the_served_address_and_port_only() {
        let pool = Mempool::with_heap(8, 64).unwrap();
        let node = TcpHandoff::new(LISTEN);
        assert!(node.for_server(&segment(&pool, OURS, &ports(8080))));
        assert!(!node.for_server(&segment(&pool, OURS, &ports(80))));
        let other = Ipv4Addr::new(10, 0, 1, 2);
        assert!(!node.for_server(&segment(&pool, other, &ports(8080))));
        // Too short to hold the ports, or not IPv4 at all: the stack here
        // counts it.
        assert!(!node.for_server(&segment(&pool, OURS, &[0x9c, 0x40, 0x1f])));
        let mut garbage = pool.alloc().unwrap();
        garbage.append(3).unwrap().fill(0x45);
        assert!(!node.for_server(&garbage));
    }

    #[test]
    fn an_unspecified_address_serves_every_local_address() {
        let pool = Mempool::with_heap(4, 64).unwrap();
        let node = TcpHandoff::new(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 8080));
        let other = Ipv4Addr::new(10, 0, 1, 2);
        assert!(node.for_server(&segment(&pool, other, &ports(8080))));
        assert!(!node.for_server(&segment(&pool, other, &ports(8081))));
    }

    #[test]
    fn every_other_core_gets_a_ring_to_the_owner() {
        let ends = link_handoff(3, 1, LISTEN);
        let cores: Vec<usize> = ends.iter().map(|(core, _, _)| *core).collect();
        assert_eq!(cores, [0, 2]);
        assert!(link_handoff(1, 0, LISTEN).is_empty());
        let pool = Mempool::with_heap(4, 64).unwrap();
        let (_, mut sender, mut receiver) = ends.into_iter().next().unwrap();
        assert_eq!(sender.listen, LISTEN);
        assert_eq!(sender.producer.capacity(), HANDOFF_RING_CAPACITY);
        let packet = segment(&pool, OURS, &ports(8080));
        assert!(sender.producer.push(packet).is_ok());
        let received = receiver.consumer.pop().expect("the segment");
        assert_eq!(&received.payload()[22..24], &8080u16.to_be_bytes());
    }
}
