//! warpcore's control plane, the same on bare metal and hosted: the spec
//! (what should run, read from TOML) and the graph of nanoservices each
//! core runs for it, assembled from the service registry's kinds at their
//! hook points.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]

extern crate alloc;

pub mod pipeline;
pub mod spec;

pub use pipeline::{PipelineError, build_core, core_links};
/// One core's ends of the links between cores (see [`core_links`]).
pub use services::registry::CoreLinks;
pub use spec::{Spec, SpecError};

use services::Registry;

/// The service kinds a platform built from this workspace knows: the
/// built-in ones, and the example `port-filter` of `examples/port-filter`
/// with the cargo feature `example-port-filter` (which the kernel's and
/// warpcore-hosted's features of the same name turn on). A service
/// author's crate is added the same way: an optional dependency and one
/// `register` line here.
pub fn registry() -> Registry {
    #[cfg_attr(not(feature = "example-port-filter"), expect(unused_mut))]
    let mut registry = Registry::with_builtin();
    #[cfg(feature = "example-port-filter")]
    if let Err(error) = registry.register::<port_filter::PortFilterKind>() {
        unreachable!("the example's name differs from the built-in ones: {error}");
    }
    registry
}
