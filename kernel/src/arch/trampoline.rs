//! Real-mode start-up code for application processors, copied to `TRAMPOLINE_BASE`.
//!
//! A STARTUP IPI starts an AP in real mode at `page * 4096`. The code loads a small GDT,
//! enables PAE, loads the kernel PML4, sets EFER.LME, turns on protection and paging in
//! one step and far-jumps straight into 64-bit code. Each AP then takes a ticket with
//! `lock xadd`, loads `stacks[ticket]` into RSP and calls `entry(ticket)`.

use core::arch::global_asm;

/// Physical address the trampoline is copied to (must be page aligned, below 1 MiB).
pub const TRAMPOLINE_BASE: u64 = 0x8000;

global_asm!(
    r#"
    .section .rodata.ap_trampoline, "a", @progbits
    .p2align 12
    .global ap_trampoline_start
ap_trampoline_start:
    .code16
    cli
    cld
    xorw %ax, %ax
    movw %ax, %ds
    lgdtl ({base} + ap_trampoline_gdt_pointer - ap_trampoline_start)
    movl %cr4, %eax
    orl $0x20, %eax                         /* CR4.PAE */
    movl %eax, %cr4
    movl ({base} + ap_trampoline_cr3 - ap_trampoline_start), %eax
    movl %eax, %cr3
    movl $0xc0000080, %ecx                  /* IA32_EFER */
    rdmsr
    orl $0x100, %eax                        /* EFER.LME */
    wrmsr
    movl %cr0, %eax
    orl $0x80000001, %eax                   /* CR0.PG | CR0.PE */
    movl %eax, %cr0
    ljmpl $0x08, ${base} + ap_trampoline_long - ap_trampoline_start

    .code64
ap_trampoline_long:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movl $1, %eax
    lock xaddl %eax, ({base} + ap_trampoline_ticket - ap_trampoline_start)
    movq ({base} + ap_trampoline_stacks - ap_trampoline_start), %rbx
    movq (%rbx, %rax, 8), %rsp
    movl %eax, %edi
    xorl %ebp, %ebp
    movq ({base} + ap_trampoline_entry - ap_trampoline_start), %rax
    callq *%rax
    ud2

    .p2align 3
ap_trampoline_gdt:
    .quad 0
    .quad 0x00af9a000000ffff                /* 0x08: 64-bit code */
    .quad 0x00cf92000000ffff                /* 0x10: data */
ap_trampoline_gdt_pointer:
    .word 23
    .long {base} + ap_trampoline_gdt - ap_trampoline_start
    .p2align 3
    .global ap_trampoline_cr3
ap_trampoline_cr3:
    .quad 0
    .global ap_trampoline_stacks
ap_trampoline_stacks:
    .quad 0
    .global ap_trampoline_entry
ap_trampoline_entry:
    .quad 0
    .global ap_trampoline_ticket
ap_trampoline_ticket:
    .long 0
    .global ap_trampoline_end
ap_trampoline_end:
    .code64
    "#,
    base = const TRAMPOLINE_BASE,
    options(att_syntax)
);

unsafe extern "C" {
    static ap_trampoline_start: u8;
    static ap_trampoline_end: u8;
    static ap_trampoline_cr3: u8;
    static ap_trampoline_stacks: u8;
    static ap_trampoline_entry: u8;
    static ap_trampoline_ticket: u8;
}

/// Offset of a trampoline symbol from its start.
fn offset_of(symbol: *const u8) -> u64 {
    symbol as u64 - core::ptr::addr_of!(ap_trampoline_start) as u64
}

/// Copies the trampoline to `TRAMPOLINE_BASE` and fills in its parameters.
///
/// # Safety
/// 1. Physical memory `TRAMPOLINE_BASE..+4 KiB` is identity mapped and unused.
/// 2. `stacks` points to one 16-byte aligned stack top per AP that may start, living
///    forever; `entry` never returns; `pml4` maps the trampoline and the kernel and lies
///    below 4 GiB.
pub unsafe fn install(pml4: u64, stacks: *const u64, entry: extern "C" fn(u32) -> !) {
    let (start, end) = (
        core::ptr::addr_of!(ap_trampoline_start),
        core::ptr::addr_of!(ap_trampoline_end),
    );
    let len = end as usize - start as usize;
    let base = TRAMPOLINE_BASE as *mut u8;
    // SAFETY: precondition 1; the trampoline is far smaller than a page.
    unsafe {
        core::ptr::copy_nonoverlapping(start, base, len);
        let slot = |symbol: *const u8| base.add(offset_of(symbol) as usize);
        (slot(core::ptr::addr_of!(ap_trampoline_cr3)) as *mut u64).write_unaligned(pml4);
        (slot(core::ptr::addr_of!(ap_trampoline_stacks)) as *mut u64)
            .write_unaligned(stacks as u64);
        (slot(core::ptr::addr_of!(ap_trampoline_entry)) as *mut u64)
            .write_unaligned(entry as usize as u64);
        (slot(core::ptr::addr_of!(ap_trampoline_ticket)) as *mut u32).write_unaligned(0);
    }
}

/// How many APs have taken a ticket (entered long mode) so far.
pub fn arrived() -> u32 {
    // SAFETY: the ticket lives in the installed trampoline page (identity mapped); APs
    // update it with `lock xadd`, so a volatile read sees a consistent 32-bit value.
    unsafe {
        let ticket =
            (TRAMPOLINE_BASE + offset_of(core::ptr::addr_of!(ap_trampoline_ticket))) as *const u32;
        core::ptr::read_volatile(ticket)
    }
}

/// Page number for the STARTUP IPI vector.
pub const fn startup_page() -> u8 {
    (TRAMPOLINE_BASE >> 12) as u8
}
