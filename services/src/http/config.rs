//! The `http` service kind: its spec table (`HttpConfig`), checked by
//! serde so that each mistake names its line and field, and `HttpKind`,
//! which registers it.

use super::app::HttpApp;
use super::routes::{Route, unique_routes};
use crate::registry::{BuildContext, HookPoint, SpecSummary, TcpServiceKind};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

/// Default `max_header_bytes`.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 8192;
/// Default `max_body_bytes`.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 1 << 20;
/// Default `idle_timeout_ms`.
pub const DEFAULT_IDLE_TIMEOUT_MS: u32 = 30_000;

/// A TCP port number from 1 to 65535, as a spec writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TcpPort(pub u16);

impl<'de> Deserialize<'de> for TcpPort {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PortVisitor;

        impl Visitor<'_> for PortVisitor {
            type Value = TcpPort;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a TCP port from 1 to 65535")
            }

            fn visit_i64<E: de::Error>(self, value: i64) -> Result<TcpPort, E> {
                match u16::try_from(value) {
                    Ok(port) if port != 0 => Ok(TcpPort(port)),
                    _ => Err(E::custom(format_args!(
                        "expected a TCP port from 1 to 65535, got \"{value}\""
                    ))),
                }
            }

            fn visit_u64<E: de::Error>(self, value: u64) -> Result<TcpPort, E> {
                self.visit_i64(i64::try_from(value).unwrap_or(i64::MAX))
            }
        }

        deserializer.deserialize_i64(PortVisitor)
    }
}

/// `http`'s table:
///
/// ```toml
/// [[service]]
/// kind = "http"
/// port = 80
/// max_header_bytes = 8192     # request line and header fields, 256-65536
/// max_body_bytes = 1048576    # a request body, 0-1073741824
/// idle_timeout_ms = 30000     # close a connection idle this long; 0: never
/// routes = [
///   { path = "/", body = "hello from warpcore\n", content_type = "text/plain" },
///   { path = "/index.html", file = "index.html" },
///   { path = "/bytes", generate = "pattern" },
///   { path = "/echo", echo = true },
/// ]
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// The TCP port to serve.
    pub port: TcpPort,
    /// Largest request head (request line and header fields) in bytes;
    /// larger ones are answered 431 (a request line longer than this or
    /// than 4096 bytes, 414).
    #[serde(
        default = "default_max_header_bytes",
        deserialize_with = "header_limit"
    )]
    pub max_header_bytes: usize,
    /// Largest request body in bytes; larger ones are answered 413.
    #[serde(default = "default_max_body_bytes", deserialize_with = "body_limit")]
    pub max_body_bytes: u64,
    /// Milliseconds a connection may stay idle before it is closed (0:
    /// never).
    #[serde(default = "default_idle_timeout_ms")]
    pub idle_timeout_ms: u32,
    /// What to answer at each path; other paths are answered 404.
    #[serde(deserialize_with = "unique_routes")]
    pub routes: Vec<Route>,
}

fn default_max_header_bytes() -> usize {
    DEFAULT_MAX_HEADER_BYTES
}

fn default_max_body_bytes() -> u64 {
    DEFAULT_MAX_BODY_BYTES
}

fn default_idle_timeout_ms() -> u32 {
    DEFAULT_IDLE_TIMEOUT_MS
}

/// `max_header_bytes`: 256 to 65536.
fn header_limit<'de, D: Deserializer<'de>>(deserializer: D) -> Result<usize, D::Error> {
    let value = i64::deserialize(deserializer)?;
    match usize::try_from(value) {
        Ok(limit) if (256..=65536).contains(&limit) => Ok(limit),
        _ => Err(de::Error::custom(format!(
            "expected a header limit from 256 to 65536 bytes, got \"{value}\""
        ))),
    }
}

/// `max_body_bytes`: 0 to 1 GiB.
fn body_limit<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    let value = i64::deserialize(deserializer)?;
    match u64::try_from(value) {
        Ok(limit) if limit <= 1 << 30 => Ok(limit),
        _ => Err(de::Error::custom(format!(
            "expected a body limit from 0 to 1073741824 bytes, got \"{value}\""
        ))),
    }
}

/// `http`: an HTTP/1.1 server (RFC 9112) on a TCP port, answering from
/// its routes, at `tcp:<port>`.
#[derive(Debug)]
pub struct HttpKind;

impl TcpServiceKind for HttpKind {
    const NAME: &'static str = "http";
    type Config = HttpConfig;
    type App = HttpApp;

    fn port(config: &HttpConfig) -> u16 {
        config.port.0
    }

    /// One app per port: a second service at the same `tcp:<port>` is
    /// refused.
    fn check(config: &HttpConfig, spec: &SpecSummary<'_>) -> Result<(), String> {
        let ours = HookPoint::Tcp(config.port.0);
        let earlier = spec
            .others()
            .find(|(index, other)| *index < spec.index && other.attach.contains(&ours));
        match earlier {
            Some((index, _)) => Err(format!("service[{index}] already serves {ours}")),
            None => Ok(()),
        }
    }

    fn build(config: &HttpConfig, _context: &BuildContext<'_>) -> HttpApp {
        HttpApp::new(config)
    }
}
