//! The macswap and UDP echo pipelines NIC to NIC through warpcore's real
//! virtio-net driver (`virtio-net`'s `VirtioNetQueue`), on the host-side
//! device its unit tests use (`virtio_net::simulated`): every received
//! frame is written by the device into a posted ring buffer and taken by
//! the driver's `rx_burst`; every reply goes out through `tx_burst`, the
//! device copies it into the next posted receive buffer, and the far end
//! of the wire turns it around (a peer answering with the next request).
//! `count-driver` counts it under callgrind.

use crate::frames::{
    OUR_MAC, arp_request, echo_payload, ethernet_frame, turn_around, udp_echo_request,
};
use crate::pipelines::{ECHO_IN_FLIGHT, MACSWAP_IN_FLIGHT, echo_pool, frozen_clock, udp_echo_core};
use dataplane::{Batch, Executor, ExecutorBuilder, LinkInfo, MacAddr, Mempool, Nic, Target};
use services::MacSwap;
use virtio_net::queue::VirtioNetQueue;
use virtio_net::simulated::SimulatedWire;

/// Descriptors per ring: the driver's default queue size on QEMU.
const RING_SIZE: u16 = 256;
/// Buffers of the driver's receive pool: a full receive ring, a full
/// transmit ring still holding sent packets, and a refill's worth.
const DRIVER_POOL_BUFFERS: usize = 2 * RING_SIZE as usize + 64;

/// What the far end of the wire does with a transmitted frame before it is
/// received again; false drops it.
type Peer = fn(&mut [u8]) -> bool;

/// A [`VirtioNetQueue`] whose wire loops back through a peer.
pub struct DriverLoopNic {
    queue: VirtioNetQueue,
    wire: SimulatedWire,
    peer: Peer,
}

impl DriverLoopNic {
    /// A queue pair of `RING_SIZE` descriptors on a simulated device,
    /// receiving into its own pool, with `peer` at the far end.
    pub fn new(mac: MacAddr, peer: Peer) -> Self {
        let pool = Mempool::with_heap(
            DRIVER_POOL_BUFFERS,
            dataplane::mem::mempool::DEFAULT_HEADROOM,
        )
        .expect("heap pool");
        let (queue, wire) = SimulatedWire::pair(RING_SIZE, pool, mac);
        Self { queue, wire, peer }
    }

    /// The device receives `frame` from the wire; false when no receive
    /// buffer is posted.
    pub fn deliver(&mut self, frame: &[u8]) -> bool {
        self.wire.deliver(frame)
    }

    /// The driver's queue, for its counters.
    pub fn queue(&self) -> &VirtioNetQueue {
        &self.queue
    }
}

impl Nic for DriverLoopNic {
    fn rx_burst(&mut self, batch: &mut Batch) -> usize {
        self.queue.rx_burst(batch)
    }

    /// The driver transmits; the device then moves every sent frame
    /// through the peer into a receive buffer.
    fn tx_burst(&mut self, batch: &mut Batch) -> usize {
        let sent = self.queue.tx_burst(batch);
        self.wire.reflect(self.peer);
        sent
    }

    fn mac(&self) -> MacAddr {
        self.queue.mac()
    }

    fn link(&self) -> LinkInfo {
        self.queue.link()
    }

    fn name(&self) -> &str {
        self.queue.name()
    }
}

/// A peer that sends every frame straight back (macswap's other end).
fn send_back(_: &mut [u8]) -> bool {
    true
}

/// The macswap forwarder on the driver, [`MACSWAP_IN_FLIGHT`] frames
/// circulating: every poll receives, swaps and sends one burst of 32.
pub fn macswap_driver_executor() -> Executor {
    let mut nic = DriverLoopNic::new(OUR_MAC, send_back);
    let frame = ethernet_frame(OUR_MAC.0, [2, 0, 0, 0, 0, 2]);
    for _ in 0..MACSWAP_IN_FLIGHT {
        assert!(nic.deliver(&frame), "the receive ring holds the frames");
    }
    let mut builder = ExecutorBuilder::new();
    builder.clock(frozen_clock);
    let port = builder.add_port(Box::new(nic));
    let node = builder.add_node(Box::new(MacSwap));
    builder
        .route_rx(port, node)
        .expect("the port belongs to this builder");
    builder
        .connect(node, "out", Target::Port(port))
        .expect("macswap has an `out` output");
    builder.build().expect("a complete graph")
}

