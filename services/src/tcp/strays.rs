//! `Strays`: one core's ends of the SPSC rings between every pair of
//! cores' TCP stacks, which carry a segment that arrived on a core not
//! owning its connection to the core that does.
//!
//! A NIC steers by a hash the host chooses (multi-queue tap and
//! virtio-net: the tap's flow table, learnt from the queue the guest sent
//! a flow's last packet on; AF_PACKET: a fanout hash), so the answer to a
//! connection the appliance opened, or a segment after a long silence, may
//! reach another core. The owner is known without asking anyone for the
//! connections we open (the ephemeral port says which core, see
//! [`EphemeralPorts`](super::ports::EphemeralPorts)) and from the shared
//! [`FlowDirectory`](super::FlowDirectory) for the ones we accept. The
//! segment moves with its packet buffer (no copy); the buffer goes back to
//! its pool from the owner core through the pool's return queue.

use alloc::sync::Arc;
use alloc::vec::Vec;
use dataplane::{Consumer, Doorbell, Packet, Producer, SpscRing};

/// Slots of each ring (one per direction and pair of cores).
pub const RING_CAPACITY: usize = 512;
/// Most segments taken from one peer's ring per run, so that one core
/// cannot hold another.
pub const RECEIVE_BURST: usize = 64;

/// One core's ends: a producer towards every other core, a consumer from
/// every other core.
pub struct Strays {
    core: usize,
    /// By destination core; `None` for this core.
    to: Vec<Option<Producer<Packet>>>,
    /// From every other core.
    from: Vec<Consumer<Packet>>,
    /// Producers pushed to since the last [`Strays::notify`].
    pushed: u64,
}

impl core::fmt::Debug for Strays {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Strays")
            .field("core", &self.core)
            .field("cores", &self.to.len())
            .finish()
    }
}

/// The rings between `cores` cores: element `core` is that core's ends.
/// Fails only if the allocator does.
pub fn link(cores: usize) -> Vec<Strays> {
    let mut ends: Vec<Strays> = (0..cores)
        .map(|core| Strays {
            core,
            to: (0..cores).map(|_| None).collect(),
            from: Vec::with_capacity(cores.saturating_sub(1)),
            pushed: 0,
        })
        .collect();
    for source in 0..cores {
        for destination in 0..cores {
            if source == destination {
                continue;
            }
            let (producer, consumer) = SpscRing::with_capacity(RING_CAPACITY)
                .expect("a power-of-two ring capacity is always valid");
            ends[source].to[destination] = Some(producer);
            ends[destination].from.push(consumer);
        }
    }
    ends
}

impl Strays {
    /// The cores linked (this one included).
    pub fn cores(&self) -> usize {
        self.to.len()
    }

    /// This core.
    pub fn core(&self) -> usize {
        self.core
    }

    /// Wakes this core when another core pushes to it while it sleeps.
    pub fn set_doorbell(&self, doorbell: &Arc<Doorbell>) {
        for consumer in &self.from {
            consumer.set_doorbell(Arc::clone(doorbell));
        }
    }

    /// Queues `packet` for `core`; gives it back when the ring is full or
    /// `core` is not linked.
    pub fn push(&mut self, core: usize, packet: Packet) -> Result<(), Packet> {
        match self.to.get_mut(core).and_then(Option::as_mut) {
            Some(producer) => {
                producer.push(packet)?;
                if core < 64 {
                    self.pushed |= 1 << core;
                }
                Ok(())
            }
            None => Err(packet),
        }
    }

    /// Rings the doorbells of the cores pushed to since the last call
    /// (once per burst: it costs a fence).
    pub fn notify(&mut self) {
        let pushed = core::mem::take(&mut self.pushed);
        if pushed == 0 {
            return;
        }
        for (core, producer) in self.to.iter().enumerate() {
            if core < 64
                && pushed & (1 << core) != 0
                && let Some(producer) = producer
            {
                producer.notify();
            }
        }
    }

    /// Takes up to [`RECEIVE_BURST`] segments from each other core.
    pub fn receive(&mut self, mut deliver: impl FnMut(Packet)) {
        for consumer in &mut self.from {
            for _ in 0..RECEIVE_BURST {
                let Some(packet) = consumer.pop() else {
                    break;
                };
                deliver(packet);
            }
        }
    }

    /// True when another core has queued something for this one.
    pub fn pending(&self) -> bool {
        self.from.iter().any(|consumer| !consumer.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::Mempool;

    #[test]
    fn a_segment_pushed_for_a_core_reaches_only_that_core() {
        let mut ends = link(3);
        let pool = Mempool::with_heap(8, 64).unwrap();
        let mut packet = pool.alloc().unwrap();
        packet.append(4).unwrap().copy_from_slice(b"seg1");
        ends[0].push(2, packet).unwrap();
        assert!(
            ends[0].push(0, pool.alloc().unwrap()).is_err(),
            "not to itself"
        );
        ends[0].notify();
        assert!(!ends[1].pending());
        assert!(ends[2].pending());
        let mut received = Vec::new();
        ends[2].receive(|packet| received.push(packet.payload().to_vec()));
        assert_eq!(received, [b"seg1".to_vec()]);
        assert!(!ends[2].pending());
    }
}
