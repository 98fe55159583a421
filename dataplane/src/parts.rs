//! Taking an executor apart at a batch boundary, so that a core can build
//! its next graph (a new spec) from what survives: its NIC queues, its
//! pool, the nodes whose state must live on, and its counters' totals.

use crate::stats::CoreCounters;
use crate::{Consumer, Doorbell, Executor, Guard, Mempool, Nanoservice, Nic, Packet, Producer};
use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;

/// A tag the builder of a graph gives a node or a port
/// ([`ExecutorBuilder::tag_node`](crate::ExecutorBuilder::tag_node)):
/// what it stands for, so that the next build can find it again. 0 means
/// "nothing to find": such nodes are never carried over.
pub type Tag = u64;

/// What [`Executor::into_parts`] leaves: everything a core needs to build
/// its next graph without stopping its NICs.
pub struct ExecutorParts {
    /// The NIC queues, in the order they were added, with their tags.
    pub ports: Vec<(Tag, Box<dyn Nic>)>,
    /// The nodes, in graph order, with their tags.
    pub nodes: Vec<(Tag, Box<dyn Nanoservice>)>,
    /// The core's pool.
    pub pool: Option<Mempool>,
    /// The platform clock.
    pub clock: fn() -> u64,
    /// The core's doorbell.
    pub doorbell: Option<Arc<Doorbell>>,
    /// The platform's panic guard (supervision), for the next graph.
    pub guard: Option<Guard>,
    /// The rings from other cores that fed the graph (their node is the
    /// next graph's to choose).
    pub rings_in: Vec<Consumer<Packet>>,
    /// The rings to other cores the graph fed.
    pub rings_out: Vec<Producer<Packet>>,
    /// The counters of the graph taken apart (their totals go on in the
    /// next graph's: [`CoreCounters::carry_from`]).
    pub counters: Arc<CoreCounters>,
}

impl Executor {
    /// Takes the executor apart. Call between polls (a batch boundary):
    /// the transmit bursts are flushed then and the node queues empty;
    /// whatever a pass limit left queued is dropped and counted. The rings
    /// to and from other cores are handed on for the next graph. A node that failed and
    /// waits for its restart (supervision) is not handed on: it is dropped
    /// (leaked, when the guard jumped over its destructors), and the next
    /// graph builds it afresh.
    pub fn into_parts(mut self) -> ExecutorParts {
        self.flush_staged();
        for queue in &mut self.fabric.queues {
            self.counters.pass_limit_drops.add(queue.clear() as u64);
        }
        let ports = self
            .fabric
            .ports
            .into_iter()
            .zip(self.port_tags)
            .map(|(port, tag)| (tag, port.nic))
            .collect();
        let supervisor = &self.supervisor;
        let drops_failed = supervisor.drops_failed();
        let nodes = self
            .node_tags
            .into_iter()
            .zip(self.nodes.into_iter().map(|node| node.service))
            .enumerate()
            .filter_map(|(index, node)| {
                if supervisor.is_running(index) {
                    return Some(node);
                }
                if !drops_failed {
                    core::mem::forget(node);
                }
                None
            })
            .collect();
        ExecutorParts {
            ports,
            nodes,
            pool: self.fabric.pool,
            clock: self.clock,
            doorbell: self.doorbell,
            guard: self.supervisor.guard(),
            rings_in: self
                .rings_in
                .into_iter()
                .map(|ring| ring.consumer)
                .collect(),
            rings_out: self
                .fabric
                .rings_out
                .into_iter()
                .map(|ring| ring.producer)
                .collect(),
            counters: self.counters,
        }
    }

    /// The tag of every node, in graph order.
    pub fn node_tags(&self) -> &[Tag] {
        &self.node_tags
    }
}

