//! warpcore's management plane: `ManagementApp`, an HTTP/1.1 TCP app on
//! core 0 serving `/metrics` (Prometheus text format 0.0.4), the running
//! spec (`/api/v1/spec`, GET and dry-run PUT), `/api/v1/status`, the
//! log ring (`/api/v1/logs`, and followed as server-sent events at
//! `/api/v1/logs/stream`) and packet capture (`/api/v1/capture`, a pcap
//! stream), the API behind a bearer token; responses are built whole or
//! stream (`stream`: a body produced over time).
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]

extern crate alloc;

pub mod app;
mod attach;
pub mod auth;
pub mod budget;
pub mod capture;
#[cfg(test)]
mod capture_tests;
pub mod config;
pub mod json;
pub mod log_ring;
pub mod log_stream;
pub mod logs;
pub mod metrics;
pub mod modules;
#[cfg(test)]
mod modules_tests;
pub mod pcap;
pub mod plan;
#[cfg(test)]
mod reconcile_tests;
pub mod response;
pub mod session;
pub mod status;
pub mod stream;
pub mod supervision;
#[cfg(test)]
mod tests;

pub use app::ManagementApp;
pub use attach::attach;
pub use config::ManagementConfig;
pub use log_ring::LogRing;
