//! Legacy 8259 PIC pair: remapped away from the exception vectors and fully masked,
//! since the kernel uses the local APIC.

use crate::arch::cpu::outb;

/// Remaps the PICs to vectors 0x20..0x30 and masks every line.
pub fn disable() {
    // SAFETY: standard 8259 initialisation sequence on its fixed ports; masking all
    // lines only stops legacy interrupts, which the kernel does not use.
    unsafe {
        outb(0x20, 0x11); // ICW1: init, expect ICW4
        outb(0xa0, 0x11);
        outb(0x21, 0x20); // ICW2: master vector base
        outb(0xa1, 0x28); // ICW2: slave vector base
        outb(0x21, 0x04); // ICW3: slave on IRQ2
        outb(0xa1, 0x02);
        outb(0x21, 0x01); // ICW4: 8086 mode
        outb(0xa1, 0x01);
        outb(0x21, 0xff); // mask all
        outb(0xa1, 0xff);
    }
}
