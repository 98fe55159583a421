//! `hvm_start_info` (Xen PVH ABI, as QEMU and Firecracker fill it): memory
//! map, command line, modules and RSDP, copied out through
//! [`PhysicalMemory`] before the boot page tables are replaced.

use crate::memory::{PhysicalMemory, read_u32, read_u64};

/// `hvm_start_info.magic`.
const START_INFO_MAGIC: u32 = 0x336e_c578;
/// Most memory-map entries kept.
pub const MAX_MEMMAP: usize = 64;
/// Most modules kept.
pub const MAX_MODULES: usize = 8;
/// Longest command line kept, in bytes.
pub const MAX_CMDLINE: usize = 1024;

/// `struct hvm_start_info` (xen/include/public/arch-x86/hvm/start_info.h):
/// field offsets.
mod start_info {
    pub const MAGIC: usize = 0x00;
    pub const VERSION: usize = 0x04;
    pub const NR_MODULES: usize = 0x0c;
    pub const MODLIST_PADDR: usize = 0x10;
    pub const CMDLINE_PADDR: usize = 0x18;
    pub const RSDP_PADDR: usize = 0x20;
    pub const MEMMAP_PADDR: usize = 0x28;
    pub const MEMMAP_ENTRIES: usize = 0x30;
    pub const SIZE: usize = 0x38;
}

/// `struct hvm_modlist_entry`: paddr(8) size(8) cmdline_paddr(8) reserved(8).
const MODLIST_ENTRY_SIZE: usize = 0x20;
/// `struct hvm_memmap_table_entry`: addr(8) size(8) type(4) reserved(4).
const MEMMAP_ENTRY_SIZE: usize = 0x18;

/// One e820-style memory-map entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryRegion {
    /// Physical start address.
    pub addr: u64,
    /// Length in bytes.
    pub size: u64,
    /// E820 type: 1 = usable RAM, 2 = reserved, 3 = ACPI reclaimable, 4 = ACPI NVS.
    pub kind: u32,
}

/// E820 type of usable RAM.
pub const MEMORY_USABLE: u32 = 1;

/// A PVH module: a physical byte range the loader placed in memory (`-initrd`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Module {
    /// Physical start address.
    pub paddr: u64,
    /// Length in bytes.
    pub size: u64,
}

/// Everything the kernel needs from `hvm_start_info`, owned by the kernel.
#[derive(Debug)]
pub struct BootInfo {
    /// ABI version the loader provided.
    pub version: u32,
    memory_map: [MemoryRegion; MAX_MEMMAP],
    memory_map_len: usize,
    modules: [Module; MAX_MODULES],
    module_count: usize,
    /// Physical address of the ACPI RSDP, 0 when the loader gave none.
    pub rsdp_paddr: u64,
    cmdline: [u8; MAX_CMDLINE],
    cmdline_len: usize,
}

/// Why `hvm_start_info` could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartInfoError {
    /// The magic number did not match: not a PVH boot.
    BadMagic(u32),
    /// The loader provided no memory map (version 0 start info).
    NoMemoryMap,
    /// A structure the start info points to is not readable (its address).
    Unreadable(u64),
}

impl BootInfo {
    /// The kernel command line, empty if absent or not UTF-8.
    pub fn cmdline(&self) -> &str {
        core::str::from_utf8(&self.cmdline[..self.cmdline_len]).unwrap_or("")
    }

    /// The valid memory-map entries.
    pub fn memory_map(&self) -> &[MemoryRegion] {
        &self.memory_map[..self.memory_map_len]
    }

    /// The valid modules; the first is the spec file.
    pub fn modules(&self) -> &[Module] {
        &self.modules[..self.module_count]
    }

