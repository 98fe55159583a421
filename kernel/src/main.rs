//! warpcore bare-metal kernel: a PVH appliance image that boots every core, runs one
//! executor per core and reports over the serial console.
#![no_std]
#![no_main]

extern crate alloc;

mod acpi;
mod apic;
mod appliance;
mod boot;
mod cmdline;
mod console;
mod counters_dump;
mod cpu;
mod dma;
mod entry;
mod executor;
mod exit;
mod frames;
mod gdt;
mod heap;
mod idt;
mod logring;
mod msix;
mod paging;
mod panic;
mod pci;
mod pci_bar;
mod percpu;
mod pic;
mod pvh;
mod runtime;
mod scenario_checks;
mod scenario_mempool;
mod scenario_pingpong;
mod scenario_synthetic;
mod scenarios;
mod serial;
mod smp;
mod synthetic_frames;
mod time;
mod trampoline;
mod trap;
mod virtio_platform;
