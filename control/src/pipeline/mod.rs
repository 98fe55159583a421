//! `build_core`: one core's nanoservice graph for a [`Spec`]: the stack's
//! own stages, and every service of the spec built by its kind's factory
//! and spliced in at its hook points.
//!
//! ```text
//! port i ─rx─▶ [port:rx chain] ─pass─▶ eth[i] ─arp──▶ arp[i] ─tx─▶ port i
//!                                        ├ethertype<k>─▶ [eth:<type> chain]
//!                                        └ipv4─▶ ipv4 ─icmp─▶ [ipv4:proto:1 chain] ─pass─▶ icmp ─▶ ipv4-out
//!                                                     ├udp──▶ [ipv4:proto:17 chain] ─pass─▶ udp
//!                                                     ├proto<k>─▶ [ipv4:proto:<n> chain]
//!                                                     ├forward─▶ [ipv4:forward chain] (l3fwd) ─if<n>─▶ arp[n]
//!                                                     ├errors─▶ ipv4-out
//!                                                     └held─▶ (fragments taken into reassembly: discard)
//! udp ─app<k>─▶ [udp:<port> chain] (udp-echo) ─out─▶ ipv4-out ─if<n>─▶ arp[n]
//! ```
//!
//! Services at one hook point form a chain in spec order; a service's
//! outputs are bound by name: `pass` to the next in the chain (the last
//! one's to the stage the hook point feeds, or a discard), `out` to the
//! port's transmit at layer 2 and to `ipv4-out` above, `errors` to
//! `ipv4-out`, `if<n>` to interface `n`'s ARP stage. A core whose `port:rx`
//! services pass nothing on (l2fwd) gets no IP stack at all.
//!
//! Interfaces are numbered as in the spec. `eth` and `arp` exist once per
//! port and share their names: sum same-named nodes when reading counters
//! (`CoreCounters::node_drops`). Our MAC on an interface is the spec's,
//! whatever the driver reports.

mod build;
mod carry;
mod chain;
mod error;
mod links;
mod restart;

pub use build::{BuildFailure, build_core, rebuild_core};
pub use carry::{Carry, PLATFORM_LISTENER};
pub use error::PipelineError;
pub use links::core_links;
