//! The hosted suite: `warpcore-hosted` in network namespaces on taps and
//! veth pairs, answering the same traffic as the appliance.

pub mod firewall;
pub mod idle;
pub mod lb;
pub mod management;
pub mod nat;
pub mod process;
pub mod scenarios;
pub mod sides;
pub mod supervise;
pub mod tcp;
pub mod wasm;
