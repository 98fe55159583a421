//! `hvm_start_info` (Xen PVH ABI): `kernel-core`'s parser over the identity map.

pub use kernel_core::pvh::{BootInfo, MAX_MODULES, MEMORY_USABLE, MemoryRegion, StartInfoError};

use crate::mem::identity::IdentityMap;

/// Copies `hvm_start_info` and everything it points to.
///
/// # Safety
/// 1. `paddr` is the EBX value from PVH entry, and the structures it points to are
///    still intact and identity mapped.
pub unsafe fn parse(paddr: u64) -> Result<BootInfo, StartInfoError> {
    // SAFETY: precondition 1.
    let memory = unsafe { IdentityMap::new() };
    BootInfo::parse(&memory, paddr)
}
