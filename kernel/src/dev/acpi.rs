//! ACPI discovery on this machine: `kernel-core`'s parser over the identity map.

pub use kernel_core::acpi::{AcpiError, AcpiInfo, EcamWindow};

use crate::mem::identity::IdentityMap;

/// Parses the ACPI tables starting from `rsdp_paddr` (0 = search the BIOS area).
pub fn parse(rsdp_paddr: u64) -> Result<AcpiInfo, AcpiError> {
    // SAFETY: ACPI tables sit in firmware-reserved RAM below 4 GiB and the BIOS
    // area below 1 MiB, both identity mapped by the kernel's page tables and
    // never written.
    let memory = unsafe { IdentityMap::new() };
    kernel_core::acpi::parse(&memory, rsdp_paddr)
}
