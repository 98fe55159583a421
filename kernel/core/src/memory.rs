//! `PhysicalMemory`: how the parsers read physical memory, and the
//! little-endian field readers they share. Reads never panic: a field past
//! the end of its bytes reads as absent.

/// Physical memory as the parsers see it: the kernel's identity map, or a
/// byte fixture in the tests.
pub trait PhysicalMemory {
    /// The `len` bytes at physical `address`, or `None` when they are not
    /// all readable.
    fn read(&self, address: u64, len: usize) -> Option<&[u8]>;
}

/// The little-endian `u16` at `offset` of `data`.
pub fn read_u16(data: &[u8], offset: usize) -> Option<u16> {
    let bytes = data.get(offset..offset.checked_add(2)?)?;
    Some(u16::from_le_bytes(bytes.try_into().ok()?))
}

/// The little-endian `u32` at `offset` of `data`.
pub fn read_u32(data: &[u8], offset: usize) -> Option<u32> {
    let bytes = data.get(offset..offset.checked_add(4)?)?;
    Some(u32::from_le_bytes(bytes.try_into().ok()?))
}

/// The little-endian `u64` at `offset` of `data`.
pub fn read_u64(data: &[u8], offset: usize) -> Option<u64> {
    let bytes = data.get(offset..offset.checked_add(8)?)?;
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}

/// A byte image of physical memory starting at `base`, for tests.
#[cfg(test)]
pub(crate) struct Image {
    pub(crate) base: u64,
    pub(crate) bytes: alloc::vec::Vec<u8>,
}

#[cfg(test)]
impl Image {
    /// `size` zero bytes at `base`.
    pub(crate) fn new(base: u64, size: usize) -> Self {
        Self {
            base,
            bytes: alloc::vec![0; size],
        }
    }

    /// Writes `data` at physical `address`.
    pub(crate) fn write(&mut self, address: u64, data: &[u8]) {
        let start = (address - self.base) as usize;
        self.bytes[start..start + data.len()].copy_from_slice(data);
    }
}

#[cfg(test)]
impl PhysicalMemory for Image {
    fn read(&self, address: u64, len: usize) -> Option<&[u8]> {
        let start = usize::try_from(address.checked_sub(self.base)?).ok()?;
        self.bytes.get(start..start.checked_add(len)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_past_the_end_read_as_absent() {
        let data = [1, 0, 0, 0, 2, 0, 0, 0];
        assert_eq!(read_u32(&data, 0), Some(1));
        assert_eq!(read_u32(&data, 4), Some(2));
        assert_eq!(read_u32(&data, 5), None);
        assert_eq!(read_u64(&data, 0), Some(0x2_0000_0001));
        assert_eq!(read_u64(&data, 1), None);
        assert_eq!(read_u16(&data, usize::MAX), None);
        let image = Image::new(0x1000, 16);
        assert_eq!(image.read(0x1000, 16).map(<[u8]>::len), Some(16));
        assert!(image.read(0x1001, 16).is_none() && image.read(0xfff, 1).is_none());
    }
}
