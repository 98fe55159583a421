//! Boot-core initialisation from PVH entry to the `warpcore ready` line.
//!
//! Serial output costs several microseconds per byte under QEMU, so the details of
//! the boot (memory, APIC, PCI devices) are printed right after the ready line rather
//! than before it; `boot_ms` measures the work, not the console.

use alloc::vec::Vec;
use spin::Once;

use crate::boot::pvh::BootInfo;
use crate::{
    arch::apic, arch::cpu, arch::idt, arch::ioapic, arch::paging, arch::percpu, arch::pic,
    boot::cmdline, boot::entry, dev::acpi, dev::console, dev::pci, mem::dma, mem::frames,
    mem::heap,
};
use crate::{arch::smp, dev::serial, dev::time, runtime};

/// Copied `hvm_start_info`.
static BOOT_INFO: Once<BootInfo> = Once::new();
/// Bytes of the first PVH module (the spec file), copied to the heap.
static SPEC_MODULE: Once<Option<&'static [u8]>> = Once::new();

const MIB: u64 = 1024 * 1024;

/// The first PVH module's bytes (`-initrd spec.toml`), if the loader gave one.
pub fn spec_module() -> Option<&'static [u8]> {
    SPEC_MODULE.get().copied().flatten()
}

/// Core identity for the dataplane (mempool ownership).
fn core_id_source() -> u32 {
    percpu::core_id()
}

/// Entered from `entry.rs` in long mode on the boot stack, interrupts off.
#[unsafe(no_mangle)]
extern "C" fn kernel_main(start_info_paddr: u64) -> ! {
    percpu::init_boot_core(0);
    // SAFETY: `percpu::core_id` returns each core's dense, unique index from its GS
    // record; it is installed here, before any mempool exists, and never replaced.
    unsafe { dataplane::core_id::set_core_id_source(core_id_source) };
    serial::init();
    console::init(log::LevelFilter::Info);
    idt::init();
    idt::load();

    // SAFETY: `start_info_paddr` is EBX from PVH entry and nothing has been allocated yet,
    // so the loader's structures are intact and identity mapped by the boot tables
    // (`pvh::parse` precondition 1).
    let boot = match unsafe { crate::boot::pvh::parse(start_info_paddr) } {
        Ok(boot) => BOOT_INFO.call_once(|| boot),
        Err(error) => panic!("unusable hvm_start_info at {start_info_paddr:#x}: {error:?}"),
    };
    cmdline::init(boot.cmdline());
    if let Some(level) = cmdline::get("log").and_then(|level| level.parse().ok()) {
        log::set_max_level(level);
    }
    log::info!(
        "warpcore booting: pvh v{}, cmdline \"{}\"",
        boot.version,
        boot.cmdline()
    );

    let memory = init_memory(boot);
    smp::init_boot_core_tables();

    let acpi = acpi::parse(boot.rsdp_paddr).unwrap_or_else(|error| {
        log::warn!("no usable ACPI ({error:?}): single core, legacy PCI");
        acpi::AcpiInfo::default()
    });
    pic::disable();
    ioapic::init(&acpi);
    let use_x2apic = apic::x2apic_supported() && cmdline::get("apic") != Some("xapic");
    let lapic_base = if acpi.local_apic_address != 0 {
        acpi.local_apic_address
    } else {
        0xfee0_0000
    };
    apic::select_mode(lapic_base, use_x2apic);
    apic::enable_this_core();
    percpu::set_boot_apic_id(apic::id());

    let lapic_start = apic::start_timer_calibration();
    // 20 ms of PIT time: under TCG a PIT read is a device exit that can take
    // a few hundred microseconds, and over the former 1 ms window one late
    // read put the TSC at 1756 MHz on a 2445 MHz host (every guest second
    // 0.72 s: the management idle timeout of 8 s fired after 5.75 s).
    // Still under the PIT's 55 ms wrap.
    time::calibrate(cmdline::get_u64("tsc_calibrate_us").unwrap_or(20_000));
    apic::finish_timer_calibration(lapic_start);

    let apic_ids: Vec<u32> = acpi
        .local_apics
        .iter()
        .filter(|cpu| cpu.enabled)
        .map(|cpu| cpu.apic_id)
        .collect();
    smp::start_application_processors(&apic_ids);
    // Enumerate PCI while the APs initialise, then wait for them.
    // QEMU's microvm describes its PCIe host only in AML (no MCFG): the loader may pass
    // the ECAM base on the command line instead.
    let ecam_override = cmdline::get_u64("pci_ecam").map(|base| acpi::EcamWindow {
        base,
        segment: 0,
        start_bus: 0,
        end_bus: 255,
    });
    match ecam_override {
        Some(window) if acpi.ecam.is_empty() => pci::init(&[window]),
        _ => pci::init(&acpi.ecam),
    }
    let devices = pci::enumerate();
    let online = smp::wait_online(1000);

    let boot_ns = time::ticks_to_ns(cpu::rdtsc() - entry::entry_tsc());
    crate::kprintln!(
        "warpcore ready cores={} mem_mib={} pci={} boot_ms={}.{:03}",
        online,
        frames::usable_bytes().div_ceil(MIB),
        devices.len(),
        boot_ns / 1_000_000,
        (boot_ns / 1_000) % 1_000
    );

    if online < smp::core_count() {
        log::error!("only {online} of {} cores came online", smp::core_count());
    }
    memory.log();
    log::info!(
        "cpu: {} cores, apic {:?} (boot core id {}), acpi via {}, tsc {} MHz, lapic timer {} counts/ms",
        online,
        apic::mode(),
        apic::id(),
        if acpi.uses_xsdt { "XSDT" } else { "RSDT" },
        time::tsc_hz() / 1_000_000,
        apic::timer_counts_per_ms()
    );
    log_devices(devices);
    runtime::boot_core_main()
}

