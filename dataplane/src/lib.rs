//! The no_std core of warpcore: packet buffers, mempools, rings, batches, the
//! nanoservice graph and the per-core executor.
//!
//! Everything here runs the same on bare metal and hosted on Linux; the
//! platform supplies memory ([`DmaRegion`]), core identity
//! ([`core_id::set_core_id_source`]) and NICs ([`Nic`]).
#![cfg_attr(not(any(test, feature = "std")), no_std)]
#![deny(unsafe_code)]

extern crate alloc;

pub mod batch;
pub mod board;
mod builder;
pub mod burst_queue;
pub mod capture;
pub mod cidr;
pub mod core_id;
pub mod counters;
pub mod executor;
pub mod graph;
pub mod haltpoll;
pub mod idle;
pub mod loopback;
pub mod mac;
pub mod mem;
pub mod nic;
pub mod parts;
mod queue;
mod reasons;
pub mod rss;
pub mod shared_nic;
pub mod stats;
pub mod supervise;

pub use batch::{BURST_SIZE, Batch};
pub use board::CountersBoard;
pub use burst_queue::BurstQueue;
pub use capture::{CaptureBoard, PortTap};
pub use cidr::Ipv4Cidr;
pub use counters::Counter;
pub use executor::{Executor, ExecutorBuilder, ExecutorError, PortId, RingId, Target};
pub use graph::{DropCode, Nanoservice, NodeId, Outputs, Verdict};
pub use haltpoll::{HaltPoll, WindowChange};
pub use idle::{Doorbell, Idle, WakeCause};
pub use loopback::LoopbackNic;
pub use mac::MacAddr;
pub use mem::checked::Checked;
pub use mem::mempool::{Mempool, MempoolConfig, MempoolError, MempoolStats};
pub use mem::packet::{Packet, PacketError};
pub use mem::region::DmaRegion;
pub use mem::ring::{Consumer, Producer, RingError, SpscRing};
pub use nic::{LinkInfo, Nic, NicCounters};
pub use parts::{ExecutorParts, Tag};
pub use shared_nic::SharedNic;
pub use supervise::{Failure, Guard, Rebuild, ServiceState, SupervisionPolicy};
