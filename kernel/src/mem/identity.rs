//! `IdentityMap`: physical memory read through the kernel's identity map, for
//! the firmware-table parsers of `kernel-core`.

use kernel_core::PhysicalMemory;

/// Physical memory read in place through the identity map.
pub struct IdentityMap {
    /// Only [`IdentityMap::new`] makes one.
    _private: (),
}

impl IdentityMap {
    /// A reader of physical memory.
    ///
    /// # Safety
    /// 1. While the value lives, every range the parsers it is handed to
    ///    read (the PVH start info and what it points to, the ACPI tables
    ///    and the BIOS area) is identity mapped and nothing writes it.
    pub unsafe fn new() -> Self {
        Self { _private: () }
    }
}

impl PhysicalMemory for IdentityMap {
    fn read(&self, address: u64, len: usize) -> Option<&[u8]> {
        address.checked_add(len as u64)?;
        // SAFETY: precondition 1 of `IdentityMap::new`: the range is mapped
        // and not written while it is borrowed; it does not wrap (checked).
        Some(unsafe { core::slice::from_raw_parts(address as *const u8, len) })
    }
}
