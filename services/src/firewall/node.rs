//! `Firewall`: tracks each packet's flow, classifies it against the
//! rules, and allows, drops or rejects it. A flow whose first packet is
//! not allowed is forgotten again, so only accepted flows hold entries
//! (Linux confirms a conntrack entry only when its packet leaves).

use super::classifier::Classifier;
use super::filter::{Filter, Refusals};
use super::rule::Action;
use crate::conntrack::{
    CtState, FlowPacket, FlowSteering, FlowTable, ParseError, SteerCounts, SteeredNode,
};
use crate::icmp_error::ErrorLimiter;
use crate::route::{LocalAddresses, RoutingTable};
use crate::wire::ipv4::protocol;
use alloc::vec::Vec;
use dataplane::{Batch, DropCode, Nanoservice, Outputs, Packet, Verdict, drop_reasons, outputs};

drop_reasons! {
    /// Why [`Firewall`] drops a packet.
    FirewallDrop {
        /// Not a readable IPv4 packet with its transport header.
        Malformed = "malformed",
        /// A rule or the default policy said drop.
        Denied = "denied",
        /// A rule or the default policy said reject (RST or ICMP sent).
        Rejected = "rejected",
        /// Would open a flow whose bucket is full of established flows.
        TableFull = "table-full",
        /// Belongs to another core's flows, whose ring was full.
        RingFull = "ring-full",
    }
}

outputs! {
    /// Where [`Firewall`] sends a packet.
    FirewallOutput {
        /// On to the next service at the hook point (the router).
        Pass = "pass",
        /// RSTs and ICMP errors we send, through routing.
        Errors = "errors",
    }
}

/// Rules with a counter of their own in the node's events (`rule-0` to
/// `rule-15`); later rules share `rule-16+`. Every rule's count is kept
/// in [`Firewall::rule_hits`].
pub const RULE_COUNTERS: usize = 16;

/// The node's events: the flow table's first (as `conntrack`'s), then
/// verdict counts and per-rule hits.
const EVENTS: &[&str] = &[
    "flows-created",
    "flows-expired",
    "flows-evicted",
    "allowed",
    "resets-sent",
    "default-policy",
    "rule-0",
    "rule-1",
    "rule-2",
    "rule-3",
    "rule-4",
    "rule-5",
    "rule-6",
    "rule-7",
    "rule-8",
    "rule-9",
    "rule-10",
    "rule-11",
    "rule-12",
    "rule-13",
    "rule-14",
    "rule-15",
    "rule-16+",
    "handed-off",
    "handed-in",
];
const ALLOWED: usize = 3;
const RESETS: usize = 4;
const DEFAULT_POLICY: usize = 5;
const RULE_0: usize = 6;
const HANDED_OFF: usize = 23;
const HANDED_IN: usize = 24;

/// The firewall of one core.
#[derive(Debug)]
pub struct Firewall {
    table: FlowTable,
    filter: Filter,
    refusals: Refusals,
    steering: Option<FlowSteering>,
}

impl Firewall {
    /// A firewall applying `actions` (one per rule compiled into
    /// `classifier`, in order) and `default` to what no rule matches,
    /// tracking flows in `table`; rejects answer from our address on the
    /// interface that leads back.
    pub fn new(
        table: FlowTable,
        classifier: Classifier,
        actions: Vec<Action>,
        default: Action,
        (local, routes, errors): (LocalAddresses, RoutingTable, ErrorLimiter),
    ) -> Self {
        Self {
            table,
            filter: Filter::new(classifier, actions, default),
            refusals: Refusals {
                local,
                routes,
                errors,
            },
            steering: None,
        }
    }

    /// Brings both directions of every flow to one core over `steering`
    /// (see [`crate::conntrack::steer`]).
    pub fn with_steering(mut self, steering: FlowSteering) -> Self {
        self.steering = Some(steering);
        self
    }

