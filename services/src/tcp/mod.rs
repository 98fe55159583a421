//! TCP (RFC 9293): one stack per core, fed by `ipv4`, emitting through
//! `ipv4-out`, serving the apps bound to its ports.

pub mod app;
pub mod buffer;
pub mod listener;

pub use app::{CloseReason, ConnectionId, Stream, TcpApp};
pub use buffer::SendBuffer;
pub use listener::{Hosted, Listener};
