//! Multiprocessor bring-up: per-core records, stacks and descriptor tables for every
//! APIC the MADT lists, then INIT-SIPI-SIPI and a wait until every core reports online.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use crate::arch::gdt::{CoreTables, IST_STACK_BYTES};
use crate::arch::percpu::{self, MAX_CORES, PerCore};
use crate::arch::trap::WAKEUP_VECTOR;
use crate::{
    arch::apic, arch::cpu, arch::idt, arch::paging, arch::trampoline, dev::time, mem::frames,
};

/// Kernel stack size of each application processor.
pub const AP_STACK_BYTES: usize = 256 * 1024;

/// Per-core records indexed by core id.
static RECORDS: [AtomicPtr<PerCore>; MAX_CORES] =
    [const { AtomicPtr::new(core::ptr::null_mut()) }; MAX_CORES];
/// Per-core descriptor tables indexed by core id.
static TABLES: [AtomicPtr<CoreTables>; MAX_CORES] =
    [const { AtomicPtr::new(core::ptr::null_mut()) }; MAX_CORES];
/// Number of cores the MADT gave us (including the boot core).
static CORE_COUNT: AtomicUsize = AtomicUsize::new(1);
/// Number of cores that finished their initialisation.
static ONLINE: AtomicUsize = AtomicUsize::new(1);
/// Stack tops handed to APs by trampoline ticket.
static mut AP_STACK_TOPS: [u64; MAX_CORES] = [0; MAX_CORES];

/// Allocates a stack of `bytes` from physical frames (identity mapped, never freed)
/// and returns (bottom, top).
fn allocate_stack(bytes: usize) -> (u64, u64) {
    match frames::allocate(bytes as u64, frames::FRAME_BYTES) {
        Ok(bottom) => (bottom, bottom + bytes as u64),
        Err(error) => panic!("no memory for a {} KiB stack: {error:?}", bytes / 1024),
    }
}

/// Builds and loads the boot core's descriptor tables (its IST stack comes from the heap).
pub fn init_boot_core_tables() {
    let (_, ist_top) = allocate_stack(IST_STACK_BYTES);
    let tables = Box::leak(Box::new(CoreTables::new(ist_top)));
    // Ordering: Release, as for the APs' tables in
    // `start_application_processors`; only this core uses its own.
    TABLES[0].store(tables, Ordering::Release);
    // SAFETY: the tables are leaked ('static), used by the boot core only; interrupts
    // are still disabled during boot.
    unsafe { tables.load() };
    idt::load();
    // The boot core's record is static; remember it for lookups by core id.
    // Ordering: Release pairs with the Acquire in `record`.
    RECORDS[0].store(
        percpu::current() as *const PerCore as *mut PerCore,
        Ordering::Release,
    );
}

/// Number of cores in the system (valid after `start_application_processors`).
pub fn core_count() -> usize {
    // Ordering: Acquire pairs with the Release in `start_application_processors`,
    // so the records of the counted cores are visible too.
    CORE_COUNT.load(Ordering::Acquire)
}

/// Number of cores that completed initialisation.
pub fn online_count() -> usize {
    // Ordering: Acquire pairs with each AP's Release increment in `ap_main`:
    // what a counted core initialised is visible.
    ONLINE.load(Ordering::Acquire)
}

/// The record of core `core_id`.
pub fn record(core_id: usize) -> Option<&'static PerCore> {
    // Ordering: Acquire pairs with the Release stores of the records, so the
    // record is seen fully initialised.
    let pointer = RECORDS.get(core_id)?.load(Ordering::Acquire);
    // SAFETY: records are leaked boxes or the static boot record, never freed.
    (!pointer.is_null()).then(|| unsafe { &*pointer })
}

/// Whether the CPU needs the 10 ms INIT delay of the original MP specification.
/// Like Linux, skip it on family 6 and later (every x86_64 CPU qualifies).
fn needs_init_delay() -> bool {
    let eax = cpu::cpuid(1, 0).eax;
    let family = (eax >> 8) & 0xf;
    family < 6
}

