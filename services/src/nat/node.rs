//! `Nat`: translates each packet at `ipv4:forward` by its binding, makes
//! bindings for flows the inside opens towards the outside (masquerade)
//! and for forwarded ports, tracks every translated flow in a conntrack
//! table (whose timeouts decide when a binding goes), and translates ICMP
//! errors about translated flows with the packet they quote.

use super::bindings::{BindError, Binding, Bindings, Way};
use super::translate::{rewrite, rewrite_error};
use crate::conntrack::{
    CtState, FiveTuple, FlowPacket, FlowSteering, FlowTable, ParseError, SteerCounts, SteeredNode,
    owner_core,
};
use crate::firewall::{Action, Filter, Refusals};
use crate::route::RoutingTable;
use crate::wire::ipv4::protocol;
use alloc::vec::Vec;
use core::net::Ipv4Addr;
use dataplane::{
    Batch, DropCode, Ipv4Cidr, Nanoservice, Outputs, Packet, Verdict, drop_reasons, outputs,
};

drop_reasons! {
    /// Why [`Nat`] drops a packet.
    NatDrop {
        /// Not a readable IPv4 packet with its transport header.
        Malformed = "malformed",
        /// A non-first fragment: no ports to find its binding by.
        Fragment = "fragment",
        /// From the outside (or to our address) and no binding or
        /// forwarded port fits it.
        NoMapping = "no-mapping",
        /// Fits a binding's flow nowhere (a TCP segment that neither opens
        /// nor continues it), or would need a binding it cannot open.
        Invalid = "invalid",
        /// The binding table, or the flow's conntrack bucket, is full.
        TableFull = "table-full",
        /// No free masquerade port for the flow's destination.
        PortsExhausted = "ports-exhausted",
        /// The reply tuple is another binding's already.
        Conflict = "conflict",
        /// A protocol other than TCP, UDP and ICMP towards the outside.
        Unsupported = "unsupported",
        /// Belongs to another core's flows, whose ring was full.
        RingFull = "ring-full",
        /// The filter's rule or default policy said drop.
        Denied = "denied",
        /// The filter's rule or default policy said reject (RST or ICMP
        /// sent).
        Rejected = "rejected",
    }
}

outputs! {
    /// Where [`Nat`] sends a packet.
    NatOutput {
        /// On to the next service at the hook point (the router).
        Pass = "pass",
        /// The filter's RSTs and ICMP errors, through routing.
        Errors = "errors",
    }
}

/// The node's events: the flow table's first (as `conntrack`'s), then
/// translations.
const EVENTS: &[&str] = &[
    "flows-created",
    "flows-expired",
    "flows-evicted",
    "translated",
    "untranslated",
    "masqueraded-flows",
    "forwarded-flows",
    "hairpin-flows",
    "errors-translated",
    "bindings-released",
    "handed-off",
    "handed-in",
    "filter-allowed",
    "filter-default-policy",
];
const TRANSLATED: usize = 3;
const UNTRANSLATED: usize = 4;
const MASQUERADED: usize = 5;
const FORWARDED: usize = 6;
const HAIRPIN: usize = 7;
const ERRORS_TRANSLATED: usize = 8;
const RELEASED: usize = 9;
const HANDED_OFF: usize = 10;
const HANDED_IN: usize = 11;
const FILTER_ALLOWED: usize = 12;
const FILTER_DEFAULT: usize = 13;

/// One forwarded port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forward {
    /// TCP or UDP.
    pub protocol: u8,
    /// The port on the outside address.
    pub port: u16,
    /// The inside server.
    pub to: (Ipv4Addr, u16),
}

/// What a NAT does, from its spec table.
#[derive(Debug, Clone)]
pub struct NatSettings {
    /// The outside interface's index.
    pub outside: usize,
    /// Its address, which masqueraded flows leave from.
    pub address: Ipv4Addr,
    /// Sources to masquerade (empty: any).
    pub inside: Vec<Ipv4Cidr>,
    /// Masquerade ports and echo identifiers, inclusive.
    pub ports: (u16, u16),
    /// Inside hosts may reach forwarded ports.
    pub hairpin: bool,
    /// Forwarded ports.
    pub forwards: Vec<Forward>,
}

