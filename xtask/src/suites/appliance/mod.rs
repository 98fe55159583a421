//! The appliance suite: the kernel under QEMU on taps, answering real
//! traffic and counting malformed frames.

pub mod malformed;
pub mod tests;
