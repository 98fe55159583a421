//! The LAPIC timer and interrupt state of the cores (`test=timer`, two
//! cores): what the synthetic local mode's tickless window relies on.
//!
//! - Core 1 enters its scenario with interrupts on (RFLAGS.IF), takes its
//!   periodic ticks while it runs, and takes none once it stopped its timer
//!   and enabled interrupts again: no tick latched before `stop_timer`
//!   arrives later. (A core entered with interrupts off took its ticks only
//!   at its first `sti`, one of them after its timer stopped: the one timer
//!   interrupt of a synthetic pipeline core in its measured window.)
//! - Core 0 enters with interrupts on too, then sleeps on `apic::halt_until`
//!   one-shot timers: plain ones, and ones that expire while the core
//!   stalls between arming and halting (a hypervisor preempting the vCPU
//!   there). Each must end its halt; core 1 watches, and wakes core 0 with
//!   an IPI when it made no progress for `WATCHDOG_NS`, which fails the run.
//!
//! `timer_halt=interrupts-on` arms the stalled timers with interrupts on
//! instead, the order that lost core 0's wake-up in the synthetic local
//! mode: the control run that shows the watchdog catches it.
//!
//! ```text
//! scenario timer: core 1 interrupts_on_entry=true ticks_running=1 ticks_after_stop=0
//! scenario timer: core 0 interrupts_on_entry=true one_shot_wakeups=25
//! scenario timer: PASS
//! ```

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::arch::trap::{TIMER_VECTOR, WAKEUP_VECTOR};
use crate::arch::{apic, cpu, percpu, smp};
use crate::boot::cmdline;
use crate::dev::exit::{ExitCode, exit_qemu};
use crate::dev::time;
use crate::scenarios::dispatch::fail;

/// The longest core 1 waits for its first tick while running: 100 periods
/// of the 100 Hz tick. It stops waiting at the first tick; the bound only
/// ends a run whose ticks never come (interrupts off), and is long enough
/// that a QEMU main loop starved on a busy host still delivers one.
const TICKING_TIMEOUT_NS: u64 = 1_000_000_000;
/// How long core 1 runs after stopping its timer, looking for late ticks.
const STOPPED_NS: u64 = 30_000_000;
/// Plain one-shot sleeps and their length.
const PLAIN_SLEEPS: u64 = 5;
const PLAIN_SLEEP_NS: u64 = 2_000_000;
/// One-shot sleeps that stall past their timer's expiry before halting.
const STALLED_SLEEPS: u64 = 20;
const STALLED_TIMER_NS: u64 = 20_000;
/// The stall between arming and halting: 150 times the timer, so the timer
/// expires inside it even when the vCPU is slow to start it (with
/// `timer_halt=interrupts-on` the control then loses every such wake-up).
const STALL_NS: u64 = 3_000_000;
/// Core 0 without progress this long is asleep for good.
const WATCHDOG_NS: u64 = 2_000_000_000;
/// How long core 0 waits for core 1's report.
const REPORT_TIMEOUT_NS: u64 = 5_000_000_000;

/// Core 0's completed sleeps, watched by core 1.
static PROGRESS: AtomicU64 = AtomicU64::new(0);
/// Set by core 1 before it wakes a stuck core 0.
static WATCHDOG_FIRED: AtomicBool = AtomicBool::new(false);
/// Core 1's findings: (interrupts on at entry, ticks while running, ticks
/// after the stop), published by `CORE1_REPORTED`.
static CORE1_INTERRUPTS_ON: AtomicBool = AtomicBool::new(false);
static CORE1_TICKS_RUNNING: AtomicU64 = AtomicU64::new(0);
static CORE1_TICKS_AFTER_STOP: AtomicU64 = AtomicU64::new(0);
static CORE1_REPORTED: AtomicBool = AtomicBool::new(false);

/// Runs the scenario's role for `core_id` (cores above 1 idle).
pub fn run(core_id: u32) -> ! {
    let interrupts_on = cpu::interrupts_enabled();
    match core_id {
        0 => one_shot_sleeps(interrupts_on),
        1 => {
            stopped_tick(interrupts_on);
            watchdog()
        }
        _ => crate::runtime::idle_forever(),
    }
}

/// This core's timer interrupts so far.
fn ticks() -> u64 {
    percpu::current().interrupts.read().timer
}

/// Core 1: ticks while running, none after `stop_timer`.
fn stopped_tick(interrupts_on: bool) {
    let before = ticks();
    let give_up = time::now_ns() + TICKING_TIMEOUT_NS;
    while ticks() == before && time::now_ns() < give_up {
        cpu::pause();
    }
    let running = ticks() - before;
    apic::stop_timer();
    // A tick latched before the stop is taken here, with interrupts on.
    time::delay_ns(1_000_000);
    let stopped = ticks();
    time::delay_ns(STOPPED_NS);
    // A core that ran with interrupts off takes what was latched here.
    // SAFETY: the IDT is loaded on this core and handles the timer vector.
    unsafe { cpu::enable_interrupts() };
    time::delay_ns(1_000_000);
    let after_stop = ticks() - stopped;
    // Ordering: Relaxed: published by the Release store of `CORE1_REPORTED`.
    CORE1_INTERRUPTS_ON.store(interrupts_on, Ordering::Relaxed);
    CORE1_TICKS_RUNNING.store(running, Ordering::Relaxed);
    CORE1_TICKS_AFTER_STOP.store(after_stop, Ordering::Relaxed);
    // Release: the findings above before the flag core 0 acquires.
    CORE1_REPORTED.store(true, Ordering::Release);
}

