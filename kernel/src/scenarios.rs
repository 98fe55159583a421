//! In-kernel scenarios selected by `test=NAME` on the command line. Each reports over
//! serial and leaves QEMU through isa-debug-exit; without `test=` every core runs its
//! executor forever (the appliance).

use core::sync::atomic::{AtomicUsize, Ordering};

use crate::exit::{ExitCode, exit_qemu};
use crate::trap::TIMER_VECTOR;
use crate::{
    apic, cmdline, cpu, executor, percpu, scenario_checks, scenario_mempool, scenario_pingpong,
    scenario_synthetic,
};
use crate::{smp, time};

/// Timer ticks per second on every core.
pub const TICK_HZ: u64 = 100;
/// Cores that reported their executor running.
static EXECUTORS_RUNNING: AtomicUsize = AtomicUsize::new(0);

/// Runs the selected scenario on the calling core; never returns.
pub fn run_on_core(core_id: u32) -> ! {
    apic::start_periodic_timer(TIMER_VECTOR, TICK_HZ);
    match cmdline::get("test") {
        None => crate::appliance::run(core_id),
        Some("boot") => boot(core_id),
        Some("pingpong") => scenario_pingpong::run(core_id),
        Some("mempool") => scenario_mempool::run(core_id),
        Some("synthetic") => scenario_synthetic::run(core_id),
        Some(_) if core_id != 0 => idle_forever(),
        Some("pagefault") => scenario_checks::page_fault(),
        Some("pci") => scenario_checks::pci_expect(),
        Some("spec") => scenario_checks::spec_module(),
        Some(name) => {
            crate::kprintln!("unknown scenario {name}");
            exit_qemu(ExitCode::Failure)
        }
    }
}

/// Halts with interrupts on, forever (cores a scenario does not use).
pub fn idle_forever() -> ! {
    loop {
        // SAFETY: the IDT is loaded on this core and handles every vector in use.
        unsafe { cpu::enable_interrupts_and_halt() };
    }
}

/// Prints `message` as the scenario's failure and exits with the failure status.
pub fn fail(scenario: &str, message: core::fmt::Arguments<'_>) -> ! {
    crate::kprintln!("scenario {scenario}: FAIL {message}");
    exit_qemu(ExitCode::Failure)
}

/// Every core builds its executor, polls it with halt-on-idle until its timer has
/// ticked three times, and reports; the boot core checks that all cores reported.
fn boot(core_id: u32) -> ! {
    let mut executor = match executor::build(core_id) {
        Ok(executor) => executor,
        Err(error) => fail(
            "boot",
            format_args!("core {core_id}: no executor: {error:?}"),
        ),
    };
    let record = percpu::current();
    // Ordering: Relaxed: our own tick counter, bumped by this core's timer
    // interrupt; it guards no data.
    executor::run(&mut executor, |_| record.ticks.load(Ordering::Relaxed) < 3);
    let polls = executor.counters().polls.get();
    let buffers = executor.pool().map_or(0, dataplane::Mempool::capacity);
    log::info!(
        "core {core_id} executor running (apic {}, {} ticks, {polls} polls, {buffers} buffers)",
        record.apic_id(),
        record.ticks.load(Ordering::Relaxed)
    );
    if polls == 0 || buffers == 0 {
        fail(
            "boot",
            format_args!("core {core_id}: executor did not poll or has no buffers"),
        );
    }
    // Release: our report is visible before the boot core sees the count.
    EXECUTORS_RUNNING.fetch_add(1, Ordering::Release);
    if core_id != 0 {
        executor::run(&mut executor, |_| true);
    }
    let expected = smp::core_count();
    let deadline = time::now_ns() + 5_000_000_000;
    executor::run(&mut executor, |_| {
        EXECUTORS_RUNNING.load(Ordering::Acquire) < expected && time::now_ns() < deadline
    });
    // Ordering: Acquire (here and in the loop above) pairs with each core's
    // Release increment, so their reports happened before we read the count.
    let running = EXECUTORS_RUNNING.load(Ordering::Acquire);
    if running != expected || smp::online_count() != expected {
        fail(
            "boot",
            format_args!("{running} of {expected} executors running"),
        );
    }
    crate::kprintln!("scenario boot: PASS cores={running}");
    exit_qemu(ExitCode::Success)
}