/// The client end of a forwarded port's flow `tuple` belongs to (either
/// way, before or after translation, or quoted).
fn forward_client(settings: &NatSettings, tuple: &FiveTuple) -> Option<(Ipv4Addr, u16)> {
    let address = settings.address;
    settings
        .forwards
        .iter()
        .filter(|forward| forward.protocol == tuple.protocol)
        .find_map(|forward| {
            let source = (tuple.source, tuple.source_port);
            let destination = (tuple.destination, tuple.destination_port);
            if destination == (address, forward.port) || destination == forward.to {
                Some(source)
            } else if source == (address, forward.port) || source == forward.to {
                Some(destination)
            } else {
                None
            }
        })
}

/// What the owner core of `tuple`'s flow is hashed from: a forwarded
/// port's flows by their client's address and port (the one end both
/// directions share), every other flow by its tuple (masquerade ports are
/// chosen so that the reply's tuple hashes to the core that chose them).
pub fn steering_key(settings: &NatSettings, tuple: &FiveTuple) -> FiveTuple {
    match forward_client(settings, tuple) {
        Some((address, port)) => FiveTuple {
            source: address,
            destination: Ipv4Addr::UNSPECIFIED,
            source_port: port,
            destination_port: 0,
            protocol: tuple.protocol,
        },
        None => *tuple,
    }
}

/// The NAT of one core.
#[derive(Debug)]
pub struct Nat {
    table: FlowTable,
    bindings: Bindings,
    settings: NatSettings,
    routes: RoutingTable,
    steering: Option<FlowSteering>,
    /// With steering: this core, the cores, and the seed of the owner
    /// hash (kept apart from `steering`, which is taken out while the
    /// packets handed in are judged).
    landing: Option<(usize, usize, u64)>,
    /// Firewall rules on the inside view, with what rejects answer from.
    filter: Option<(Filter, Refusals)>,
}

/// A packet's binding once found or made.
type Bound = (usize, Binding, Way, bool);

impl Nat {
    /// A NAT tracking flows in `table`, holding at most `capacity`
    /// bindings (hashed with `seed`), routing with `routes` to tell the
    /// outside from the inside.
    pub fn new(
        table: FlowTable,
        capacity: usize,
        settings: NatSettings,
        routes: RoutingTable,
        seed: u64,
    ) -> Self {
        Self {
            table,
            bindings: Bindings::new(capacity, seed),
            settings,
            routes,
            steering: None,
            landing: None,
            filter: None,
        }
    }

    /// Judges every packet it passes with `filter` (the firewall of the
    /// same chain): on its source before source NAT and its destination
    /// after destination NAT, as nftables' forward hook sees it, in the
    /// conntrack state of its flow; rejects answer as `refusals` say.
    pub fn with_filter(mut self, filter: Filter, refusals: Refusals) -> Self {
        self.filter = Some((filter, refusals));
        self
    }

    /// The filter's hits per rule (none without a filter).
    pub fn filter_hits(&self) -> &[u64] {
        self.filter
            .as_ref()
            .map_or(&[], |(filter, _)| filter.rule_hits())
    }

    /// The filter's verdict on `packet` (as it arrived) whose inside view
    /// is `view` in `state`: `None` to let it through, else its drop
    /// (a reject's answer sent).
    fn filtered(
        &mut self,
        packet: &Packet,
        view: &FiveTuple,
        state: CtState,
        out: &mut Outputs<'_>,
    ) -> Option<Verdict> {
        let (filter, refusals) = self.filter.as_mut()?;
        let judged = filter.judge(view, state);
        if judged.rule.is_none() {
            out.count(FILTER_DEFAULT, 1);
        }
        match judged.action {
            Action::Allow => {
                out.count(FILTER_ALLOWED, 1);
                None
            }
            Action::Drop => Some(Verdict::drop(NatDrop::Denied)),
            Action::Reject => {
                if let Some(answer) = refusals.refusal(packet.payload(), out) {
                    out.emit(NatOutput::Errors.into(), answer);
                }
                Some(Verdict::drop(NatDrop::Rejected))
            }
        }
    }

