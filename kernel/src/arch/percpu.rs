//! Per-core data reached through the GS base: core id, APIC id, tick counter, stacks.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::arch::cpu::{msr, wrmsr};

/// Most cores the kernel supports.
pub const MAX_CORES: usize = 64;

/// Per-core state; `GS:0` points at the core's own instance.
#[repr(C)]
pub struct PerCore {
    /// Pointer to this struct (offset 0), so `gs:[0]` yields it.
    self_pointer: *const PerCore,
    /// Dense core index, 0 = boot core (offset 8).
    core_id: u32,
    /// Local APIC id (offset 12).
    apic_id: u32,
    /// LAPIC timer interrupts taken on this core.
    pub ticks: AtomicU64,
    /// NIC receive interrupts (MSI-X) taken on this core.
    pub nic_interrupts: AtomicU64,
    /// How this core's idle halts ended.
    pub wakeups: Wakeups,
    /// Lowest address of this core's kernel stack.
    pub stack_bottom: u64,
    /// One past the highest address of this core's kernel stack.
    pub stack_top: u64,
}

/// Counts of a core's idle halts by what woke it. Written by the owning core
/// only, read by core 0 for the counters dump (Relaxed: statistics).
pub struct Wakeups {
    /// Halts with the NICs' wake-up armed.
    pub halts: AtomicU64,
    /// Halts ended by a NIC receive interrupt (a packet woke the core).
    pub by_packet: AtomicU64,
    /// Halts ended by the LAPIC timer tick and no packet interrupt.
    pub by_tick: AtomicU64,
    /// Halts ended by something else (a wake-up IPI).
    pub by_other: AtomicU64,
    /// Times the core meant to halt but found packets when arming.
    pub refused: AtomicU64,
}

impl Wakeups {
    const fn new() -> Self {
        Self {
            halts: AtomicU64::new(0),
            by_packet: AtomicU64::new(0),
            by_tick: AtomicU64::new(0),
            by_other: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }

    /// `(name, value)` of every counter, for dumps.
    pub fn entries(&self) -> [(&'static str, u64); 5] {
        [
            // Ordering: Relaxed: statistics, each written by its own core only.
            ("halts", self.halts.load(Ordering::Relaxed)),
            ("wakeups_by_packet", self.by_packet.load(Ordering::Relaxed)),
            ("wakeups_by_tick", self.by_tick.load(Ordering::Relaxed)),
            ("wakeups_by_other", self.by_other.load(Ordering::Relaxed)),
            ("halts_refused", self.refused.load(Ordering::Relaxed)),
        ]
    }
}

// SAFETY: the raw self pointer is only dereferenced by the owning core; shared fields
// are atomics or written once before the core starts.
unsafe impl Sync for PerCore {}

impl PerCore {
    /// A per-core record for `core_id` / `apic_id`; `self_pointer` is set by `install`.
    pub const fn new(core_id: u32, apic_id: u32) -> Self {
        Self {
            self_pointer: core::ptr::null(),
            core_id,
            apic_id,
            ticks: AtomicU64::new(0),
            nic_interrupts: AtomicU64::new(0),
            wakeups: Wakeups::new(),
            stack_bottom: 0,
            stack_top: 0,
        }
    }

    /// Local APIC id.
    pub fn apic_id(&self) -> u32 {
        self.apic_id
    }
}

/// The boot core's record lives in .bss so it exists before the heap.
static mut BOOT_CORE: PerCore = PerCore::new(0, 0);

/// Installs the boot core's record as its GS base. Call first thing in `kernel_main`.
pub fn init_boot_core(apic_id: u32) {
    let record = core::ptr::addr_of_mut!(BOOT_CORE);
    // SAFETY: runs once on the boot core before any other core exists, so nothing else
    // references BOOT_CORE; afterwards it is only reached through `current()`.
    unsafe {
        (*record).apic_id = apic_id;
        (*record).stack_bottom = crate::boot::entry::boot_stack_bottom_addr();
        (*record).stack_top = (*record).stack_bottom + crate::boot::entry::BOOT_STACK_BYTES as u64;
        install(&mut *record);
    }
}

/// Points GS base at `record` for the calling core.
///
/// # Safety
/// 1. `record` lives forever and belongs to the calling core only.
pub unsafe fn install(record: &'static mut PerCore) {
    record.self_pointer = record as *const PerCore;
    // SAFETY: precondition 1; GS base is the kernel's per-core pointer and nothing else.
    unsafe { wrmsr(msr::GS_BASE, record as *const PerCore as u64) };
}

/// The calling core's record.
pub fn current() -> &'static PerCore {
    let pointer: *const PerCore;
    // SAFETY: GS base is set by `init_boot_core` / `install` before any caller runs and
    // points at a 'static PerCore whose first field is its own address.
    unsafe {
        core::arch::asm!("mov {}, gs:[0]", out(reg) pointer, options(nostack, readonly, preserves_flags));
        &*pointer
    }
}

/// Dense index of the calling core (0 = boot core).
#[inline]
pub fn core_id() -> u32 {
    let id: u32;
    // SAFETY: GS points at this core's PerCore (see `current`); offset 8 is `core_id`.
    unsafe {
        core::arch::asm!("mov {:e}, gs:[8]", out(reg) id, options(nostack, readonly, preserves_flags));
    }
    id
}

/// Counts one timer tick on the calling core.
pub fn count_tick() {
    // Relaxed: a statistic read by the same core or summed approximately by others.
    current().ticks.fetch_add(1, Ordering::Relaxed);
}

/// Counts one NIC receive interrupt on the calling core.
pub fn count_nic_interrupt() {
    // Relaxed: a statistic, and the wake-up attribution reads it on this core.
    current().nic_interrupts.fetch_add(1, Ordering::Relaxed);
}

/// Records the boot core's APIC id once the local APIC is enabled.
pub fn set_boot_apic_id(apic_id: u32) {
    // SAFETY: called on the boot core before any AP starts; no other reference to
    // BOOT_CORE's `apic_id` exists concurrently.
    unsafe { (*core::ptr::addr_of_mut!(BOOT_CORE)).apic_id = apic_id };
}
