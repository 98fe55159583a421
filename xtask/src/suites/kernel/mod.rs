//! The kernel suite: scenarios built into the kernel, booted under QEMU
//! and checked from the serial log and exit status.

pub mod checks;
pub mod scenarios;
