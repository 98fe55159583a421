//! The stateful firewall: ordered rules on the 5-tuple, address prefixes,
//! port ranges and conntrack state (allow, drop, or reject with a TCP RST
//! or ICMP port unreachable), looked up by tuple-space search so that the
//! cost grows with the number of distinct rule shapes, not of rules.

mod classifier;
mod filter;
mod kind;
mod node;
mod reject;
mod rule;
#[cfg(test)]
mod tests;

pub use classifier::{Classifier, FlowFields, RuleMatch, port_blocks};
pub use filter::{Filter, FilterConfig, Judged, Refusals, state_code};
pub use kind::{FirewallConfig, FirewallKind, MAX_RULES};
pub use node::{Firewall, FirewallDrop, FirewallOutput, RULE_COUNTERS};
pub use rule::{Action, PortRange, Prefix, ProtocolMatch, RuleConfig, StateMatch};