/// Prints the PCI device list.
fn log_devices(devices: &[pci::PciDevice]) {
    log::info!(
        "pci: {} functions via {:x?}",
        devices.len(),
        pci::access_method()
    );
    for device in devices {
        let bars: Vec<_> = device
            .bars
            .iter()
            .filter(|bar| **bar != crate::dev::pci_bar::Bar::None)
            .collect();
        log::info!(
            "pci {} {:04x}:{:04x} class {:02x}.{:02x}.{:02x} bars {:x?}",
            device.address,
            device.vendor_id,
            device.device_id,
            device.class.0,
            device.class.1,
            device.class.2,
            bars
        );
    }
}

/// Sizes chosen by `init_memory`, printed after the ready line.
struct MemoryReport {
    usable: u64,
    heap: u64,
    dma: u64,
}

impl MemoryReport {
    fn log(&self) {
        log::info!(
            "memory: {} MiB usable, heap {} MiB ({} KiB free), dma {} MiB at {:#x}, spec module {} bytes, {} MiB free",
            self.usable / MIB,
            self.heap / MIB,
            heap::free_bytes() / 1024,
            self.dma / MIB,
            dma::region().map_or(0, |region| region.phys),
            spec_module().map_or(0, <[u8]>::len),
            frames::free_bytes() / MIB
        );
    }
}

/// Frame allocator, kernel page tables, heap, spec module and DMA region.
fn init_memory(boot: &'static BootInfo) -> MemoryReport {
    let (kernel_start, kernel_end) = entry::kernel_image_range();
    let mut reserved = [(0, 0); 2 + crate::boot::pvh::MAX_MODULES];
    reserved[0] = (0, MIB); // real-mode area: BIOS data, AP trampoline
    reserved[1] = (kernel_start, kernel_end);
    for (slot, module) in reserved[2..].iter_mut().zip(boot.modules()) {
        *slot = (module.paddr, module.paddr + module.size);
    }
    frames::init(boot.memory_map(), &reserved);
    let memory_map = boot.memory_map();
    let is_ram = |start: u64, end: u64| {
        memory_map.iter().any(|region| {
            region.kind == crate::boot::pvh::MEMORY_USABLE
                && region.addr < end
                && start < region.addr + region.size
        })
    };
    if let Err(error) = paging::init(is_ram) {
        panic!("building page tables: {error:?}");
    }
    let usable = frames::usable_bytes();
    let heap_bytes = (usable / 8).clamp(4 * MIB, 64 * MIB);
    if let Err(error) = heap::init(heap_bytes) {
        panic!("reserving a {} MiB heap: {error:?}", heap_bytes / MIB);
    }
    SPEC_MODULE.call_once(|| {
        boot.modules().first().map(|module| {
            // SAFETY: the module range was reserved from the frame allocator and is
            // identity mapped RAM.
            let bytes = unsafe {
                core::slice::from_raw_parts(module.paddr as *const u8, module.size as usize)
            };
            &*Vec::leak(bytes.to_vec())
        })
    });
    let dma_bytes = cmdline::get_u64("dma_mib")
        .map(|mib| mib * MIB)
        .unwrap_or((usable / 4).clamp(4 * MIB, 256 * MIB));
    if let Err(error) = dma::init(dma_bytes) {
        panic!("reserving a {} MiB DMA region: {error:?}", dma_bytes / MIB);
    }
    MemoryReport {
        usable,
        heap: heap_bytes,
        dma: dma_bytes,
    }
}
