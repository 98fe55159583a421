//! warpcore bare-metal kernel: a PVH appliance image that boots every core, runs one
//! executor per core and reports over the serial console.
#![no_std]
#![no_main]

extern crate alloc;

mod appliance;
mod arch;
mod boot;
mod dev;
mod mem;
mod panic;
mod runtime;
#[cfg(feature = "scenarios")]
mod scenarios;
