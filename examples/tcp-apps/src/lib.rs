//! Two TCP apps written the way a service author writes one: a `TcpApp`
//! (what to do with a connection's bytes) and a `TcpServiceKind` (its
//! name and settings in a spec). Registered in `control::registry()` with
//! the cargo feature `example-tcp-apps`.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]

extern crate alloc;

pub mod hello;
pub mod line_echo;

pub use hello::{Hello, HelloKind};
pub use line_echo::{LineEcho, LineEchoKind};

use serde::Deserialize;

/// The one setting both examples take: `port = 8080`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortConfig {
    /// The TCP port to serve.
    pub port: u16,
}
