//! Panic handler: print the message and location, then fail the QEMU run.

use crate::dev::exit::{ExitCode, exit_qemu};

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    crate::arch::cpu::disable_interrupts();
    crate::kprintln!("PANIC on core {}: {}", crate::arch::percpu::core_id(), info);
    exit_qemu(ExitCode::Panic)
}
