//! Local APIC in xAPIC (MMIO) or x2APIC (MSR) mode: enable, EOI, IPIs and the timer.

use core::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use crate::arch::cpu::{self, msr, rdmsr, wrmsr};
use crate::arch::trap::SPURIOUS_VECTOR;

/// Register offsets in the xAPIC MMIO page (x2APIC MSR = 0x800 + offset / 16).
mod register {
    pub const ID: u32 = 0x020;
    pub const TASK_PRIORITY: u32 = 0x080;
    pub const END_OF_INTERRUPT: u32 = 0x0b0;
    pub const SPURIOUS: u32 = 0x0f0;
    pub const ICR_LOW: u32 = 0x300;
    pub const ICR_HIGH: u32 = 0x310;
    pub const LVT_TIMER: u32 = 0x320;
    pub const TIMER_INITIAL: u32 = 0x380;
    pub const TIMER_CURRENT: u32 = 0x390;
    pub const TIMER_DIVIDE: u32 = 0x3e0;
}

/// IA32_APIC_BASE bits.
const BASE_ENABLE: u64 = 1 << 11;
const BASE_X2APIC: u64 = 1 << 10;
/// ICR bits.
const ICR_DELIVERY_PENDING: u32 = 1 << 12;
const ICR_LEVEL_ASSERT: u32 = 1 << 14;
const ICR_INIT: u32 = 0b101 << 8;
const ICR_STARTUP: u32 = 0b110 << 8;
/// LVT timer periodic mode.
const TIMER_PERIODIC: u32 = 1 << 17;
/// LVT mask bit.
const LVT_MASKED: u32 = 1 << 16;

/// Which programming interface the local APICs use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Memory-mapped registers, 8-bit ids.
    XApic,
    /// MSR registers, 32-bit ids.
    X2Apic,
}

/// 0 = not initialised, 1 = xAPIC, 2 = x2APIC.
static MODE: AtomicU8 = AtomicU8::new(0);
/// xAPIC MMIO base.
static MMIO_BASE: AtomicU64 = AtomicU64::new(0xfee0_0000);
/// LAPIC timer counts per millisecond at divide-by-16, measured on the boot core.
static TIMER_COUNTS_PER_MS: AtomicU64 = AtomicU64::new(0);

/// The mode chosen at boot.
pub fn mode() -> Mode {
    // Ordering: Relaxed: set once on the boot core before the APs start; the
    // AP start-up IPI sequence (and `smp`'s Release/Acquire records) orders it.
    if MODE.load(Ordering::Relaxed) == 2 {
        Mode::X2Apic
    } else {
        Mode::XApic
    }
}

/// Whether this CPU supports x2APIC (CPUID.1:ECX[21]).
pub fn x2apic_supported() -> bool {
    cpu::cpuid(1, 0).ecx & (1 << 21) != 0
}

fn read(offset: u32) -> u32 {
    match mode() {
        // SAFETY: x2APIC is enabled on this core and the MSR maps a defined register.
        Mode::X2Apic => unsafe { rdmsr(0x800 + (offset >> 4)) as u32 },
        // SAFETY: the xAPIC page is identity mapped uncached and `offset` is a register.
        Mode::XApic => unsafe {
            // Ordering: Relaxed: written once in `select_mode`, see `mode`.
            ((MMIO_BASE.load(Ordering::Relaxed) + u64::from(offset)) as *const u32).read_volatile()
        },
    }
}

fn write(offset: u32, value: u32) {
    match mode() {
        // SAFETY: x2APIC is enabled on this core and the MSR maps a defined register.
        Mode::X2Apic => unsafe { wrmsr(0x800 + (offset >> 4), u64::from(value)) },
        // SAFETY: the xAPIC page is identity mapped uncached and `offset` is a register.
        Mode::XApic => unsafe {
            // Ordering: Relaxed: written once in `select_mode`, see `mode`.
            ((MMIO_BASE.load(Ordering::Relaxed) + u64::from(offset)) as *mut u32)
                .write_volatile(value)
        },
    }
}

