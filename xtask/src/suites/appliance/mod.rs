//! The appliance suite: the kernel under QEMU on taps, answering real
//! traffic (UDP, ICMP and TCP) and counting malformed frames.

pub mod malformed;
pub mod tcp;
pub mod tests;
