//! Panic handler: print the message and location, then fail the QEMU run.

use crate::exit::{ExitCode, exit_qemu};

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    crate::cpu::disable_interrupts();
    crate::kprintln!("PANIC on core {}: {}", crate::percpu::core_id(), info);
    exit_qemu(ExitCode::Panic)
}
