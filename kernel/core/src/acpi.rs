//! ACPI discovery: RSDP (from PVH or the BIOS area), RSDT/XSDT, MADT (CPUs,
//! IOAPIC, LAPIC address) and MCFG (PCI ECAM windows), read through
//! [`PhysicalMemory`]. Tables are untrusted bytes: a short or malformed
//! table ends its parse, never the kernel.

use crate::memory::{PhysicalMemory, read_u16, read_u32, read_u64};
use alloc::vec::Vec;

/// Length of the common system description table header.
const HEADER_LEN: usize = 36;
/// Where loaders that do not pass `rsdp_paddr` leave the RSDP: the BIOS
/// read-only area (the EBDA is skipped: its pointer lives in page 0).
const BIOS_AREA: core::ops::Range<u64> = 0xe0000..0x100000;

/// A processor's local APIC from the MADT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalApicEntry {
    /// Local APIC (or x2APIC) id.
    pub apic_id: u32,
    /// Whether firmware marked the processor usable.
    pub enabled: bool,
}

/// One PCI ECAM window from the MCFG.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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

/// An ISA interrupt line wired to another global system interrupt, or
/// with another polarity or trigger than ISA's (MADT interrupt source
/// override).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IsaOverride {
    /// The ISA IRQ.
    pub irq: u8,
    /// The global system interrupt it arrives on.
    pub gsi: u32,
    /// MPS INTI flags: polarity in bits 0-1, trigger mode in bits 2-3
    /// (0: as the bus, ISA's edge and active high).
    pub flags: u16,
}

/// Where an ISA IRQ arrives and how it signals (see [`AcpiInfo::isa_route`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IsaRoute {
    /// The global system interrupt.
    pub gsi: u32,
    /// Active low (ISA: active high).
    pub active_low: bool,
    /// Level triggered (ISA: edge).
    pub level: bool,
}

/// What the kernel uses from ACPI.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct AcpiInfo {
    /// Processors in MADT order.
    pub local_apics: Vec<LocalApicEntry>,
    /// Local APIC MMIO base (xAPIC mode).
    pub local_apic_address: u64,
    /// First IOAPIC's MMIO base, if any.
    pub io_apic_address: Option<u64>,
    /// The first global system interrupt of that IOAPIC's inputs.
    pub io_apic_gsi_base: u32,
    /// ISA IRQs wired otherwise than ISA says, in MADT order.
    pub isa_overrides: Vec<IsaOverride>,
    /// PCI ECAM windows.
    pub ecam: Vec<EcamWindow>,
    /// Whether the tables were found through an XSDT (ACPI 2.0+).
    pub uses_xsdt: bool,
}

/// Why ACPI tables could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcpiError {
    /// No RSDP given by the loader nor found in the BIOS area.
    NoRsdp,
    /// A structure's checksum did not add up (its address).
    BadChecksum(u64),
    /// A structure lies outside readable memory or is shorter than its
    /// header (its address).
    Unreadable(u64),
}

fn checksum_ok(data: &[u8]) -> bool {
    data.iter().fold(0u8, |sum, &byte| sum.wrapping_add(byte)) == 0
}

/// Scans the BIOS area for "RSD PTR " with a valid checksum.
fn scan_for_rsdp(memory: &impl PhysicalMemory) -> Option<u64> {
    BIOS_AREA.step_by(16).find(|&address| {
        memory
            .read(address, 20)
            .is_some_and(|candidate| &candidate[..8] == b"RSD PTR " && checksum_ok(candidate))
    })
}

impl AcpiInfo {
    /// Where ISA IRQ `irq` arrives: its override, else the GSI of the same
    /// number, edge triggered and active high as ISA has it.
    pub fn isa_route(&self, irq: u8) -> IsaRoute {
        let isa = IsaRoute {
            gsi: u32::from(irq),
            active_low: false,
            level: false,
        };
        let Some(found) = self.isa_overrides.iter().find(|over| over.irq == irq) else {
            return isa;
        };
        // MPS INTI flags: 0b01 active high / edge, 0b11 active low / level,
        // 0b00 as the bus.
        IsaRoute {
            gsi: found.gsi,
            active_low: found.flags & 0b11 == 0b11,
            level: (found.flags >> 2) & 0b11 == 0b11,
        }
    }
}

