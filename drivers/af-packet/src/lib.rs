//! An AF_PACKET NIC for hosted warpcore: each [`AfPacketNic`] is one packet
//! socket bound to a Linux interface, with `TPACKET_V2` receive and transmit
//! rings mapped into the process (`PACKET_MMAP`), `PACKET_QDISC_BYPASS`,
//! `PACKET_IGNORE_OUTGOING` (the host's own transmissions are not copied
//! into the RX ring), and `PACKET_FANOUT_HASH` so that several cores'
//! sockets on one interface each get whole flows.
//!
//! A receive burst walks the RX ring without a system call; a transmit burst
//! fills TX frames and rings the doorbell with one `send(2)`.

mod checksum;
mod frames;
mod nic;
mod ring;
pub mod socket;
mod stats;
mod sys;

pub use nic::{AfPacketConfig, AfPacketNic};
pub use stats::AfPacketStats;
pub use sys::{AfPacketError, InterfaceInfo};
