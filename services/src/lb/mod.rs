//! The L4 load balancer: a virtual IP:port spread over backends with
//! Maglev consistent hashing (Eisenbud et al., NSDI 2016), NAT mode at
//! `ipv4:forward` (the destination becomes the backend's, the source stays
//! the client's; replies through us get the VIP back), flows pinned to
//! their backend by a per-core flow table, checksums updated incrementally.

mod kind;
mod maglev;
mod node;
mod pin;
mod rewrite;
#[cfg(test)]
mod tests;

pub use kind::{
    DEFAULT_FLOWS, DEFAULT_TABLE_SIZE, LbConfig, LbKind, MAX_BACKENDS, MAX_TABLE_SIZE, is_prime,
};
pub use maglev::{MaglevTable, backend_key_hash, flow_hash};
pub use node::{BACKEND_COUNTERS, LbDrop, LbOutput, LoadBalancer, Steered};
pub use pin::{PIN_IDLE_NS, PIN_WAYS, PinTable, Pinned};
pub use rewrite::{Endpoint, RewriteError, rewrite_destination, rewrite_source};
