//! warpcore's poll-mode driver for Intel 82576 / I350 Ethernet controllers
//! (Linux's `igb`; QEMU 8+ emulates the 82576 as `-device igb`).
//!
//! ixy-style, like the virtio-net driver: the driver owns its descriptor
//! rings in DMA memory and talks to the device through its register BAR
//! only. This first step has the register map (offsets and bits named as in
//! the 82576 datasheet), the advanced descriptor formats, and bring-up:
//! global reset, interrupts masked, the MAC address from the receive address
//! registers, link up, and one receive / transmit queue pair programmed.
//!
//! The data path ([`IgbQueue`]) moves packets in bursts between the
//! descriptor rings and mempool buffers: the device writes received frames
//! straight into the buffers, transmitted packets are reclaimed in runs, and
//! each burst costs one fence and one tail write. The device's statistics
//! registers are exported with the queue's own counters.
//!
//! The driver does not know the platform: [`Registers`] gives it 32-bit
//! register access; the bare-metal kernel maps BAR 0, and host tests drive
//! bring-up against a simulated register file.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod descriptors;
pub mod device;
pub mod error;
pub mod pairs;
pub mod queue;
pub mod registers;
pub mod rss;

pub use device::{Igb, LinkState, QueueRings, Registers};
pub use error::IgbError;
pub use pairs::{PairOptions, program_queue_pairs, redirection_table};
pub use queue::{IgbQueue, QueuePairSetup, QueueStats, RingMemory};