/// Core 1 after its own checks: wakes core 0 (and says so) when it made no
/// progress for `WATCHDOG_NS`. Halts between looks on its 100 Hz tick.
fn watchdog() -> ! {
    apic::start_periodic_timer(TIMER_VECTOR, crate::runtime::TICK_HZ);
    // Ordering: Relaxed: a counter compared with itself; no data behind it.
    let mut seen = PROGRESS.load(Ordering::Relaxed);
    let mut since = time::now_ns();
    loop {
        // SAFETY: the IDT is loaded and the tick runs on this core.
        unsafe { cpu::enable_interrupts_and_halt() };
        // Ordering: Relaxed, as above.
        let progress = PROGRESS.load(Ordering::Relaxed);
        let now = time::now_ns();
        if progress != seen {
            (seen, since) = (progress, now);
        } else if now - since > WATCHDOG_NS {
            // Release: the flag before the IPI that makes core 0 look at it.
            WATCHDOG_FIRED.store(true, Ordering::Release);
            if let Some(record) = smp::record(0) {
                apic::send_fixed(record.apic_id(), WAKEUP_VECTOR);
            }
            since = now;
        }
    }
}

/// Core 0: one-shot sleeps that must each end by their own timer.
fn one_shot_sleeps(interrupts_on: bool) -> ! {
    if smp::core_count() < 2 {
        fail(
            "timer",
            format_args!("needs 2 cores (core 1 is the watchdog)"),
        );
    }
    let racy = match cmdline::get("timer_halt") {
        None | Some("interrupts-off") => false,
        Some("interrupts-on") => true,
        Some(other) => fail(
            "timer",
            format_args!("timer_halt takes interrupts-off or interrupts-on, not `{other}`"),
        ),
    };
    apic::stop_timer();
    time::delay_ns(1_000_000);
    for sleep in 0..PLAIN_SLEEPS + STALLED_SLEEPS {
        let before = ticks();
        let stalled = sleep >= PLAIN_SLEEPS;
        let deadline = time::now_ns()
            + if stalled {
                STALLED_TIMER_NS
            } else {
                PLAIN_SLEEP_NS
            };
        let mut first = true;
        // Until this sleep's timer interrupt came: another interrupt ends a
        // halt too, and the core sleeps again with the timer re-armed.
        while ticks() == before {
            if first && stalled && racy {
                // SAFETY: the IDT is loaded and handles the timer vector;
                // the order is wrong on purpose (see the module's note).
                unsafe { cpu::enable_interrupts() };
                apic::start_one_shot_timer(TIMER_VECTOR, STALLED_TIMER_NS);
                time::delay_ns(STALL_NS);
                // SAFETY: as above.
                unsafe { cpu::enable_interrupts_and_halt() };
            } else if first && stalled {
                // SAFETY: the IDT is loaded and handles the timer vector.
                unsafe {
                    apic::halt_until_after(TIMER_VECTOR, deadline, 1, || {
                        time::delay_ns(STALL_NS);
                    });
                }
            } else {
                // SAFETY: the IDT is loaded and handles the timer vector.
                unsafe { apic::halt_until(TIMER_VECTOR, deadline, 1) };
            }
            first = false;
            // Acquire: pairs with the watchdog's Release before its IPI.
            if WATCHDOG_FIRED.load(Ordering::Acquire) {
                fail(
                    "timer",
                    format_args!(
                        "core 0 stayed asleep past its one-shot timer (sleep {sleep}): woken by the watchdog"
                    ),
                );
            }
        }
        // Ordering: Relaxed: the watchdog only compares it with itself.
        PROGRESS.fetch_add(1, Ordering::Relaxed);
    }
    // Ordering: Relaxed: written only by this core.
    let wakeups = PROGRESS.load(Ordering::Relaxed);
    let deadline = time::now_ns() + REPORT_TIMEOUT_NS;
    // Acquire: pairs with core 1's Release store; its findings are complete.
    while !CORE1_REPORTED.load(Ordering::Acquire) {
        if time::now_ns() > deadline {
            fail("timer", format_args!("core 1 did not report"));
        }
        cpu::pause();
    }
    // Ordering: Relaxed: published by `CORE1_REPORTED` (above).
    let core1_interrupts_on = CORE1_INTERRUPTS_ON.load(Ordering::Relaxed);
    let running = CORE1_TICKS_RUNNING.load(Ordering::Relaxed);
    let after_stop = CORE1_TICKS_AFTER_STOP.load(Ordering::Relaxed);
    crate::kprintln!(
        "scenario timer: core 1 interrupts_on_entry={core1_interrupts_on} ticks_running={running} ticks_after_stop={after_stop}"
    );
    crate::kprintln!(
        "scenario timer: core 0 interrupts_on_entry={interrupts_on} one_shot_wakeups={wakeups}"
    );
    if !interrupts_on || !core1_interrupts_on {
        fail("timer", format_args!("a core entered with interrupts off"));
    }
    if running == 0 || after_stop != 0 {
        fail(
            "timer",
            format_args!(
                "core 1 took {running} ticks while running (waiting up to 1 s for one) and {after_stop} after stopping its timer"
            ),
        );
    }
    crate::kprintln!("scenario timer: PASS");
    exit_qemu(ExitCode::Success)
}
