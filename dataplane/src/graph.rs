//! The `Nanoservice` trait and `Outputs`, through which a service emits.

use crate::executor::{PortState, RingOut};
use crate::mem::burst::append_burst;
use crate::stats::{CoreCounters, MAX_DROP_REASONS, NodeCounters};
use crate::{Batch, Mempool, Packet, Target};
use alloc::collections::VecDeque;

/// Index of a node in its executor's graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeId(pub(crate) usize);

impl NodeId {
    /// The index, as used in `CoreCounters::nodes`.
    pub fn index(self) -> usize {
        self.0
    }
}

/// A drop reason: an index into the service's `drop_reasons()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DropCode(pub u8);

/// A small state machine with one job. It receives a batch, and emits each
/// packet to one of its named outputs or drops it with a reason. It runs on
/// one core, to completion, with no locks.
pub trait Nanoservice {
    /// The service's kind, like `arp` or `udp-echo`.
    fn name(&self) -> &'static str;

    /// Names of the outputs, indexed by what `Outputs::emit` takes.
    fn outputs(&self) -> &'static [&'static str] {
        &["out"]
    }

    /// Names of the drop reasons, indexed by `DropCode`.
    fn drop_reasons(&self) -> &'static [&'static str] {
        &[]
    }

    /// Handles every packet of `batch`: each must be emitted or dropped
    /// (packets left behind are dropped and counted as unconsumed).
    fn process(&mut self, batch: &mut Batch, out: &mut Outputs<'_>);

    /// Housekeeping, called about once per millisecond of the platform clock
    /// and on the first poll: expire cache entries, retransmit, send a
    /// gratuitous ARP. Packets emitted here flow like any others.
    fn tick(&mut self, _out: &mut Outputs<'_>) {}
}

/// Where a node's packets go while it runs.
pub struct Outputs<'a> {
    pub(crate) edges: &'a [Target],
    pub(crate) node: &'a NodeCounters,
    pub(crate) core: &'a CoreCounters,
    pub(crate) queues: &'a mut [VecDeque<Packet>],
    pub(crate) queue_depth: usize,
    pub(crate) ports: &'a mut [PortState],
    pub(crate) rings: &'a mut [RingOut],
    pub(crate) pool: Option<&'a Mempool>,
    pub(crate) emitted: u64,
    pub(crate) now_ns: u64,
}

impl Outputs<'_> {
    /// Sends `packet` along output `output`.
    #[inline]
    pub fn emit(&mut self, output: usize, packet: Packet) {
        let Some(target) = self.edges.get(output) else {
            self.node.invalid_output.increment();
            return;
        };
        self.emitted += 1;
        match *target {
            Target::Node(node) => {
                let queue = &mut self.queues[node.0];
                if queue.len() < self.queue_depth {
                    queue.push_back(packet);
                } else {
                    self.core.queue_full_drops.increment();
                }
            }
            Target::Port(port) => {
                let port = &mut self.ports[port.0];
                if let Err(packet) = port.staging.push(packet) {
                    port.flush(self.core);
                    // The staging batch was just flushed, so it has room.
                    let _ = port.staging.push(packet);
                }
            }
            Target::Ring(ring) => {
                let ring = &mut self.rings[ring.0];
                if let Err(error) = ring.staging.try_push(packet) {
                    ring.flush(self.core);
                    ring.staging.push(error.element());
                }
            }
            Target::Discard => self.core.discarded.increment(),
        }
    }

    /// Sends every packet of `batch` along output `output`, in order, and
    /// leaves `batch` empty: what `emit` does packet by packet, but a burst
    /// bound for a NIC port joins its staging burst in one copy (after a
    /// flush when it would not fit).
    #[inline]
    pub fn emit_batch(&mut self, output: usize, batch: &mut Batch) {
        if let Some(&Target::Port(port)) = self.edges.get(output) {
            let port = &mut self.ports[port.0];
            if port.staging.remaining_capacity() < batch.len() {
                port.flush(self.core);
            }
            // The staging burst has room now: a flushed one is empty.
            let moved = append_burst(batch.packets_mut(), port.staging.packets_mut());
            self.emitted += moved as u64;
            return;
        }
        for packet in batch.drain() {
            self.emit(output, packet);
        }
    }

    /// Drops `packet`, counting it under `reason`.
    #[inline]
    pub fn drop(&mut self, packet: Packet, reason: impl Into<DropCode>) {
        let index = usize::from(reason.into().0).min(MAX_DROP_REASONS - 1);
        self.node.drops[index].increment();
        drop(packet);
    }

    /// The platform's monotonic clock, in nanoseconds, read once per poll.
    #[inline]
    pub fn now_ns(&self) -> u64 {
        self.now_ns
    }

    /// A fresh packet from this core's pool, for services that originate
    /// traffic (ARP requests, ICMP errors); `None` when there is no pool or
    /// it is exhausted (the pool counts that).
    #[inline]
    pub fn alloc(&mut self) -> Option<Packet> {
        self.pool.and_then(Mempool::alloc)
    }
}
