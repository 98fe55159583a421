//! The bare-metal kernel's logic that needs no hardware: parsers for what
//! firmware and the loader leave in memory (ACPI tables, the PVH start
//! info), the command line, and the physical frame ranges. The kernel
//! reads memory through its identity map; the tests here read byte
//! fixtures through the same [`PhysicalMemory`] trait.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod acpi;
pub mod cmdline;
pub mod frames;
pub mod memory;
pub mod pvh;

pub use memory::PhysicalMemory;
