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
    /// Interrupts taken on this core, by source.
    pub interrupts: Interrupts,
    /// Lowest address of this core's kernel stack.
    pub stack_bottom: u64,
    /// One past the highest address of this core's kernel stack.
    pub stack_top: u64,
}

/// Interrupts a core took, by source: what woke it from a halt (the
/// executor's idle counters say which sleeps they ended). Bumped by the
/// core's own interrupt handlers; read by that core and, for the counters
/// dump, by core 0 (Relaxed: statistics).
pub struct Interrupts {
    /// LAPIC timer: the one-shot timer for the next deadline (the appliance),
    /// or the periodic tick (boot, scenarios).
    pub timer: AtomicU64,
    /// NIC receive (MSI-X): a packet arrived while the core slept.
    pub nic: AtomicU64,
    /// Wake-up IPIs: another core handed this one work (or released it).
    pub wakeup: AtomicU64,
    /// The serial console's receive interrupt (core 0).
    pub console: AtomicU64,
}

/// One reading of a core's [`Interrupts`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InterruptCounts {
    /// LAPIC timer.
    pub timer: u64,
    /// NIC receive.
    pub nic: u64,
    /// Wake-up IPIs.
    pub wakeup: u64,
    /// Serial console.
    pub console: u64,
}

impl Interrupts {
    const fn new() -> Self {
        Self {
            timer: AtomicU64::new(0),
            nic: AtomicU64::new(0),
            wakeup: AtomicU64::new(0),
            console: AtomicU64::new(0),
        }
    }

    /// The counts now.
    pub fn read(&self) -> InterruptCounts {
        // Ordering: Relaxed: statistics; on the owning core, the handlers
        // that bump them ran on this core before these loads.
        InterruptCounts {
            timer: self.timer.load(Ordering::Relaxed),
            nic: self.nic.load(Ordering::Relaxed),
            wakeup: self.wakeup.load(Ordering::Relaxed),
            console: self.console.load(Ordering::Relaxed),
        }
    }

    /// `(name, value)` of every counter, for dumps
    /// (`counter core=C interrupts=timer value=N`).
    pub fn entries(&self) -> [(&'static str, u64); 4] {
        let counts = self.read();
        [
            ("timer", counts.timer),
            ("nic", counts.nic),
            ("wakeup", counts.wakeup),
            ("console", counts.console),
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
            interrupts: Interrupts::new(),
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

/// Counts one interrupt of the calling core in the counter `pick` chooses.
pub fn count_interrupt(pick: impl FnOnce(&Interrupts) -> &AtomicU64) {
    // Ordering: Relaxed: a statistic, read by this core to tell what ended a
    // halt, or summed approximately by others.
    pick(&current().interrupts).fetch_add(1, Ordering::Relaxed);
}

/// Records the boot core's APIC id once the local APIC is enabled.
pub fn set_boot_apic_id(apic_id: u32) {
    // SAFETY: called on the boot core before any AP starts; no other reference to
    // BOOT_CORE's `apic_id` exists concurrently.
    unsafe { (*core::ptr::addr_of_mut!(BOOT_CORE)).apic_id = apic_id };
}