    /// Takes over `previous`'s flows (the firewall the previous spec ran
    /// here) and, with them, its steering (whose rings the other cores'
    /// successors keep too, so a flow keeps its owner core). Nothing is
    /// taken when the tables differ in size or the service runs on a
    /// different number of cores (the owners changed): then the flows
    /// start afresh. True when taken.
    pub fn adopt(&mut self, previous: Firewall) -> bool {
        let cores = |steering: &Option<FlowSteering>| steering.as_ref().map(FlowSteering::cores);
        if cores(&self.steering) != cores(&previous.steering)
            || self.table.capacity() != previous.table.capacity()
        {
            return false;
        }
        self.table = previous.table;
        if previous.steering.is_some() {
            self.steering = previous.steering;
        }
        true
    }

    /// Packets each rule matched, by rule index.
    pub fn rule_hits(&self) -> &[u64] {
        self.filter.rule_hits()
    }

    /// The flow table.
    pub fn table(&self) -> &FlowTable {
        &self.table
    }

    /// `steer`: a packet of another core's flow is kept in the batch for
    /// [`FlowSteering::hand_off`] (false for packets handed in).
    fn verdict(&mut self, packet: &mut Packet, steer: bool, out: &mut Outputs<'_>) -> Verdict {
        let now_ns = out.now_ns();
        let flow = match FlowPacket::parse(packet.payload()) {
            Ok(flow) => flow,
            // Later fragments carry no ports: they pass on the strength of
            // their first fragment (which carries the whole transport
            // header, or it would be malformed), which the rules judged.
            Err(ParseError::Fragment) => return Verdict::emit(FirewallOutput::Pass.into()),
            Err(_) => return Verdict::drop(FirewallDrop::Malformed),
        };
        if steer
            && let Some(steering) = &mut self.steering
            && steering
                .elsewhere(flow.quoted.as_ref().unwrap_or(&flow.tuple))
                .is_some()
        {
            return Verdict::Keep;
        }
        let tracked = self.table.track(&flow, now_ns);
        if tracked.state == CtState::Full {
            return Verdict::drop(FirewallDrop::TableFull);
        }
        let judged = self.filter.judge(&flow.tuple, tracked.state);
        match judged.rule {
            Some(rule) => out.count(RULE_0 + rule.min(RULE_COUNTERS), 1),
            None => out.count(DEFAULT_POLICY, 1),
        }
        let action = judged.action;
        if action == Action::Allow {
            out.count(ALLOWED, 1);
            return Verdict::emit(FirewallOutput::Pass.into());
        }
        if tracked.created {
            self.table.forget(&flow.tuple, now_ns);
        }
        if action == Action::Drop {
            return Verdict::drop(FirewallDrop::Denied);
        }
        if let Some(answer) = self.refusals.refusal(packet.payload(), out) {
            if flow.tuple.protocol == protocol::TCP {
                out.count(RESETS, 1);
            }
            out.emit(FirewallOutput::Errors.into(), answer);
        }
        Verdict::drop(FirewallDrop::Rejected)
    }
}

impl SteeredNode for Firewall {
    fn steering(&mut self) -> &mut Option<FlowSteering> {
        &mut self.steering
    }

    fn judge(&mut self, packet: &mut Packet, steer: bool, out: &mut Outputs<'_>) -> Verdict {
        self.verdict(packet, steer, out)
    }
}

/// Where the firewall counts its steering.
const STEER_COUNTS: SteerCounts = SteerCounts {
    handed_off: HANDED_OFF,
    handed_in: HANDED_IN,
    ring_full: DropCode(FirewallDrop::RingFull as u8),
};

impl Nanoservice for Firewall {
    fn name(&self) -> &'static str {
        "firewall"
    }

    fn outputs(&self) -> &'static [&'static str] {
        FirewallOutput::NAMES
    }

    fn drop_reasons(&self) -> &'static [&'static str] {
        FirewallDrop::NAMES
    }

    fn events(&self) -> &'static [&'static str] {
        EVENTS
    }

    fn process(&mut self, batch: &mut Batch, out: &mut Outputs<'_>) {
        FlowSteering::process(self, batch, out, STEER_COUNTS);
        crate::conntrack::count_table(self.table.take_stats(), out);
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
        self.table
            .sweep(out.now_ns(), crate::conntrack::SWEEP_PER_TICK);
        crate::conntrack::count_table(self.table.take_stats(), out);
    }
}