/// Starts every enabled AP listed in `apic_ids` (the boot core's id is skipped) without
/// waiting for them to finish initialising; see `wait_online`.
pub fn start_application_processors(apic_ids: &[u32]) {
    let boot_apic = apic::id();
    let targets: Vec<u32> = apic_ids
        .iter()
        .copied()
        .filter(|&id| id != boot_apic)
        .take(MAX_CORES - 1)
        .collect();
    for (index, &apic_id) in targets.iter().enumerate() {
        let core_id = index + 1;
        let (bottom, top) = allocate_stack(AP_STACK_BYTES);
        let mut record = Box::new(PerCore::new(core_id as u32, apic_id));
        record.stack_bottom = bottom;
        record.stack_top = top;
        // Ordering: Release publishes the initialised record (stack bounds) to the
        // AP and to `record` (Acquire).
        RECORDS[core_id].store(Box::leak(record), Ordering::Release);
        let (_, ist_top) = allocate_stack(IST_STACK_BYTES);
        // Ordering: Release publishes the built tables to the AP's Acquire load.
        TABLES[core_id].store(
            Box::leak(Box::new(CoreTables::new(ist_top))),
            Ordering::Release,
        );
        // SAFETY: only the boot core writes the table, before any AP runs.
        unsafe { (*core::ptr::addr_of_mut!(AP_STACK_TOPS))[index] = top };
    }
    // Ordering: Release: every record stored above is visible to a core that
    // reads this count with Acquire (`core_count`).
    CORE_COUNT.store(targets.len() + 1, Ordering::Release);
    if targets.is_empty() {
        return;
    }
    // SAFETY: the trampoline page is below 1 MiB, excluded from the frame allocator and
    // identity mapped; stacks are leaked and 16-byte aligned; `ap_entry` never returns;
    // the kernel PML4 came from the frame allocator, which hands out low memory first.
    unsafe {
        trampoline::install(
            paging::kernel_pml4(),
            core::ptr::addr_of!(AP_STACK_TOPS).cast(),
            ap_entry,
        );
    }
    for &apic_id in &targets {
        apic::send_init(apic_id);
    }
    if needs_init_delay() {
        time::delay_ns(10_000_000);
    }
    for attempt in 0..2 {
        for &apic_id in &targets {
            apic::send_startup(apic_id, trampoline::startup_page());
        }
        let start = time::now_ns();
        while (trampoline::arrived() as usize) < targets.len() && time::now_ns() - start < 200_000 {
            cpu::pause();
        }
        if trampoline::arrived() as usize == targets.len() || attempt == 1 {
            break;
        }
    }
}

/// Waits up to `timeout_ms` for every started core to come online, halting between
/// checks (each AP sends a wake-up IPI; a 1 kHz tick bounds the wait). Returns the
/// online count.
pub fn wait_online(timeout_ms: u64) -> usize {
    let expected = core_count();
    let start = time::now_ns();
    apic::start_periodic_timer(WAKEUP_VECTOR, 1000);
    loop {
        cpu::disable_interrupts();
        if online_count() >= expected || time::now_ns() - start >= timeout_ms * 1_000_000 {
            break;
        }
        // SAFETY: the IDT is loaded and handles the wake-up vector; `sti; hlt` cannot
        // miss an IPI sent after the check.
        unsafe { cpu::enable_interrupts_and_halt() };
    }
    apic::stop_timer();
    online_count()
}

/// This core's APIC id from CPUID (usable before its local APIC is enabled).
fn apic_id_from_cpuid() -> u32 {
    if apic::mode() == apic::Mode::X2Apic {
        cpu::cpuid(0xb, 0).edx
    } else {
        cpu::cpuid(1, 0).ebx >> 24
    }
}

/// First Rust code on an application processor, called by the trampoline.
extern "C" fn ap_entry(_ticket: u32) -> ! {
    let apic_id = apic_id_from_cpuid();
    let count = core_count();
    let Some(core_id) =
        (1..count).find(|&id| record(id).is_some_and(|record| record.apic_id() == apic_id))
    else {
        cpu::halt_forever();
    };
    // Ordering: Acquire pairs with the boot core's Release store of the record.
    let own = RECORDS[core_id].load(Ordering::Acquire);
    // SAFETY: the record is a leaked box made for this APIC id and used by this core only.
    unsafe { percpu::install(&mut *own) };
    // Ordering: Acquire pairs with the boot core's Release store of the tables.
    let tables = TABLES[core_id].load(Ordering::Acquire);
    // SAFETY: the tables are leaked and belong to this core; interrupts are disabled.
    unsafe { (*tables).load() };
    idt::load();
    apic::enable_this_core();
    // Release: everything this core initialised is visible to the boot core that
    // observes the incremented count.
    ONLINE.fetch_add(1, Ordering::Release);
    if let Some(boot_core) = record(0) {
        apic::send_fixed(boot_core.apic_id(), WAKEUP_VECTOR);
    }
    crate::runtime::core_main()
}
