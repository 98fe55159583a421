//! Kernel heap: a linked-list allocator over physically contiguous frames.

use linked_list_allocator::LockedHeap;

use crate::mem::frames::{self, OutOfMemory};

#[global_allocator]
static ALLOCATOR: LockedHeap = LockedHeap::empty();

/// Gives the heap `bytes` of fresh RAM.
pub fn init(bytes: u64) -> Result<(), OutOfMemory> {
    let start = frames::allocate(bytes, frames::FRAME_BYTES)?;
    // SAFETY: the range is identity mapped, unused, and owned by the heap from now on.
    unsafe { ALLOCATOR.lock().init(start as *mut u8, bytes as usize) };
    Ok(())
}

/// Bytes of heap currently free.
pub fn free_bytes() -> usize {
    ALLOCATOR.lock().free()
}
