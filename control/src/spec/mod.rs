//! The spec: a declarative TOML file saying which interfaces, routes and
//! services a warpcore instance runs, parsed with the `toml` crate and
//! validated without `std`; services are kinds of a [`Registry`](services::Registry).

mod document;
mod error;
mod model;
mod parse;
mod service_table;
mod supervision;
#[cfg(test)]
mod tests;

pub use error::{SpecError, SpecErrorKind};
pub use model::{
    DEFAULT_HALT_POLL_US, DEFAULT_IDLE_TIMEOUT_MS, Driver, IdleMode, Interface, Ipv4Settings,
    MAX_HALT_POLL_US, MAX_INTERFACES, Management, Route, Service, Spec,
};
