//! 16550 UART on COM1, used as the kernel console: written polled, read
//! polled by core 0, which its receive interrupt wakes when it sleeps.

use crate::arch::cpu::{inb, outb};

/// I/O base of COM1.
const COM1: u16 = 0x3f8;
/// COM1's ISA interrupt line.
pub const COM1_IRQ: u8 = 4;
/// Offsets of the 16550 registers from the base port.
const DATA: u16 = 0; // transmit holding / receive buffer (DLAB=0), divisor low (DLAB=1)
const INTERRUPT_ENABLE: u16 = 1; // IER (DLAB=0), divisor high (DLAB=1)
const FIFO_CONTROL: u16 = 2; // FCR
const LINE_CONTROL: u16 = 3; // LCR
const MODEM_CONTROL: u16 = 4; // MCR
const LINE_STATUS: u16 = 5; // LSR
/// LSR bit: the transmit holding register is empty.
const LSR_THR_EMPTY: u8 = 1 << 5;
/// IER bit: interrupt when received data is available.
const IER_RECEIVED_DATA: u8 = 1 << 0;
/// MCR bits: DTR, RTS, and OUT2, which gates the UART's interrupt line
/// onto the ISA bus on PC hardware.
const MCR_DTR_RTS_OUT2: u8 = 0x0b;

/// Programs COM1 for 115200 baud, 8N1, FIFOs on (a receive interrupt, when
/// enabled, for every byte), interrupts off.
pub fn init() {
    // SAFETY: COM1 registers are standard PC I/O ports with no memory-safety effect.
    unsafe {
        outb(COM1 + INTERRUPT_ENABLE, 0x00);
        outb(COM1 + LINE_CONTROL, 0x80); // DLAB on
        outb(COM1 + DATA, 0x01); // divisor 1 = 115200 baud
        outb(COM1 + INTERRUPT_ENABLE, 0x00);
        outb(COM1 + LINE_CONTROL, 0x03); // 8N1, DLAB off
        outb(COM1 + FIFO_CONTROL, 0x07); // enable + clear FIFOs, 1-byte threshold
        outb(COM1 + MODEM_CONTROL, 0x03); // DTR + RTS
    }
}

/// Writes one byte, waiting for room in the transmitter.
pub fn write_byte(byte: u8) {
    // SAFETY: polling LSR and writing THR on COM1 touches only the UART.
    unsafe {
        let mut spins = 0u32;
        while inb(COM1 + LINE_STATUS) & LSR_THR_EMPTY == 0 && spins < 100_000 {
            spins += 1;
            core::hint::spin_loop();
        }
        outb(COM1 + DATA, byte);
    }
}

/// Writes bytes, turning `\n` into `\r\n`.
pub fn write_bytes(bytes: &[u8]) {
    for &byte in bytes {
        if byte == b'\n' {
            write_byte(b'\r');
        }
        write_byte(byte);
    }
}

/// Turns on the receive interrupt (route COM1's IRQ first). The line stays
/// raised until every byte is read.
pub fn enable_receive_interrupt() {
    // SAFETY: IER and MCR writes on COM1 only steer the UART's interrupt line.
    unsafe {
        outb(COM1 + MODEM_CONTROL, MCR_DTR_RTS_OUT2);
        outb(COM1 + INTERRUPT_ENABLE, IER_RECEIVED_DATA);
    }
}

/// LSR bit: a received byte is waiting.
const LSR_DATA_READY: u8 = 1;

/// One received byte, if the UART holds one (polled; the harness writes to QEMU's
/// stdin to reach it).
pub fn read_byte() -> Option<u8> {
    // SAFETY: reading LSR and RBR on COM1 touches only the UART.
    unsafe { (inb(COM1 + LINE_STATUS) & LSR_DATA_READY != 0).then(|| inb(COM1 + DATA)) }
}
