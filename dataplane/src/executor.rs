//! The per-core executor: polls NIC queues and input rings, runs the
//! nanoservice graph to completion, flushes transmit bursts.

use crate::capture::{Direction, PortTap};
use crate::graph::{Handoff, NodeId, Outputs};
use crate::idle::{Doorbell, Idle, WakeCause};
use crate::queue::{NodeQueue, QUEUE_BURSTS};
use crate::stats::CoreCounters;
use crate::supervise::{Failure, Rebuild, Supervisor};
use crate::{BURST_SIZE, Batch, Consumer, Mempool, Nanoservice, Nic, Packet, Producer};
use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use arrayvec::ArrayVec;

pub use crate::builder::{ExecutorBuilder, ExecutorError};
pub use crate::queue::NODE_QUEUE_DEPTH;
/// Rounds over the graph per poll before leftovers count as a cycle.
const MAX_PASSES: usize = 8;
/// Bursts handed straight from node to node after one node ran, before
/// the next one waits in its queue instead (a graph with a cycle would
/// otherwise hand a burst round forever).
const MAX_HANDOFFS: usize = 16;
/// How often nodes get their `tick` while the core polls, in clock
/// nanoseconds (a sleeping core wakes for the next deadline instead).
pub const TICK_INTERVAL_NS: u64 = 1_000_000;

/// Index of a NIC queue pair in its executor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortId(pub(crate) usize);

/// Index of an outgoing ring in its executor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RingId(pub(crate) usize);

/// Where a node output leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Another node on this core.
    Node(NodeId),
    /// Transmit on a NIC queue.
    Port(PortId),
    /// Hand over to another core through a ring.
    Ring(RingId),
    /// Throw away, counted in `CoreCounters::discarded` (a sink).
    Discard,
}

/// A NIC queue pair and the burst waiting to go out on it.
pub(crate) struct PortState {
    pub(crate) nic: Box<dyn Nic>,
    pub(crate) staging: Batch,
    pub(crate) rx_node: Option<NodeId>,
    /// The packet capture's tap, when the platform shares a capture board.
    pub(crate) tap: Option<PortTap>,
}

impl PortState {
    /// Transmits the staged burst; what the NIC has no room for is dropped.
    pub(crate) fn flush(&mut self, counters: &CoreCounters, now_ns: u64) {
        Self::send(
            &mut *self.nic,
            &mut self.tap,
            &mut self.staging,
            counters,
            now_ns,
        );
    }

    /// Transmits `burst` now, bypassing the (empty) staged burst; what the
    /// NIC has no room for is dropped.
    #[inline]
    pub(crate) fn transmit(&mut self, burst: &mut Batch, counters: &CoreCounters, now_ns: u64) {
        Self::send(&mut *self.nic, &mut self.tap, burst, counters, now_ns);
    }

    /// Shows the burst to the tap, then hands it to the NIC. The tap sees
    /// what the core sends, like Linux's taps before a driver's transmit:
    /// frames the NIC then has no room for are in a capture too.
    #[inline]
    fn send(
        nic: &mut dyn Nic,
        tap: &mut Option<PortTap>,
        burst: &mut Batch,
        counters: &CoreCounters,
        now_ns: u64,
    ) {
        if let Some(tap) = tap {
            tap.observe(Direction::Sent, burst, now_ns);
        }
        let sent = nic.tx_burst(burst);
        counters.tx_packets.add(sent as u64);
        counters.tx_dropped.add(burst.len() as u64);
        burst.clear();
    }
}

/// A ring to another core and the burst waiting to go onto it.
pub(crate) struct RingOut {
    pub(crate) producer: Producer<Packet>,
    pub(crate) staging: ArrayVec<Packet, BURST_SIZE>,
}

impl RingOut {
    /// Pushes the staged burst, waking the consuming core if it sleeps;
    /// what the ring has no room for is dropped.
    pub(crate) fn flush(&mut self, counters: &CoreCounters) {
        let pushed = self.producer.push_burst(&mut self.staging);
        if pushed > 0 {
            self.producer.notify();
        }
        counters.ring_out_packets.add(pushed as u64);
        counters.ring_full_drops.add(self.staging.len() as u64);
        self.staging.clear();
    }
}

/// A ring from another core and the node its packets enter.
pub(crate) struct RingIn {
    pub(crate) consumer: Consumer<Packet>,
    pub(crate) node: NodeId,
}