/// The echo core (as every platform builds it) on the driver, the peer's
/// ARP request and [`ECHO_IN_FLIGHT`] UDP requests received, warmed up:
/// every further poll answers a burst, which the peer turns into the next
/// requests ([`turn_around`]; the ARP frames the core sends are dropped).
pub fn udp_echo_driver_executor() -> Executor {
    let mut nic = DriverLoopNic::new(OUR_MAC, turn_around);
    let request = udp_echo_request(&echo_payload());
    assert!(nic.deliver(&arp_request()), "a receive buffer is posted");
    for _ in 0..ECHO_IN_FLIGHT {
        assert!(nic.deliver(&request), "the receive ring holds the frames");
    }
    udp_echo_core(Box::new(nic), echo_pool())
}

/// A pipeline `count-driver` counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriverWorkload {
    /// [`macswap_driver_executor`].
    MacSwap,
    /// [`udp_echo_driver_executor`].
    UdpEcho,
}

impl DriverWorkload {
    /// Both, in report order.
    pub const ALL: [DriverWorkload; 2] = [Self::MacSwap, Self::UdpEcho];

    /// The name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::MacSwap => "macswap-driver",
            Self::UdpEcho => "udp-echo-driver",
        }
    }

    /// The workload called `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|workload| workload.name() == name)
    }

    /// Its executor, set up and warmed up.
    pub fn executor(self) -> Executor {
        match self {
            Self::MacSwap => macswap_driver_executor(),
            Self::UdpEcho => udp_echo_driver_executor(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frames::{ECHO_PORT, OUR_IP, PEER_IP, PEER_MAC, PEER_PORT, UdpSummary};
    use crate::pipelines::{assert_full_bursts, run_bursts};
    use dataplane::{BURST_SIZE, SharedNic};

    #[test]
    fn echo_through_the_driver_answers_every_request() {
        let shared = SharedNic::new(DriverLoopNic::new(OUR_MAC, turn_around));
        {
            let mut nic = shared.borrow_mut();
            assert!(nic.deliver(&arp_request()));
            let request = udp_echo_request(&echo_payload());
            for _ in 0..ECHO_IN_FLIGHT {
                assert!(nic.deliver(&request));
            }
        }
        let mut executor = udp_echo_core(Box::new(shared.clone()), echo_pool());
        let polls = 20u64;
        run_bursts(&mut executor, polls);
        let counters = executor.counters();
        assert_eq!(counters.executor_drops(), 0);
        let node_drops: u64 = counters.nodes.iter().map(|node| node.total_drops()).sum();
        assert_eq!(node_drops, 0);
        let nic = shared.borrow();
        let stats = nic.queue().stats();
        // ARP + 32 requests, then 32 per poll; the warm-up poll took 32.
        assert_eq!(stats.rx_packets.get(), (polls + 1) * BURST_SIZE as u64);
        assert_eq!(stats.rx_bad_length.get(), 0);
        assert_eq!(stats.rx_pool_empty.get(), 0);
        // Every echo and the two ARP frames went out.
        assert_eq!(
            stats.tx_packets.get(),
            (polls + 1) * BURST_SIZE as u64 - 1 + 2
        );
        drop(nic);
        // The requests waiting in the ring are valid requests again.
        let mut batch = Batch::new();
        assert_eq!(shared.borrow_mut().rx_burst(&mut batch), BURST_SIZE);
        for packet in batch.iter() {
            let request = UdpSummary::of(packet.payload()).expect("valid checksums");
            assert_eq!(request.macs, (OUR_MAC, PEER_MAC));
            assert_eq!(request.addresses, (PEER_IP, OUR_IP));
            assert_eq!(request.ports, (PEER_PORT, ECHO_PORT));
            assert_eq!(request.payload, echo_payload());
        }
    }

    #[test]
    fn driver_workloads_run_full_bursts() {
        for workload in DriverWorkload::ALL {
            assert_eq!(DriverWorkload::from_name(workload.name()), Some(workload));
            assert_full_bursts(workload.executor(), workload.name());
        }
        assert_eq!(DriverWorkload::from_name("macswap"), None);
    }
}
