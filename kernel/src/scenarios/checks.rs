//! Single-core scenarios: a deliberate page fault, PCI discovery of an expected device,
//! and the spec module handed over as a PVH module.

use crate::arch::trap::TIMER_VECTOR;
use crate::dev::exit::{ExitCode, exit_qemu};
use crate::scenarios::dispatch::fail;
use crate::{arch::paging, arch::percpu, boot::cmdline, boot::init, dev::pci, dev::pci_bar::Bar};

/// Reads `fault_addr` (default: an unmapped canonical address). The harness expects the
/// page-fault report; if the read succeeds the scenario exits with success, which the
/// harness treats as a failed check.
pub fn page_fault() -> ! {
    let address = cmdline::get_u64("fault_addr").unwrap_or(0x0000_0bad_0000_0000);
    crate::kprintln!(
        "scenario pagefault: reading {address:#018x} (mapped: {})",
        paging::is_mapped(address)
    );
    // SAFETY: deliberately unsound when the address is unmapped: that is the test, and the
    // page-fault handler never returns. A mapped address is identity-mapped RAM or MMIO.
    let value = unsafe { (address as *const u64).read_volatile() };
    crate::kprintln!("scenario pagefault: no fault raised, read {value:#x}");
    exit_qemu(ExitCode::Success)
}

/// Passes if a function `expect_pci=VVVV:DDDD` was enumerated with sized memory BARs;
/// also walks its capabilities and programs MSI-X entry 0 when it has MSI-X.
pub fn pci_expect() -> ! {
    let Some((vendor, device)) = cmdline::get("expect_pci").and_then(|text| text.split_once(':'))
    else {
        fail("pci", format_args!("missing expect_pci=VVVV:DDDD"))
    };
    let (Ok(vendor), Ok(device)) = (
        u16::from_str_radix(vendor, 16),
        u16::from_str_radix(device, 16),
    ) else {
        fail("pci", format_args!("bad expect_pci"))
    };
    let devices = pci::devices();
    let Some(found) = devices
        .iter()
        .find(|found| found.vendor_id == vendor && found.device_id == device)
    else {
        fail(
            "pci",
            format_args!(
                "{vendor:04x}:{device:04x} not found among {} functions",
                devices.len()
            ),
        )
    };
    let memory_bars = found
        .bars
        .iter()
        .filter(|bar| matches!(bar, Bar::Memory { .. }))
        .count();
    let capabilities = pci::capabilities(found.address).count();
    let msix = crate::dev::msix::MsixTable::new(found).map(|mut table| {
        found.enable_bus_master();
        let programmed = table
            .set_entry(0, percpu::current().apic_id() as u8, TIMER_VECTOR + 1)
            .is_ok();
        table.enable(found);
        (table.len(), programmed && table.is_enabled(found))
    });
    crate::kprintln!(
        "scenario pci: found {vendor:04x}:{device:04x} at {} memory_bars={memory_bars} capabilities={capabilities} msix={msix:?}",
        found.address
    );
    if memory_bars == 0 {
        fail("pci", format_args!("no memory BARs sized"));
    }
    if let Ok((_, false)) = msix {
        fail("pci", format_args!("MSI-X table present but not enabled"));
    }
    crate::kprintln!("scenario pci: PASS");
    exit_qemu(ExitCode::Success)
}

/// Prints the length and FNV-1a hash of the first PVH module; the harness compares
/// them with the file it passed as `-initrd`.
pub fn spec_module() -> ! {
    let Some(bytes) = init::spec_module() else {
        fail("spec", format_args!("no PVH module"))
    };
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    crate::kprintln!(
        "scenario spec: module bytes={} fnv1a={hash:#018x}",
        bytes.len()
    );
    exit_qemu(ExitCode::Success)
}
