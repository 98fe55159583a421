//! Interrupt descriptor table with naked entry stubs (stable Rust has no
//! `extern "x86-interrupt"`): each stub pushes a vector number, a common stub saves
//! the general registers and calls `trap::dispatch` with a `TrapFrame`.

use core::arch::naked_asm;

use crate::arch::gdt::{DOUBLE_FAULT_IST, DescriptorPointer, KERNEL_CODE};
use crate::arch::trap::{self, TrapFrame};

/// One 16-byte interrupt gate (Intel SDM vol. 3, figure 6-8).
#[derive(Clone, Copy)]
#[repr(C)]
struct Gate {
    offset_low: u16,  // 0x00
    selector: u16,    // 0x02
    ist: u8,          // 0x04
    type_attr: u8,    // 0x05: present, DPL 0, 64-bit interrupt gate = 0x8e
    offset_mid: u16,  // 0x06
    offset_high: u32, // 0x08
    reserved: u32,    // 0x0c
}
const _: () = assert!(size_of::<Gate>() == 16);

impl Gate {
    const MISSING: Gate = Gate {
        offset_low: 0,
        selector: 0,
        ist: 0,
        type_attr: 0,
        offset_mid: 0,
        offset_high: 0,
        reserved: 0,
    };

    fn new(handler: unsafe extern "C" fn(), ist: u8) -> Self {
        let address = handler as usize as u64;
        Gate {
            offset_low: address as u16,
            selector: KERNEL_CODE,
            ist,
            type_attr: 0x8e,
            offset_mid: (address >> 16) as u16,
            offset_high: (address >> 32) as u32,
            reserved: 0,
        }
    }
}

/// The IDT shared by all cores; written once by the boot core before any core loads it.
static mut IDT: [Gate; 256] = [Gate::MISSING; 256];

/// Saves the general registers, calls `trap::dispatch(&mut TrapFrame)`, restores, `iretq`.
#[unsafe(naked)]
unsafe extern "C" fn trap_common() {
    naked_asm!(
        "push rax", "push rbx", "push rcx", "push rdx", "push rsi", "push rdi", "push rbp",
        "push r8", "push r9", "push r10", "push r11", "push r12", "push r13", "push r14", "push r15",
        "mov rdi, rsp",
        "cld",
        "call {dispatch}",
        "pop r15", "pop r14", "pop r13", "pop r12", "pop r11", "pop r10", "pop r9", "pop r8",
        "pop rbp", "pop rdi", "pop rsi", "pop rdx", "pop rcx", "pop rbx", "pop rax",
        "add rsp, 16",
        "iretq",
        dispatch = sym trap::dispatch,
    );
}

/// Declares entry stubs; `error` vectors already have an error code pushed by the CPU.
macro_rules! stubs {
    ($($name:ident = $vector:literal $kind:ident;)*) => {
        $(stubs!(@one $name $vector $kind);)*
        /// Every stub with its vector.
        const STUBS: &[(u8, unsafe extern "C" fn())] = &[$(($vector, $name)),*];
    };
    (@one $name:ident $vector:literal plain) => {
        #[unsafe(naked)]
        unsafe extern "C" fn $name() {
            naked_asm!("push 0", "push {vector}", "jmp {common}", vector = const $vector, common = sym trap_common);
        }
    };
    (@one $name:ident $vector:literal error) => {
        #[unsafe(naked)]
        unsafe extern "C" fn $name() {
            naked_asm!("push {vector}", "jmp {common}", vector = const $vector, common = sym trap_common);
        }
    };
}

stubs! {
    divide_error = 0 plain;
    debug = 1 plain;
    nmi = 2 plain;
    breakpoint = 3 plain;
    overflow = 4 plain;
    bound_range = 5 plain;
    invalid_opcode = 6 plain;
    device_not_available = 7 plain;
    double_fault = 8 error;
    coprocessor_overrun = 9 plain;
    invalid_tss = 10 error;
    segment_not_present = 11 error;
    stack_fault = 12 error;
    general_protection = 13 error;
    page_fault = 14 error;
    reserved_15 = 15 plain;
    x87_floating_point = 16 plain;
    alignment_check = 17 error;
    machine_check = 18 plain;
    simd_floating_point = 19 plain;
    virtualization = 20 plain;
    control_protection = 21 error;
    reserved_22 = 22 plain;
    reserved_23 = 23 plain;
    reserved_24 = 24 plain;
    reserved_25 = 25 plain;
    reserved_26 = 26 plain;
    reserved_27 = 27 plain;
    hypervisor_injection = 28 plain;
    vmm_communication = 29 error;
    security = 30 error;
    reserved_31 = 31 plain;
    timer = 0x40 plain;
    wakeup = 0x41 plain;
    nic_rx = 0x42 plain;
    console = 0x43 plain;
    spurious = 0xff plain;
}

/// Fills the shared IDT. Call once on the boot core before any core calls `load`.
pub fn init() {
    for &(vector, stub) in STUBS {
        let ist = if vector == 8 { DOUBLE_FAULT_IST } else { 0 };
        // SAFETY: only the boot core writes IDT, before any core has loaded it.
        unsafe { (*core::ptr::addr_of_mut!(IDT))[vector as usize] = Gate::new(stub, ist) };
    }
}

/// Loads the shared IDT on the calling core.
pub fn load() {
    let pointer = DescriptorPointer {
        limit: (size_of::<[Gate; 256]>() - 1) as u16,
        base: core::ptr::addr_of!(IDT) as u64,
    };
    // SAFETY: IDT is 'static, filled by `init`, and every present gate points at a stub.
    unsafe {
        core::arch::asm!("lidt [{}]", in(reg) &pointer, options(readonly, nostack, preserves_flags))
    };
}

/// Frame layout check: the stubs push 15 registers plus vector and error code.
const _: () = assert!(size_of::<TrapFrame>() == 22 * 8);
