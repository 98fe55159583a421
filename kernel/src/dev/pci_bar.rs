//! PCI base address registers: sizing (write all-ones, read back) and mapping.

use crate::arch::paging;
use crate::dev::pci::{PciAddress, read32, write32};

/// Config offset of BAR 0.
const BAR0: u16 = 0x10;
/// Command register offset and its decode-enable bits.
const COMMAND: u16 = 0x04;
const COMMAND_DECODE: u32 = 0b11;

/// A sized base address register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bar {
    /// Not implemented (or the upper half of a 64-bit BAR).
    None,
    /// I/O port range.
    Io {
        /// First port.
        port: u16,
        /// Number of ports.
        size: u32,
    },
    /// Memory range.
    Memory {
        /// Physical base address.
        address: u64,
        /// Length in bytes.
        size: u64,
        /// Whether the range is prefetchable.
        prefetchable: bool,
        /// Whether the BAR is 64 bits wide.
        wide: bool,
    },
}

/// Sizes all six BARs of a type-0 function, with decoding off while probing.
pub fn size_all(address: PciAddress) -> [Bar; 6] {
    let command = read32(address, COMMAND);
    write32(address, COMMAND, (command & 0xffff) & !COMMAND_DECODE);
    let mut bars = [Bar::None; 6];
    let mut index = 0;
    while index < 6 {
        let offset = BAR0 + 4 * index as u16;
        let original = read32(address, offset);
        write32(address, offset, u32::MAX);
        let probed = read32(address, offset);
        write32(address, offset, original);
        if original & 1 == 1 {
            let mask = probed & !0x3;
            if mask != 0 {
                bars[index] = Bar::Io {
                    port: (original & !0x3) as u16,
                    size: (!mask).wrapping_add(1) & 0xffff,
                };
            }
            index += 1;
            continue;
        }
        let wide = (original >> 1) & 0b11 == 0b10;
        let prefetchable = original & 0x8 != 0;
        let (mut base, mut mask) = (
            u64::from(original & !0xf),
            u64::from(probed & !0xf) | 0xffff_ffff_0000_0000,
        );
        if wide && index < 5 {
            let high_offset = offset + 4;
            let high = read32(address, high_offset);
            write32(address, high_offset, u32::MAX);
            let high_probed = read32(address, high_offset);
            write32(address, high_offset, high);
            base |= u64::from(high) << 32;
            mask = (mask & 0xffff_ffff) | (u64::from(high_probed) << 32);
        }
        if mask & 0xffff_fff0 != 0 {
            bars[index] = Bar::Memory {
                address: base,
                size: (!mask).wrapping_add(1),
                prefetchable,
                wide,
            };
        }
        index += if wide { 2 } else { 1 };
    }
    write32(address, COMMAND, command & 0xffff);
    bars
}

impl Bar {
    /// Maps a memory BAR (identity, uncached) and returns its virtual address.
    /// Returns `None` for I/O or unassigned BARs.
    pub fn map(&self) -> Option<*mut u8> {
        match *self {
            Bar::Memory { address, size, .. } if address != 0 => {
                paging::map_mmio(address, size).ok()?;
                Some(address as *mut u8)
            }
            _ => None,
        }
    }
}
