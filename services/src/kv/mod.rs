//! `kv`: a key-value store speaking the memcached text protocol, one
//! shard per core, keys owned by `hash(key) % cores` and reached over SPSC
//! rings between the cores.

pub mod app;
pub mod buffers;
pub mod command;
pub mod config;
pub mod counters;
mod dispatch;
pub mod hash;
mod input;
pub mod lru;
pub mod operation;
pub mod replies;
pub mod reply;
pub mod session;
pub mod shard;
pub mod stats;
pub mod store;

#[cfg(any(test, feature = "fuzzing"))]
pub mod harness;
#[cfg(test)]
mod tests;

pub use app::KvApp;
pub use config::{KvConfig, KvKind};
pub use counters::KvCounters;
pub use session::KvSession;
