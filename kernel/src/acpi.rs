//! ACPI discovery: RSDP (from PVH or the BIOS areas), RSDT/XSDT, MADT (CPUs, IOAPIC,
//! LAPIC address) and MCFG (PCI ECAM windows).

use alloc::vec::Vec;
use core::ptr::read_unaligned;

/// A processor's local APIC from the MADT.
#[derive(Clone, Copy, Debug)]
pub struct LocalApicEntry {
    /// Local APIC (or x2APIC) id.
    pub apic_id: u32,
    /// Whether firmware marked the processor usable.
    pub enabled: bool,
}

/// One PCI ECAM window from the MCFG.
#[derive(Clone, Copy, Debug)]
pub struct EcamWindow {
    /// Physical base of bus 0 of this window (as if it started at bus 0).
    pub base: u64,
    /// PCI segment group.
    pub segment: u16,
    /// First bus decoded.
    pub start_bus: u8,
    /// Last bus decoded.
    pub end_bus: u8,
}

/// What the kernel uses from ACPI.
#[derive(Debug, Default)]
pub struct AcpiInfo {
    /// Processors in MADT order.
    pub local_apics: Vec<LocalApicEntry>,
    /// Local APIC MMIO base (xAPIC mode).
    pub local_apic_address: u64,
    /// First IOAPIC's MMIO base, if any.
    pub io_apic_address: Option<u64>,
    /// PCI ECAM windows.
    pub ecam: Vec<EcamWindow>,
    /// Whether the tables were found through an XSDT (ACPI 2.0+).
    pub uses_xsdt: bool,
}

/// Why ACPI tables could not be used.
#[allow(dead_code)] // fields are reported through Debug
#[derive(Clone, Copy, Debug)]
pub enum AcpiError {
    /// No RSDP given by the loader nor found in the BIOS areas.
    NoRsdp,
    /// A table's checksum did not add up.
    BadChecksum(u64),
}

/// Reads `len` bytes of physical memory.
///
/// # Safety
/// 1. `[address, address + len)` is identity mapped firmware memory that stays intact.
unsafe fn bytes(address: u64, len: usize) -> &'static [u8] {
    // SAFETY: precondition 1.
    unsafe { core::slice::from_raw_parts(address as *const u8, len) }
}

fn checksum_ok(data: &[u8]) -> bool {
    data.iter().fold(0u8, |sum, &byte| sum.wrapping_add(byte)) == 0
}

fn read_u32(data: &[u8], offset: usize) -> u32 {
    u32::from_le_bytes(data[offset..offset + 4].try_into().unwrap_or([0; 4]))
}

fn read_u64(data: &[u8], offset: usize) -> u64 {
    u64::from_le_bytes(data[offset..offset + 8].try_into().unwrap_or([0; 8]))
}

/// Scans the BIOS read-only area 0xe0000..0x100000 for "RSD PTR " (loaders that do
/// not fill `rsdp_paddr`). The EBDA is skipped: its pointer lives in the unmapped page 0.
fn scan_for_rsdp() -> Option<u64> {
    (0xe0000u64..0x100000).step_by(16).find(|&address| {
        // SAFETY: the BIOS area is identity mapped read-only firmware memory.
        let candidate = unsafe { bytes(address, 20) };
        &candidate[..8] == b"RSD PTR " && checksum_ok(candidate)
    })
}

