//! Thin wrappers over x86_64 instructions: port I/O, MSRs, control registers, CPUID, TSC.

use core::arch::asm;

/// Writes a byte to an I/O port.
///
/// # Safety
/// 1. `port` must be a device register for which writing `value` has no memory-safety effect.
pub unsafe fn outb(port: u16, value: u8) {
    // SAFETY: the caller guarantees the port write is harmless to memory safety.
    unsafe {
        asm!("out dx, al", in("dx") port, in("al") value, options(nomem, nostack, preserves_flags))
    }
}

/// Reads a byte from an I/O port.
///
/// # Safety
/// 1. Reading `port` must have no memory-safety effect (reads may still change device state).
pub unsafe fn inb(port: u16) -> u8 {
    let value: u8;
    // SAFETY: the caller guarantees the port read is harmless to memory safety.
    unsafe {
        asm!("in al, dx", out("al") value, in("dx") port, options(nomem, nostack, preserves_flags))
    }
    value
}

/// Writes a doubleword to an I/O port.
///
/// # Safety
/// 1. `port` must be a device register for which writing `value` has no memory-safety effect.
pub unsafe fn outl(port: u16, value: u32) {
    // SAFETY: the caller guarantees the port write is harmless to memory safety.
    unsafe {
        asm!("out dx, eax", in("dx") port, in("eax") value, options(nomem, nostack, preserves_flags))
    }
}

/// Reads a doubleword from an I/O port.
///
/// # Safety
/// 1. Reading `port` must have no memory-safety effect.
pub unsafe fn inl(port: u16) -> u32 {
    let value: u32;
    // SAFETY: the caller guarantees the port read is harmless to memory safety.
    unsafe {
        asm!("in eax, dx", out("eax") value, in("dx") port, options(nomem, nostack, preserves_flags))
    }
    value
}

/// Reads a model-specific register.
///
/// # Safety
/// 1. `msr` must exist on this CPU (otherwise the CPU raises #GP).
pub unsafe fn rdmsr(msr: u32) -> u64 {
    let (low, high): (u32, u32);
    // SAFETY: the caller guarantees the MSR exists.
    unsafe {
        asm!("rdmsr", in("ecx") msr, out("eax") low, out("edx") high, options(nomem, nostack, preserves_flags))
    }
    (u64::from(high) << 32) | u64::from(low)
}

/// Writes a model-specific register.
///
/// # Safety
/// 1. `msr` must exist and `value` must not break the invariants the kernel relies on
///    (paging, GS base, APIC mode).
pub unsafe fn wrmsr(msr: u32, value: u64) {
    let low = value as u32;
    let high = (value >> 32) as u32;
    // SAFETY: the caller guarantees the write is valid and harmless.
    unsafe {
        asm!("wrmsr", in("ecx") msr, in("eax") low, in("edx") high, options(nostack, preserves_flags))
    }
}

/// Result of one CPUID leaf.
#[derive(Clone, Copy, Debug)]
pub struct Cpuid {
    /// EAX output.
    pub eax: u32,
    /// EBX output.
    pub ebx: u32,
    /// ECX output.
    pub ecx: u32,
    /// EDX output.
    pub edx: u32,
}

/// Executes CPUID for `leaf` / `subleaf`.
pub fn cpuid(leaf: u32, subleaf: u32) -> Cpuid {
    let r = core::arch::x86_64::__cpuid_count(leaf, subleaf);
    Cpuid {
        eax: r.eax,
        ebx: r.ebx,
        ecx: r.ecx,
        edx: r.edx,
    }
}

/// Reads the time-stamp counter.
#[inline(always)]
pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC is unprivileged-safe and only reads the counter.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Reads CR2, the faulting linear address of the last page fault.
pub fn read_cr2() -> u64 {
    let value: u64;
    // SAFETY: reading CR2 has no side effects.
    unsafe { asm!("mov {}, cr2", out(reg) value, options(nomem, nostack, preserves_flags)) }
    value
}

/// Reads CR3, the physical address of the active PML4.
pub fn read_cr3() -> u64 {
    let value: u64;
    // SAFETY: reading CR3 has no side effects.
    unsafe { asm!("mov {}, cr3", out(reg) value, options(nomem, nostack, preserves_flags)) }
    value
}

/// Loads CR3 (switches page tables and flushes non-global TLB entries).
///
/// # Safety
/// 1. `pml4_phys` must point to a valid PML4 that maps all code, data and stacks in use.
pub unsafe fn write_cr3(pml4_phys: u64) {
    // SAFETY: the caller guarantees the new tables map everything in use.
    unsafe { asm!("mov cr3, {}", in(reg) pml4_phys, options(nostack, preserves_flags)) }
}

/// Disables interrupts on this core.
pub fn disable_interrupts() {
    // SAFETY: CLI only masks maskable interrupts; it cannot break memory safety.
    unsafe { asm!("cli", options(nomem, nostack)) }
}

/// Enables interrupts on this core.
///
/// # Safety
/// 1. An IDT able to handle every interrupt that may arrive must be loaded.
pub unsafe fn enable_interrupts() {
    // SAFETY: STI only unmasks maskable interrupts; the caller guarantees an IDT.
    unsafe { asm!("sti", options(nomem, nostack)) }
}

/// Whether maskable interrupts are enabled on this core (RFLAGS.IF).
#[cfg(feature = "scenarios")] // the timer scenario's check
pub fn interrupts_enabled() -> bool {
    let flags: u64;
    // SAFETY: `pushfq; pop` only reads RFLAGS through this core's stack.
    unsafe { asm!("pushfq", "pop {}", out(reg) flags, options(nomem, preserves_flags)) }
    flags & (1 << 9) != 0
}

/// Atomically enables interrupts and halts until the next one arrives.
///
/// # Safety
/// 1. An IDT able to handle every interrupt that may arrive must be loaded.
pub unsafe fn enable_interrupts_and_halt() {
    // SAFETY: `sti; hlt` is the race-free idle sequence; the caller guarantees an IDT.
    unsafe { asm!("sti", "hlt", options(nomem, nostack)) }
}

/// Halts this core forever with interrupts disabled.
pub fn halt_forever() -> ! {
    loop {
        // SAFETY: `cli; hlt` only stops this core.
        unsafe { asm!("cli", "hlt", options(nomem, nostack)) }
    }
}

/// Hints to the CPU that this is a spin-wait loop.
#[inline(always)]
pub fn pause() {
    core::hint::spin_loop();
}

/// MSR numbers used by the kernel.
pub mod msr {
    /// IA32_APIC_BASE: LAPIC base address and enable bits.
    pub const APIC_BASE: u32 = 0x1b;
    /// IA32_GS_BASE: the GS segment base used for per-core data.
    pub const GS_BASE: u32 = 0xc000_0101;
}