impl CoreCounters {
    /// Adds the totals of `old`, the counters of the graph this one
    /// replaced, so that they keep counting up across the change: every
    /// executor counter, and each node's counters into the node of the
    /// same name and rank among its namesakes (`eth` of the second port
    /// into the second `eth`). A node with no namesake here leaves its
    /// counts behind with its graph.
    pub fn carry_from(&self, old: &Self) {
        let pairs = [
            (&self.polls, &old.polls),
            (&self.idle_polls, &old.idle_polls),
            (&self.rx_packets, &old.rx_packets),
            (&self.tx_packets, &old.tx_packets),
            (&self.tx_dropped, &old.tx_dropped),
            (&self.ring_out_packets, &old.ring_out_packets),
            (&self.ring_full_drops, &old.ring_full_drops),
            (&self.queue_full_drops, &old.queue_full_drops),
            (&self.pass_limit_drops, &old.pass_limit_drops),
            (&self.unconsumed_drops, &old.unconsumed_drops),
            (&self.discarded, &old.discarded),
            (&self.idle.sleeps, &old.idle.sleeps),
            (&self.idle.sleeps_refused, &old.idle.sleeps_refused),
            (&self.idle.wakeups_by_packet, &old.idle.wakeups_by_packet),
            (
                &self.idle.wakeups_by_doorbell,
                &old.idle.wakeups_by_doorbell,
            ),
            (&self.idle.wakeups_by_timer, &old.idle.wakeups_by_timer),
            (&self.idle.wakeups_by_other, &old.idle.wakeups_by_other),
            (&self.graph_swaps, &old.graph_swaps),
        ];
        for (new, old) in pairs {
            new.add(old.get());
        }
        for (index, node) in self.nodes.iter().enumerate() {
            let rank = self.nodes[..index]
                .iter()
                .filter(|other| other.name == node.name)
                .count();
            let Some(before) = old
                .nodes
                .iter()
                .filter(|other| other.name == node.name)
                .nth(rank)
            else {
                continue;
            };
            node.received.add(before.received.get());
            node.emitted.add(before.emitted.get());
            node.invalid_output.add(before.invalid_output.get());
            for (new, old) in node.drops.iter().zip(&before.drops) {
                new.add(old.get());
            }
            for (new, old) in node.events.iter().zip(&before.events) {
                new.add(old.get());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::NodeCounters;
    use crate::{Batch, ExecutorBuilder, LoopbackNic, Outputs, Target};

    struct Named(&'static str);

    impl Nanoservice for Named {
        fn name(&self) -> &'static str {
            self.0
        }

        fn process(&mut self, batch: &mut Batch, out: &mut Outputs<'_>) {
            out.emit_batch(0, batch);
        }
    }

    #[test]
    fn parts_keep_tags_ports_and_nodes_in_order() {
        let mut builder = ExecutorBuilder::new();
        let port = builder.add_port(Box::new(LoopbackNic::new(
            crate::MacAddr([2, 0, 0, 0, 0, 1]),
            8,
        )));
        builder.tag_port(port, 3).unwrap();
        let first = builder.add_node(Box::new(Named("first")));
        let second = builder.add_node(Box::new(Named("second")));
        builder.tag_node(second, 42).unwrap();
        builder.connect(first, "out", Target::Node(second)).unwrap();
        builder.connect(second, "out", Target::Port(port)).unwrap();
        builder.route_rx(port, first).unwrap();
        let executor = builder.build().unwrap();
        assert_eq!(executor.node_tags(), &[0, 42]);
        let parts = executor.into_parts();
        assert_eq!(parts.ports.len(), 1);
        assert_eq!(parts.ports[0].0, 3);
        let names: Vec<(Tag, &str)> = parts
            .nodes
            .iter()
            .map(|(tag, node)| (*tag, node.name()))
            .collect();
        assert_eq!(names, [(0, "first"), (42, "second")]);
    }

    #[test]
    fn carried_counters_go_on_by_name_and_rank() {
        let node = |name| NodeCounters {
            name,
            ..NodeCounters::default()
        };
        let old = CoreCounters {
            nodes: alloc::vec![node("eth"), node("arp"), node("eth"), node("gone")],
            ..CoreCounters::default()
        };
        old.polls.add(10);
        old.nodes[0].received.add(1);
        old.nodes[2].received.add(2);
        old.nodes[2].drops[3].add(4);
        old.nodes[3].received.add(99);
        let new = CoreCounters {
            nodes: alloc::vec![node("eth"), node("eth"), node("new")],
            ..CoreCounters::default()
        };
        new.polls.add(1);
        new.carry_from(&old);
        assert_eq!(new.polls.get(), 11);
        assert_eq!(new.nodes[0].received.get(), 1);
        assert_eq!(new.nodes[1].received.get(), 2);
        assert_eq!(new.nodes[1].drops[3].get(), 4);
        assert_eq!(new.nodes[2].received.get(), 0);
    }
}
