//! In-kernel test scenarios selected by `test=NAME` on the command line. Each reports
//! over serial and leaves QEMU through isa-debug-exit; without `test=` the cores run the
//! appliance loop.

use core::sync::atomic::{AtomicUsize, Ordering};

use crate::exit::{ExitCode, exit_qemu};
use crate::trap::TIMER_VECTOR;
use crate::{apic, cmdline, cpu, paging, pci, percpu, smp, time};

/// Timer ticks per second on every core.
const TICK_HZ: u64 = 100;
/// Cores that reported their executor running.
static EXECUTORS_RUNNING: AtomicUsize = AtomicUsize::new(0);

/// Runs the selected scenario on the calling core; never returns.
pub fn run_on_core(core_id: u32) -> ! {
    match cmdline::get("test") {
        Some("boot") => boot(core_id),
        Some("pagefault") if core_id == 0 => page_fault(),
        Some("pci") if core_id == 0 => pci_expect(),
        Some(name) if core_id == 0 => {
            crate::kprintln!("unknown scenario {name}");
            exit_qemu(ExitCode::Failure)
        }
        _ => appliance(),
    }
}

/// Starts the tick and runs the per-core idle loop: `hlt` until the next interrupt.
fn appliance() -> ! {
    apic::start_periodic_timer(TIMER_VECTOR, TICK_HZ);
    loop {
        // SAFETY: the IDT is loaded on this core and handles the timer vector.
        unsafe { cpu::enable_interrupts_and_halt() };
    }
}

/// Every core starts its tick, halts until it has seen ticks, and reports; the boot core
/// checks that all cores reported and exits.
fn boot(core_id: u32) -> ! {
    apic::start_periodic_timer(TIMER_VECTOR, TICK_HZ);
    let record = percpu::current();
    while record.ticks.load(Ordering::Relaxed) < 3 {
        // SAFETY: the IDT is loaded on this core and handles the timer vector.
        unsafe { cpu::enable_interrupts_and_halt() };
    }
    log::info!("core {core_id} executor running (apic {}, {} ticks)", record.apic_id(), record.ticks.load(Ordering::Relaxed));
    // Release: our report is visible before the boot core sees the count.
    EXECUTORS_RUNNING.fetch_add(1, Ordering::Release);
    if core_id != 0 {
        loop {
            // SAFETY: as above.
            unsafe { cpu::enable_interrupts_and_halt() };
        }
    }
    let expected = smp::core_count();
    let deadline = time::now_ns() + 5_000_000_000;
    while EXECUTORS_RUNNING.load(Ordering::Acquire) < expected && time::now_ns() < deadline {
        // SAFETY: as above.
        unsafe { cpu::enable_interrupts_and_halt() };
    }
    let running = EXECUTORS_RUNNING.load(Ordering::Acquire);
    if running == expected && smp::online_count() == expected {
        crate::kprintln!("scenario boot: PASS cores={running}");
        exit_qemu(ExitCode::Success)
    }
    crate::kprintln!("scenario boot: FAIL {running} of {expected} executors running");
    exit_qemu(ExitCode::Failure)
}

/// Reads `fault_addr` (default: an unmapped canonical address). The harness expects the
/// page-fault report; if the read succeeds the scenario exits with success, which the
/// harness treats as a failed check.
fn page_fault() -> ! {
    let address = cmdline::get_u64("fault_addr").unwrap_or(0x0000_0bad_0000_0000);
    crate::kprintln!("scenario pagefault: reading {address:#018x} (mapped: {})", paging::is_mapped(address));
    // SAFETY: deliberately unsound when the address is unmapped: that is the test, and the
    // page-fault handler never returns. A mapped address is identity-mapped RAM or MMIO.
    let value = unsafe { (address as *const u64).read_volatile() };
    crate::kprintln!("scenario pagefault: no fault raised, read {value:#x}");
    exit_qemu(ExitCode::Success)
}

/// Passes if a function with `expect_pci=VVVV:DDDD` was enumerated, with sized BARs.
fn pci_expect() -> ! {
    let Some((vendor, device)) = cmdline::get("expect_pci").and_then(|text| text.split_once(':')) else {
        crate::kprintln!("scenario pci: FAIL missing expect_pci=VVVV:DDDD");
        exit_qemu(ExitCode::Failure)
    };
    let (Ok(vendor), Ok(device)) = (u16::from_str_radix(vendor, 16), u16::from_str_radix(device, 16)) else {
        crate::kprintln!("scenario pci: FAIL bad expect_pci");
        exit_qemu(ExitCode::Failure)
    };
    let Some(found) = pci::devices().iter().find(|found| found.vendor_id == vendor && found.device_id == device) else {
        crate::kprintln!("scenario pci: FAIL {vendor:04x}:{device:04x} not found among {} functions", pci::devices().len());
        exit_qemu(ExitCode::Failure)
    };
    let memory_bars = found.bars.iter().filter(|bar| matches!(bar, crate::pci_bar::Bar::Memory { .. })).count();
    let capabilities = pci::capabilities(found.address).count();
    let msix = crate::msix::MsixTable::new(found).map(|mut table| {
        found.enable_bus_master();
        let programmed = table.set_entry(0, percpu::current().apic_id() as u8, TIMER_VECTOR + 1).is_ok();
        table.enable(found);
        (table.len(), programmed && table.is_enabled(found))
    });
    crate::kprintln!(
        "scenario pci: found {vendor:04x}:{device:04x} at {} memory_bars={memory_bars} capabilities={capabilities} msix={msix:?}",
        found.address
    );
    if memory_bars == 0 {
        crate::kprintln!("scenario pci: FAIL no memory BARs sized");
        exit_qemu(ExitCode::Failure)
    }
    crate::kprintln!("scenario pci: PASS");
    exit_qemu(ExitCode::Success)
}