    /// Copies the start info at `paddr` and everything it points to.
    pub fn parse(memory: &impl PhysicalMemory, paddr: u64) -> Result<Self, StartInfoError> {
        let info = memory
            .read(paddr, start_info::SIZE)
            .ok_or(StartInfoError::Unreadable(paddr))?;
        let u32_at = |offset| read_u32(info, offset).unwrap_or(0);
        let u64_at = |offset| read_u64(info, offset).unwrap_or(0);
        let magic = u32_at(start_info::MAGIC);
        if magic != START_INFO_MAGIC {
            return Err(StartInfoError::BadMagic(magic));
        }
        let mut boot = BootInfo {
            version: u32_at(start_info::VERSION),
            memory_map: [MemoryRegion::default(); MAX_MEMMAP],
            memory_map_len: 0,
            modules: [Module::default(); MAX_MODULES],
            module_count: 0,
            rsdp_paddr: u64_at(start_info::RSDP_PADDR),
            cmdline: [0; MAX_CMDLINE],
            cmdline_len: 0,
        };
        let (memmap, entries) = (
            u64_at(start_info::MEMMAP_PADDR),
            u32_at(start_info::MEMMAP_ENTRIES) as usize,
        );
        if boot.version < 1 || memmap == 0 || entries == 0 {
            return Err(StartInfoError::NoMemoryMap);
        }
        let entries = entries.min(MAX_MEMMAP);
        let table = memory
            .read(memmap, entries * MEMMAP_ENTRY_SIZE)
            .ok_or(StartInfoError::Unreadable(memmap))?;
        for (slot, entry) in boot
            .memory_map
            .iter_mut()
            .zip(table.chunks_exact(MEMMAP_ENTRY_SIZE))
        {
            *slot = MemoryRegion {
                addr: read_u64(entry, 0).unwrap_or(0),
                size: read_u64(entry, 8).unwrap_or(0),
                kind: read_u32(entry, 16).unwrap_or(0),
            };
        }
        boot.memory_map_len = entries;
        let modules = (u32_at(start_info::NR_MODULES) as usize).min(MAX_MODULES);
        if modules > 0 {
            let list_address = u64_at(start_info::MODLIST_PADDR);
            let list = memory
                .read(list_address, modules * MODLIST_ENTRY_SIZE)
                .ok_or(StartInfoError::Unreadable(list_address))?;
            for (slot, entry) in boot
                .modules
                .iter_mut()
                .zip(list.chunks_exact(MODLIST_ENTRY_SIZE))
            {
                *slot = Module {
                    paddr: read_u64(entry, 0).unwrap_or(0),
                    size: read_u64(entry, 8).unwrap_or(0),
                };
            }
            boot.module_count = modules;
        }
        let cmdline = u64_at(start_info::CMDLINE_PADDR);
        if cmdline != 0 {
            // NUL-terminated; read byte by byte so that a line ending near
            // the end of memory is still read.
            let mut len = 0;
            while len < MAX_CMDLINE {
                match memory.read(cmdline + len as u64, 1) {
                    Some([byte]) if *byte != 0 => boot.cmdline[len] = *byte,
                    _ => break,
                }
                len += 1;
            }
            boot.cmdline_len = len;
        }
        Ok(boot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::Image;

    const INFO: u64 = 0x1000;
    const MEMMAP: u64 = 0x2000;
    const MODLIST: u64 = 0x3000;
    const CMDLINE: u64 = 0x4000;

    /// A start info with two memory regions, one module and a command line.
    fn image() -> Image {
        let mut image = Image::new(0, 0x5000);
        let mut info = [0u8; start_info::SIZE];
        info[0..4].copy_from_slice(&START_INFO_MAGIC.to_le_bytes());
        info[4..8].copy_from_slice(&1u32.to_le_bytes());
        info[0x0c..0x10].copy_from_slice(&1u32.to_le_bytes());
        info[0x10..0x18].copy_from_slice(&MODLIST.to_le_bytes());
        info[0x18..0x20].copy_from_slice(&CMDLINE.to_le_bytes());
        info[0x20..0x28].copy_from_slice(&0xf5a20u64.to_le_bytes());
        info[0x28..0x30].copy_from_slice(&MEMMAP.to_le_bytes());
        info[0x30..0x34].copy_from_slice(&2u32.to_le_bytes());
        image.write(INFO, &info);
        for (index, (addr, size, kind)) in [(0u64, 0x9fc00u64, 1u32), (0x10_0000, 0x1ff0_0000, 1)]
            .into_iter()
            .enumerate()
        {
            let at = MEMMAP + (index * MEMMAP_ENTRY_SIZE) as u64;
            image.write(at, &addr.to_le_bytes());
            image.write(at + 8, &size.to_le_bytes());
            image.write(at + 16, &kind.to_le_bytes());
        }
        image.write(MODLIST, &0x80_0000u64.to_le_bytes());
        image.write(MODLIST + 8, &123u64.to_le_bytes());
        image.write(CMDLINE, b"test=boot log=debug\0garbage");
        image
    }

    #[test]
    fn start_info_is_copied_out() {
        let boot = BootInfo::parse(&image(), INFO).unwrap();
        assert_eq!(boot.version, 1);
        assert_eq!(boot.rsdp_paddr, 0xf5a20);
        assert_eq!(boot.cmdline(), "test=boot log=debug");
        assert_eq!(
            boot.memory_map(),
            [
                MemoryRegion {
                    addr: 0,
                    size: 0x9fc00,
                    kind: MEMORY_USABLE
                },
                MemoryRegion {
                    addr: 0x10_0000,
                    size: 0x1ff0_0000,
                    kind: MEMORY_USABLE
                },
            ]
        );
        assert_eq!(
            boot.modules(),
            [Module {
                paddr: 0x80_0000,
                size: 123
            }]
        );
    }

    #[test]
    fn bad_start_infos_are_refused() {
        let mut bad_magic = image();
        bad_magic.write(INFO, &0u32.to_le_bytes());
        assert_eq!(
            BootInfo::parse(&bad_magic, INFO).err(),
            Some(StartInfoError::BadMagic(0))
        );
        let mut version_zero = image();
        version_zero.write(INFO + 4, &0u32.to_le_bytes());
        assert_eq!(
            BootInfo::parse(&version_zero, INFO).err(),
            Some(StartInfoError::NoMemoryMap)
        );
        let mut far_memmap = image();
        far_memmap.write(INFO + 0x28, &0x9000_0000u64.to_le_bytes());
        assert_eq!(
            BootInfo::parse(&far_memmap, INFO).err(),
            Some(StartInfoError::Unreadable(0x9000_0000))
        );
        assert_eq!(
            BootInfo::parse(&image(), 0x4ff0).err(),
            Some(StartInfoError::Unreadable(0x4ff0))
        );
        // A command line running to the end of memory is cut there.
        let mut unterminated = image();
        unterminated.write(INFO + 0x18, &0x4ffcu64.to_le_bytes());
        unterminated.write(0x4ffc, b"ab=c");
        assert_eq!(
            BootInfo::parse(&unterminated, INFO).unwrap().cmdline(),
            "ab=c"
        );
    }
}
