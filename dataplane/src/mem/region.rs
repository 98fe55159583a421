//! A contiguous, DMA-able memory region that the platform hands to mempools.

use alloc::alloc::{Layout, alloc_zeroed, dealloc};
use core::ptr::NonNull;

/// Alignment of every region: a page, so buffers never straddle one needlessly.
pub const REGION_ALIGN: usize = 4096;

/// Physically contiguous memory with a known physical address: the kernel
/// carves it from the frame allocator, hosted runs take it from the heap.
#[derive(Debug)]
pub struct DmaRegion {
    virt: NonNull<u8>,
    phys: u64,
    len: usize,
    /// Set when the memory came from the heap and must go back there.
    heap_layout: Option<Layout>,
}

// SAFETY: a region is exclusive ownership of its memory (precondition 1 of
// `from_raw`, or a fresh heap allocation), so moving it between threads is
// moving that ownership.
unsafe impl Send for DmaRegion {}

impl DmaRegion {
    /// Wraps memory that the platform set aside.
    ///
    /// # Safety
    /// 1. `virt .. virt + len` is valid for reads and writes for the rest of
    ///    the program and nothing else uses it.
    /// 2. `phys` is the physical address of `virt` and the range is physically
    ///    contiguous.
    /// 3. `virt` is aligned to [`REGION_ALIGN`].
    pub unsafe fn from_raw(virt: NonNull<u8>, phys: u64, len: usize) -> Self {
        Self {
            virt,
            phys,
            len,
            heap_layout: None,
        }
    }

    /// Takes `len` zeroed bytes from the heap. The physical address is taken
    /// to be the virtual one: true on an identity-mapped kernel, and harmless
    /// for hosted NICs, which never DMA.
    ///
    /// Returns `None` when `len` is zero or the heap is exhausted.
    pub fn from_heap(len: usize) -> Option<Self> {
        if len == 0 {
            return None;
        }
        let layout = Layout::from_size_align(len, REGION_ALIGN).ok()?;
        // SAFETY: the layout has a non-zero size.
        let virt = NonNull::new(unsafe { alloc_zeroed(layout) })?;
        Some(Self {
            virt,
            phys: virt.as_ptr() as u64,
            len,
            heap_layout: Some(layout),
        })
    }

    /// Start of the region in the address space.
    pub fn virt(&self) -> NonNull<u8> {
        self.virt
    }

    /// Physical address of the first byte.
    pub fn phys(&self) -> u64 {
        self.phys
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the region holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Splits off the first `len` bytes (rounded up to [`REGION_ALIGN`]), for
    /// example one region per core. Returns `None` when the region is too
    /// small or came from the heap (a heap block is freed whole).
    pub fn split_off_front(&mut self, len: usize) -> Option<DmaRegion> {
        let len = len.checked_next_multiple_of(REGION_ALIGN)?;
        if self.heap_layout.is_some() || len > self.len {
            return None;
        }
        let front = DmaRegion {
            virt: self.virt,
            phys: self.phys,
            len,
            heap_layout: None,
        };
        // SAFETY: `len <= self.len`, so the new start is inside (or one past)
        // the region this value exclusively owns.
        self.virt = unsafe { self.virt.add(len) };
        self.phys += len as u64;
        self.len -= len;
        Some(front)
    }
}

impl Drop for DmaRegion {
    fn drop(&mut self) {
        if let Some(layout) = self.heap_layout {
            // SAFETY: `virt` came from `alloc_zeroed(layout)` in `from_heap`
            // and is freed only here, once.
            unsafe { dealloc(self.virt.as_ptr(), layout) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heap_region_is_aligned_and_zeroed() {
        let region = DmaRegion::from_heap(8192).unwrap();
        assert_eq!(region.virt().as_ptr() as usize % REGION_ALIGN, 0);
        assert_eq!(region.len(), 8192);
        assert!(DmaRegion::from_heap(0).is_none());
    }

    #[test]
    fn split_carves_page_multiples() {
        let mut backing = alloc::vec![0u8; 5 * REGION_ALIGN];
        let offset = backing.as_ptr().align_offset(REGION_ALIGN);
        let start = NonNull::new(backing[offset..].as_mut_ptr()).unwrap();
        // SAFETY: 4 pages of `backing` from an aligned start, owned by this
        // test and alive until its end.
        let mut region = unsafe { DmaRegion::from_raw(start, 0x10_0000, 4 * REGION_ALIGN) };
        let front = region.split_off_front(100).unwrap();
        assert_eq!(front.len(), REGION_ALIGN);
        assert_eq!(region.phys(), 0x10_0000 + REGION_ALIGN as u64);
        assert_eq!(region.len(), 3 * REGION_ALIGN);
        assert!(region.split_off_front(4 * REGION_ALIGN).is_none());
        assert!(
            DmaRegion::from_heap(8192)
                .unwrap()
                .split_off_front(4096)
                .is_none()
        );
    }
}