/// Chooses the APIC mode for all cores; call once on the boot core.
pub fn select_mode(mmio_base: u64, use_x2apic: bool) {
    // Ordering: Relaxed: the boot core runs this before it starts any AP; the
    // start-up sequence publishes it (see `mode`).
    MMIO_BASE.store(mmio_base, Ordering::Relaxed);
    MODE.store(if use_x2apic { 2 } else { 1 }, Ordering::Relaxed);
}

/// Enables the local APIC of the calling core in the selected mode.
pub fn enable_this_core() {
    // SAFETY: IA32_APIC_BASE exists on every x86_64 CPU; we only set enable bits and
    // keep the base address the firmware programmed.
    unsafe {
        let base = rdmsr(msr::APIC_BASE);
        let wanted = match mode() {
            Mode::X2Apic => base | BASE_ENABLE | BASE_X2APIC,
            Mode::XApic => base | BASE_ENABLE,
        };
        if wanted != base {
            wrmsr(msr::APIC_BASE, wanted);
        }
    }
    write(register::TASK_PRIORITY, 0);
    write(register::SPURIOUS, 0x100 | u32::from(SPURIOUS_VECTOR));
    write(register::LVT_TIMER, LVT_MASKED);
}

/// The calling core's local APIC id.
pub fn id() -> u32 {
    match mode() {
        Mode::X2Apic => read(register::ID),
        Mode::XApic => read(register::ID) >> 24,
    }
}

/// Signals end of interrupt.
pub fn end_of_interrupt() {
    write(register::END_OF_INTERRUPT, 0);
}

/// Sends an inter-processor interrupt with ICR low bits `command` to `apic_id`.
fn send(apic_id: u32, command: u32) {
    match mode() {
        // SAFETY: writing the x2APIC ICR only sends the requested IPI.
        Mode::X2Apic => unsafe { wrmsr(0x830, (u64::from(apic_id) << 32) | u64::from(command)) },
        Mode::XApic => {
            write(register::ICR_HIGH, apic_id << 24);
            write(register::ICR_LOW, command);
            while read(register::ICR_LOW) & ICR_DELIVERY_PENDING != 0 {
                cpu::pause();
            }
        }
    }
}

/// Sends INIT (assert) to `apic_id`.
pub fn send_init(apic_id: u32) {
    send(apic_id, ICR_INIT | ICR_LEVEL_ASSERT);
}

/// Sends a STARTUP IPI: the target starts in real mode at `page * 4096`.
pub fn send_startup(apic_id: u32, page: u8) {
    send(apic_id, ICR_STARTUP | ICR_LEVEL_ASSERT | u32::from(page));
}

/// Sends a fixed interrupt `vector` to `apic_id`.
pub fn send_fixed(apic_id: u32, vector: u8) {
    send(apic_id, ICR_LEVEL_ASSERT | u32::from(vector));
}

/// Starts a free-running, masked LAPIC countdown for calibration; returns the TSC
/// value at the start. Finish with `finish_timer_calibration` once the TSC is calibrated.
pub fn start_timer_calibration() -> u64 {
    write(register::TIMER_DIVIDE, 0b0011); // divide by 16
    write(register::LVT_TIMER, LVT_MASKED);
    write(register::TIMER_INITIAL, u32::MAX);
    cpu::rdtsc()
}

/// Records the LAPIC timer rate from the countdown started at TSC `start_tsc`.
pub fn finish_timer_calibration(start_tsc: u64) {
    let counted = u32::MAX - read(register::TIMER_CURRENT);
    let elapsed_ns = crate::dev::time::ticks_to_ns(cpu::rdtsc() - start_tsc).max(1);
    write(register::TIMER_INITIAL, 0);
    let per_ms = u64::from(counted) * 1_000_000 / elapsed_ns;
    // Ordering: Relaxed: a plain number with no data behind it, calibrated on
    // the boot core before the APs are started.
    TIMER_COUNTS_PER_MS.store(per_ms.max(1), Ordering::Relaxed);
}

/// LAPIC timer counts per millisecond (divide-by-16), 0 before calibration.
pub fn timer_counts_per_ms() -> u64 {
    // Ordering: Relaxed: see `calibrate_timer`; the value guards no other data.
    TIMER_COUNTS_PER_MS.load(Ordering::Relaxed)
}

