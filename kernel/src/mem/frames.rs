//! Physical frame allocator over the PVH memory map: usable RAM minus the low 1 MiB,
//! the kernel image and the loader's modules, handed out in ascending address order.
//!
//! Frames are never returned: the kernel allocates page tables, the heap, stacks and
//! the DMA region once at boot and keeps them for life.

use kernel_core::frames::FrameRanges;
use spin::Mutex;

use crate::boot::pvh::{MEMORY_USABLE, MemoryRegion};

pub use kernel_core::frames::{FRAME_BYTES, OutOfMemory};

/// Free physical memory and what the memory map said.
struct Frames {
    free: FrameRanges,
    /// Bytes of usable RAM in the memory map (before reservations).
    usable_bytes: u64,
    /// Highest end address of usable RAM.
    usable_top: u64,
}

static FRAMES: Mutex<Frames> = Mutex::new(Frames {
    free: FrameRanges::new(),
    usable_bytes: 0,
    usable_top: 0,
});

/// Builds the free list from the memory map, minus `reserved` ranges.
pub fn init(memory_map: &[MemoryRegion], reserved: &[(u64, u64)]) {
    let mut frames = FRAMES.lock();
    for region in memory_map
        .iter()
        .filter(|region| region.kind == MEMORY_USABLE)
    {
        let end = region.addr.saturating_add(region.size);
        frames.usable_bytes += region.size;
        frames.usable_top = frames.usable_top.max(end);
        frames.free.add(region.addr, end);
    }
    for &(start, end) in reserved {
        frames.free.reserve(start, end);
    }
}

/// Allocates `bytes` (rounded up to frames) of physically contiguous memory aligned to
/// `align`, returning its physical address. The contents are whatever RAM held.
pub fn allocate(bytes: u64, align: u64) -> Result<u64, OutOfMemory> {
    FRAMES.lock().free.allocate(bytes, align)
}

/// Like `allocate`, but zero-filled.
pub fn allocate_zeroed(bytes: u64, align: u64) -> Result<u64, OutOfMemory> {
    let start = allocate(bytes, align)?;
    // SAFETY: the range was free RAM, is now owned by the caller, and is identity mapped.
    unsafe {
        core::ptr::write_bytes(
            start as *mut u8,
            0,
            bytes.next_multiple_of(FRAME_BYTES) as usize,
        )
    };
    Ok(start)
}

/// Allocates one zeroed 4 KiB frame.
pub fn allocate_frame() -> Result<u64, OutOfMemory> {
    allocate_zeroed(FRAME_BYTES, FRAME_BYTES)
}

/// Bytes of usable RAM reported by the memory map.
pub fn usable_bytes() -> u64 {
    FRAMES.lock().usable_bytes
}

/// One past the highest usable RAM address.
pub fn usable_top() -> u64 {
    FRAMES.lock().usable_top
}

/// Bytes still free.
pub fn free_bytes() -> u64 {
    FRAMES.lock().free.free_bytes()
}
