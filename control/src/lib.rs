//! warpcore's control plane, the same on bare metal and hosted: the spec
//! (what should run, read from TOML) and the graph of nanoservices each
//! core runs for it, assembled from the service registry's kinds at their
//! hook points.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]

extern crate alloc;

pub mod pipeline;
pub mod reconcile;
pub mod spec;

pub use pipeline::{BuildFailure, Carry, PipelineError, build_core, core_links, rebuild_core};
/// One core's ends of the links between cores (see [`core_links`]).
pub use services::registry::CoreLinks;
pub use spec::{Spec, SpecError};

use services::Registry;

/// The service kinds a platform built from this workspace knows: the
/// built-in ones, the example `port-filter` of `examples/port-filter` with
/// the cargo feature `example-port-filter`, and the example TCP apps
/// `hello` and `line-echo` of `examples/tcp-apps` with the feature
/// `example-tcp-apps` (which, like the first, the kernel's and
/// warpcore-hosted's features of the same name turn on), and the
/// test-only `faulty-echo` and `faulty-tcp` with the feature
/// `test-services`, and `wasm` (Wasm nanoservices, `wasm/host`) with the
/// feature `wasm`. A service
/// author's crate is added the same way: an optional dependency and one
/// `register` line here.
pub fn registry() -> Registry {
    #[cfg_attr(
        not(any(
            feature = "example-port-filter",
            feature = "example-tcp-apps",
            feature = "test-services",
            feature = "wasm"
        )),
        expect(unused_mut)
    )]
    let mut registry = Registry::with_builtin();
    #[cfg(feature = "test-services")]
    for result in [
        registry
            .register::<services::faulty_echo::FaultyEchoKind>()
            .map(|_| ()),
        registry
            .register_tcp::<services::faulty_tcp::FaultyTcpKind>()
            .map(|_| ()),
    ] {
        if let Err(error) = result {
            unreachable!("the test kinds' names differ from the built-in ones: {error}");
        }
    }
    #[cfg(feature = "wasm")]
    if let Err(error) = registry.register::<warpcore_wasm::WasmKind>() {
        unreachable!("`wasm` differs from the built-in kinds' names: {error}");
    }
    #[cfg(feature = "example-port-filter")]
    if let Err(error) = registry.register::<port_filter::PortFilterKind>() {
        unreachable!("the example's name differs from the built-in ones: {error}");
    }
    #[cfg(feature = "example-tcp-apps")]
    for result in [
        registry.register_tcp::<tcp_apps::HelloKind>().map(|_| ()),
        registry
            .register_tcp::<tcp_apps::LineEchoKind>()
            .map(|_| ()),
    ] {
        if let Err(error) = result {
            unreachable!("the examples' names differ from the built-in ones: {error}");
        }
    }
    registry
}