/// Starts the periodic LAPIC timer on the calling core at `hz` interrupts per second.
pub fn start_periodic_timer(vector: u8, hz: u64) {
    let count = (timer_counts_per_ms() * 1000 / hz.max(1)).clamp(1, u64::from(u32::MAX));
    write(register::TIMER_DIVIDE, 0b0011);
    write(register::LVT_TIMER, TIMER_PERIODIC | u32::from(vector));
    write(register::TIMER_INITIAL, count as u32);
}

/// Arms the LAPIC timer of the calling core to interrupt once on `vector`
/// after `ns` nanoseconds (rounded up to the timer's resolution, at most
/// what the 32-bit count holds: about a minute at QEMU's rate, after which
/// the core wakes and sleeps again). Replaces a periodic timer.
pub fn start_one_shot_timer(vector: u8, ns: u64) {
    let per_ms = timer_counts_per_ms().max(1);
    let count = u128::from(ns)
        .saturating_mul(u128::from(per_ms))
        .div_ceil(1_000_000)
        .clamp(1, u128::from(u32::MAX));
    write(register::TIMER_DIVIDE, 0b0011);
    // One-shot mode (LVT bits 17-18 clear), unmasked; writing the initial
    // count starts the countdown.
    write(register::LVT_TIMER, u32::from(vector));
    write(register::TIMER_INITIAL, count as u32);
}

/// Halts the calling core until an interrupt, with its LAPIC timer armed to
/// interrupt once on `vector` at `deadline_ns` (`time::now_ns`), or after
/// `min_ns` if that is later: the timer always fires, so the core wakes.
///
/// Interrupts are off from before the timer is armed until `sti; hlt`. With
/// them on, a timer that expires before the `hlt` (a short count, or the
/// hypervisor preempting the vCPU in between) would run its handler first
/// and leave the core halted with no timer armed: a lost wake-up. With them
/// off it stays pending in the IRR and ends the `hlt` at once. Returns with
/// interrupts on.
///
/// # Safety
/// 1. An IDT able to handle every interrupt that may arrive must be loaded.
#[cfg(feature = "scenarios")] // the synthetic local mode's core 0
pub unsafe fn halt_until(vector: u8, deadline_ns: u64, min_ns: u64) {
    // SAFETY: the caller's guarantee (1), passed on; the empty closure
    // leaves interrupts off (2).
    unsafe { halt_until_after(vector, deadline_ns, min_ns, || {}) }
}

/// `halt_until`, running `before_halt` between arming the timer and halting,
/// with interrupts off: where a hypervisor may preempt the vCPU. The timer
/// scenario stalls there on purpose, past the timer's expiry.
///
/// # Safety
/// 1. An IDT able to handle every interrupt that may arrive must be loaded.
/// 2. `before_halt` must leave interrupts off (no `sti`, nothing that
///    enables them): with them on, the timer's handler may run before the
///    `hlt` and the core sleeps with no timer armed (the lost wake-up this
///    function exists to prevent).
#[cfg(feature = "scenarios")]
pub unsafe fn halt_until_after(
    vector: u8,
    deadline_ns: u64,
    min_ns: u64,
    before_halt: impl FnOnce(),
) {
    cpu::disable_interrupts();
    let remaining = deadline_ns.saturating_sub(crate::dev::time::now_ns());
    start_one_shot_timer(vector, remaining.max(min_ns).max(1));
    before_halt();
    // `cli`/`sti` are `nomem` asm: keep memory accesses (the caller's state,
    // `before_halt`'s) from moving across the halt.
    core::sync::atomic::compiler_fence(Ordering::SeqCst);
    // SAFETY: the caller guarantees an IDT (precondition 1) and that
    // interrupts are still off here (precondition 2); `sti; hlt` takes an
    // interrupt that became pending since the `cli` only once `hlt` has
    // begun, and that ends the `hlt`.
    unsafe { cpu::enable_interrupts_and_halt() };
    core::sync::atomic::compiler_fence(Ordering::SeqCst);
}

/// Stops the LAPIC timer on the calling core. A tick that fired before it
/// stays pending in the IRR (masking the LVT does not withdraw it): with
/// interrupts on it is taken at once, with them off at the next `sti`.
pub fn stop_timer() {
    write(register::LVT_TIMER, LVT_MASKED);
    write(register::TIMER_INITIAL, 0);
}
