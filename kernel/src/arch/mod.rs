//! x86_64 itself: the CPU, descriptor tables, interrupts, the local APIC and the I/O APIC, paging, per-core data and SMP bring-up.

pub mod apic;
pub mod cpu;
pub mod gdt;
pub mod idt;
pub mod ioapic;
pub mod paging;
pub mod percpu;
pub mod pic;
pub mod resume;
pub mod smp;
pub mod trampoline;
pub mod trap;
