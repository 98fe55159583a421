//! warpcore nanoservices: protocol stages and applications, each one small
//! state machine that runs on one core, and the registry through which a
//! spec names them and the hook points where they attach.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]

extern crate alloc;

pub mod arp;
pub mod arp_cache;
pub mod claim;
pub mod conntrack;
pub mod eth;
#[cfg(feature = "test-services")]
pub mod faulty_echo;
pub mod faulty_tcp;
pub mod firewall;
pub mod fragment;
pub mod http;
pub mod icmp;
pub mod icmp_error;
pub mod ipv4;
pub mod ipv4_out;
pub mod kv;
pub mod l2fwd;
pub mod l3fwd;
pub mod lb;
mod malformed;
pub mod nat;
pub mod neighbour;
pub mod reassembly;
pub mod registry;
pub mod route;
pub mod tcp;
pub mod udp;
pub mod udp_echo;
mod uniform;
/// The wire formats, reachable as `services::wire` and `crate::wire`.
pub use wire;

pub use arp::Arp;
pub use arp_cache::ArpCache;
pub use eth::Eth;
pub use icmp::Icmp;
pub use ipv4::Ipv4;
pub use ipv4_out::Ipv4Out;
pub use l2fwd::MacSwap;
pub use l3fwd::L3fwd;
pub use malformed::{MalformedFrame, malformed_frames, malformed_segments, unfinished_datagrams};
pub use registry::{HookPoint, Registry, ServiceKind};
pub use udp::Udp;
pub use udp_echo::UdpEcho;

/// Most interfaces one spec may define: nodes that route end in one output
/// per interface (`if0` to `if3`).
pub const MAX_INTERFACES: usize = 4;
