//! warpcore's poll-mode virtio-net driver (virtio 1.2, modern PCI transport).
//!
//! ixy-style: the driver owns split virtqueues in DMA memory, keeps every
//! receive ring full of mempool buffers the device writes into, and moves
//! packets in bursts with one fence and at most one doorbell per burst. It
//! never copies a packet: the device DMAs into and out of [`dataplane::Packet`]
//! buffers.
//!
//! The driver does not know the platform. [`VirtioPlatform`] gives it PCI
//! configuration space, mapped BARs and DMA memory; the bare-metal kernel
//! implements it, and host tests drive [`virtqueue::SplitQueue`] against a
//! simulated device in ordinary memory (`simulated`, public with the
//! `simulated-device` feature: `count-driver` in `benches/` counts the
//! driver's instructions against it).
//!
//! Bring-up is split by core: [`VirtioNet::init`] runs once (on any core),
//! configures every queue and returns one [`QueuePairSetup`] per queue pair.
//! A setup is `Send`; the core that will poll the pair calls
//! [`QueuePairSetup::start`] with a mempool it created, which yields the
//! [`VirtioNetQueue`] (`dataplane::Nic`) that refills from that pool.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod device;
pub mod error;
pub mod platform;
pub mod queue;
pub mod registers;
#[cfg(any(test, feature = "simulated-device"))]
pub mod simulated;
pub mod transport;
pub mod virtqueue;

pub use device::{QueuePairSetup, RxInterrupts, VirtioNet};
pub use error::VirtioError;
pub use platform::{DmaMemory, VirtioPlatform};
pub use queue::{QueueStats, VirtioNetQueue};
