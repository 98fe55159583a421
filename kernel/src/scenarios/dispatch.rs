//! In-kernel scenarios selected by `test=NAME` on the command line (images built
//! with the cargo feature `scenarios`). Each reports over serial and leaves QEMU
//! through isa-debug-exit.

use core::sync::atomic::{AtomicUsize, Ordering};

use crate::appliance::executor::{self, IdlePolicy};
use crate::arch::{percpu, smp};
use crate::dev::exit::{ExitCode, exit_qemu};
use crate::dev::time;
use crate::runtime::idle_forever;
use crate::scenarios::{checks, igb, mempool, pingpong, synthetic, timer};

/// Cores that reported their executor running.
static EXECUTORS_RUNNING: AtomicUsize = AtomicUsize::new(0);

/// Runs scenario `name` on the calling core; never returns.
pub fn run(core_id: u32, name: &str) -> ! {
    match name {
        "boot" => boot(core_id),
        "pingpong" => pingpong::run(core_id),
        "mempool" => mempool::run(core_id),
        "synthetic" => synthetic::run(core_id),
        "timer" => timer::run(core_id),
        _ if core_id != 0 => idle_forever(),
        "pagefault" => checks::page_fault(),
        "pci" => checks::pci_expect(),
        "igb" => igb::bring_up(),
        "spec" => checks::spec_module(),
        name => {
            crate::kprintln!("unknown scenario {name}");
            exit_qemu(ExitCode::Failure)
        }
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
    // Ordering: Relaxed: our own timer interrupt counter, bumped by this
    // core's periodic tick; it guards no data.
    executor::run(&mut executor, IdlePolicy::HALT, |_| {
        record.interrupts.timer.load(Ordering::Relaxed) < 3
    });
    let polls = executor.counters().polls.get();
    let buffers = executor.pool().map_or(0, dataplane::Mempool::capacity);
    log::info!(
        "core {core_id} executor running (apic {}, {} ticks, {polls} polls, {buffers} buffers)",
        record.apic_id(),
        record.interrupts.timer.load(Ordering::Relaxed)
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
        executor::run(&mut executor, IdlePolicy::HALT, |_| true);
    }
    let expected = smp::core_count();
    let deadline = time::now_ns() + 5_000_000_000;
    executor::run(&mut executor, IdlePolicy::HALT, |_| {
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
