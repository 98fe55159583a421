//! Wire formats: smoltcp-style views over packet bytes and the Internet
//! checksum, shared by services, drivers and loadgen. `new_checked`
//! validates lengths once; after it, no accessor panics.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]

#[cfg(test)]
extern crate alloc;

pub mod arp;
pub mod checksum;
mod error;
pub mod ethernet;
mod fields;
pub mod icmp;
pub mod ipv4;
pub mod tcp;
pub mod udp;

pub use arp::ArpPacket;
pub use error::WireError;
pub use ethernet::{EtherType, EthernetFrame};
pub use icmp::IcmpPacket;
pub use ipv4::Ipv4Packet;
pub use tcp::{TcpFlags, TcpHeader, TcpOptions, TcpPacket};
pub use udp::UdpPacket;
