//! Kernel page tables: an identity map of all RAM and the 32-bit MMIO hole with 2 MiB
//! pages, write-back for RAM and uncached for everything else. The first 2 MiB use 4 KiB
//! pages so that page 0 stays unmapped and null dereferences fault.

use spin::Mutex;

use crate::arch::cpu;
use crate::mem::frames::{self, FRAME_BYTES, OutOfMemory};

const PRESENT: u64 = 1 << 0;
const WRITABLE: u64 = 1 << 1;
const WRITE_THROUGH: u64 = 1 << 3;
const CACHE_DISABLE: u64 = 1 << 4;
const HUGE: u64 = 1 << 7;
const ADDRESS_MASK: u64 = 0x000f_ffff_ffff_f000;
/// Size of a large page.
pub const LARGE_PAGE: u64 = 2 * 1024 * 1024;
const GIB: u64 = 1024 * 1024 * 1024;

/// Physical address of the kernel PML4 (0 before `init`).
static PML4: Mutex<u64> = Mutex::new(0);

/// Returns the table that `entry` points to, creating an empty one if needed.
fn next_table(entry: &mut u64) -> Result<*mut u64, OutOfMemory> {
    if *entry & PRESENT == 0 {
        *entry = frames::allocate_frame()? | PRESENT | WRITABLE;
    }
    Ok((*entry & ADDRESS_MASK) as *mut u64)
}

/// Returns the page-directory entry for `address`.
fn directory_entry(pml4: u64, address: u64) -> Result<&'static mut u64, OutOfMemory> {
    let indices = [(address >> 39) & 511, (address >> 30) & 511];
    let mut table = pml4 as *mut u64;
    for index in indices {
        // SAFETY: `table` is a page-table frame owned by this module, identity mapped.
        let entry = unsafe { &mut *table.add(index as usize) };
        table = next_table(entry)?;
    }
    // SAFETY: as above; the PD frame is identity mapped and owned by this module.
    Ok(unsafe { &mut *table.add(((address >> 21) & 511) as usize) })
}

/// Identity-maps `[start, end)` (rounded out to 2 MiB) into `pml4`.
fn map_large(pml4: u64, start: u64, end: u64, cached: bool) -> Result<(), OutOfMemory> {
    let cache = if cached {
        0
    } else {
        WRITE_THROUGH | CACHE_DISABLE
    };
    let mut address = start & !(LARGE_PAGE - 1);
    while address < end {
        let entry = directory_entry(pml4, address)?;
        if *entry & PRESENT == 0 {
            *entry = address | PRESENT | WRITABLE | HUGE | cache;
        }
        address += LARGE_PAGE;
    }
    Ok(())
}

/// Maps the first 2 MiB with 4 KiB pages, leaving page 0 unmapped as a null guard.
fn map_low(pml4: u64) -> Result<(), OutOfMemory> {
    let entry = directory_entry(pml4, 0)?;
    let table = frames::allocate_frame()?;
    for page in 1..512u64 {
        // SAFETY: `table` is a fresh frame owned by this function, identity mapped.
        unsafe {
            (table as *mut u64)
                .add(page as usize)
                .write((page * FRAME_BYTES) | PRESENT | WRITABLE)
        };
    }
    *entry = table | PRESENT | WRITABLE;
    Ok(())
}

/// Builds the kernel page tables and switches to them.
///
/// `is_ram(start, end)` tells whether a range holds usable RAM (mapped write-back);
/// everything else below 4 GiB is mapped uncached for MMIO.
pub fn init(is_ram: impl Fn(u64, u64) -> bool) -> Result<(), OutOfMemory> {
    let pml4 = frames::allocate_frame()?;
    map_low(pml4)?;
    let top = frames::usable_top().max(4 * GIB).next_multiple_of(GIB);
    let mut address = LARGE_PAGE;
    while address < top {
        map_large(
            pml4,
            address,
            address + LARGE_PAGE,
            is_ram(address, address + LARGE_PAGE),
        )?;
        address += LARGE_PAGE;
    }
    // SAFETY: the new tables identity-map the kernel image, its stacks, all RAM and the
    // low 1 MiB except page 0, which nothing uses.
    unsafe { cpu::write_cr3(pml4) };
    *PML4.lock() = pml4;
    Ok(())
}

/// Identity-maps an MMIO range uncached (e.g. a 64-bit BAR above the RAM map).
pub fn map_mmio(start: u64, bytes: u64) -> Result<(), OutOfMemory> {
    let pml4 = *PML4.lock();
    map_large(pml4, start, start + bytes, false)
}

/// Physical address of the kernel PML4, loaded by application processors.
pub fn kernel_pml4() -> u64 {
    *PML4.lock()
}

/// Whether `address` is mapped in the kernel tables (used by tests to pick addresses).
#[cfg(feature = "scenarios")]
pub fn is_mapped(address: u64) -> bool {
    let pml4 = *PML4.lock();
    let mut table = pml4 as *const u64;
    for shift in [39u32, 30, 21, 12] {
        // SAFETY: every table reached is a page-table frame owned by this module.
        let entry = unsafe { table.add(((address >> shift) & 511) as usize).read() };
        if entry & PRESENT == 0 {
            return false;
        }
        if shift == 12 || (shift != 39 && entry & HUGE != 0) {
            return true;
        }
        table = (entry & ADDRESS_MASK) as *const u64;
    }
    true
}
