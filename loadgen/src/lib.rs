//! warpcore's load generator: sends bounded streams of Ethernet/IPv4/UDP or
//! ICMP echo frames through an AF_PACKET socket bound to one interface,
//! matches the replies, and reports rates, loss, reordering, duplicates and
//! round-trip latency.

pub mod arp;
pub mod frame;
pub mod probe;
pub mod report;
pub mod run;
pub mod socket;
pub mod tracker;
