//! The `Nanoservice` trait and `Outputs`, through which a service emits.

use crate::executor::Fabric;
use crate::mem::burst::append_burst;
use crate::stats::{CoreCounters, MAX_DROP_REASONS, NodeCounters};
use crate::{BURST_SIZE, Batch, Mempool, Packet, Target};
use arrayvec::ArrayVec;

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

/// What a service decided for one packet it looked at in place (see
/// [`Outputs::dispatch`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send it along this output (see [`Verdict::emit`]).
    Emit(u8),
    /// Drop it, counted under this reason.
    Drop(DropCode),
    /// Leave it in the batch: the service handles it itself afterwards
    /// (to keep it, say, while an address resolves).
    Keep,
}

impl Verdict {
    /// A code no verdict has (see [`code`](Self::code)): a loop over a
    /// burst's codes starts from it for "none yet", and
    /// [`from_code`](Self::from_code) reads it as keep.
    pub const NO_CODE: u16 = u16::MAX;

    /// Send along output `output`. Outputs past 254 do not fit: they
    /// become 255, which is invalid unless the node has 256 outputs.
    #[inline(always)]
    pub const fn emit(output: usize) -> Self {
        Self::Emit(if output < u8::MAX as usize {
            output as u8
        } else {
            u8::MAX
        })
    }

    /// Drop, counted under `reason`.
    #[inline(always)]
    pub fn drop(reason: impl Into<DropCode>) -> Self {
        Self::Drop(reason.into())
    }

    /// The verdict as one integer, so that a burst's verdicts compare as
    /// plain numbers (one instruction): outputs are `0..=0xff`, drops
    /// `0x100..=0x1ff`, keep `0x200`. [`NO_CODE`](Self::NO_CODE)
    /// (`u16::MAX`) is never a verdict's code.
    #[inline(always)]
    pub const fn code(self) -> u16 {
        match self {
            Self::Emit(output) => output as u16,
            Self::Drop(reason) => 0x100 | reason.0 as u16,
            Self::Keep => 0x200,
        }
    }

    /// The verdict whose [`code`](Self::code) is `code`; every code past
    /// the drops (`0x200` and up) reads as keep.
    #[inline(always)]
    pub const fn from_code(code: u16) -> Self {
        match code >> 8 {
            0 => Self::Emit(code as u8),
            1 => Self::Drop(DropCode(code as u8)),
            _ => Self::Keep,
        }
    }
}

/// A small state machine with one job. It receives a batch, and emits each
/// packet to one of its named outputs or drops it with a reason. It runs on
/// one core, to completion, with no locks.
pub trait Nanoservice: core::any::Any {
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