    /// Brings both directions of every flow to one core over `steering`;
    /// masquerade ports are then chosen so that replies land on the core
    /// that chose them.
    pub fn with_steering(mut self, steering: FlowSteering) -> Self {
        self.landing = Some((steering.core(), steering.cores(), steering.seed()));
        self.steering = Some(steering);
        self
    }

    /// Takes over `previous`'s flows and bindings (the NAT the previous
    /// spec ran here) with its steering (whose rings the other cores'
    /// successors keep, so flows keep their owner cores and masquerade
    /// ports still land where they were chosen). Nothing is taken when
    /// the tables differ in size or the service runs on a different
    /// number of cores: then the flows start afresh. True when taken.
    pub fn adopt(&mut self, previous: Nat) -> bool {
        let cores = |landing: &Option<(usize, usize, u64)>| landing.map(|(_, cores, _)| cores);
        if cores(&self.landing) != cores(&previous.landing)
            || self.table.capacity() != previous.table.capacity()
            || self.bindings.capacity() != previous.bindings.capacity()
        {
            return false;
        }
        self.table = previous.table;
        self.bindings = previous.bindings;
        if previous.steering.is_some() {
            self.steering = previous.steering;
            self.landing = previous.landing;
        }
        true
    }

    /// The flow table.
    pub fn table(&self) -> &FlowTable {
        &self.table
    }

    /// The bindings.
    pub fn bindings(&self) -> &Bindings {
        &self.bindings
    }

    /// See [`steering_key`].
    pub fn steering_key(&self, tuple: &FiveTuple) -> FiveTuple {
        steering_key(&self.settings, tuple)
    }

    fn comes_from_outside(&self, source: Ipv4Addr) -> bool {
        self.routes
            .lookup(source)
            .is_some_and(|(interface, _)| interface == self.settings.outside)
    }

    fn goes_outside(&self, destination: Ipv4Addr) -> bool {
        self.routes
            .lookup(destination)
            .is_some_and(|(interface, _)| interface == self.settings.outside)
    }

    fn masquerades(&self, source: Ipv4Addr) -> bool {
        self.settings.inside.is_empty()
            || self
                .settings
                .inside
                .iter()
                .any(|prefix| prefix.contains(source))
    }

    /// Binds `original` to a masquerade port for destination `to`.
    fn masquerade(&mut self, original: FiveTuple, to: (Ipv4Addr, u16)) -> Result<usize, BindError> {
        let (landing, settings) = (self.landing, &self.settings);
        let lands = |reply: &FiveTuple| {
            landing.is_none_or(|(core, cores, seed)| {
                owner_core(&steering_key(settings, reply), cores, seed) == core
            })
        };
        self.bindings
            .insert_masquerade(original, to, settings.address, settings.ports, lands)
    }

    /// A binding for a packet that has none, or `Ok(None)` when it passes
    /// untranslated.
    fn open(&mut self, flow: &FlowPacket, out: &mut Outputs<'_>) -> Result<Option<Bound>, Verdict> {
        let tuple = flow.tuple;
        let bind_error = |error| match error {
            BindError::Full => Verdict::drop(NatDrop::TableFull),
            BindError::PortsExhausted => Verdict::drop(NatDrop::PortsExhausted),
            BindError::Conflict => Verdict::drop(NatDrop::Conflict),
        };
        let slot = if tuple.destination == self.settings.address {
            // Claimed from the local stack: a forwarded port, or nothing.
            let Some(forward) = self
                .settings
                .forwards
                .iter()
                .find(|forward| {
                    forward.protocol == tuple.protocol && forward.port == tuple.destination_port
                })
                .copied()
            else {
                return Err(Verdict::drop(NatDrop::NoMapping));
            };
            if !flow.opens {
                return Err(Verdict::drop(NatDrop::Invalid));
            }
            if self.comes_from_outside(tuple.source) {
                let translated = FiveTuple {
                    destination: forward.to.0,
                    destination_port: forward.to.1,
                    ..tuple
                };
                let slot = self
                    .bindings
                    .insert(tuple, translated)
                    .map_err(bind_error)?;
                out.count(FORWARDED, 1);
                slot
            } else if self.settings.hairpin {
                let slot = self.masquerade(tuple, forward.to).map_err(bind_error)?;
                out.count(HAIRPIN, 1);
                slot
            } else {
                return Err(Verdict::drop(NatDrop::NoMapping));
            }
        } else if self.comes_from_outside(tuple.source) {
            return Err(Verdict::drop(NatDrop::NoMapping));
        } else if !self.goes_outside(tuple.destination) || !self.masquerades(tuple.source) {
            return Ok(None);
        } else if !matches!(
            tuple.protocol,
            protocol::TCP | protocol::UDP | protocol::ICMP
        ) {
            return Err(Verdict::drop(NatDrop::Unsupported));
        } else if !flow.opens {
            return Err(Verdict::drop(NatDrop::Invalid));
        } else {
            let slot = self
                .masquerade(tuple, (tuple.destination, tuple.destination_port))
                .map_err(bind_error)?;
            out.count(MASQUERADED, 1);
            slot
        };
        match self.bindings.get(slot) {
            Some(binding) => Ok(Some((slot, binding, Way::Original, true))),
            None => Err(Verdict::drop(NatDrop::TableFull)),
        }
    }

