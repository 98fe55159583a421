//! What the driver needs from the platform: PCI configuration space, mapped
//! BARs and physically contiguous DMA memory.

use core::ptr::NonNull;

/// DMA memory handed to the driver: `len` bytes at `virt`, physical `phys`.
#[derive(Debug, Clone, Copy)]
pub struct DmaMemory {
    /// Where the driver reads and writes it.
    pub virt: NonNull<u8>,
    /// Where the device reads and writes it.
    pub phys: u64,
    /// Length in bytes.
    pub len: usize,
}

/// One virtio PCI function and the platform services around it.
///
/// # Safety
/// Implementors promise:
/// 1. `config_read32`/`config_write32` reach this function's configuration
///    space and nothing else.
/// 2. `map_bar` returns a mapping of the whole memory BAR, uncached, valid
///    for volatile access for the rest of the program, or `None`.
/// 3. `allocate_dma` returns memory that nothing else uses, valid for the
///    rest of the program, physically contiguous at `phys`, cache coherent
///    with the device, aligned to `align`, and at least `bytes` long.
pub unsafe trait VirtioPlatform {
    /// Reads the 32-bit configuration register at `offset` (4-byte aligned).
    fn config_read32(&self, offset: u16) -> u32;
    /// Writes the 32-bit configuration register at `offset` (4-byte aligned).
    fn config_write32(&self, offset: u16, value: u32);
    /// Maps memory BAR `bar` and returns its virtual address and length.
    fn map_bar(&self, bar: u8) -> Option<(NonNull<u8>, u64)>;
    /// Allocates `bytes` of DMA memory aligned to `align`.
    fn allocate_dma(&self, bytes: usize, align: usize) -> Option<DmaMemory>;
}
