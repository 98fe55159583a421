//! `hvm_start_info` (Xen PVH ABI, as QEMU and Firecracker fill it): memory map, command
//! line, modules and RSDP, copied out before the boot page tables are replaced.

use core::ptr::read_unaligned;

/// `hvm_start_info.magic`.
const START_INFO_MAGIC: u32 = 0x336e_c578;
/// Most memory-map entries we keep.
pub const MAX_MEMMAP: usize = 64;
/// Most modules we keep track of.
pub const MAX_MODULES: usize = 8;
/// Longest command line we keep, in bytes.
const MAX_CMDLINE: usize = 1024;

/// `struct hvm_start_info` (xen/include/public/arch-x86/hvm/start_info.h).
#[repr(C)]
struct StartInfo {
    magic: u32,          // 0x00
    version: u32,        // 0x04
    flags: u32,          // 0x08
    nr_modules: u32,     // 0x0c
    modlist_paddr: u64,  // 0x10
    cmdline_paddr: u64,  // 0x18
    rsdp_paddr: u64,     // 0x20
    memmap_paddr: u64,   // 0x28 (version >= 1)
    memmap_entries: u32, // 0x30 (version >= 1)
    reserved: u32,       // 0x34
}
const _: () = assert!(size_of::<StartInfo>() == 0x38);

/// `struct hvm_modlist_entry`.
#[repr(C)]
struct ModlistEntry {
    paddr: u64,         // 0x00
    size: u64,          // 0x08
    cmdline_paddr: u64, // 0x10
    reserved: u64,      // 0x18
}
const _: () = assert!(size_of::<ModlistEntry>() == 0x20);

/// `struct hvm_memmap_table_entry`, e820-style.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct MemoryRegion {
    /// Physical start address.
    pub addr: u64, // 0x00
    /// Length in bytes.
    pub size: u64, // 0x08
    /// E820 type: 1 = usable RAM, 2 = reserved, 3 = ACPI reclaimable, 4 = ACPI NVS.
    pub kind: u32, // 0x10
    /// Reserved by the ABI.
    pub reserved: u32, // 0x14
}
const _: () = assert!(size_of::<MemoryRegion>() == 0x18);

/// E820 type of usable RAM.
pub const MEMORY_USABLE: u32 = 1;

/// A PVH module: a physical byte range the loader placed in memory (`-initrd`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Module {
    /// Physical start address.
    pub paddr: u64,
    /// Length in bytes.
    pub size: u64,
}

/// Everything the kernel needs from `hvm_start_info`, owned by the kernel.
pub struct BootInfo {
    /// ABI version the loader provided.
    pub version: u32,
    /// E820-style memory map.
    pub memory_map: [MemoryRegion; MAX_MEMMAP],
    /// Valid entries in `memory_map`.
    pub memory_map_len: usize,
    /// Modules, first one is the spec file.
    pub modules: [Module; MAX_MODULES],
    /// Valid entries in `modules`.
    pub module_count: usize,
    /// Physical address of the ACPI RSDP, 0 when the loader gave none.
    pub rsdp_paddr: u64,
    /// Command line bytes (copied).
    cmdline: [u8; MAX_CMDLINE],
    cmdline_len: usize,
}

/// Why `hvm_start_info` could not be used.
#[allow(dead_code)] // fields are reported through Debug
#[derive(Clone, Copy, Debug)]
pub enum StartInfoError {
    /// The magic number did not match: not a PVH boot.
    BadMagic(u32),
    /// The loader provided no memory map (version 0 start info).
    NoMemoryMap,
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

    /// The valid modules.
    pub fn modules(&self) -> &[Module] {
        &self.modules[..self.module_count]
    }

    /// Copies `hvm_start_info` and everything it points to.
    ///
    /// # Safety
    /// 1. `paddr` is the EBX value from PVH entry, and the structures it points to are
    ///    still intact and identity mapped.
    pub unsafe fn parse(paddr: u64) -> Result<Self, StartInfoError> {
        // SAFETY: precondition 1; unaligned reads cope with any loader placement.
        let info: StartInfo = unsafe { read_unaligned(paddr as *const StartInfo) };
        if info.magic != START_INFO_MAGIC {
            return Err(StartInfoError::BadMagic(info.magic));
        }
        let mut boot = BootInfo {
            version: info.version,
            memory_map: [MemoryRegion::default(); MAX_MEMMAP],
            memory_map_len: 0,
            modules: [Module::default(); MAX_MODULES],
            module_count: 0,
            rsdp_paddr: info.rsdp_paddr,
            cmdline: [0; MAX_CMDLINE],
            cmdline_len: 0,
        };
        if info.version < 1 || info.memmap_paddr == 0 || info.memmap_entries == 0 {
            return Err(StartInfoError::NoMemoryMap);
        }
        let entries = (info.memmap_entries as usize).min(MAX_MEMMAP);
        for index in 0..entries {
            let entry = info.memmap_paddr as *const MemoryRegion;
            // SAFETY: precondition 1; the loader wrote `memmap_entries` entries there.
            boot.memory_map[index] = unsafe { read_unaligned(entry.add(index)) };
        }
        boot.memory_map_len = entries;
        let modules = (info.nr_modules as usize).min(MAX_MODULES);
        for index in 0..modules {
            let entry = info.modlist_paddr as *const ModlistEntry;
            // SAFETY: precondition 1; the loader wrote `nr_modules` entries there.
            let module = unsafe { read_unaligned(entry.add(index)) };
            boot.modules[index] = Module {
                paddr: module.paddr,
                size: module.size,
            };
        }
        boot.module_count = modules;
        if info.cmdline_paddr != 0 {
            let mut len = 0;
            while len < MAX_CMDLINE {
                // SAFETY: precondition 1; the command line is NUL-terminated, we stop at NUL.
                let byte = unsafe { (info.cmdline_paddr as *const u8).add(len).read_volatile() };
                if byte == 0 {
                    break;
                }
                boot.cmdline[len] = byte;
                len += 1;
            }
            boot.cmdline_len = len;
        }
        Ok(boot)
    }
}