    /// `steer`: a packet of another core's flow is kept in the batch for
    /// [`FlowSteering::hand_off`] (false for packets handed in).
    fn verdict(&mut self, packet: &mut Packet, steer: bool, out: &mut Outputs<'_>) -> Verdict {
        let now_ns = out.now_ns();
        let flow = match FlowPacket::parse(packet.payload()) {
            Ok(flow) => flow,
            Err(ParseError::Fragment) => return Verdict::drop(NatDrop::Fragment),
            Err(_) => return Verdict::drop(NatDrop::Malformed),
        };
        if steer && self.steering.is_some() {
            let key = self.steering_key(flow.quoted.as_ref().unwrap_or(&flow.tuple));
            if let Some(steering) = &mut self.steering
                && steering.elsewhere(&key).is_some()
            {
                return Verdict::Keep;
            }
        }
        if let Some(quoted) = flow.quoted {
            return self.error(packet, &flow, quoted, now_ns, out);
        }
        let (slot, binding, way, created) = match self.bindings.find(&flow.tuple) {
            Some((slot, binding, way)) => (slot, binding, way, false),
            None => match self.open(&flow, out) {
                Ok(Some(bound)) => bound,
                Ok(None) => return self.untranslated(packet, &flow, now_ns, out),
                Err(verdict) => return verdict,
            },
        };
        let inside_view = FlowPacket {
            tuple: binding.tracked_as(way),
            ..flow
        };
        let tracked = self.table.track(&inside_view, now_ns);
        let reason = match tracked.state {
            CtState::Full => Some(NatDrop::TableFull),
            CtState::Invalid => Some(NatDrop::Invalid),
            _ => None,
        };
        if let Some(reason) = reason {
            if created {
                self.bindings.release(slot);
            }
            return Verdict::drop(reason);
        }
        let leaves = binding.leaves_as(way);
        if self.filter.is_some() {
            // Source as it came, destination as it leaves.
            let view = FiveTuple {
                destination: leaves.destination,
                destination_port: leaves.destination_port,
                ..flow.tuple
            };
            if let Some(refused) = self.filtered(packet, &view, tracked.state, out) {
                if created {
                    self.bindings.release(slot);
                    self.table.forget(&inside_view.tuple, now_ns);
                }
                return refused;
            }
        }
        if rewrite(packet.payload_mut(), &leaves, false).is_err() {
            return Verdict::drop(NatDrop::Malformed);
        }
        out.count(TRANSLATED, 1);
        Verdict::emit(NatOutput::Pass.into())
    }

