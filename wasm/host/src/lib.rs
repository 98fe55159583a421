//! `warpcore-wasm`: the `wasm` service kind. A WebAssembly module judges
//! and rewrites packets in batches under the packet ABI of `wasm/ABI.md`
//! (version 1), on wasmi (or, hosted with the `wasmtime` feature,
//! wasmtime), with its own store, memory cap and map per core,
//! fuel per batch, faults handled by `on_fault` and quarantine after too
//! many. The same code runs on bare metal and hosted; the platform says
//! where module bytes come from ([`set_module_source`]).
#![cfg_attr(not(any(test, feature = "wasmtime")), no_std)]
#![deny(unsafe_code)]

extern crate alloc;

pub mod bundle;
mod config;
pub mod descriptor;
mod engine;
mod fault;
mod host;
mod instance;
mod kind;
mod map;
mod module;
mod node;
mod source;
pub mod uploads;

pub use config::{OnFault, WasmConfig};
pub use descriptor::{Descriptor, SlotVerdict};
pub use engine::{EngineChoice, Meter};
pub use fault::{FaultKind, Quarantine};
pub use instance::{BatchReport, HookView, Instance, Outcome};
pub use kind::WasmKind;
pub use map::BoundedMap;
pub use module::{ABI_VERSION, LoadedModule};
pub use node::{HOST_EVENTS, WasmNode};
pub use source::{ModuleSource, load_module, set_module_source};
