//! TCP (RFC 9293): one stack per core, fed by `ipv4`, emitting through
//! `ipv4-out`, serving the apps bound to its ports.

pub mod app;
pub mod buffer;
pub mod config;
pub mod connection;
pub mod cookie;
pub mod directory;
pub mod echo;
pub mod events;
pub mod handoff;
pub mod harness;
pub mod listener;
pub mod node;
mod output;
pub mod ports;
pub mod proxy;
pub mod receive;
pub mod rtt;
pub mod seq;
mod siphash;
pub mod strays;
pub mod supervised;
pub mod time_wait;
pub mod timer;

pub use app::{CloseReason, ConnectError, ConnectionId, Stream, TcpApp};
pub use buffer::SendBuffer;
pub use config::TcpConfig;
pub use directory::FlowDirectory;
pub use echo::{TcpEcho, TcpEchoKind};
pub use events::{TcpDrop, TcpEvent};
pub use handoff::{HandoffReceiver, HandoffSender, TcpHandoff, link_handoff};
pub use harness::StreamHarness;
pub use listener::{Hosted, Listener};
pub use node::{Tcp, TcpOutput};
pub use proxy::{TcpProxy, TcpProxyKind};
pub use strays::Strays;
pub use supervised::{AppRebuild, AppSupervision, SupervisedApp};
