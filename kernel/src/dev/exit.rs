//! Leaves QEMU through the isa-debug-exit device (`iobase=0xf4, iosize=0x04`).
//!
//! QEMU exits with status `(code << 1) | 1`, so every status we produce is odd and
//! non-zero; status 0 only ever means a triple fault under `-no-reboot`.

use crate::arch::cpu::{halt_forever, outl};

/// I/O port of the isa-debug-exit device.
const DEBUG_EXIT_PORT: u16 = 0xf4;

/// Why the kernel is asking QEMU to exit. The harness decodes `(code << 1) | 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum ExitCode {
    /// A scenario passed: QEMU exits with status 33.
    #[cfg(feature = "scenarios")]
    Success = 0x10,
    /// A scenario checked something and it was wrong: status 35.
    Failure = 0x11,
    /// The kernel panicked: status 37.
    Panic = 0x12,
    /// A CPU exception (page fault, double fault, ...) was raised: status 39.
    Exception = 0x13,
}

/// Asks QEMU to exit with `code`; halts forever if no debug-exit device is present.
pub fn exit_qemu(code: ExitCode) -> ! {
    // SAFETY: writing port 0xf4 only reaches isa-debug-exit (or nothing on real hardware).
    unsafe { outl(DEBUG_EXIT_PORT, code as u32) };
    halt_forever()
}
