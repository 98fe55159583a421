//! Network-order header fields shared by every view: one way to read and
//! write a big-endian `u16`, `u32` or IPv4 address at a byte range, and the
//! `field_getters!` / `field_setters!` macros that list a header's fields
//! as a table (name, type, range) instead of one hand-written accessor
//! each.
//!
//! The ranges are the views' `field` constants: their lengths match the
//! types, and `new_checked` has seen the header, so the reads never panic.

use core::net::Ipv4Addr;
use core::ops::Range;

/// A value stored in network byte order at a byte range of a header.
pub(crate) trait NetworkOrder: Sized {
    /// Reads the value at `range` of `bytes`.
    fn read(bytes: &[u8], range: Range<usize>) -> Self;
    /// Writes the value at `range` of `bytes`.
    fn write(self, bytes: &mut [u8], range: Range<usize>);
}

impl NetworkOrder for u16 {
    #[inline(always)]
    fn read(bytes: &[u8], range: Range<usize>) -> Self {
        u16::from_be_bytes([bytes[range.start], bytes[range.start + 1]])
    }

    #[inline(always)]
    fn write(self, bytes: &mut [u8], range: Range<usize>) {
        bytes[range].copy_from_slice(&self.to_be_bytes());
    }
}

impl NetworkOrder for u32 {
    #[inline(always)]
    fn read(bytes: &[u8], range: Range<usize>) -> Self {
        let mut word = [0u8; 4];
        word.copy_from_slice(&bytes[range]);
        u32::from_be_bytes(word)
    }

    #[inline(always)]
    fn write(self, bytes: &mut [u8], range: Range<usize>) {
        bytes[range].copy_from_slice(&self.to_be_bytes());
    }
}

impl NetworkOrder for Ipv4Addr {
    /// The four bytes read as one word.
    #[inline(always)]
    fn read(bytes: &[u8], range: Range<usize>) -> Self {
        let mut octets = [0u8; 4];
        octets.copy_from_slice(&bytes[range]);
        Ipv4Addr::from(octets)
    }

    #[inline(always)]
    fn write(self, bytes: &mut [u8], range: Range<usize>) {
        bytes[range].copy_from_slice(&self.octets());
    }
}

/// The `u16` at `range` of `bytes`, for accessors that decode a field
/// further (flags, offsets).
#[inline(always)]
pub(crate) fn u16_at(bytes: &[u8], range: Range<usize>) -> u16 {
    u16::read(bytes, range)
}

/// Getters of a view over `self.buffer`, one per line of the table:
/// `/// doc` then `name: type = range;`, the type a [`NetworkOrder`].
macro_rules! field_getters {
    ($($(#[$attribute:meta])* $name:ident: $type:ty = $range:expr;)*) => {$(
        $(#[$attribute])*
        #[inline]
        pub fn $name(&self) -> $type {
            <$type as $crate::fields::NetworkOrder>::read(self.buffer.as_ref(), $range)
        }
    )*};
}

/// Setters of a view over `self.buffer`, one per line of the table:
/// `/// doc` then `name: type = range;`, the type a [`NetworkOrder`].
macro_rules! field_setters {
    ($($(#[$attribute:meta])* $name:ident: $type:ty = $range:expr;)*) => {$(
        $(#[$attribute])*
        #[inline]
        pub fn $name(&mut self, value: $type) {
            $crate::fields::NetworkOrder::write(value, self.buffer.as_mut(), $range)
        }
    )*};
}

pub(crate) use {field_getters, field_setters};
