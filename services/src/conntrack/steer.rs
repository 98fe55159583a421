//! `FlowSteering`: brings both directions of every flow to one core, so
//! that the per-core flow table that saw a flow's first packet also sees
//! its replies, whichever queue (and so core) the NIC steers each
//! direction to.
//!
//! Every flow has an owner core: a hash of its canonical tuple (lower
//! address and port first, so the same for both directions; an ICMP error
//! counts as the flow it quotes) with a seed all cores share, modulo the
//! cores that run the service. A packet that arrives on another core goes
//! onto an SPSC ring to its owner with its buffer (no copy, no lock; the
//! rings are the ones TCP passes stray segments over,
//! [`crate::tcp::strays`]); the owner takes it in at its next burst or
//! tick, and a sleeping owner is woken by its doorbell. The packet leaves
//! from the owner core's transmit queue.
//!
//! Counted per core: `handed-off` (put on a ring), `handed-in` (taken from
//! one), and drop `ring-full` (the ring to the owner was full).

use super::FiveTuple;
use crate::tcp::strays::{self, Strays};
use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::any::Any;
use core::hash::BuildHasher;
use dataplane::{Batch, Doorbell, DropCode, Outputs, Packet, Verdict};

/// One core's end of the flow-steering links: the rings to and from
/// every other core running the service, and the hash seed they share.
pub struct SteerEnd {
    rings: Strays,
    seed: u64,
}

impl core::fmt::Debug for SteerEnd {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "SteerEnd({:?})", self.rings)
    }
}

/// The ends for `cores` cores running a flow-tracking service, boxed for
/// `CoreLinks`: none for one core (nothing to steer).
pub fn link_steering(cores: usize) -> Vec<Box<dyn Any + Send>> {
    if cores < 2 {
        return Vec::new();
    }
    let seed = foldhash::fast::RandomState::default().hash_one(cores);
    strays::link(cores)
        .into_iter()
        .map(|rings| Box::new(SteerEnd { rings, seed }) as Box<dyn Any + Send>)
        .collect()
}

/// The core a flow belongs to among `cores`, the same for both of its
/// directions and on every core.
pub fn owner_core(tuple: &FiveTuple, cores: usize, seed: u64) -> usize {
    let (canonical, _) = tuple.canonical();
    let hash = foldhash::fast::FixedState::with_seed(seed).hash_one(canonical);
    // The high bits mix best; cores is small.
    ((hash >> 32) % cores as u64) as usize
}

/// Where a steered node counts its steering: events `handed_off` and
/// `handed_in`, drop `ring_full`.
#[derive(Debug, Clone, Copy)]
pub struct SteerCounts {
    /// The event counting packets put on a ring to their owner.
    pub handed_off: usize,
    /// The event counting packets taken from the rings.
    pub handed_in: usize,
    /// The drop of a packet whose ring to its owner was full.
    pub ring_full: DropCode,
}

/// A node whose flows are steered to their owner cores
/// ([`FlowSteering::process`] runs its bursts).
pub trait SteeredNode {
    /// The node's steering (`None` on one core).
    fn steering(&mut self) -> &mut Option<FlowSteering>;

    /// One packet's verdict; with `steer`, a packet of another core's
    /// flow is [`Verdict::Keep`]t after [`FlowSteering::elsewhere`] named
    /// its owner.
    fn judge(&mut self, packet: &mut Packet, steer: bool, out: &mut Outputs<'_>) -> Verdict;
}

/// A node's flow steering on one core.
pub struct FlowSteering {
    rings: Strays,
    seed: u64,
    /// The owners of the packets the current burst keeps, in order.
    owners: Vec<u8>,
    /// Packets taken from the rings, reused between bursts.
    handed_in: Vec<Packet>,
}

impl core::fmt::Debug for FlowSteering {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "FlowSteering({:?})", self.rings)
    }
}

impl FlowSteering {
    /// Steering over `end`; wakes this core through `doorbell` when
    /// another core hands it a packet while it sleeps.
    pub fn new(end: SteerEnd, doorbell: Option<&Arc<Doorbell>>) -> Self {
        if let Some(doorbell) = doorbell {
            end.rings.set_doorbell(doorbell);
        }
        Self {
            rings: end.rings,
            seed: end.seed,
            owners: Vec::with_capacity(dataplane::BURST_SIZE),
            handed_in: Vec::new(),
        }
    }

    /// This core's index among the cores running the service.
    pub fn core(&self) -> usize {
        self.rings.core()
    }

    /// How many cores run the service.
    pub fn cores(&self) -> usize {
        self.rings.cores()
    }

    /// The seed of the owner hash the cores share ([`owner_core`]).
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The owner of `tuple`'s flow when it is another core (and notes it
    /// for [`FlowSteering::hand_off`]: the caller keeps the packet in its
    /// batch); `None` when the flow is this core's.
    #[inline]
    pub fn elsewhere(&mut self, tuple: &FiveTuple) -> Option<usize> {
        let owner = owner_core(tuple, self.rings.cores(), self.seed);
        if owner == self.rings.core() {
            return None;
        }
        self.owners.push(owner as u8);
        Some(owner)
    }

