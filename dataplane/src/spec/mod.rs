//! The spec: a declarative TOML file saying which interfaces, routes and
//! services a warpcore instance runs, parsed and validated without `std`.

mod error;
mod model;
mod parse;
#[cfg(test)]
mod tests;
pub mod toml;

pub use error::{SpecError, SpecErrorKind};
pub use model::{Driver, Interface, Ipv4Cidr, MAX_INTERFACES, Route, Service, ServiceKind, Spec};
