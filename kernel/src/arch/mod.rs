//! x86_64 itself: the CPU, descriptor tables, interrupts and the local APIC, paging, per-core data and SMP bring-up.

pub mod apic;
pub mod cpu;
pub mod gdt;
pub mod idt;
pub mod paging;
pub mod percpu;
pub mod pic;
pub mod smp;
pub mod trampoline;
pub mod trap;
