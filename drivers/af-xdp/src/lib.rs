//! An AF_XDP NIC for hosted warpcore: each [`AfXdpNic`] is one XSK socket
//! bound to one queue of a Linux interface. Its UMEM is the memory of the
//! queue's own [`dataplane::Mempool`], so a received frame is a pool
//! packet the kernel wrote into (no copy in user space), and a packet of
//! that pool goes out by lending its buffer to the TX ring.
//!
//! The fill and completion rings move whole bursts (one producer or
//! consumer update per burst), the socket binds with
//! `XDP_USE_NEED_WAKEUP`, and the driver makes a system call only when
//! the kernel's ring flags ask for one. The XDP program that redirects the
//! interface's queues into the sockets is libxdp's own (see [`program`]).

mod nic;
pub mod program;
mod ring;
mod stats;
mod sys;

pub use nic::{AfXdpConfig, AfXdpNic, BindMode, BusyPoll};
pub use program::{ProgramError, XdpProgram};
pub use stats::AfXdpStats;
pub use sys::AfXdpError;
