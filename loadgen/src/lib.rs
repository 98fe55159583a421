//! warpcore's load generator: sends bounded streams of Ethernet/IPv4/UDP or
//! ICMP echo frames through one interface (a packet socket, mapped packet
//! rings or an AF_XDP socket), or
//! straight into a QEMU guest's virtio-net rings as its vhost-user backend,
//! matches the replies, and reports rates, loss, reordering, duplicates and
//! round-trip latency.
#![deny(unsafe_code)]

pub mod arp;
pub mod frame;
pub mod port;
pub mod probe;
pub mod report;
pub mod ring_port;
pub mod run;
// The one unsafe module: rustix wraps neither `recvmmsg`, the `SOL_PACKET`
// options nor `SIOCGIFHWADDR`, so those libc calls stay, each with its SAFETY
// comment.
#[allow(unsafe_code)]
pub mod socket;
pub mod tcp;
pub mod tracker;
pub mod vhost;