/// The places a node's bursts go, kept together so that a node's
/// [`Outputs`] holds one pointer to them rather than a slice of each
/// (built for every node call).
pub(crate) struct Fabric {
    pub(crate) queues: Vec<NodeQueue>,
    pub(crate) ports: Vec<PortState>,
    pub(crate) rings_out: Vec<RingOut>,
    /// A burst handed straight to the next node (see [`Handoff`]).
    pub(crate) handoff: Handoff,
    /// The core's pool, if it was given one (see [`Outputs::alloc`]).
    pub(crate) pool: Option<Mempool>,
    /// The platform's clock as read at the start of the poll.
    pub(crate) now_ns: u64,
    /// False when every node queue is empty: set by [`enqueue`] (the only
    /// way packets enter a queue), cleared by the executor when a pass
    /// finds every queue empty. While it is false, a poll skips the pass
    /// over the queues and a hand-off looks at no queue.
    ///
    /// [`enqueue`]: Self::enqueue
    pub(crate) queued: bool,
}

impl Fabric {
    /// Appends `batch` to node `node`'s input queue (see
    /// [`NodeQueue::append`]); returns how many packets did not fit.
    #[inline]
    pub(crate) fn enqueue(&mut self, node: usize, batch: &mut Batch) -> usize {
        self.queued = true;
        self.queues[node].append(batch)
    }

    /// True when node `node`'s input queue is empty (one flag while every
    /// queue is).
    #[inline(always)]
    pub(crate) fn queue_is_empty(&self, node: usize) -> bool {
        !self.queued || self.queues.get(node).is_none_or(NodeQueue::is_empty)
    }
}

/// One node of the graph: its service, and for each of its outputs where
/// it leads and the burst staged on it (see [`Outputs`]). Kept together so
/// that a node's call finds all three with one index.
pub(crate) struct GraphNode {
    pub(crate) service: Box<dyn Nanoservice>,
    pub(crate) edges: Vec<Target>,
    pub(crate) staging: Vec<Batch>,
}

/// One core's poll loop over its graph. Built by [`ExecutorBuilder`]; never
/// shared: it runs on the core that built it.
pub struct Executor {
    /// The graph's nodes, by [`NodeId`].
    pub(crate) nodes: Vec<GraphNode>,
    /// Where nodes' bursts go: what [`Outputs`] reaches through one pointer.
    pub(crate) fabric: Fabric,
    pub(crate) rings_in: Vec<RingIn>,
    pub(crate) counters: Arc<CoreCounters>,
    pub(crate) scratch: Batch,
    pub(crate) clock: fn() -> u64,
    /// When nodes last ticked; `None` before the first poll and after a
    /// sleep (the next poll ticks).
    pub(crate) last_tick_ns: Option<u64>,
    /// This core's doorbell, rung by the producers of `rings_in` (and of
    /// the services' own rings) when the core sleeps.
    pub(crate) doorbell: Option<Arc<Doorbell>>,
    /// Each node's tag (see [`crate::parts`]).
    pub(crate) node_tags: Vec<crate::Tag>,
    /// Each port's tag.
    pub(crate) port_tags: Vec<crate::Tag>,
    /// Contains failing nodes and restarts them (see [`crate::supervise`]).
    pub(crate) supervisor: Supervisor,
}

impl Executor {
    /// Node `node`'s service (its index in `CoreCounters::nodes`) as a
    /// `T`, if it is one (tests look into a node's state).
    pub fn node_as<T: Nanoservice>(&self, node: usize) -> Option<&T> {
        let service: &dyn core::any::Any = &*self.nodes.get(node)?.service;
        service.downcast_ref::<T>()
    }

    /// The core's counters; clone the `Arc` to read them from elsewhere.
    pub fn counters(&self) -> &Arc<CoreCounters> {
        &self.counters
    }

    /// The core's pool, if it was given one.
    pub fn pool(&self) -> Option<&Mempool> {
        self.fabric.pool.as_ref()
    }

    /// The NIC behind `port`.
    pub fn nic(&self, port: PortId) -> &dyn Nic {
        &*self.fabric.ports[port.0].nic
    }

    /// The NIC behind `port`, mutable.
    pub fn nic_mut(&mut self, port: PortId) -> &mut dyn Nic {
        &mut *self.fabric.ports[port.0].nic
    }

    /// The NIC behind `port` as its concrete driver type, if it is a `T`
    /// (tests inject and collect packets this way).
    pub fn nic_as<T: Nic>(&mut self, port: PortId) -> Option<&mut T> {
        let nic: &mut dyn core::any::Any = &mut *self.fabric.ports[port.0].nic;
        nic.downcast_mut::<T>()
    }

