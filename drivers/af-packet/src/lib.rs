//! An AF_PACKET NIC for hosted warpcore: each [`AfPacketNic`] is one packet
//! socket bound to a Linux interface, with `TPACKET_V2` receive and transmit
//! rings mapped into the process (`PACKET_MMAP`), `PACKET_QDISC_BYPASS`,
//! `PACKET_IGNORE_OUTGOING` (the host's own transmissions are not copied
//! into the RX ring), and `PACKET_FANOUT_HASH` so that several cores'
//! sockets on one interface each get whole flows.
//!
//! A receive burst walks the RX ring without a system call. A transmit burst
//! either fills TX ring frames, whose doorbell `send(2)` is coalesced across
//! bursts, or goes out in one `sendmmsg(2)` on a send-only socket, which is
//! cheaper on devices that copy each frame out of the ring anyway (veth,
//! tun); [`TxPath::Auto`] picks by the interface's driver.

mod checksum;
mod frames;
mod nic;
mod ring;
pub mod socket;
mod stats;
mod sys;
mod transmit;

pub use nic::{AfPacketConfig, AfPacketNic};
pub use stats::AfPacketStats;
pub use sys::{AfPacketError, InterfaceInfo};
pub use transmit::{DEFAULT_TX_KICK_FRAMES, MAX_DEFERRED_POLLS, TxPath};