    /// An ICMP error quoting `quoted` (as that packet travelled).
    fn error(
        &mut self,
        packet: &mut Packet,
        flow: &FlowPacket,
        quoted: FiveTuple,
        now_ns: u64,
        out: &mut Outputs<'_>,
    ) -> Verdict {
        // The error travels against the packet it quotes.
        let arriving = quoted.reversed();
        let Some((_, binding, way)) = self.bindings.find(&arriving) else {
            let outer = flow.tuple;
            if outer.destination == self.settings.address
                || self.comes_from_outside(outer.source)
                || self.goes_outside(outer.destination)
            {
                // About nothing we translated: it would tell the outside
                // an inside address, or the inside nothing it knows.
                return Verdict::drop(NatDrop::NoMapping);
            }
            return self.untranslated(packet, flow, now_ns, out);
        };
        let related = FlowPacket {
            quoted: Some(binding.original),
            ..*flow
        };
        if self.table.track(&related, now_ns).state != CtState::Related {
            return Verdict::drop(NatDrop::Invalid);
        }
        let leaves = binding.leaves_as(way);
        let outer = flow.tuple;
        let source = if outer.source == arriving.source || leaves.source == self.settings.address {
            leaves.source
        } else {
            outer.source
        };
        let destination = if outer.destination == arriving.destination {
            leaves.destination
        } else {
            outer.destination
        };
        if self.filter.is_some() {
            // Its source as it came, its destination as it leaves.
            let view = FiveTuple {
                destination,
                ..outer
            };
            if let Some(refused) = self.filtered(packet, &view, CtState::Related, out) {
                return refused;
            }
        }
        if rewrite_error(
            packet.payload_mut(),
            source,
            destination,
            &leaves.reversed(),
        )
        .is_err()
        {
            return Verdict::drop(NatDrop::Malformed);
        }
        out.count(ERRORS_TRANSLATED, 1);
        Verdict::emit(NatOutput::Pass.into())
    }

    /// A packet the NAT leaves as it is (inside to inside, or from a
    /// source it does not masquerade): passed, after the filter when
    /// there is one (its flow then tracked for the filter's states).
    fn untranslated(
        &mut self,
        packet: &Packet,
        flow: &FlowPacket,
        now_ns: u64,
        out: &mut Outputs<'_>,
    ) -> Verdict {
        if self.filter.is_some() {
            let tracked = self.table.track(flow, now_ns);
            if tracked.state == CtState::Full {
                return Verdict::drop(NatDrop::TableFull);
            }
            if let Some(refused) = self.filtered(packet, &flow.tuple, tracked.state, out) {
                if tracked.created {
                    self.table.forget(&flow.tuple, now_ns);
                }
                return refused;
            }
        }
        out.count(UNTRANSLATED, 1);
        Verdict::emit(NatOutput::Pass.into())
    }

    fn count(&mut self, out: &mut Outputs<'_>) {
        crate::conntrack::count_table(self.table.take_stats(), out);
        let released = self.bindings.take_released();
        if released > 0 {
            out.count(RELEASED, released);
        }
    }
}

impl SteeredNode for Nat {
    fn steering(&mut self) -> &mut Option<FlowSteering> {
        &mut self.steering
    }

    fn judge(&mut self, packet: &mut Packet, steer: bool, out: &mut Outputs<'_>) -> Verdict {
        self.verdict(packet, steer, out)
    }
}

/// Where the NAT counts its steering.
const STEER_COUNTS: SteerCounts = SteerCounts {
    handed_off: HANDED_OFF,
    handed_in: HANDED_IN,
    ring_full: DropCode(NatDrop::RingFull as u8),
};

impl Nanoservice for Nat {
    fn name(&self) -> &'static str {
        "nat"
    }

    /// `errors` only with a filter (which alone sends anything there).
    fn outputs(&self) -> &'static [&'static str] {
        if self.filter.is_some() {
            NatOutput::NAMES
        } else {
            &NatOutput::NAMES[..1]
        }
    }

    fn drop_reasons(&self) -> &'static [&'static str] {
        NatDrop::NAMES
    }

    fn events(&self) -> &'static [&'static str] {
        EVENTS
    }

    fn process(&mut self, batch: &mut Batch, out: &mut Outputs<'_>) {
        FlowSteering::process(self, batch, out, STEER_COUNTS);
        self.count(out);
    }

    /// Now when another core handed this one packets of its flows.
    fn next_deadline_ns(&self) -> Option<u64> {
        self.steering
            .as_ref()
            .is_some_and(FlowSteering::pending)
            .then_some(0)
    }

    fn tick(&mut self, out: &mut Outputs<'_>) {
        FlowSteering::take_in(self, out, HANDED_IN);
        let now_ns = out.now_ns();
        self.table.sweep(now_ns, crate::conntrack::SWEEP_PER_TICK);
        self.bindings
            .sweep(&self.table, now_ns, crate::conntrack::SWEEP_PER_TICK);
        self.count(out);
    }
}
