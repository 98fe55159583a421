//! Runs the Wasm example modules (examples/wasm/{rust,c,assemblyscript})
//! through the product's `wasm` service kind (`warpcore-wasm`: the module
//! loaded and checked as a spec's service is, then one core's instance of
//! it, the code the appliance and hosted run per batch), so that tests can
//! check them value by value: verdicts, bytes, counters and map.

pub mod frames;
pub mod host;
pub mod modules;
pub mod traffic;
