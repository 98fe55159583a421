//! What every core runs once the system is up: the boot core releases the others
//! after the ready line, then each core runs the scenario or appliance loop.

use core::sync::atomic::{AtomicBool, Ordering};

use crate::{cpu, percpu, scenarios};

/// Set by the boot core after printing the ready line.
static RELEASED: AtomicBool = AtomicBool::new(false);

/// Boot core, after the ready line.
pub fn boot_core_main() -> ! {
    // Release: the ready state (device list, DMA region) is visible to released cores.
    RELEASED.store(true, Ordering::Release);
    scenarios::run_on_core(0)
}

/// Application processors, right after they come online.
pub fn core_main() -> ! {
    // Acquire pairs with the Release in `boot_core_main`.
    while !RELEASED.load(Ordering::Acquire) {
        cpu::pause();
    }
    scenarios::run_on_core(percpu::core_id())
}
