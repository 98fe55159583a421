//! Wire formats: smoltcp-style views over packet bytes. `new_checked`
//! validates lengths once; after it, no accessor panics.

pub mod arp;
pub mod checksum;
mod error;
pub mod ethernet;
pub mod icmp;
pub mod ipv4;
pub mod udp;

pub use arp::ArpPacket;
pub use error::WireError;
pub use ethernet::{EtherType, EthernetFrame};
pub use icmp::IcmpPacket;
pub use ipv4::Ipv4Packet;
pub use udp::UdpPacket;