    /// One round: receive a burst from every NIC queue and input ring, run
    /// the graph until no node has input, flush every transmit burst.
    /// Returns the packets received.
    pub fn poll_once(&mut self) -> usize {
        self.fabric.now_ns = (self.clock)();
        if self
            .supervisor
            .next_restart_ns()
            .is_some_and(|next| next <= self.fabric.now_ns)
        {
            self.restart_due();
        }
        if self
            .last_tick_ns
            .is_none_or(|last| self.fabric.now_ns.wrapping_sub(last) >= TICK_INTERVAL_NS)
        {
            self.last_tick_ns = Some(self.fabric.now_ns);
            for node in 0..self.nodes.len() {
                self.with_outputs::<false>(node, |service, _, outputs| service.tick(outputs));
                self.run_handoffs();
            }
        }
        let mut received = 0;
        for port in 0..self.fabric.ports.len() {
            let Some(node) = self.fabric.ports[port].rx_node else {
                continue;
            };
            let state = &mut self.fabric.ports[port];
            let count = state.nic.rx_burst(&mut self.scratch);
            if count > 0
                && let Some(tap) = &mut state.tap
            {
                tap.observe(Direction::Received, &self.scratch, self.fabric.now_ns);
            }
            received += count;
            self.deliver_scratch(node);
        }
        for ring in 0..self.rings_in.len() {
            let RingIn { consumer, node } = &mut self.rings_in[ring];
            received += consumer.pop_burst(self.scratch.packets_mut());
            let node = *node;
            self.deliver_scratch(node);
        }
        self.run_queued();
        self.flush();
        let counters = &self.counters;
        counters.polls.increment();
        counters.rx_packets.add(received as u64);
        if received == 0 {
            counters.idle_polls.increment();
        }
        received
    }

    /// Before the core sleeps: arms every port's wake-up signal
    /// ([`Nic::enable_wakeup`]). Returns false, with every port back to
    /// polling, when a port or an input ring already has packets: poll
    /// instead of sleeping. [`prepare_sleep`](Self::prepare_sleep) does
    /// this and more; platforms call that.
    pub fn enable_wakeup(&mut self) -> bool {
        for index in 0..self.fabric.ports.len() {
            if !self.fabric.ports[index].nic.enable_wakeup() {
                for port in &mut self.fabric.ports[..index] {
                    port.nic.disable_wakeup();
                }
                return false;
            }
        }
        if self.rings_in.iter().any(|ring| !ring.consumer.is_empty()) {
            self.disable_wakeup();
            return false;
        }
        true
    }

    /// After the core woke: every port back to polling without signals.
    pub fn disable_wakeup(&mut self) {
        for port in &mut self.fabric.ports {
            port.nic.disable_wakeup();
        }
    }

    /// False while `node` is stopped by supervision (waiting out its
    /// backoff, or failed for good): a graph change must not carry such a
    /// node's service over (its state may be broken) but build it afresh.
    pub fn is_running(&self, node: NodeId) -> bool {
        self.supervisor.is_running(node.0)
    }

    /// This core's doorbell, if the platform gave it one.
    pub fn doorbell(&self) -> Option<&Arc<Doorbell>> {
        self.doorbell.as_ref()
    }

    /// The earliest time any node wants its `tick`
    /// ([`Nanoservice::next_deadline_ns`]); `None` when no node has a
    /// timer.
    pub fn next_deadline_ns(&self) -> Option<u64> {
        let supervisor = &self.supervisor;
        self.nodes
            .iter()
            .enumerate()
            .filter(|(node, _)| supervisor.is_running(*node))
            .filter_map(|(_, node)| node.service.next_deadline_ns())
            .chain(supervisor.next_restart_ns())
            .min()
    }

