//! QEMU for the bare-metal kernel: installing it, building the image, the
//! command line, timed scenario boots and long-running appliance sessions.

pub mod command_line;
pub mod console;
pub mod image;
pub mod monitor;
pub mod scenario;
pub mod session;
