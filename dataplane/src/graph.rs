//! The `Nanoservice` trait and `Outputs`, through which a service emits.

use crate::executor::{PortState, RingOut};
use crate::mem::burst::append_burst;
use crate::queue::NodeQueue;
use crate::stats::{CoreCounters, MAX_DROP_REASONS, NodeCounters};
use crate::{Batch, Mempool, Packet, Target};

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

/// Where a node's packets go while it runs. Each output stages a burst:
/// `emit` adds a packet to it, and the whole burst moves on to its target
/// (a node's input queue, a NIC's transmit burst, a ring) when it is full
/// and when the node returns.
pub struct Outputs<'a> {
    pub(crate) edges: &'a [Target],
    pub(crate) staging: &'a mut [Batch],
    pub(crate) node: &'a NodeCounters,
    pub(crate) core: &'a CoreCounters,
    pub(crate) queues: &'a mut [NodeQueue],
    pub(crate) ports: &'a mut [PortState],
    pub(crate) rings: &'a mut [RingOut],
    pub(crate) pool: Option<&'a Mempool>,
    pub(crate) emitted: u64,
    pub(crate) now_ns: u64,
}

impl Outputs<'_> {
    /// Sends `packet` along output `output`.
    #[inline(always)]
    pub fn emit(&mut self, output: usize, packet: Packet) {
        match self.staging.get_mut(output) {
            Some(staging) if !staging.is_full() => {
                // Cannot fail: the burst has room.
                let _ = staging.push(packet);
            }
            _ => self.emit_cold(output, packet),
        }
    }

    /// `emit` when the output does not exist or its burst is full: kept out
    /// of line so that `emit` inlines into every service's loop.
    #[cold]
    #[inline(never)]
    fn emit_cold(&mut self, output: usize, packet: Packet) {
        if output >= self.staging.len() {
            self.node.invalid_output.increment();
            return;
        }
        self.flush_output(output);
        // The staged burst was just handed on, so it has room.
        let _ = self.staging[output].push(packet);
    }

    /// Sends every packet of `batch` along output `output`, in order, and
    /// leaves `batch` empty: what `emit` does packet by packet, but the
    /// burst moves on in one copy.
    #[inline]
    pub fn emit_batch(&mut self, output: usize, batch: &mut Batch) {
        let Some(staging) = self.staging.get_mut(output) else {
            self.node.invalid_output.add(batch.len() as u64);
            batch.clear();
            return;
        };
        if !staging.is_empty() {
            if staging.remaining_capacity() >= batch.len() {
                append_burst(batch.packets_mut(), staging.packets_mut());
                return;
            }
            self.flush_output(output);
        }
        self.emitted += batch.len() as u64;
        deliver(
            self.edges[output],
            batch,
            self.core,
            self.queues,
            self.ports,
            self.rings,
        );
    }

    /// Hands output `output`'s staged burst on to its target.
    #[inline(never)]
    fn flush_output(&mut self, output: usize) {
        let staging = &mut self.staging[output];
        self.emitted += staging.len() as u64;
        deliver(
            self.edges[output],
            staging,
            self.core,
            self.queues,
            self.ports,
            self.rings,
        );
    }

    /// Hands every staged burst on to its target, in output order (the
    /// executor calls this when the node returns).
    #[inline]
    pub(crate) fn flush(&mut self) {
        for (staging, target) in self.staging.iter_mut().zip(self.edges) {
            if staging.is_empty() {
                continue;
            }
            self.emitted += staging.len() as u64;
            deliver(
                *target,
                staging,
                self.core,
                self.queues,
                self.ports,
                self.rings,
            );
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

/// Moves every packet of `batch` to `target` and leaves `batch` empty;
/// what the target has no room for is dropped and counted.
#[inline]
fn deliver(
    target: Target,
    batch: &mut Batch,
    core: &CoreCounters,
    queues: &mut [NodeQueue],
    ports: &mut [PortState],
    rings: &mut [RingOut],
) {
    match target {
        Target::Node(node) => {
            let overflow = queues[node.0].append(batch.packets_mut());
            if overflow > 0 {
                core.queue_full_drops.add(overflow as u64);
            }
        }
        Target::Port(port) => {
            let port = &mut ports[port.0];
            if port.staging.is_empty() && batch.is_full() {
                // A full burst with nothing staged before it: what joining
                // the staging burst and flushing it would send, minus a copy.
                port.transmit(batch, core);
                return;
            }
            if port.staging.remaining_capacity() < batch.len() {
                port.flush(core);
            }
            // The transmit burst has room now: a flushed one is empty.
            append_burst(batch.packets_mut(), port.staging.packets_mut());
        }
        Target::Ring(ring) => {
            let ring = &mut rings[ring.0];
            if ring.staging.remaining_capacity() < batch.len() {
                ring.flush(core);
            }
            append_burst(batch.packets_mut(), &mut ring.staging);
        }
        Target::Discard => {
            core.discarded.add(batch.len() as u64);
            batch.clear();
        }
    }
}
