//! A tap NIC for hosted warpcore: each [`TapNic`] is one non-blocking queue of
//! a Linux tap device (`/dev/net/tun`, `IFF_TAP | IFF_NO_PI`, and
//! `IFF_MULTI_QUEUE` so every core opens its own queue of the same device).
//!
//! Received frames are read straight into mempool packet buffers; transmitted
//! packets are written from theirs. Linux has no batched read or write on a
//! tap file descriptor, so a burst is one system call per frame, ended early
//! by `EAGAIN`.

mod stats;
mod sys;
mod tap;

pub use stats::TapStats;
pub use sys::TapError;
pub use tap::{TapConfig, TapNic};
