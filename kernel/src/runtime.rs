//! What every core runs once the system is up: the boot core releases the others
//! after the ready line, then each core runs the scenario or appliance loop.
//!
//! Waiting cores halt rather than spin: under TCG with more vCPUs than host cores a
//! spinning vCPU steals host time from the boot core and slows the boot down.

use core::sync::atomic::{AtomicBool, Ordering};

use crate::arch::trap::TIMER_VECTOR;
use crate::arch::trap::WAKEUP_VECTOR;
use crate::arch::{apic, cpu, percpu, smp};
use crate::boot::cmdline;

/// Timer ticks per second on every core.
pub const TICK_HZ: u64 = 100;

/// Set by the boot core after printing the ready line.
static RELEASED: AtomicBool = AtomicBool::new(false);

/// Boot core, after the ready line: release and wake the other cores.
pub fn boot_core_main() -> ! {
    // Release: the ready state (device list, DMA region) is visible to released cores.
    RELEASED.store(true, Ordering::Release);
    for core_id in 1..smp::core_count() {
        if let Some(record) = smp::record(core_id) {
            apic::send_fixed(record.apic_id(), WAKEUP_VECTOR);
        }
    }
    run_on_core(0)
}

/// Application processors, right after they come online: halt until released.
pub fn core_main() -> ! {
    loop {
        cpu::disable_interrupts();
        // Acquire pairs with the Release in `boot_core_main`.
        if RELEASED.load(Ordering::Acquire) {
            break;
        }
        // SAFETY: the IDT is loaded; `sti; hlt` cannot miss the wake-up IPI because
        // interrupts stay blocked until after `hlt` starts.
        unsafe { cpu::enable_interrupts_and_halt() };
    }
    run_on_core(percpu::core_id())
}

/// Starts the core's timer and enables interrupts, then runs the appliance,
/// or with the feature `scenarios` the scenario `test=NAME` names; never
/// returns.
///
/// Every core arrives here with interrupts off: the application processors
/// from `core_main`'s check-then-halt loop, the boot core from
/// `smp::wait_online`'s. Left off, a core that did not halt before its first
/// real work kept them off until its first `sti`, its ticks latched in the
/// IRR meanwhile: a synthetic pipeline core that arrived after core 0 had
/// its rings ready (a slow boot) never halted before its window, and took
/// the tick latched before it stopped its timer at its first halt in the
/// measured window (`kernel/timer` checks both cores enter with interrupts
/// on).
fn run_on_core(core_id: u32) -> ! {
    apic::start_periodic_timer(TIMER_VECTOR, TICK_HZ);
    // SAFETY: the IDT is loaded on every core before it gets here and
    // handles the timer, wake-up and device vectors.
    unsafe { cpu::enable_interrupts() };
    #[cfg(feature = "scenarios")]
    if let Some(name) = cmdline::get("test") {
        crate::scenarios::dispatch::run(core_id, name)
    }
    // A release image given `test=` says so and fails at once, rather than
    // leave a harness waiting for a scenario that is not there.
    #[cfg(not(feature = "scenarios"))]
    if let Some(name) = cmdline::get("test") {
        if core_id == 0 {
            crate::kprintln!(
                "test={name}: this image has no scenarios (build the kernel with --features scenarios)"
            );
            crate::dev::exit::exit_qemu(crate::dev::exit::ExitCode::Failure)
        }
        idle_forever()
    }
    crate::appliance::setup::run(core_id)
}

/// Halts with interrupts on, forever (cores with nothing to do).
pub fn idle_forever() -> ! {
    loop {
        // SAFETY: the IDT is loaded on this core and handles every vector in use.
        unsafe { cpu::enable_interrupts_and_halt() };
    }
}
