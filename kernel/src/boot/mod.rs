//! From the PVH entry to a running system: the entry point, the start info, the command line and boot-core initialisation.

pub mod cmdline;
pub mod entry;
pub mod init;
pub mod pvh;
