//! `FrameRanges`: free physical memory as sorted disjoint ranges, built from
//! the memory map minus reservations, handing out aligned runs of frames in
//! ascending address order. Frames are never returned.

/// Size of a small page frame.
pub const FRAME_BYTES: u64 = 4096;
/// Most disjoint free ranges tracked; ranges past it are not used.
pub const MAX_RANGES: usize = 64;

/// A half-open physical range `[start, end)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Range {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

/// Why an allocation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfMemory;

/// Free physical memory.
#[derive(Debug)]
pub struct FrameRanges {
    ranges: [Range; MAX_RANGES],
    count: usize,
}

impl Default for FrameRanges {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameRanges {
    /// No free memory.
    pub const fn new() -> Self {
        Self {
            ranges: [Range { start: 0, end: 0 }; MAX_RANGES],
            count: 0,
        }
    }

    /// The free ranges, sorted.
    pub fn ranges(&self) -> &[Range] {
        &self.ranges[..self.count]
    }

    /// Bytes still free.
    pub fn free_bytes(&self) -> u64 {
        self.ranges()
            .iter()
            .map(|range| range.end - range.start)
            .sum()
    }

    /// Adds `[start, end)`, shrunk to whole frames and merged with every
    /// free range it overlaps or touches, so that no frame is listed twice
    /// (memory maps may overlap); ignored when empty or when
    /// [`MAX_RANGES`] ranges are tracked already.
    pub fn add(&mut self, start: u64, end: u64) {
        let Some(mut start) = start.checked_next_multiple_of(FRAME_BYTES) else {
            return;
        };
        let mut end = end & !(FRAME_BYTES - 1);
        if end <= start {
            return;
        }
        let mut index = 0;
        while index < self.count {
            let range = self.ranges[index];
            if range.end < start || end < range.start {
                index += 1;
                continue;
            }
            start = start.min(range.start);
            end = end.max(range.end);
            self.ranges.copy_within(index + 1..self.count, index);
            self.count -= 1;
        }
        if self.count == MAX_RANGES {
            return;
        }
        let at = self
            .ranges()
            .iter()
            .position(|range| range.start > start)
            .unwrap_or(self.count);
        self.ranges.copy_within(at..self.count, at + 1);
        self.ranges[at] = Range { start, end };
        self.count += 1;
    }

    /// Removes `[start, end)` from the free ranges, splitting where needed.
    pub fn reserve(&mut self, start: u64, end: u64) {
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

    /// Takes `bytes` (rounded up to frames) aligned to `align` (at least a
    /// frame) from the lowest range that fits; returns the start.
    pub fn allocate(&mut self, bytes: u64, align: u64) -> Result<u64, OutOfMemory> {
        let bytes = bytes
            .checked_next_multiple_of(FRAME_BYTES)
            .ok_or(OutOfMemory)?;
        let align = align.max(FRAME_BYTES);
        for index in 0..self.count {
            let range = self.ranges[index];
            let Some(start) = range.start.checked_next_multiple_of(align) else {
                continue;
            };
            if start.checked_add(bytes).is_some_and(|end| end <= range.end) {
                self.reserve(start, start + bytes);
                return Ok(start);
            }
        }
        Err(OutOfMemory)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn reservations_split_ranges_and_allocations_go_low_first() {
        let mut frames = FrameRanges::new();
        frames.add(0x10_0000 + 1, 64 * MIB + 5); // shrunk to whole frames
        frames.add(0, 0x9f000);
        assert_eq!(
            frames.ranges()[0],
            Range {
                start: 0,
                end: 0x9f000
            }
        );
        assert_eq!(
            frames.ranges()[1],
            Range {
                start: 0x10_1000,
                end: 64 * MIB
            }
        );
        frames.reserve(0, MIB);
        frames.reserve(2 * MIB, 3 * MIB);
        assert_eq!(
            frames.ranges(),
            [
                Range {
                    start: 0x10_1000,
                    end: 2 * MIB
                },
                Range {
                    start: 3 * MIB,
                    end: 64 * MIB
                },
            ]
        );
        assert_eq!(frames.allocate(1, 1), Ok(0x10_1000));
        // 2 MiB alignment skips the rest of the first range.
        assert_eq!(frames.allocate(MIB, 2 * MIB), Ok(4 * MIB));
        // Neither what is left below 2 MiB nor the 1 MiB gap the aligned
        // allocation left at 3 MiB fits 2 MiB.
        assert_eq!(frames.allocate(2 * MIB, 0), Ok(5 * MIB));
        assert_eq!(frames.allocate(MIB, 0), Ok(0x10_2000.max(3 * MIB)));
        let free = frames.free_bytes();
        assert_eq!(frames.allocate(free + FRAME_BYTES, 0), Err(OutOfMemory));
        assert_eq!(frames.allocate(u64::MAX, 0), Err(OutOfMemory));
    }

    #[test]
    fn overlapping_regions_are_merged_so_no_frame_is_handed_out_twice() {
        let mut frames = FrameRanges::new();
        frames.add(MIB, 4 * MIB);
        frames.add(2 * MIB, 6 * MIB);
        frames.add(6 * MIB, 7 * MIB);
        frames.add(9 * MIB, 10 * MIB);
        frames.add(0, 10 * MIB);
        assert_eq!(
            frames.ranges(),
            [Range {
                start: 0,
                end: 10 * MIB
            }]
        );
        let mut seen = std::collections::BTreeSet::new();
        while let Ok(frame) = frames.allocate(FRAME_BYTES, 0) {
            assert!(seen.insert(frame), "{frame:#x} handed out twice");
        }
        assert_eq!(seen.len() as u64, 10 * MIB / FRAME_BYTES);
    }

    #[test]
    fn more_ranges_than_tracked_are_ignored_not_corrupted() {
        let mut frames = FrameRanges::new();
        for index in 0..(MAX_RANGES as u64 + 8) {
            frames.add(index * 2 * MIB, index * 2 * MIB + MIB);
        }
        assert_eq!(frames.ranges().len(), MAX_RANGES);
        assert!(
            frames
                .ranges()
                .windows(2)
                .all(|pair| pair[0].end <= pair[1].start)
        );
        frames.add(u64::MAX - 10, u64::MAX);
        assert_eq!(frames.free_bytes(), MAX_RANGES as u64 * MIB);
    }
}
