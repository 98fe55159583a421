//! `Filter`: the firewall's rules as a lookup (the classifier, each
//! rule's action and hit count, the default policy) and what `reject`
//! sends back, shared by the `firewall` node and the `nat` node's
//! `[service.filter]` (rules on the inside view of translated traffic).

use super::classifier::{Classifier, FlowFields};
use super::reject::reset_for;
use super::rule::{Action, RuleConfig};
use crate::conntrack::{CtState, FiveTuple};
use crate::icmp_error::ErrorLimiter;
use crate::route::{LocalAddresses, RoutingTable};
use crate::wire::Ipv4Packet;
use crate::wire::icmp::{kind, unreachable};
use crate::wire::ipv4::protocol;
use alloc::vec::Vec;
use dataplane::{Outputs, Packet};
use serde::Deserialize;

/// A filter's spec table (`[service.filter]` of a `nat`):
///
/// ```toml
/// [service.filter]
/// default = "drop"
/// [[service.filter.rules]]
/// action = "allow"
/// state = "established"
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterConfig {
    /// The action for packets no rule matches.
    pub default: Action,
    /// The rules, first match wins.
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
}

/// What [`Filter::judge`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Judged {
    /// The action.
    pub action: Action,
    /// The rule that matched, or `None` for the default policy.
    pub rule: Option<usize>,
}

/// Ordered rules and a default policy.
#[derive(Debug)]
pub struct Filter {
    classifier: Classifier,
    actions: Vec<Action>,
    default: Action,
    hits: Vec<u64>,
}

/// The classifier's code for a conntrack state (0 matches any).
pub fn state_code(state: CtState) -> u8 {
    match state {
        CtState::New | CtState::Full => 1,
        CtState::Established | CtState::Related => 2,
        CtState::Invalid => 3,
    }
}

impl Filter {
    /// A filter applying `actions` (one per rule compiled into
    /// `classifier`, in order) and `default` to what no rule matches.
    pub fn new(classifier: Classifier, actions: Vec<Action>, default: Action) -> Self {
        let hits = alloc::vec![0; actions.len()];
        Self {
            classifier,
            actions,
            default,
            hits,
        }
    }

    /// The filter of `rules` and `default`, hashing with `seed`.
    pub fn from_rules(rules: &[RuleConfig], default: Action, seed: u64) -> Self {
        let matches: Vec<_> = rules.iter().map(RuleConfig::to_match).collect();
        let actions = rules.iter().map(|rule| rule.action).collect();
        Self::new(Classifier::new(&matches, seed), actions, default)
    }

    /// The action for a packet of `tuple` in conntrack state `state`,
    /// counted in its rule's hits.
    #[inline]
    pub fn judge(&mut self, tuple: &FiveTuple, state: CtState) -> Judged {
        let fields = FlowFields {
            source: tuple.source.to_bits(),
            destination: tuple.destination.to_bits(),
            source_port: tuple.source_port,
            destination_port: tuple.destination_port,
            protocol: tuple.protocol,
            state: state_code(state),
        };
        match self.classifier.lookup(&fields) {
            Some(rule) => {
                let rule = rule as usize;
                self.hits[rule] += 1;
                Judged {
                    action: self.actions[rule],
                    rule: Some(rule),
                }
            }
            None => Judged {
                action: self.default,
                rule: None,
            },
        }
    }

    /// Packets each rule matched, by rule index.
    pub fn rule_hits(&self) -> &[u64] {
        &self.hits
    }
}

/// Where a reject's answer comes from: our addresses, the routes back to
/// the sender, the core's ICMP error limiter.
#[derive(Debug, Clone)]
pub struct Refusals {
    /// Our addresses.
    pub local: LocalAddresses,
    /// The routing table (which interface leads back).
    pub routes: RoutingTable,
    /// The core's ICMP error limiter.
    pub errors: ErrorLimiter,
}

impl Refusals {
    /// What tells the sender of `ip` (as it arrived) it was refused: a
    /// TCP RST from its destination, or ICMP port unreachable from our
    /// address on the interface that leads back (rate-limited); `None`
    /// when nothing is sent.
    pub fn refusal(&self, ip: &[u8], out: &mut Outputs<'_>) -> Option<Packet> {
        let view = Ipv4Packet::new_checked(ip).ok()?;
        if view.protocol() == protocol::TCP {
            return reset_for(ip, out);
        }
        let source = self
            .routes
            .lookup(view.source())
            .and_then(|(interface, _)| self.local.on_interface(interface))?;
        let kind = (kind::DESTINATION_UNREACHABLE, unreachable::PORT);
        self.errors.error_for(out, &self.local, ip, source, kind)
    }
}