    /// After polls that found nothing, before the core sleeps: announces
    /// the sleep on the core's doorbell (producers ring from now on), arms
    /// every port's wake-up signal, and looks once more for work: packets
    /// on a port or an input ring, a node whose deadline has come (a
    /// service's own rings from other cores show up there). Returns
    /// [`Idle::Busy`], with everything back as it was, when there is work;
    /// else [`Idle::Sleep`] with the earliest deadline, for the platform's
    /// one-shot timer.
    ///
    /// The platform then sleeps until a port's signal, the doorbell or the
    /// deadline, and calls [`finish_sleep`](Self::finish_sleep). On bare
    /// metal, call with interrupts disabled and sleep atomically (`sti;
    /// hlt`), so that a signal raised after this look is not missed.
    pub fn prepare_sleep(&mut self) -> Idle {
        if let Some(doorbell) = &self.doorbell {
            doorbell.announce_sleep();
        }
        let deadline_ns = self.next_deadline_ns();
        let due = deadline_ns.is_some_and(|deadline| deadline <= (self.clock)());
        if due || !self.enable_wakeup() {
            if due {
                self.disable_wakeup();
                // The node whose deadline came ticks on the next poll.
                self.last_tick_ns = None;
            }
            if let Some(doorbell) = &self.doorbell {
                doorbell.awake();
            }
            self.counters.idle.sleeps_refused.increment();
            return Idle::Busy;
        }
        Idle::Sleep { deadline_ns }
    }

    /// After the sleep [`prepare_sleep`](Self::prepare_sleep) allowed:
    /// every port back to polling, the doorbell quiet, the sleep counted
    /// under what ended it; the next poll ticks every node (a deadline may
    /// have come, or a service's ring filled).
    pub fn finish_sleep(&mut self, woken_by: WakeCause) {
        if let Some(doorbell) = &self.doorbell {
            doorbell.awake();
        }
        self.disable_wakeup();
        self.last_tick_ns = None;
        let idle = &self.counters.idle;
        idle.sleeps.increment();
        match woken_by {
            WakeCause::Packet => idle.wakeups_by_packet.increment(),
            WakeCause::Doorbell => idle.wakeups_by_doorbell.increment(),
            WakeCause::Timer => idle.wakeups_by_timer.increment(),
            WakeCause::Other => idle.wakeups_by_other.increment(),
        }
    }

    /// Polls until `keep_going` says stop; it sees the packets each poll
    /// received, so platforms can idle (halt, back off) on empty polls.
    pub fn run(&mut self, mut keep_going: impl FnMut(usize) -> bool) {
        loop {
            let received = self.poll_once();
            if !keep_going(received) {
                break;
            }
        }
    }

    /// Runs `node` on the scratch batch straight away when nothing is queued
    /// before it (the common case), else queues the batch behind.
    fn deliver_scratch(&mut self, node: NodeId) {
        if self.scratch.is_empty() {
            return;
        }
        if self.fabric.queue_is_empty(node.0) {
            self.run_node(node.0);
        } else {
            let overflow = self.fabric.enqueue(node.0, &mut self.scratch);
            self.counters.queue_full_drops.add(overflow as u64);
        }
    }

    /// Runs every node with queued input, in order, until all queues are
    /// empty or the pass limit is hit.
    fn run_queued(&mut self) {
        if !self.fabric.queued {
            return;
        }
        for _ in 0..MAX_PASSES {
            let mut ran = false;
            for node in 0..self.nodes.len() {
                for _ in 0..QUEUE_BURSTS {
                    if self.fabric.queues[node].pop_burst(&mut self.scratch) == 0 {
                        break;
                    }
                    self.run_node(node);
                    ran = true;
                }
            }
            if !ran {
                self.fabric.queued = false;
                return;
            }
        }
        for queue in &mut self.fabric.queues {
            self.counters.pass_limit_drops.add(queue.clear() as u64);
        }
        self.fabric.queued = false;
    }

    /// Runs one node over the scratch batch, then the nodes its bursts
    /// were handed to, down the chain, in one loop: the call of each node
    /// is inlined here, so a chain saves and restores registers once
    /// rather than once a node.
    ///
    /// Whether the calls need supervision is asked once a chain: nothing
    /// a node does while unwatched can change it (only a contained
    /// failure, which needs a guard or a budget, stops a node; see
    /// [`Supervisor::is_unwatched`]).
    #[inline(never)]
    fn run_node(&mut self, node: usize) {
        if self.supervisor.is_unwatched() {
            self.run_chain::<true>(node);
        } else {
            self.run_chain::<false>(node);
        }
    }

    /// [`run_node`](Self::run_node)'s loop; `UNWATCHED` when the chain
    /// runs with no guard, no budget and every node running.
    #[inline(always)]
    fn run_chain<const UNWATCHED: bool>(&mut self, node: usize) {
        let mut node = node;
        let mut hops = 0;
        loop {
            self.run_one::<UNWATCHED>(node);
            let Some(next) = self.fabric.handoff.node.take() else {
                return;
            };
            self.scratch.swap(&mut self.fabric.handoff.burst);
            hops += 1;
            if hops > MAX_HANDOFFS {
                self.queue_handoff(next);
                return;
            }
            node = next;
        }
    }