    /// Names of the events the service counts with [`Outputs::count`]
    /// (things that are not drops), at most `MAX_EVENTS`.
    fn events(&self) -> &'static [&'static str] {
        &[]
    }

    /// Handles every packet of `batch`: each must be emitted or dropped
    /// (packets left behind are dropped and counted as unconsumed).
    fn process(&mut self, batch: &mut Batch, out: &mut Outputs<'_>);

    /// Housekeeping: expire cache entries, retransmit, send a gratuitous
    /// ARP. Called on the first poll, about once per millisecond of the
    /// platform clock while the core polls, and on the first poll after
    /// the core slept. Packets emitted here flow like any others.
    fn tick(&mut self, _out: &mut Outputs<'_>) {}

    /// When the service next needs its [`tick`](Self::tick) although no
    /// packet comes: the earliest of its timers, on the platform clock
    /// (`Outputs::now_ns`), or `None` when it has none. A time already
    /// past means "now": the core does not sleep. A core with nothing to
    /// do sleeps until the earliest deadline of its services, so a service
    /// whose `tick` does timed work must say when here; the default says
    /// it has none. Asked only when the core is about to sleep.
    fn next_deadline_ns(&self) -> Option<u64> {
        None
    }

    /// The supervision counters of what this node supervises inside
    /// itself (the `tcp` node's apps), asked when the graph is built:
    /// they are exported beside the nodes'. None by default.
    fn supervised_parts(&self) -> alloc::vec::Vec<crate::stats::PartCounters> {
        alloc::vec::Vec::new()
    }

    /// Time the last call spent in parts this node supervises itself, in
    /// nanoseconds, and resets it. The executor does not hold it against
    /// the node's own budget: the node already judged each part's call
    /// against the budget (a slow app fails, not the TCP stack). 0 by
    /// default.
    fn take_contained_ns(&mut self) -> u64 {
        0
    }

    /// The ends of links to other cores this node holds (SPSC rings made
    /// once per boot, shared tables), taken out of it so that its
    /// replacement can [`adopt`](Self::adopt_links) them: supervision
    /// asks a failed node for them when its rebuild has built the new
    /// one. What a ring holds stays in the ring. None by default (a node
    /// without links).
    fn take_links(&mut self) -> Option<alloc::boxed::Box<dyn core::any::Any>> {
        None
    }

    /// Takes the links a failed node of the same kind gave up
    /// ([`take_links`](Self::take_links)). Ignored by default.
    fn adopt_links(&mut self, _links: alloc::boxed::Box<dyn core::any::Any>) {}
}

/// A whole burst a node handed straight to the next node (see
/// [`Outputs::emit_batch`]): the executor runs that node on it as soon as
/// the emitting node returns, so a burst runs down a chain of nodes
/// without entering a node queue between them (VPP's graph dispatch: a
/// node's output vector is the next node's input).
pub(crate) struct Handoff {
    /// The node to run next, when a burst waits in `burst`.
    pub(crate) node: Option<usize>,
    /// The burst (empty while `node` is `None`).
    pub(crate) burst: Batch,
}

impl Handoff {
    /// No burst handed on.
    pub(crate) fn new() -> Self {
        Self {
            node: None,
            burst: Batch::new(),
        }
    }
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
    /// The node queues, ports and rings outputs lead to, and the hand-off
    /// where a whole burst for a node with nothing queued goes.
    pub(crate) fabric: &'a mut Fabric,
    pub(crate) emitted: u64,
    /// False until a packet is staged: a node that only moved whole bursts
    /// on (or dropped) leaves no staged burst for [`flush`](Self::flush)
    /// to look for.
    pub(crate) staged: bool,
}

impl Outputs<'_> {
    /// Sends `packet` along output `output`.
    #[inline(always)]
    pub fn emit(&mut self, output: usize, packet: Packet) {
        match self.staging.get_mut(output) {
            Some(staging) if !staging.is_full() => {
                // Cannot fail: the burst has room.
                let _ = staging.push(packet);
                self.staged = true;
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
        self.staged = true;
    }

    /// Sends every packet of `batch` along output `output`, in order, and
    /// leaves `batch` empty: what `emit` does packet by packet, but the
    /// burst moves on in one copy, or none into an empty node queue.
    #[inline]
    pub fn emit_batch(&mut self, output: usize, batch: &mut Batch) {
        // The common case on a busy path, kept free of the delivery code so
        // that it needs no saved registers: nothing staged on the output,
        // a node behind it with nothing queued, no burst handed on yet.
        // Nothing is staged on any output until `staged` is set (the
        // staged bursts are all empty when a node's call starts).
        if let Some(Target::Node(node)) = self.edges.get(output)
            && (!self.staged || self.staging.get(output).is_some_and(Batch::is_empty))
            && self.fabric.handoff.node.is_none()
            && !batch.is_empty()
            && self.fabric.queue_is_empty(node.0)
        {
            self.emitted += batch.len() as u64;
            self.fabric.handoff.burst.swap(batch);
            self.fabric.handoff.node = Some(node.0);
            return;
        }
        // A full burst for a port with nothing staged before it: sent now,
        // as `deliver` would send it, without the out-of-line call.
        if let Some(Target::Port(port)) = self.edges.get(output)
            && (!self.staged || self.staging.get(output).is_some_and(Batch::is_empty))
            && batch.is_full()
            && let Some(port) = self.fabric.ports.get_mut(port.0)
            && port.staging.is_empty()
        {
            self.emitted += batch.len() as u64;
            let now_ns = self.fabric.now_ns;
            port.transmit(batch, self.core, now_ns);
            return;
        }
        self.emit_batch_cold(output, batch);
    }

    /// `emit_batch` for every other case: a staged burst to join or flush
    /// first, a queue, port, ring or sink behind the output, a burst
    /// already handed on, or no such output.
    #[inline(never)]
    fn emit_batch_cold(&mut self, output: usize, batch: &mut Batch) {
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
        if let Target::Node(node) = self.edges[output]
            && self.fabric.handoff.node.is_none()
            && !batch.is_empty()
            && self.fabric.queue_is_empty(node.0)
        {
            // Nothing waits before it at that node: it runs on this very
            // burst when this node returns (the executor's `run_node`).
            self.fabric.handoff.burst.swap(batch);
            self.fabric.handoff.node = Some(node.0);
            return;
        }
        deliver(self.edges[output], batch, self.core, self.fabric);
    }

    /// Decides every packet of `batch` in place with `decide`, then sends
    /// each where its [`Verdict`] says, in order; `Keep` packets stay in
    /// `batch`, in order, and the rest leave it. `decide` may use the
    /// outputs too (to emit packets it makes, or read the clock).
    ///
    /// When every packet gets the same verdict (the common case on a busy
    /// path), the whole batch moves on at once, as [`emit_batch`] moves it,
    /// with no per-packet push: the reason to prefer this over a loop of
    /// `emit` and `drop`.
    ///
    /// [`emit_batch`]: Self::emit_batch
    #[inline(always)]
    pub fn dispatch(
        &mut self,
        batch: &mut Batch,
        mut decide: impl FnMut(&mut Packet, &mut Self) -> Verdict,
    ) {
        self.dispatch_codes(batch, |packet, outputs| decide(packet, outputs).code());
    }

    /// [`dispatch`](Self::dispatch) for a node whose common packet is told
    /// by a quick test: `fast` gives that packet's output, or `None` for a
    /// packet that `slow` then decides. Each path makes its verdict's code
    /// itself, so the loop does not test, after the two meet, which one
    /// it took.
    #[inline(always)]
    pub fn dispatch_fast(
        &mut self,
        batch: &mut Batch,
        mut fast: impl FnMut(&mut Packet) -> Option<u8>,
        mut slow: impl FnMut(&mut Packet, &mut Self) -> Verdict,
    ) {
        self.dispatch_codes(batch, |packet, outputs| match fast(packet) {
            Some(output) => u16::from(output),
            None => slow(packet, outputs).code(),
        });
    }

    /// [`dispatch`](Self::dispatch) with each verdict as its code.
    ///
    /// The loop walks the packets by pointer and, while each gets the
    /// first one's code (the busy path), writes nothing per packet: only a
    /// packet that goes another way has its code kept, at its index, for
    /// `dispatch_mixed`. `decide` is called from this one place, so it is
    /// inlined.
    #[inline(always)]
    fn dispatch_codes(
        &mut self,
        batch: &mut Batch,
        mut decide: impl FnMut(&mut Packet, &mut Self) -> u16,
    ) {
        let count = batch.len();
        if count == 0 {
            // Nothing to decide, nothing to move.
            return;
        }
        // `NO_CODE` where a packet got the first one's code; `first` is
        // `NO_CODE` until the first packet is decided.
        let mut codes = [Verdict::NO_CODE; BURST_SIZE];
        let mut first = Verdict::NO_CODE;
        let mut mixed = false;
        let mut packets = batch.iter_mut();
        while let Some(packet) = packets.next() {
            let code = decide(packet, self);
            if code == first {
                continue;
            }
            if first == Verdict::NO_CODE {
                first = code;
                continue;
            }
            // The index of the packet just decided: below `count`, which
            // is at most `BURST_SIZE`. Indexed, not `get_mut`: were it ever
            // out of range, a silent miss would send the packet the first
            // one's way.
            codes[count - packets.len() - 1] = code;
            mixed = true;
        }
        if mixed {
            self.dispatch_mixed(batch, first, &codes);
            return;
        }
        match Verdict::from_code(first) {
            Verdict::Emit(output) => self.emit_batch(usize::from(output), batch),
            Verdict::Drop(reason) => {
                let index = usize::from(reason.0).min(MAX_DROP_REASONS - 1);
                self.node.drops[index].add(batch.len() as u64);
                batch.clear();
            }
            Verdict::Keep => {}
        }
    }

    /// `dispatch` for a batch whose packets go different ways: one at a
    /// time, each with its code in `codes`, or `first` where that is
    /// `Verdict::NO_CODE`.
    #[inline(never)]
    fn dispatch_mixed(&mut self, batch: &mut Batch, first: u16, codes: &[u16; BURST_SIZE]) {
        let mut kept: ArrayVec<Packet, BURST_SIZE> = ArrayVec::new();
        for (packet, &code) in batch.drain().zip(codes) {
            let code = if code == Verdict::NO_CODE {
                first
            } else {
                code
            };
            match Verdict::from_code(code) {
                Verdict::Emit(output) => self.emit(usize::from(output), packet),
                Verdict::Drop(reason) => self.drop(packet, reason),
                Verdict::Keep => kept.push(packet),
            }
        }
        append_burst(&mut kept, batch.packets_mut());
    }

    /// Hands output `output`'s staged burst on to its target.
    #[inline(never)]
    fn flush_output(&mut self, output: usize) {
        let staging = &mut self.staging[output];
        self.emitted += staging.len() as u64;
        deliver(self.edges[output], staging, self.core, self.fabric);
    }

    /// Hands every staged burst on to its target, in output order (the
    /// executor calls this when the node returns).
    #[inline]
    pub(crate) fn flush(&mut self) {
        if !self.staged {
            return;
        }
        for (staging, target) in self.staging.iter_mut().zip(self.edges) {
            if staging.is_empty() {
                continue;
            }
            self.emitted += staging.len() as u64;
            deliver(*target, staging, self.core, self.fabric);
        }
    }

    /// Drops every staged burst instead of handing it on (the node
    /// failed: what it emitted is not trusted).
    #[cold]
    pub(crate) fn discard_staged(&mut self) {
        for staging in self.staging.iter_mut() {
            staging.clear();
        }
    }

    /// Drops `packet`, counting it under `reason`.
    #[inline]
    pub fn drop(&mut self, packet: Packet, reason: impl Into<DropCode>) {
        let index = usize::from(reason.into().0).min(MAX_DROP_REASONS - 1);
        self.node.drops[index].increment();
        drop(packet);
    }

    /// Counts `n` occurrences of the service's event `event` (an index into
    /// its `events()`); an index past `MAX_EVENTS` is not counted.
    #[inline]
    pub fn count(&mut self, event: usize, n: u64) {
        if let Some(counter) = self.node.events.get(event) {
            counter.add(n);
        }
    }

    /// This node's supervision counters, for a service that contains its
    /// own failures (a Wasm module's quarantine) and says so in status.
    #[inline]
    pub fn supervision(&self) -> &crate::supervise::SupervisionCounters {
        &self.node.supervision
    }

    /// The platform's monotonic clock, in nanoseconds, read once per poll.
    #[inline]
    pub fn now_ns(&self) -> u64 {
        self.fabric.now_ns
    }

    /// A fresh packet from this core's pool, for services that originate
    /// traffic (ARP requests, ICMP errors); `None` when there is no pool or
    /// it is exhausted (the pool counts that).
    #[inline]
    pub fn alloc(&mut self) -> Option<Packet> {
        self.fabric.pool.as_ref().and_then(Mempool::alloc)
    }
}

/// Moves every packet of `batch` to `target` and leaves `batch` empty;
/// what the target has no room for is dropped and counted.
#[inline]
fn deliver(target: Target, batch: &mut Batch, core: &CoreCounters, fabric: &mut Fabric) {
    let now_ns = fabric.now_ns;
    match target {
        Target::Node(node) => {
            let overflow = fabric.enqueue(node.0, batch);
            if overflow > 0 {
                core.queue_full_drops.add(overflow as u64);
            }
        }
        Target::Port(port) => {
            let port = &mut fabric.ports[port.0];
            if port.staging.is_empty() && batch.is_full() {
                // A full burst with nothing staged before it: what joining
                // the staging burst and flushing it would send, minus a copy.
                port.transmit(batch, core, now_ns);
                return;
            }
            if port.staging.remaining_capacity() < batch.len() {
                port.flush(core, now_ns);
            }
            // The transmit burst has room now: a flushed one is empty.
            append_burst(batch.packets_mut(), port.staging.packets_mut());
        }
        Target::Ring(ring) => {
            let ring = &mut fabric.rings_out[ring.0];
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_verdict_has_the_no_code_sentinel_and_each_code_reads_back() {
        let verdicts = (0..=u8::MAX)
            .flat_map(|byte| [Verdict::Emit(byte), Verdict::Drop(DropCode(byte))])
            .chain([Verdict::Keep]);
        for verdict in verdicts {
            assert_ne!(verdict.code(), Verdict::NO_CODE, "{verdict:?}");
            assert_eq!(Verdict::from_code(verdict.code()), verdict);
        }
        // The sentinel, where a loop reads it back, is keep.
        assert_eq!(Verdict::from_code(Verdict::NO_CODE), Verdict::Keep);
    }
}
