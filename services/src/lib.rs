//! warpcore nanoservices: protocol stages and applications, each one small
//! state machine that runs on one core, and the per-core pipeline that
//! wires them for a spec.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]

extern crate alloc;

pub mod arp;
pub mod arp_cache;
pub mod eth;
pub mod icmp;
pub mod icmp_error;
pub mod ipv4;
pub mod ipv4_out;
pub mod l2fwd;
mod malformed;
pub mod pipeline;
mod reasons;
pub mod route;
pub mod udp;
pub mod udp_echo;
/// The wire formats, reachable as `services::wire` and `crate::wire`.
pub use wire;

pub use arp::Arp;
pub use arp_cache::ArpCache;
pub use eth::Eth;
pub use icmp::Icmp;
pub use ipv4::Ipv4;
pub use ipv4_out::Ipv4Out;
pub use l2fwd::MacSwap;
pub use pipeline::{MalformedFrame, PipelineError, build_core, malformed_frames};
pub use udp::Udp;
pub use udp_echo::UdpEcho;
