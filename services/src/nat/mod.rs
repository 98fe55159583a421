//! NAT on top of connection tracking: source NAT (masquerade onto the
//! outside interface's address, with ports chosen so that replies come
//! back to the core that chose them), destination NAT (forwarded ports),
//! optional hairpin, checksums updated incrementally (RFC 1624) and ICMP
//! errors translated with the header they quote.

mod bindings;
mod kind;
mod node;
#[cfg(test)]
mod tests;
pub mod translate;

pub use bindings::{BindError, Binding, Bindings, MAX_PORT_TRIES, Way};
pub use kind::{DEFAULT_PORTS, EPHEMERAL_PORTS, ForwardConfig, NatConfig, NatKind};
pub use node::{Forward, Nat, NatDrop, NatOutput, NatSettings, steering_key};
