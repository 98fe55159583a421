//! Kernel heap: a linked-list allocator over physically contiguous frames,
//! handing out whole cache lines.
//!
//! Every allocation starts on a cache line and is padded to a whole number
//! of them, so no two allocations share a line. Cores set up their
//! dataplanes at the same time and their allocations interleave in the heap;
//! a node's counters of core 1 next to a ring index of core 2 would bounce
//! that line between the cores on every burst (DPDK's `rte_malloc` aligns to
//! the cache line for the same reason). Small allocations cost up to 64
//! bytes; the kernel's are few and made at setup.

use core::alloc::{GlobalAlloc, Layout};

use linked_list_allocator::LockedHeap;

use crate::mem::frames::{self, OutOfMemory};

/// Bytes in a cache line of the CPUs we run on (x86-64).
const CACHE_LINE_BYTES: usize = 64;

#[global_allocator]
static ALLOCATOR: CacheLineHeap = CacheLineHeap(LockedHeap::empty());

/// The heap allocator with every layout widened to whole cache lines.
struct CacheLineHeap(LockedHeap);

/// `layout` aligned to a cache line and padded to a whole number of them;
/// `None` if that size overflows.
fn whole_lines(layout: Layout) -> Option<Layout> {
    Some(layout.align_to(CACHE_LINE_BYTES).ok()?.pad_to_align())
}

// SAFETY: every call is forwarded to `LockedHeap`'s `GlobalAlloc` with the
// same widened layout for a block's allocation and its deallocation
// (`whole_lines` is a pure function of the caller's layout), and the widened
// layout is at least as large and as aligned as the caller's.
unsafe impl GlobalAlloc for CacheLineHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match whole_lines(layout) {
            // SAFETY: the widened layout has a non-zero size as the caller's
            // has (GlobalAlloc's contract).
            Some(lines) => unsafe { self.0.alloc(lines) },
            None => core::ptr::null_mut(),
        }
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        // The block was allocated with this widened layout, so it exists.
        if let Some(lines) = whole_lines(layout) {
            // SAFETY: `pointer` came from `alloc` with `lines` (the caller's
            // contract and the mapping above).
            unsafe { self.0.dealloc(pointer, lines) }
        }
    }
}

/// Gives the heap `bytes` of fresh RAM.
pub fn init(bytes: u64) -> Result<(), OutOfMemory> {
    let start = frames::allocate(bytes, frames::FRAME_BYTES)?;
    // SAFETY: the range is identity mapped, unused, and owned by the heap from now on.
    unsafe { ALLOCATOR.0.lock().init(start as *mut u8, bytes as usize) };
    Ok(())
}

/// Bytes of heap currently free.
pub fn free_bytes() -> usize {
    ALLOCATOR.0.lock().free()
}
