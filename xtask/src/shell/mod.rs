//! Running child processes and asking the host about itself.

pub mod host;
pub mod process;
