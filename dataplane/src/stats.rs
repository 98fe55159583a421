//! Counters of one core's executor and of each nanoservice on it.

use crate::Counter;
use crate::supervise::SupervisionCounters;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt::{self, Write};

/// Distinct drop reasons a nanoservice can count; higher codes share the last.
pub const MAX_DROP_REASONS: usize = 24;
/// Distinct events (counters that are not drops) a nanoservice can count;
/// higher indexes are not counted. 48: a Wasm nanoservice counts its
/// host's events beside the up to 32 its module registers.
pub const MAX_EVENTS: usize = 48;

/// Counters of one node (nanoservice instance).
#[derive(Debug)]
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
    /// Names of the service's events, indexed like `events`.
    pub event_names: &'static [&'static str],
    /// Things the service counts that are not drops (connections opened,
    /// retransmissions), by index into `event_names`.
    pub events: [Counter; MAX_EVENTS],
    /// Its failures, restarts and state (see [`crate::supervise`]).
    pub supervision: SupervisionCounters,
}

impl Default for NodeCounters {
    fn default() -> Self {
        Self {
            name: "",
            drop_reasons: &[],
            received: Counter::new(),
            emitted: Counter::new(),
            drops: Default::default(),
            invalid_output: Counter::new(),
            event_names: &[],
            // `Default` stops at arrays of 32.
            events: core::array::from_fn(|_| Counter::new()),
            supervision: SupervisionCounters::default(),
        }
    }
}

impl NodeCounters {
    /// All drops of this node, whatever the reason.
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().map(Counter::get).sum::<u64>() + self.invalid_output.get()
    }

    /// The count of the event called `event`.
    pub fn event_named(&self, event: &str) -> Option<u64> {
        let index = self.event_names.iter().position(|name| *name == event)?;
        Some(self.events.get(index)?.get())
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
    /// How the core slept when idle, and what woke it.
    pub idle: IdleCounters,
    /// Times the core swapped its graph for a new spec's (reconcile).
    pub graph_swaps: Counter,
    /// Per-node counters, indexed by `NodeId`.
    pub nodes: Vec<NodeCounters>,
    /// The supervision counters of what nodes supervise inside themselves
    /// (the TCP apps of `tcp`), as the nodes named them when the graph
    /// was built ([`Nanoservice::supervised_parts`](crate::Nanoservice::supervised_parts)).
    pub parts: Vec<PartCounters>,
}

/// The supervision counters of one part a node supervises itself: a TCP
/// app inside the `tcp` node. Shared with the part, which lives on across
/// graph swaps (so are its counts).
#[derive(Debug, Clone)]
pub struct PartCounters {
    /// The part's kind, like `http` (its `service` label).
    pub name: &'static str,
    /// The node it lives in, like `tcp`.
    pub node: &'static str,
    /// Its failures, restarts and state.
    pub supervision: Arc<SupervisionCounters>,
}

/// How a core spent its idle time: sleeps and what ended them, counted by
/// the executor as the platform reports them
/// ([`Executor::finish_sleep`](crate::Executor::finish_sleep)).
#[derive(Debug, Default)]
pub struct IdleCounters {
    /// Times the core slept.
    pub sleeps: Counter,
    /// Times it meant to sleep but found work (packets, a ring, a timer
    /// due) in its last look.
    pub sleeps_refused: Counter,
    /// Sleeps a received packet ended.
    pub wakeups_by_packet: Counter,
    /// Sleeps another core's doorbell ended (work handed over a ring).
    pub wakeups_by_doorbell: Counter,
    /// Sleeps the one-shot timer for the next deadline ended.
    pub wakeups_by_timer: Counter,
    /// Sleeps something else ended (the console, a signal, spuriously).
    pub wakeups_by_other: Counter,
    /// `idle = "haltpoll"`: idle stretches in which work came back while
    /// the core still polled past its empty-poll threshold (a halt and
    /// its wake-up saved).
    pub poll_windows_caught: Counter,
    /// `idle = "haltpoll"`: idle stretches whose polling window ran out,
    /// after which the core went to sleep.
    pub poll_windows_timed_out: Counter,
    /// `idle = "haltpoll"`: the core's polling window now, in nanoseconds
    /// (a gauge; 0 under the other idle modes and on a core left idle).
    pub poll_window_ns: Counter,
}

