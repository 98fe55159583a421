//! DMA region: one physically contiguous, identity-mapped range for packet buffers and
//! descriptor rings, with virtual-to-physical translation for drivers.

use spin::Once;

use crate::arch::paging::LARGE_PAGE;
use crate::mem::frames::{self, OutOfMemory};

/// A physically contiguous memory range usable for device DMA.
#[derive(Clone, Copy, Debug)]
pub struct DmaRegion {
    /// Kernel virtual address of the first byte.
    pub virt: *mut u8,
    /// Physical (bus) address of the first byte.
    pub phys: u64,
    /// Length in bytes.
    pub len: usize,
}

// SAFETY: the region is plain memory; users coordinate access to its contents.
unsafe impl Send for DmaRegion {}
// SAFETY: as above; the descriptor itself is immutable.
unsafe impl Sync for DmaRegion {}

impl DmaRegion {
    /// Physical address of `pointer`, if it lies inside the region.
    pub fn virt_to_phys(&self, pointer: *const u8) -> Option<u64> {
        let offset = (pointer as usize).checked_sub(self.virt as usize)?;
        (offset < self.len).then(|| self.phys + offset as u64)
    }

    /// Virtual address of physical `address`, if it lies inside the region.
    pub fn phys_to_virt(&self, address: u64) -> Option<*mut u8> {
        let offset = address.checked_sub(self.phys)?;
        // SAFETY: `offset < len`, so the result stays inside the region's allocation.
        (offset < self.len as u64).then(|| unsafe { self.virt.add(offset as usize) })
    }

    /// Splits off `parts` equal, non-overlapping sub-regions (e.g. one per core),
    /// each aligned to 4 KiB; returns sub-region `index`.
    pub fn part(&self, parts: usize, index: usize) -> Option<DmaRegion> {
        if parts == 0 || index >= parts {
            return None;
        }
        let each = (self.len / parts) & !(frames::FRAME_BYTES as usize - 1);
        let offset = each * index;
        // SAFETY: `offset + each <= len`, inside the region.
        let virt = unsafe { self.virt.add(offset) };
        Some(DmaRegion {
            virt,
            phys: self.phys + offset as u64,
            len: each,
        })
    }
}

static REGION: Once<DmaRegion> = Once::new();

/// Reserves the DMA region (2 MiB aligned). Call once at boot.
pub fn init(bytes: u64) -> Result<(), OutOfMemory> {
    let phys = frames::allocate(bytes, LARGE_PAGE)?;
    // Identity map: virtual address equals physical address.
    REGION.call_once(|| DmaRegion {
        virt: phys as *mut u8,
        phys,
        len: bytes as usize,
    });
    Ok(())
}

/// The DMA region, once `init` has run.
pub fn region() -> Option<&'static DmaRegion> {
    REGION.get()
}
