//! Writes a warpcore Wasm nanoservice (wasm/ABI.md, version 1) in Rust.
//!
//! A module is a type that implements [`Service`]: built once from its
//! config bytes, then called for every packet of every batch with a
//! [`Slot`]. [`service!`] exports the ABI's functions for it:
//!
//! ```ignore
//! #![no_std]
//! use warpcore_wasm_guest::{Service, Slot, Verdict};
//! struct DropAll;
//! impl Service for DropAll {
//!     fn init(_config: &[u8]) -> Result<Self, i32> { Ok(DropAll) }
//!     fn process(&mut self, slot: &mut Slot) { slot.set_verdict(Verdict::Drop) }
//! }
//! warpcore_wasm_guest::service!(DropAll);
//! ```
//!
//! No allocator: a service keeps its state in fixed arrays. The host's
//! other imports are in [`map`], [`counter`], [`log`] and [`clock_ns`];
//! [`checksum`] updates a transport checksum after a rewrite (RFC 1624) and
//! [`config`] reads the config text.
#![cfg_attr(not(test), no_std)]

pub mod checksum;
pub mod config;
pub mod counter;
pub mod export;
pub mod imports;
pub mod map;
pub mod slot;

pub use counter::Counter;
pub use slot::{FiveTuple, Slot, Verdict};

/// The ABI version this crate speaks (`warpcore_abi_version`).
pub const ABI_VERSION: i32 = 1;

/// A packet service: what a module does.
pub trait Service: Sized {
    /// Builds the service from the spec's `config` bytes (copy what you
    /// keep: the bytes are gone after init). `Err(code)` refuses the module
    /// with that code.
    fn init(config: &[u8]) -> Result<Self, i32>;

    /// Judges (and maybe rewrites) one packet. A slot left alone passes.
    fn process(&mut self, slot: &mut Slot);
}

/// Log levels of [`log`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum Level {
    /// Something is wrong.
    Error = 0,
    /// Something looks wrong.
    Warn = 1,
    /// For the operator.
    Info = 2,
    /// For the author.
    Debug = 3,
}

/// Writes a line into the appliance's log (rate-limited per module by the host).
pub fn log(level: Level, message: &str) {
    imports::log(level as i32, message.as_bytes());
}

/// Monotonic nanoseconds.
pub fn clock_ns() -> u64 {
    imports::clock_ns() as u64
}
