//! PVH entry: the Xen ELF note, the 32-bit entry point, boot page tables and the switch
//! to long mode, ending in a call to `boot::kernel_main`.
//!
//! A PVH loader (QEMU `-kernel`, Firecracker, Cloud Hypervisor) jumps to the address in
//! note type 18 in 32-bit protected mode, paging off, with EBX = physical address of
//! `hvm_start_info`. We identity-map the first 4 GiB with 2 MiB pages, enter long mode
//! and call Rust on a static stack. `paging::init` replaces these tables later.

use core::arch::global_asm;

/// Size of the boot core's stack, which stays its kernel stack for life.
pub const BOOT_STACK_BYTES: usize = 256 * 1024;

global_asm!(
    r#"
    .section .note.Xen, "a", @note
    .p2align 2
    .long 4                     /* namesz: "Xen\0" */
    .long 8                     /* descsz: 64-bit entry address */
    .long 18                    /* XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .p2align 2
    .quad pvh_start
    .p2align 2

    .section .data.boot, "aw", @progbits
    .p2align 3
    .global boot_entry_tsc
boot_entry_tsc:
    .quad 0
    .global boot_start_info_paddr
boot_start_info_paddr:
    .quad 0

    .section .rodata.boot, "a", @progbits
    .p2align 3
boot_gdt:
    .quad 0
    .quad 0x00af9a000000ffff    /* 0x08: 64-bit kernel code */
    .quad 0x00cf92000000ffff    /* 0x10: kernel data */
boot_gdt_end:
boot_gdt_pointer:
    .word boot_gdt_end - boot_gdt - 1
    .quad boot_gdt

    .section .bss.boot, "aw", @nobits
    .p2align 12
boot_pml4:
    .skip 4096
boot_pdpt:
    .skip 4096
boot_pd:
    .skip 4 * 4096
    .p2align 4
    .global boot_stack_bottom
boot_stack_bottom:
    .skip {stack_bytes}
    .global boot_stack_top
boot_stack_top:

    .section .text.boot, "ax", @progbits
    .code32
    .global pvh_start
pvh_start:
    cli
    cld
    rdtsc
    movl %eax, boot_entry_tsc
    movl %edx, boot_entry_tsc + 4
    movl %ebx, boot_start_info_paddr

    /* Zero .bss (the loader may not). */
    movl $__bss_start, %edi
    movl $__bss_end, %ecx
    subl %edi, %ecx
    shrl $2, %ecx
    xorl %eax, %eax
    rep stosl

    movl $boot_stack_top, %esp

    /* PML4[0] -> PDPT; PDPT[0..4] -> four page directories. */
    movl $boot_pdpt, %eax
    orl $3, %eax
    movl %eax, boot_pml4
    movl $boot_pd, %eax
    orl $3, %eax
    movl %eax, boot_pdpt
    addl $4096, %eax
    movl %eax, boot_pdpt + 8
    addl $4096, %eax
    movl %eax, boot_pdpt + 16
    addl $4096, %eax
    movl %eax, boot_pdpt + 24

    /* 2048 x 2 MiB pages: present | writable | huge. */
    movl $boot_pd, %edi
    movl $0x83, %eax
    movl $2048, %ecx
pvh_fill_pd:
    movl %eax, (%edi)
    movl $0, 4(%edi)
    addl $0x200000, %eax
    addl $8, %edi
    decl %ecx
    jnz pvh_fill_pd

    movl %cr4, %eax
    orl $0x20, %eax             /* CR4.PAE */
    movl %eax, %cr4
    movl $boot_pml4, %eax
    movl %eax, %cr3
    movl $0xc0000080, %ecx      /* IA32_EFER */
    rdmsr
    orl $0x100, %eax            /* EFER.LME */
    wrmsr
    movl %cr0, %eax
    orl $0x80000001, %eax       /* CR0.PG | CR0.PE */
    movl %eax, %cr0

    lgdt boot_gdt_pointer
    ljmpl $0x08, $pvh_long_mode

    .code64
pvh_long_mode:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    xorw %ax, %ax
    movw %ax, %fs
    movw %ax, %gs
    movq $boot_stack_top, %rsp
    xorl %ebp, %ebp
    movl boot_start_info_paddr(%rip), %edi
    call kernel_main
    ud2
    "#,
    stack_bytes = const BOOT_STACK_BYTES,
    options(att_syntax)
);

unsafe extern "C" {
    /// TSC value read by the first instruction after PVH entry.
    static boot_entry_tsc: u64;
    /// Lowest address of the boot core's stack.
    static boot_stack_bottom: u8;
    /// First kernel byte (linker script).
    static __kernel_start: u8;
    /// First byte after the kernel image and .bss (linker script).
    static __kernel_end: u8;
}

/// TSC value at PVH entry, the zero point of `boot_ms`.
pub fn entry_tsc() -> u64 {
    // SAFETY: written once by the entry code before any Rust runs, read-only afterwards.
    unsafe { core::ptr::addr_of!(boot_entry_tsc).read_volatile() }
}

/// Physical range `[start, end)` occupied by the kernel image including .bss.
pub fn kernel_image_range() -> (u64, u64) {
    // Taking the address of linker-defined symbols does not read them.
    (
        core::ptr::addr_of!(__kernel_start) as u64,
        core::ptr::addr_of!(__kernel_end) as u64,
    )
}

/// Lowest address of the boot core's stack (its guard-free bottom).
pub fn boot_stack_bottom_addr() -> u64 {
    core::ptr::addr_of!(boot_stack_bottom) as u64
}
