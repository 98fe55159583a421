//! Per-core GDT and TSS: kernel code/data segments and an IST stack for double faults.

use core::arch::asm;

/// Kernel code segment selector.
pub const KERNEL_CODE: u16 = 0x08;
/// Kernel data segment selector.
pub const KERNEL_DATA: u16 = 0x10;
/// TSS selector.
const TSS_SELECTOR: u16 = 0x18;
/// IST slot (1-based, as the IDT encodes it) used by the double-fault handler.
pub const DOUBLE_FAULT_IST: u8 = 1;
/// Size of each core's double-fault stack.
pub const IST_STACK_BYTES: usize = 16 * 1024;

/// 64-bit Task State Segment (Intel SDM vol. 3, figure 8-11).
#[repr(C, packed(4))]
pub struct TaskStateSegment {
    reserved0: u32,             // 0x00
    privilege_stacks: [u64; 3], // 0x04 RSP0..RSP2
    reserved1: u64,             // 0x1c
    interrupt_stacks: [u64; 7], // 0x24 IST1..IST7
    reserved2: u64,             // 0x5c
    reserved3: u16,             // 0x64
    io_map_base: u16,           // 0x66
}
const _: () = assert!(size_of::<TaskStateSegment>() == 0x68);

/// One core's descriptor table: null, code, data, TSS (two slots).
#[repr(C, align(16))]
pub struct CoreTables {
    gdt: [u64; 5],
    tss: TaskStateSegment,
}

/// Pointer operand of `lgdt` / `lidt`.
#[repr(C, packed(2))]
pub struct DescriptorPointer {
    /// Table size in bytes minus one.
    pub limit: u16,
    /// Linear address of the table.
    pub base: u64,
}

impl CoreTables {
    /// Tables whose double-fault IST points at `ist_stack_top`.
    pub const fn new(ist_stack_top: u64) -> Self {
        let mut interrupt_stacks = [0u64; 7];
        interrupt_stacks[(DOUBLE_FAULT_IST - 1) as usize] = ist_stack_top;
        Self {
            gdt: [0, 0x00af_9a00_0000_ffff, 0x00cf_9200_0000_ffff, 0, 0],
            tss: TaskStateSegment {
                reserved0: 0,
                privilege_stacks: [0; 3],
                reserved1: 0,
                interrupt_stacks,
                reserved2: 0,
                reserved3: 0,
                io_map_base: size_of::<TaskStateSegment>() as u16,
            },
        }
    }

    /// Loads this GDT, reloads the segment registers (not GS, which holds per-core data)
    /// and loads the TSS.
    ///
    /// # Safety
    /// 1. `self` lives forever and is used by the calling core only.
    /// 2. Must be called with interrupts disabled.
    pub unsafe fn load(&'static mut self) {
        let tss = core::ptr::addr_of!(self.tss) as u64;
        let limit = (size_of::<TaskStateSegment>() - 1) as u64;
        // Available 64-bit TSS descriptor (type 0x9, present), split base over two slots.
        self.gdt[3] = (limit & 0xffff)
            | ((tss & 0xff_ffff) << 16)
            | (0x89 << 40)
            | (((limit >> 16) & 0xf) << 48)
            | (((tss >> 24) & 0xff) << 56);
        self.gdt[4] = tss >> 32;
        let pointer = DescriptorPointer {
            limit: (size_of::<[u64; 5]>() - 1) as u16,
            base: self.gdt.as_ptr() as u64,
        };
        // SAFETY: the GDT above has valid code/data descriptors at the selectors the kernel
        // already uses, so reloading CS/DS/ES/SS keeps executing the same code; the TSS
        // descriptor is fresh (not busy) and the TSS lives forever (precondition 1).
        unsafe {
            asm!(
                "lgdt [{pointer}]",
                "push {code}",
                "lea {scratch}, [rip + 2f]",
                "push {scratch}",
                "retfq",
                "2:",
                "mov ds, {data:x}",
                "mov es, {data:x}",
                "mov ss, {data:x}",
                "ltr {tss:x}",
                pointer = in(reg) &pointer,
                code = const KERNEL_CODE as u64,
                scratch = out(reg) _,
                data = in(reg) KERNEL_DATA as u64,
                tss = in(reg) TSS_SELECTOR as u64,
            );
        }
    }
}
