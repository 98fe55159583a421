//! Connection tracking: a bounded per-core flow table keyed by the 5-tuple
//! (both directions find one entry), TCP state tracking with Linux
//! conntrack's default timeouts per state and its window checks, UDP and ICMP flows, ICMP errors
//! related to a tracked flow, and counted eviction when the table is full.
//! The `conntrack` service kind runs it alone; the firewall embeds it.

mod flow;
mod kind;
mod node;
pub mod steer;
mod table;
mod tcp_state;
#[cfg(test)]
mod tests;
mod window;

pub use flow::{Direction, FiveTuple, FlowPacket, ParseError, Segment};
pub use kind::{ConntrackConfig, ConntrackKind};
pub use kind::{DEFAULT_CAPACITY, MAX_CAPACITY};
pub(crate) use kind::{check_capacity, flow_seed};
pub use node::{Conntrack, ConntrackDrop, ConntrackEvent, ConntrackOutput};
pub(crate) use node::{SWEEP_PER_TICK, count_table};
pub use steer::{FlowSteering, SteerCounts, SteerEnd, SteeredNode, link_steering, owner_core};
pub use table::{CtState, FlowTable, TableStats, Tracked, WAYS};
pub use tcp_state::{TcpState, Timeouts};