    /// Queues the scratch batch, a burst handed to `node` past
    /// [`MAX_HANDOFFS`], for `run_queued` (a graph with a cycle).
    #[cold]
    #[inline(never)]
    fn queue_handoff(&mut self, node: usize) {
        let overflow = self.fabric.enqueue(node, &mut self.scratch);
        self.counters.queue_full_drops.add(overflow as u64);
    }

    /// Runs the node a burst was handed to (by a node's `tick`), and the
    /// next, until a node hands nothing on (see [`run_node`]).
    ///
    /// [`run_node`]: Self::run_node
    fn run_handoffs(&mut self) {
        if let Some(next) = self.fabric.handoff.node.take() {
            self.scratch.swap(&mut self.fabric.handoff.burst);
            self.run_node(next);
        }
    }

    /// Runs one node over the scratch batch.
    #[inline(always)]
    fn run_one<const UNWATCHED: bool>(&mut self, node: usize) {
        self.with_outputs::<UNWATCHED>(node, |service, scratch, outputs| {
            service.process(scratch, outputs)
        });
        if !self.scratch.is_empty() {
            self.counters
                .unconsumed_drops
                .add(self.scratch.len() as u64);
            self.scratch.clear();
        }
    }

    /// Calls `f` with node `node`'s service, the scratch batch and the
    /// node's outputs, hands on what it emitted and books it: the scratch
    /// batch as the node's received packets (none for a `tick`, which
    /// runs with it empty), what left through its outputs as emitted,
    /// both with the node's counters looked up once. The call
    /// runs under the supervisor: a node that panics or overruns its
    /// budget is stopped, and what it had in flight is dropped and
    /// counted ([`contain`](Self::contain)); a stopped node's input is
    /// dropped and counted without a call.
    ///
    /// `UNWATCHED` says the caller knows the supervisor
    /// [is unwatched](Supervisor::is_unwatched), so the call skips asking.
    #[inline]
    fn with_outputs<const UNWATCHED: bool>(
        &mut self,
        node: usize,
        f: impl FnOnce(&mut dyn Nanoservice, &mut Batch, &mut Outputs<'_>),
    ) {
        let node_counters = &self.counters.nodes[node];
        let batch_len = self.scratch.len() as u64;
        node_counters.received.add(batch_len);
        debug_assert!(!UNWATCHED || self.supervisor.is_unwatched());
        if UNWATCHED || self.supervisor.is_unwatched() {
            // The common case: no guard, no budget, every node running.
            debug_assert!(self.supervisor.is_running(node));
            let GraphNode {
                service,
                edges,
                staging,
            } = &mut self.nodes[node];
            let mut outputs = Outputs {
                edges,
                staging,
                node: node_counters,
                core: &self.counters,
                fabric: &mut self.fabric,
                emitted: 0,
                staged: false,
            };
            f(&mut **service, &mut self.scratch, &mut outputs);
            outputs.flush();
            node_counters.emitted.add(outputs.emitted);
            return;
        }
        if !self.supervisor.is_running(node) {
            self.scratch.clear();
            node_counters.supervision.dropped.add(batch_len);
            return;
        }
        let GraphNode {
            service,
            edges,
            staging,
        } = &mut self.nodes[node];
        let mut outputs = Outputs {
            edges,
            staging,
            node: node_counters,
            core: &self.counters,
            fabric: &mut self.fabric,
            emitted: 0,
            staged: false,
        };
        let service = &mut **service;
        let scratch = &mut self.scratch;
        let started_ns = self.supervisor.budget_ns().map(|_| (self.clock)());
        // Unguarded (the common case), the call is made straight, without
        // the `Option` that hands a `FnOnce` to the guard's `FnMut`.
        let outcome = if self.supervisor.guard().is_none() {
            f(service, scratch, &mut outputs);
            Ok(())
        } else {
            let mut f = Some(f);
            self.supervisor.guarded(|| {
                if let Some(f) = f.take() {
                    f(service, scratch, &mut outputs);
                }
            })
        };
        let outcome = match (outcome, started_ns) {
            // Time the node spent in parts it supervises itself (its own
            // budget checks judged those) is not the node's.
            (Ok(()), Some(started_ns)) => self.supervisor.check_budget(
                started_ns.saturating_add(service.take_contained_ns()),
                (self.clock)(),
            ),
            (outcome, _) => outcome,
        };
        match outcome {
            Ok(()) => {
                outputs.flush();
                node_counters.emitted.add(outputs.emitted);
            }
            Err(failure) => {
                outputs.discard_staged();
                let lost = batch_len.saturating_sub(outputs.emitted);
                self.contain(node, &failure, lost);
            }
        }
    }

    /// Stops `node` after `failure`: drops what it had in flight (the
    /// `lost` packets of the batch it failed on that it had not handed on
    /// yet, and its input queue), counts them, and lets the supervisor
    /// schedule its rebuild. What it had emitted but not handed on is
    /// already discarded: a failed service's output is not trusted. The
    /// failed service stays in place, never called, until the rebuild
    /// replaces it.
    #[cold]
    #[inline(never)]
    fn contain(&mut self, node: usize, failure: &Failure, lost: u64) {
        let in_flight = lost + self.fabric.queues[node].clear() as u64;
        self.scratch.clear();
        let counters = &self.counters.nodes[node];
        // The failure's own time, not the poll's: an overrun ends long
        // after the poll began, and the backoff counts from its end.
        let failed_at_ns = (self.clock)();
        self.supervisor.fail(
            node,
            counters.name,
            failure,
            failed_at_ns,
            in_flight,
            &counters.supervision,
        );
    }

    /// Rebuilds node `node` (its index in `CoreCounters::nodes`) from its
    /// factory now, as supervision does after a failure's backoff (an
    /// operator's restart; tests use it to check that a factory rebuilds
    /// a working node). False when it has no factory.
    pub fn restart_node(&mut self, node: usize) -> bool {
        let Some(rebuild) = self.supervisor.take_rebuild(node) else {
            return false;
        };
        // A running node is healthy: dropped, whatever the guard.
        let drop_old = self.supervisor.is_running(node) || self.supervisor.drops_failed();
        self.rebuild_node(node, rebuild, drop_old);
        self.last_tick_ns = None;
        true
    }

    /// Rebuilds every node whose backoff is over, from its factory, under
    /// the guard: a factory (or the failed service's drop) that panics
    /// counts as one more failure.
    #[cold]
    #[inline(never)]
    fn restart_due(&mut self) {
        while let Some((node, rebuild)) = self.supervisor.take_due(self.fabric.now_ns) {
            let drop_old = self.supervisor.drops_failed();
            self.rebuild_node(node, rebuild, drop_old);
        }
        // A rebuilt node ticks at once (timers, gratuitous ARP).
        self.last_tick_ns = None;
    }

    /// Replaces `node` with what `rebuild` builds, under the guard; the
    /// old node is dropped with `drop_old`, else leaked (see
    /// `Guard::unwinds`).
    fn rebuild_node(&mut self, node: usize, mut rebuild: Rebuild, drop_old: bool) {
        {
            let nodes = &mut self.nodes;
            let outcome = self.supervisor.guarded(|| {
                // Built first: a factory that fails leaves the links in
                // the failed node for the next attempt.
                let mut fresh = rebuild();
                if let Some(links) = nodes[node].service.take_links() {
                    fresh.adopt_links(links);
                }
                let failed = core::mem::replace(&mut nodes[node].service, fresh);
                if drop_old {
                    drop(failed);
                } else {
                    core::mem::forget(failed);
                }
            });
            self.supervisor.return_rebuild(node, rebuild);
            let counters = &self.counters.nodes[node];
            match outcome {
                Ok(()) => {
                    self.supervisor.restarted(
                        node,
                        counters.name,
                        self.fabric.now_ns,
                        &counters.supervision,
                    );
                }
                Err(failure) => {
                    self.supervisor.fail(
                        node,
                        counters.name,
                        &failure,
                        self.fabric.now_ns,
                        0,
                        &counters.supervision,
                    );
                }
            }
        }
    }

    /// Transmits every staged burst.
    pub(crate) fn flush_staged(&mut self) {
        self.flush();
    }

    /// Transmits every staged burst.
    fn flush(&mut self) {
        for port in &mut self.fabric.ports {
            if !port.staging.is_empty() {
                port.flush(&self.counters, self.fabric.now_ns);
            }
        }
        for ring in &mut self.fabric.rings_out {
            if !ring.staging.is_empty() {
                ring.flush(&self.counters);
            }
        }
    }
}
