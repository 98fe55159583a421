//! The appliance suite: the kernel under QEMU on taps, answering real
//! traffic (UDP, ICMP and TCP), counting malformed frames, and sleeping
//! when idle.

pub mod idle;
pub mod igb_rss;
pub mod malformed;
pub mod supervise;
pub mod tcp;
pub mod tests;