/// Parses the ACPI tables from the RSDP at `rsdp_paddr` (0: search the BIOS
/// area).
pub fn parse(memory: &impl PhysicalMemory, rsdp_paddr: u64) -> Result<AcpiInfo, AcpiError> {
    let rsdp = match rsdp_paddr {
        0 => scan_for_rsdp(memory).ok_or(AcpiError::NoRsdp)?,
        address => address,
    };
    let header = memory.read(rsdp, 20).ok_or(AcpiError::Unreadable(rsdp))?;
    if &header[..8] != b"RSD PTR " || !checksum_ok(header) {
        return Err(AcpiError::BadChecksum(rsdp));
    }
    // ACPI 2.0+ RSDPs are 36 bytes with the XSDT address at 24, covered by
    // the extended checksum; when that does not hold, the RSDT (which the
    // first checksum covered) is used. An ACPI 1.0 RSDP is only 20 bytes:
    // nothing past them is read.
    let xsdt = (header[15] >= 2)
        .then(|| memory.read(rsdp, 36))
        .flatten()
        .filter(|long| checksum_ok(long))
        .and_then(|long| read_u64(long, 24))
        .filter(|address| *address != 0);
    let (root, entry_size) = match xsdt {
        Some(address) => (address, 8),
        None => (u64::from(read_u32(header, 16).unwrap_or(0)), 4),
    };
    let mut info = AcpiInfo {
        uses_xsdt: entry_size == 8,
        local_apic_address: 0xfee0_0000,
        ..AcpiInfo::default()
    };
    let root_table = table(memory, root)?;
    for entry in root_table[HEADER_LEN..].chunks_exact(entry_size) {
        let address = match entry_size {
            8 => read_u64(entry, 0),
            _ => read_u32(entry, 0).map(u64::from),
        }
        .unwrap_or(0);
        let sdt = table(memory, address)?;
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

/// A whole system description table, its checksum checked; at least its
/// header long.
fn table(memory: &impl PhysicalMemory, address: u64) -> Result<&[u8], AcpiError> {
    let unreadable = AcpiError::Unreadable(address);
    let header = memory.read(address, HEADER_LEN).ok_or(unreadable)?;
    let length = read_u32(header, 4).ok_or(unreadable)? as usize;
    if length < HEADER_LEN {
        return Err(unreadable);
    }
    let data = memory.read(address, length).ok_or(unreadable)?;
    if !checksum_ok(data) {
        return Err(AcpiError::BadChecksum(address));
    }
    Ok(data)
}

/// MADT: header(36) + local APIC address(4) + flags(4), then typed entries.
fn parse_madt(madt: &[u8], info: &mut AcpiInfo) {
    if let Some(address) = read_u32(madt, HEADER_LEN) {
        info.local_apic_address = u64::from(address);
    }
    let mut offset = HEADER_LEN + 8;
    while let (Some(&kind), Some(&length)) = (madt.get(offset), madt.get(offset + 1)) {
        let length = usize::from(length);
        let Some(entry) = madt.get(offset..offset + length).filter(|_| length >= 2) else {
            break;
        };
        match (kind, length) {
            // Processor local APIC: uid(1) apic id(1) flags(4); bit 0 enabled, bit 1 online capable.
            (0, 8..) => info.local_apics.push(LocalApicEntry {
                apic_id: u32::from(entry[3]),
                enabled: read_u32(entry, 4).unwrap_or(0) & 3 != 0,
            }),
            // I/O APIC: id(1) reserved(1) address(4) gsi base(4).
            (1, 12..) if info.io_apic_address.is_none() => {
                info.io_apic_address = read_u32(entry, 4).map(u64::from);
                info.io_apic_gsi_base = read_u32(entry, 8).unwrap_or(0);
            }
            // Interrupt source override: bus(1) source(1) gsi(4) flags(2).
            (2, 10..) if entry[2] == 0 => info.isa_overrides.push(IsaOverride {
                irq: entry[3],
                gsi: read_u32(entry, 4).unwrap_or(u32::from(entry[3])),
                flags: read_u16(entry, 8).unwrap_or(0),
            }),
            // Local APIC address override: reserved(2) address(8).
            (5, 12..) => {
                if let Some(address) = read_u64(entry, 4) {
                    info.local_apic_address = address;
                }
            }
            // Processor local x2APIC: reserved(2) x2apic id(4) flags(4) uid(4).
            (9, 16..) => {
                let apic_id = read_u32(entry, 4).unwrap_or(0);
                let enabled = read_u32(entry, 8).unwrap_or(0) & 3 != 0;
                if !info
                    .local_apics
                    .iter()
                    .any(|known| known.apic_id == apic_id)
                {
                    info.local_apics.push(LocalApicEntry { apic_id, enabled });
                }
            }
            _ => {}
        }
        offset += length;
    }
}

/// MCFG: header(36) + reserved(8), then 16-byte allocations.
fn parse_mcfg(mcfg: &[u8], info: &mut AcpiInfo) {
    let allocations = mcfg.get(HEADER_LEN + 8..).unwrap_or_default();
    for entry in allocations.chunks_exact(16) {
        info.ecam.push(EcamWindow {
            base: read_u64(entry, 0).unwrap_or(0),
            segment: read_u16(entry, 8).unwrap_or(0),
            start_bus: entry[10],
            end_bus: entry[11],
        });
    }
}

#[cfg(test)]
mod tests;