/// Parses the ACPI tables starting from `rsdp_paddr` (0 = search the BIOS areas).
pub fn parse(rsdp_paddr: u64) -> Result<AcpiInfo, AcpiError> {
    let rsdp = if rsdp_paddr != 0 {
        rsdp_paddr
    } else {
        scan_for_rsdp().ok_or(AcpiError::NoRsdp)?
    };
    // SAFETY: the RSDP is firmware memory below 4 GiB, identity mapped.
    let header = unsafe { bytes(rsdp, 36) };
    if &header[..8] != b"RSD PTR " || !checksum_ok(&header[..20]) {
        return Err(AcpiError::BadChecksum(rsdp));
    }
    let revision = header[15];
    let (root, entry_size) = if revision >= 2 && read_u64(header, 24) != 0 {
        (read_u64(header, 24), 8)
    } else {
        (u64::from(read_u32(header, 16)), 4)
    };
    let mut info = AcpiInfo {
        uses_xsdt: entry_size == 8,
        local_apic_address: 0xfee0_0000,
        ..AcpiInfo::default()
    };
    let root_table = table(root)?;
    let entries = (root_table.len() - 36) / entry_size;
    for index in 0..entries {
        let offset = 36 + index * entry_size;
        let address = if entry_size == 8 {
            read_u64(root_table, offset)
        } else {
            u64::from(read_u32(root_table, offset))
        };
        let sdt = table(address)?;
        log::debug!(
            "acpi: table {} at {address:#x}",
            core::str::from_utf8(&sdt[..4]).unwrap_or("????")
        );
        match &sdt[..4] {
            b"APIC" => parse_madt(sdt, &mut info),
            b"MCFG" => parse_mcfg(sdt, &mut info),
            _ => {}
        }
    }
    Ok(info)
}

/// Returns a whole system description table after checking its checksum.
fn table(address: u64) -> Result<&'static [u8], AcpiError> {
    // SAFETY: ACPI tables sit in firmware-reserved RAM below 4 GiB, identity mapped.
    let length = unsafe { read_unaligned((address + 4) as *const u32) } as usize;
    // SAFETY: as above, the header says the table is `length` bytes long.
    let data = unsafe { bytes(address, length.max(36)) };
    if !checksum_ok(data) {
        return Err(AcpiError::BadChecksum(address));
    }
    Ok(data)
}

/// MADT: header(36) + local APIC address(4) + flags(4), then typed entries.
fn parse_madt(madt: &[u8], info: &mut AcpiInfo) {
    info.local_apic_address = u64::from(read_u32(madt, 36));
    let mut offset = 44;
    while offset + 2 <= madt.len() {
        let kind = madt[offset];
        let length = madt[offset + 1] as usize;
        if length < 2 || offset + length > madt.len() {
            break;
        }
        let entry = &madt[offset..offset + length];
        match kind {
            // Processor local APIC: uid(1) apic id(1) flags(4); bit 0 enabled, bit 1 online capable.
            0 if length >= 8 => {
                let flags = read_u32(entry, 4);
                info.local_apics.push(LocalApicEntry {
                    apic_id: u32::from(entry[3]),
                    enabled: flags & 3 != 0,
                });
            }
            // I/O APIC: id(1) reserved(1) address(4) gsi base(4).
            1 if length >= 12 && info.io_apic_address.is_none() => {
                info.io_apic_address = Some(u64::from(read_u32(entry, 4)));
            }
            // Local APIC address override: reserved(2) address(8).
            5 if length >= 12 => info.local_apic_address = read_u64(entry, 4),
            // Processor local x2APIC: reserved(2) x2apic id(4) flags(4) uid(4).
            9 if length >= 16 => {
                let flags = read_u32(entry, 8);
                let apic_id = read_u32(entry, 4);
                if !info
                    .local_apics
                    .iter()
                    .any(|known| known.apic_id == apic_id)
                {
                    info.local_apics.push(LocalApicEntry {
                        apic_id,
                        enabled: flags & 3 != 0,
                    });
                }
            }
            _ => {}
        }
        offset += length;
    }
}

/// MCFG: header(36) + reserved(8), then 16-byte allocations.
fn parse_mcfg(mcfg: &[u8], info: &mut AcpiInfo) {
    let mut offset = 44;
    while offset + 16 <= mcfg.len() {
        let entry = &mcfg[offset..offset + 16];
        info.ecam.push(EcamWindow {
            base: read_u64(entry, 0),
            segment: u16::from_le_bytes([entry[8], entry[9]]),
            start_bus: entry[10],
            end_bus: entry[11],
        });
        offset += 16;
    }
}