impl IdleCounters {
    /// `(name, value)` of every counter, for dumps.
    pub fn entries(&self) -> [(&'static str, u64); 9] {
        [
            ("sleeps", self.sleeps.get()),
            ("sleeps_refused", self.sleeps_refused.get()),
            ("wakeups_by_packet", self.wakeups_by_packet.get()),
            ("wakeups_by_doorbell", self.wakeups_by_doorbell.get()),
            ("wakeups_by_timer", self.wakeups_by_timer.get()),
            ("wakeups_by_other", self.wakeups_by_other.get()),
            ("poll_windows_caught", self.poll_windows_caught.get()),
            ("poll_windows_timed_out", self.poll_windows_timed_out.get()),
            ("poll_window_ns", self.poll_window_ns.get()),
        ]
    }
}

impl CoreCounters {
    /// `(name, value)` of every executor counter (not the nodes'), for dumps.
    pub fn entries(&self) -> [(&'static str, u64); 12] {
        [
            ("polls", self.polls.get()),
            ("idle_polls", self.idle_polls.get()),
            ("rx_packets", self.rx_packets.get()),
            ("tx_packets", self.tx_packets.get()),
            ("tx_dropped", self.tx_dropped.get()),
            ("ring_out_packets", self.ring_out_packets.get()),
            ("ring_full_drops", self.ring_full_drops.get()),
            ("queue_full_drops", self.queue_full_drops.get()),
            ("pass_limit_drops", self.pass_limit_drops.get()),
            ("unconsumed_drops", self.unconsumed_drops.get()),
            ("discarded", self.discarded.get()),
            ("graph_swaps", self.graph_swaps.get()),
        ]
    }

    /// The sum of event `event` over every node called `node`; 0 when
    /// there is none.
    pub fn node_events(&self, node: &str, event: &str) -> u64 {
        self.nodes
            .iter()
            .filter(|counters| counters.name == node)
            .filter_map(|counters| counters.event_named(event))
            .sum()
    }

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

/// The counters dump, one writer for the appliance (serial console) and
/// hosted (stdout, signal, counters file):
///
/// ```text
/// counters begin cores=2
/// counter core=0 executor=rx_packets value=412
/// counter core=0 node=ipv4 stat=received value=300
/// counter core=0 node=ipv4 drop=bad-checksum value=3
/// counter core=0 nic=virtio0.q0 stat=rx_packets value=412
/// counters end
/// ```
///
/// One counter a line: `counter core=C`, then `key=value` labels, then
/// `value=N`. Platform counters (NIC queues, interrupts) go through
/// [`CountersDump::labelled`] and [`CountersDump::stats`].
pub struct CountersDump<'a, W: Write> {
    out: &'a mut W,
}

impl<'a, W: Write> CountersDump<'a, W> {
    /// Starts a dump of `cores` cores on `out` (writes the begin marker).
    pub fn begin(out: &'a mut W, cores: usize) -> Result<Self, fmt::Error> {
        writeln!(out, "counters begin cores={cores}")?;
        Ok(Self { out })
    }

    /// Writes one counter line: `counter core=C k=v... value=N`.
    pub fn line(&mut self, core: usize, labels: &[(&str, &str)], value: u64) -> fmt::Result {
        write!(self.out, "counter core={core}")?;
        for (key, label) in labels {
            write!(self.out, " {key}={label}")?;
        }
        writeln!(self.out, " value={value}")
    }

