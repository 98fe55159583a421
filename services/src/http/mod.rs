//! HTTP/1.1 (RFC 9112): a server that runs as a TCP app, its request
//! parser, its response writer and the routes a spec gives it.

pub mod app;
pub mod assets;
pub mod chunked;
pub mod config;
pub mod counters;
pub mod decimal;
pub mod error;
mod exchange;
pub mod pattern;
pub mod request;
mod respond;
pub mod response;
pub mod routes;
mod session;
#[cfg(test)]
mod tests;

pub use app::{HttpApp, Transport};
pub use config::{HttpConfig, HttpKind, TcpPort};
pub use counters::{HttpCounters, RequestErrorCounters};
pub use error::RequestError;
pub use request::{BodyFraming, Method, RequestHead, Version};
pub use session::HttpSession;
