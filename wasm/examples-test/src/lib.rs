//! Runs the Wasm example modules (examples/wasm/{rust,c,assemblyscript})
//! in wasmi under a minimal host that implements wasm/ABI.md version 1 as
//! written, so that tests can check them value by value.
//!
//! This is a test harness, not the product's host: the appliance's `wasm`
//! service kind is that. The harness exists so that the guest side (the
//! bindings and examples of three languages) is checked on its own.

pub mod frames;
pub mod host;
pub mod modules;
pub mod traffic;
