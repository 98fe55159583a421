//! Counters of one core's executor and of each nanoservice on it.

use crate::Counter;
use alloc::vec::Vec;

/// Distinct drop reasons a nanoservice can count; higher codes share the last.
pub const MAX_DROP_REASONS: usize = 16;

/// Counters of one node (nanoservice instance).
#[derive(Debug, Default)]
pub struct NodeCounters {
    /// The service's kind, as `Nanoservice::name` said.
    pub name: &'static str,
    /// Names of the drop reasons, indexed by `DropCode`.
    pub drop_reasons: &'static [&'static str],
    /// Packets handed to the service.
    pub received: Counter,
    /// Packets the service emitted on an output.
    pub emitted: Counter,
    /// Packets the service dropped, by reason code.
    pub drops: [Counter; MAX_DROP_REASONS],
    /// Packets emitted on an output index the service does not have.
    pub invalid_output: Counter,
}

impl NodeCounters {
    /// All drops of this node, whatever the reason.
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().map(Counter::get).sum::<u64>() + self.invalid_output.get()
    }

    /// The count for the drop reason called `reason`.
    pub fn drops_named(&self, reason: &str) -> Option<u64> {
        let index = self.drop_reasons.iter().position(|name| *name == reason)?;
        Some(self.drops[index.min(MAX_DROP_REASONS - 1)].get())
    }
}

/// Counters of one core: its executor and every node on it. Shared (behind
/// an `Arc`) with readers on other cores; only the owning core writes.
#[derive(Debug, Default)]
pub struct CoreCounters {
    /// Calls to `poll_once`.
    pub polls: Counter,
    /// Polls that received nothing.
    pub idle_polls: Counter,
    /// Packets received from NICs and input rings.
    pub rx_packets: Counter,
    /// Packets NICs accepted for transmission.
    pub tx_packets: Counter,
    /// Packets a NIC had no room for.
    pub tx_dropped: Counter,
    /// Packets pushed onto rings to other cores.
    pub ring_out_packets: Counter,
    /// Packets a ring to another core had no room for.
    pub ring_full_drops: Counter,
    /// Packets emitted to a node whose input queue was full.
    pub queue_full_drops: Counter,
    /// Packets still queued after the pass limit (a cycle in the graph).
    pub pass_limit_drops: Counter,
    /// Packets a node left in its batch instead of emitting or dropping them.
    pub unconsumed_drops: Counter,
    /// Packets sent to `Target::Discard`.
    pub discarded: Counter,
    /// Per-node counters, indexed by `NodeId`.
    pub nodes: Vec<NodeCounters>,
}

impl CoreCounters {
    /// Every packet this core dropped outside its nodes' own drop reasons.
    pub fn executor_drops(&self) -> u64 {
        self.tx_dropped.get()
            + self.ring_full_drops.get()
            + self.queue_full_drops.get()
            + self.pass_limit_drops.get()
            + self.unconsumed_drops.get()
    }

    /// The sum of drop counter `reason` over every node called `node`
    /// (per-port nodes like `eth` and `arp` share a name); 0 when there is
    /// none.
    pub fn node_drops(&self, node: &str, reason: &str) -> u64 {
        self.nodes
            .iter()
            .filter(|counters| counters.name == node)
            .filter_map(|counters| counters.drops_named(reason))
            .sum()
    }
}
