//! Time: the TSC calibrated against PIT channel 0, a monotonic nanosecond clock from PVH
//! entry, and busy-wait delays.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::arch::cpu::{self, inb, outb};
use crate::boot::entry;

/// PIT input clock in Hz.
const PIT_HZ: u64 = 1_193_182;
const PIT_CHANNEL0: u16 = 0x40;
const PIT_COMMAND: u16 = 0x43;

/// TSC ticks per second (0 until calibrated).
static TSC_HZ: AtomicU64 = AtomicU64::new(0);
/// Nanoseconds per TSC tick as a 32.32 fixed-point multiplier.
static NS_PER_TICK_FIXED: AtomicU64 = AtomicU64::new(0);

/// Latches and reads PIT channel 0's current count.
fn pit_count() -> u16 {
    // SAFETY: latch command and two data reads on the PIT's fixed ports.
    unsafe {
        outb(PIT_COMMAND, 0x00); // latch channel 0
        let low = inb(PIT_CHANNEL0);
        let high = inb(PIT_CHANNEL0);
        u16::from_le_bytes([low, high])
    }
}

/// Attempts at most at a calibration no single step of which stalled.
const CALIBRATION_ATTEMPTS: u32 = 4;

/// Measures the TSC frequency over `window_us` microseconds of PIT time and returns it.
///
/// Channel 0 runs in mode 2 (rate generator) from 0xffff; we poll its latched count so
/// it also works on machines without the port-0x61 speaker gate (microvm). The PIC has
/// IRQ 0 masked, so the channel raises no interrupts.
///
/// The count wraps every 55 ms: if the hypervisor stalls this vCPU for longer
/// between two reads, the PIT time of the wraps is lost and the frequency
/// comes out too high (under TCG on a busy host a guest then took 0.6 s of
/// host time for what it counted as 2 s). A step that took more than a
/// quarter of the whole measurement is such a stall, or could be: measure
/// again, up to `CALIBRATION_ATTEMPTS` times.
pub fn calibrate(window_us: u64) -> u64 {
    let mut hz = 0;
    for _ in 0..CALIBRATION_ATTEMPTS {
        let (measured, longest_step, total) = measure_tsc_hz(window_us);
        hz = measured;
        if longest_step.saturating_mul(4) <= total {
            break;
        }
    }
    set_tsc_hz(hz);
    stop_pit();
    hz
}

/// One measurement: TSC ticks per second, and the TSC ticks of the longest
/// step between two PIT reads and of the whole measurement.
fn measure_tsc_hz(window_us: u64) -> (u64, u64, u64) {
    // SAFETY: programming PIT channel 0 on its fixed ports; IRQ 0 is masked.
    unsafe {
        outb(PIT_COMMAND, 0x34); // channel 0, lobyte/hibyte, mode 2, binary
        outb(PIT_CHANNEL0, 0xff);
        outb(PIT_CHANNEL0, 0xff);
    }
    let target = PIT_HZ * window_us / 1_000_000;
    let mut previous = pit_count();
    let start_tsc = cpu::rdtsc();
    let (mut elapsed, mut step_start, mut longest_step) = (0u64, start_tsc, 0u64);
    while elapsed < target {
        let now = pit_count();
        let step_end = cpu::rdtsc();
        longest_step = longest_step.max(step_end - step_start);
        step_start = step_end;
        elapsed += u64::from(previous.wrapping_sub(now));
        previous = now;
    }
    let ticks = cpu::rdtsc() - start_tsc;
    (ticks * PIT_HZ / elapsed.max(1), longest_step, ticks)
}

/// Leaves PIT channel 0 in mode 0 (interrupt on terminal count) from
/// 0xffff: one terminal count about 55 ms on, then silent. In mode 2 it
/// would run at 18.2 Hz forever; nothing listens (IRQ 0 is masked), but
/// each period wakes the hypervisor's device model (QEMU's main loop)
/// for nothing, the bulk of an idle appliance's host CPU once its cores
/// sleep.
fn stop_pit() {
    // SAFETY: programming PIT channel 0 on its fixed ports; IRQ 0 is masked.
    unsafe {
        outb(PIT_COMMAND, 0x30); // channel 0, lobyte/hibyte, mode 0, binary
        outb(PIT_CHANNEL0, 0xff);
        outb(PIT_CHANNEL0, 0xff);
    }
}

fn set_tsc_hz(hz: u64) {
    let hz = hz.max(1);
    // Ordering: Relaxed for both: calibrated on the boot core before any AP
    // starts (the start-up IPIs order it); the numbers guard no other data.
    TSC_HZ.store(hz, Ordering::Relaxed);
    NS_PER_TICK_FIXED.store(
        ((1_000_000_000u128 << 32) / u128::from(hz)) as u64,
        Ordering::Relaxed,
    );
}

/// TSC ticks per second (0 before calibration).
pub fn tsc_hz() -> u64 {
    // Ordering: Relaxed: see `set_tsc_hz`.
    TSC_HZ.load(Ordering::Relaxed)
}

/// Converts TSC ticks to nanoseconds.
pub fn ticks_to_ns(ticks: u64) -> u64 {
    // Ordering: Relaxed: see `set_tsc_hz`.
    ((u128::from(ticks) * u128::from(NS_PER_TICK_FIXED.load(Ordering::Relaxed))) >> 32) as u64
}

/// Monotonic nanoseconds since PVH entry (0 before calibration).
pub fn now_ns() -> u64 {
    ticks_to_ns(cpu::rdtsc().saturating_sub(entry::entry_tsc()))
}

/// Busy-waits for `ns` nanoseconds.
pub fn delay_ns(ns: u64) {
    let start = now_ns();
    while now_ns() - start < ns {
        cpu::pause();
    }
}
