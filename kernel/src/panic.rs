//! Panic handler: print the message and location; then, when the panic
//! is a nanoservice's under supervision, go back to its executor (see
//! `arch::resume`), else fail the QEMU run.

use crate::dev::exit::{ExitCode, exit_qemu};

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    crate::arch::cpu::disable_interrupts();
    crate::kprintln!("PANIC on core {}: {}", crate::arch::percpu::core_id(), info);
    crate::arch::resume::resume_if_guarded(info);
    exit_qemu(ExitCode::Panic)
}
