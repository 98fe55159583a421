//! loadgen as a vhost-user net backend: QEMU hands it the guest's memory
//! and virtqueues over a unix socket; it writes request frames straight into
//! the guest's receive rings and reads the replies off its transmit rings.

pub mod device;
pub mod handler;
pub mod protocol;
pub mod rings;
// The one unsafe module of the backend: guest memory as host pointers for
// the per-packet path, each access with its SAFETY comment.
#[allow(unsafe_code)]
pub mod split;