    /// Puts the packets the burst kept (one per [`FlowSteering::elsewhere`]
    /// that named a core, in order) on the rings to their owners and rings
    /// their doorbells. Returns the packets handed off; `full` gets each
    /// one whose ring was full.
    pub fn hand_off(&mut self, batch: &mut Batch, mut full: impl FnMut(Packet)) -> u64 {
        let mut handed = 0;
        for (packet, owner) in batch.drain().zip(self.owners.drain(..)) {
            match self.rings.push(usize::from(owner), packet) {
                Ok(()) => handed += 1,
                Err(packet) => full(packet),
            }
        }
        self.owners.clear();
        self.rings.notify();
        handed
    }

    /// [`FlowSteering::hand_off`] for a node: the packets left in `batch`
    /// are counted as event `handed_off`, and those that found their ring
    /// full dropped as `ring_full`.
    pub fn hand_off_counted(
        &mut self,
        batch: &mut Batch,
        out: &mut Outputs<'_>,
        ring_full: DropCode,
        handed_off: usize,
    ) {
        if batch.is_empty() {
            return;
        }
        let handed = self.hand_off(batch, |packet| out.drop(packet, ring_full));
        if handed > 0 {
            out.count(handed_off, handed);
        }
    }

    /// A steered node's burst: the packets other cores handed to this one
    /// are judged first (`SteeredNode::judge` without steering: their
    /// flows are this core's), then the burst's own (with steering: a
    /// packet of another core's flow is kept in the batch), and those
    /// kept are handed off to their owners. Counted in `counts`.
    pub fn process<N: SteeredNode>(
        node: &mut N,
        batch: &mut Batch,
        out: &mut Outputs<'_>,
        counts: SteerCounts,
    ) {
        Self::take_in(node, out, counts.handed_in);
        out.dispatch(batch, |packet, out| node.judge(packet, true, out));
        if let Some(steering) = node.steering() {
            steering.hand_off_counted(batch, out, counts.ring_full, counts.handed_off);
        }
    }

    /// Judges what other cores handed to `node`'s core (their flows are
    /// this core's), counted as event `handed_in`; for a tick, or the
    /// start of a burst.
    pub fn take_in<N: SteeredNode>(node: &mut N, out: &mut Outputs<'_>, handed_in: usize) {
        // Taken out while the node judges: `judge` looks at its steering
        // only to steer, which handed-in packets are not.
        let Some(mut steering) = node.steering().take() else {
            return;
        };
        let taken = steering.receive(|batch| {
            out.dispatch(batch, |packet, out| node.judge(packet, false, out));
        });
        *node.steering() = Some(steering);
        if taken > 0 {
            out.count(handed_in, taken);
        }
    }

    /// Takes what other cores handed to this one, in bursts: `each` gets
    /// every burst to judge (the flows are this core's). Returns the
    /// packets taken.
    pub fn receive(&mut self, mut each: impl FnMut(&mut Batch)) -> u64 {
        let mut handed_in = core::mem::take(&mut self.handed_in);
        self.rings.receive(|packet| handed_in.push(packet));
        let taken = handed_in.len() as u64;
        let mut batch = Batch::new();
        for packet in handed_in.drain(..) {
            if batch.push(packet).is_err() {
                unreachable!("pushed into a batch that was not full");
            }
            if batch.is_full() {
                each(&mut batch);
                batch.clear();
            }
        }
        if !batch.is_empty() {
            each(&mut batch);
            batch.clear();
        }
        self.handed_in = handed_in;
        taken
    }

    /// True when another core has handed this one something.
    pub fn pending(&self) -> bool {
        self.rings.pending()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    fn tuple(source_port: u16) -> FiveTuple {
        FiveTuple {
            source: Ipv4Addr::new(10, 0, 1, 2),
            destination: Ipv4Addr::new(10, 0, 2, 2),
            source_port,
            destination_port: 8080,
            protocol: 6,
        }
    }

    #[test]
    fn both_directions_have_one_owner_and_flows_spread() {
        let mut seen = [0u32; 4];
        for port in 40000..40256 {
            let forward = tuple(port);
            let owner = owner_core(&forward, 4, 7);
            assert_eq!(owner, owner_core(&forward.reversed(), 4, 7));
            seen[owner] += 1;
        }
        assert!(seen.iter().all(|count| *count > 0), "{seen:?}");
    }

    #[test]
    fn a_packet_of_another_cores_flow_is_handed_to_it() {
        let mut ends = link_steering(2).into_iter().map(|end| {
            let end: Box<SteerEnd> = end.downcast().unwrap();
            FlowSteering::new(*end, None)
        });
        let (mut first, mut second) = (ends.next().unwrap(), ends.next().unwrap());
        assert!(link_steering(1).is_empty());
        let pool = dataplane::Mempool::with_heap(8, 64).unwrap();
        let theirs = (40000..)
            .map(tuple)
            .find(|flow| owner_core(flow, 2, first.seed) == 1)
            .unwrap();
        assert_eq!(first.elsewhere(&theirs), Some(1));
        assert_eq!(second.elsewhere(&theirs.reversed()), None);
        let mut batch = Batch::new();
        batch.push(pool.alloc().unwrap()).unwrap();
        assert_eq!(first.hand_off(&mut batch, |_| panic!("ring full")), 1);
        assert!(second.pending());
        let mut taken = 0;
        assert_eq!(second.receive(|batch| taken += batch.len()), 1);
        assert_eq!(taken, 1);
        assert!(!second.pending());
    }
}
