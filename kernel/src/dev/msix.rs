//! MSI-X: locate a function's vector table through its capability, program entries to
//! target a local APIC, and enable the function's MSI-X.

use crate::dev::pci::{PciDevice, read32, write32};

/// MSI-X capability id.
const CAPABILITY_MSIX: u8 = 0x11;
/// Message control bits (upper half of the capability's first dword).
const CONTROL_ENABLE: u32 = 1 << 31;
const CONTROL_FUNCTION_MASK: u32 = 1 << 30;
/// Vector control bit: entry masked.
const ENTRY_MASKED: u32 = 1;

/// One 16-byte MSI-X table entry (PCI 3.0 section 6.8.2).
#[repr(C)]
struct TableEntry {
    address_low: u32,    // 0x0
    address_high: u32,   // 0x4
    data: u32,           // 0x8
    vector_control: u32, // 0xc
}
const _: () = assert!(size_of::<TableEntry>() == 16);

/// A function's MSI-X table, mapped.
pub struct MsixTable {
    capability: u16,
    table: *mut TableEntry,
    entries: u16,
}

/// Why MSI-X could not be set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsixError {
    /// The function has no MSI-X capability.
    NoCapability,
    /// The table's BAR is not a mapped memory BAR.
    BarUnavailable,
    /// The entry index is beyond the table.
    NoSuchEntry,
}

impl MsixTable {
    /// Finds and maps the MSI-X table of `device`.
    pub fn new(device: &PciDevice) -> Result<Self, MsixError> {
        let capability = device
            .find_capability(CAPABILITY_MSIX)
            .ok_or(MsixError::NoCapability)?;
        let control = read32(device.address, capability);
        let entries = (((control >> 16) & 0x7ff) + 1) as u16;
        let table_word = read32(device.address, capability + 4);
        let bar = device
            .bars
            .get((table_word & 0x7) as usize)
            .ok_or(MsixError::BarUnavailable)?;
        let base = bar.map().ok_or(MsixError::BarUnavailable)?;
        // SAFETY: the table lies inside the mapped BAR at the offset the device reports.
        let table = unsafe { base.add((table_word & !0x7) as usize) }.cast::<TableEntry>();
        Ok(Self {
            capability,
            table,
            entries,
        })
    }

    /// Number of vectors in the table.
    pub fn len(&self) -> u16 {
        self.entries
    }

    /// Routes entry `index` to `vector` on the local APIC `apic_id` (fixed delivery,
    /// edge) and unmasks it.
    pub fn set_entry(&mut self, index: u16, apic_id: u8, vector: u8) -> Result<(), MsixError> {
        if index >= self.entries {
            return Err(MsixError::NoSuchEntry);
        }
        // SAFETY: `index < entries`, so the entry lies inside the mapped table; MMIO
        // registers are accessed with volatile writes, masking before reprogramming.
        unsafe {
            let entry = self.table.add(index as usize);
            core::ptr::addr_of_mut!((*entry).vector_control).write_volatile(ENTRY_MASKED);
            core::ptr::addr_of_mut!((*entry).address_low)
                .write_volatile(0xfee0_0000 | (u32::from(apic_id) << 12));
            core::ptr::addr_of_mut!((*entry).address_high).write_volatile(0);
            core::ptr::addr_of_mut!((*entry).data).write_volatile(u32::from(vector));
            core::ptr::addr_of_mut!((*entry).vector_control).write_volatile(0);
        }
        Ok(())
    }

    /// Enables MSI-X on the function (and clears the function mask).
    pub fn enable(&self, device: &PciDevice) {
        let control = read32(device.address, self.capability);
        write32(
            device.address,
            self.capability,
            (control | CONTROL_ENABLE) & !CONTROL_FUNCTION_MASK,
        );
    }

    /// Whether MSI-X is enabled on the function (checked by scenarios).
    #[cfg(feature = "scenarios")]
    pub fn is_enabled(&self, device: &PciDevice) -> bool {
        read32(device.address, self.capability) & CONTROL_ENABLE != 0
    }
}
