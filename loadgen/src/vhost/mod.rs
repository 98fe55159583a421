//! loadgen as a vhost-user net backend: QEMU hands it the guest's memory
//! and virtqueues over a unix socket; it writes request frames straight into
//! the guest's receive rings and reads the replies off its transmit rings.

pub mod backend;
pub mod device;
pub mod rings;