    /// Writes `counter core=C <kind>=<name> value=N` for each `(name, N)`
    /// of `entries` (the executor's counters, idle wakeups).
    pub fn labelled(
        &mut self,
        core: usize,
        kind: &str,
        entries: impl IntoIterator<Item = (&'static str, u64)>,
    ) -> fmt::Result {
        for (name, value) in entries {
            self.line(core, &[(kind, name)], value)?;
        }
        Ok(())
    }

    /// Writes `counter core=C <kind>=<name> stat=<stat> value=N` for each
    /// `(stat, N)` of `entries` (a NIC queue's counters).
    pub fn stats(
        &mut self,
        core: usize,
        kind: &str,
        name: &str,
        entries: impl IntoIterator<Item = (&'static str, u64)>,
    ) -> fmt::Result {
        for (stat, value) in entries {
            self.line(core, &[(kind, name), ("stat", stat)], value)?;
        }
        Ok(())
    }

    /// Writes core `core`'s executor counters, then its idle counters
    /// (`counter core=C idle=wakeups_by_timer value=N`).
    pub fn executor(&mut self, core: usize, counters: &CoreCounters) -> fmt::Result {
        self.labelled(core, "executor", counters.entries())?;
        self.labelled(core, "idle", counters.idle.entries())
    }

    /// Writes the counters of every node of core `core`: received, emitted,
    /// invalid outputs, one line per drop reason and one per event, and
    /// its supervision counters once it has failed; then the supervision
    /// counters of each part a node supervises (`node=tcp app=http
    /// supervision=restarts`) once it has failed.
    pub fn nodes(&mut self, core: usize, counters: &CoreCounters) -> fmt::Result {
        for node in &counters.nodes {
            self.stats(
                core,
                "node",
                node.name,
                [
                    ("received", node.received.get()),
                    ("emitted", node.emitted.get()),
                    ("invalid_output", node.invalid_output.get()),
                ],
            )?;
            for (index, reason) in node.drop_reasons.iter().enumerate() {
                let value = node.drops[index.min(MAX_DROP_REASONS - 1)].get();
                self.line(core, &[("node", node.name), ("drop", reason)], value)?;
            }
            for (event, counter) in node.event_names.iter().zip(&node.events) {
                self.line(
                    core,
                    &[("node", node.name), ("event", event)],
                    counter.get(),
                )?;
            }
            let supervision = &node.supervision;
            if supervision.failures() > 0 {
                for (what, value) in [
                    ("panics", supervision.panics.get()),
                    ("overruns", supervision.overruns.get()),
                    ("restarts", supervision.restarts.get()),
                    ("dropped", supervision.dropped.get()),
                ] {
                    self.line(core, &[("node", node.name), ("supervision", what)], value)?;
                }
            }
        }
        for part in &counters.parts {
            let supervision = &part.supervision;
            if supervision.failures() > 0 {
                for (what, value) in [
                    ("panics", supervision.panics.get()),
                    ("overruns", supervision.overruns.get()),
                    ("restarts", supervision.restarts.get()),
                    ("dropped", supervision.dropped.get()),
                ] {
                    self.line(
                        core,
                        &[
                            ("node", part.node),
                            ("app", part.name),
                            ("supervision", what),
                        ],
                        value,
                    )?;
                }
            }
        }
        Ok(())
    }

    /// Ends the dump (writes the end marker).
    pub fn end(self) -> fmt::Result {
        writeln!(self.out, "counters end")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;

    #[test]
    fn dump_writes_one_line_per_counter_between_markers() {
        let mut counters = CoreCounters::default();
        counters.rx_packets.add(5);
        counters.nodes.push(NodeCounters {
            name: "ipv4",
            drop_reasons: &["bad-checksum", "ttl-expired"],
            ..NodeCounters::default()
        });
        counters.nodes[0].received.add(9);
        counters.nodes[0].drops[1].add(2);
        let mut text = String::new();
        let mut dump = CountersDump::begin(&mut text, 1).unwrap();
        dump.executor(3, &counters).unwrap();
        dump.nodes(3, &counters).unwrap();
        dump.stats(3, "nic", "tap:wc0.q1", [("tx_packets", 4)])
            .unwrap();
        dump.labelled(3, "interrupts", [("timer", 6)]).unwrap();
        counters.idle.wakeups_by_timer.add(4);
        dump.executor(4, &counters).unwrap();
        dump.end().unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.first(), Some(&"counters begin cores=1"));
        assert_eq!(lines.last(), Some(&"counters end"));
        assert_eq!(lines.len(), 2 + 2 * (12 + 9) + 3 + 2 + 1 + 1);
        for expected in [
            "counter core=3 executor=polls value=0",
            "counter core=3 executor=rx_packets value=5",
            "counter core=3 executor=discarded value=0",
            "counter core=3 node=ipv4 stat=received value=9",
            "counter core=3 node=ipv4 stat=invalid_output value=0",
            "counter core=3 node=ipv4 drop=bad-checksum value=0",
            "counter core=3 node=ipv4 drop=ttl-expired value=2",
            "counter core=3 nic=tap:wc0.q1 stat=tx_packets value=4",
            "counter core=3 interrupts=timer value=6",
            "counter core=3 idle=sleeps value=0",
            "counter core=4 idle=wakeups_by_timer value=4",
        ] {
            assert!(lines.contains(&expected), "{expected} missing from\n{text}");
        }
    }
}
