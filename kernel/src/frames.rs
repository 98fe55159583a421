//! Physical frame allocator over the PVH memory map: usable RAM minus the low 1 MiB,
//! the kernel image and the loader's modules, handed out in ascending address order.
//!
//! Frames are never returned: the kernel allocates page tables, the heap, stacks and
//! the DMA region once at boot and keeps them for life.

use spin::Mutex;

use crate::pvh::{MEMORY_USABLE, MemoryRegion};

/// Size of a small page frame.
pub const FRAME_BYTES: u64 = 4096;
/// Most disjoint free ranges tracked.
const MAX_RANGES: usize = 64;

/// A half-open physical range `[start, end)`.
#[derive(Clone, Copy, Debug, Default)]
struct Range {
    start: u64,
    end: u64,
}

/// Free physical memory, as sorted disjoint ranges.
pub struct FrameAllocator {
    ranges: [Range; MAX_RANGES],
    count: usize,
    /// Bytes of usable RAM in the memory map (before reservations).
    usable_bytes: u64,
    /// Highest end address of usable RAM.
    usable_top: u64,
}

/// Why an allocation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfMemory;

static FRAMES: Mutex<FrameAllocator> = Mutex::new(FrameAllocator {
    ranges: [Range { start: 0, end: 0 }; MAX_RANGES],
    count: 0,
    usable_bytes: 0,
    usable_top: 0,
});

impl FrameAllocator {
    fn add(&mut self, start: u64, end: u64) {
        let start = start.next_multiple_of(FRAME_BYTES);
        let end = end & !(FRAME_BYTES - 1);
        if end <= start || self.count == MAX_RANGES {
            return;
        }
        let at = self.ranges[..self.count]
            .iter()
            .position(|range| range.start > start)
            .unwrap_or(self.count);
        self.ranges.copy_within(at..self.count, at + 1);
        self.ranges[at] = Range { start, end };
        self.count += 1;
    }

    /// Removes `[start, end)` from the free ranges, splitting where needed.
    fn reserve(&mut self, start: u64, end: u64) {
        let mut index = 0;
        while index < self.count {
            let range = self.ranges[index];
            if end <= range.start || start >= range.end {
                index += 1;
                continue;
            }
            self.ranges.copy_within(index + 1..self.count, index);
            self.count -= 1;
            if range.start < start {
                self.add(range.start, start);
            }
            if end < range.end {
                self.add(end, range.end);
            }
            index = 0;
        }
    }

    fn allocate(&mut self, bytes: u64, align: u64) -> Result<u64, OutOfMemory> {
        let bytes = bytes.next_multiple_of(FRAME_BYTES);
        let align = align.max(FRAME_BYTES);
        for index in 0..self.count {
            let range = self.ranges[index];
            let start = range.start.next_multiple_of(align);
            if start.checked_add(bytes).is_some_and(|end| end <= range.end) {
                self.reserve(start, start + bytes);
                return Ok(start);
            }
        }
        Err(OutOfMemory)
    }
}

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
        frames.add(region.addr, end);
    }
    for &(start, end) in reserved {
        frames.reserve(start, end);
    }
}

/// Allocates `bytes` (rounded up to frames) of physically contiguous memory aligned to
/// `align`, returning its physical address. The contents are whatever RAM held.
pub fn allocate(bytes: u64, align: u64) -> Result<u64, OutOfMemory> {
    FRAMES.lock().allocate(bytes, align)
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
    let frames = FRAMES.lock();
    frames.ranges[..frames.count]
        .iter()
        .map(|range| range.end - range.start)
        .sum()
}
