//! loadgen as a vhost-user net backend: QEMU hands it the guest's memory
//! and virtqueues over a unix socket; it writes request frames straight into
//! the guest's receive rings and reads the replies off its transmit rings.

pub mod device;
pub mod handler;
pub mod protocol;
pub mod rings;
