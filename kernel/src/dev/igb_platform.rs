//! The kernel's side of the igb driver: the PCI functions it drives and
//! their register BAR (BAR 0, identity-mapped uncached through `pci_bar`)
//! as the driver's [`igb::Registers`].

use igb::registers::{PCI_DEVICE_82576, PCI_DEVICE_I350, PCI_VENDOR_INTEL};

use crate::dev::pci::{self, PciDevice};
use crate::dev::pci_bar::Bar;
use crate::dev::time;

/// PCI ids of the functions the igb driver takes.
pub const IGB_IDS: [(u16, u16); 2] = [
    (PCI_VENDOR_INTEL, PCI_DEVICE_82576),
    (PCI_VENDOR_INTEL, PCI_DEVICE_I350),
];

/// Every igb function found at boot, in PCI order.
pub fn igb_devices() -> impl Iterator<Item = &'static PciDevice> {
    pci::devices()
        .iter()
        .filter(|device| IGB_IDS.contains(&(device.vendor_id, device.device_id)))
}

/// BAR 0 of one igb function: one handle per queue pair (each on its
/// core), all on the same mapping.
#[derive(Clone)]
pub struct KernelIgbRegisters {
    base: *mut u8,
    len: u64,
}

impl KernelIgbRegisters {
    /// Turns on memory decoding and bus mastering and maps BAR 0; `None`
    /// when BAR 0 is not an assigned memory BAR.
    pub fn new(device: &PciDevice) -> Option<Self> {
        let entry = device.bars.first()?;
        let Bar::Memory { size, .. } = *entry else {
            return None;
        };
        device.enable_bus_master();
        let base = entry.map()?;
        Some(Self { base, len: size })
    }

    /// The register's address, checked against the BAR.
    fn register(&self, offset: u32) -> *mut u32 {
        assert!(
            offset.is_multiple_of(4) && u64::from(offset) + 4 <= self.len,
            "igb register {offset:#x} outside BAR 0"
        );
        // SAFETY: in bounds of the mapping (checked above).
        unsafe { self.base.add(offset as usize).cast::<u32>() }
    }
}

// SAFETY: the handle is a pointer to an uncached MMIO mapping that is never
// removed; moving it to another core moves no memory. The handles of one
// function on different cores write disjoint registers (each pair its own
// queue's tails and its own interrupt bit; only pair 0 the device-wide
// ones), and a register access is one 32-bit volatile access, atomic on
// the bus.
unsafe impl Send for KernelIgbRegisters {}

// SAFETY: reads and writes are single volatile 32-bit accesses to BAR 0 of
// this function, at 4-byte aligned offsets inside the BAR (`register`
// checks), through an uncached mapping that is never removed.
unsafe impl igb::Registers for KernelIgbRegisters {
    fn read(&self, offset: u32) -> u32 {
        // SAFETY: see the impl's comment.
        unsafe { self.register(offset).read_volatile() }
    }

    fn write(&mut self, offset: u32, value: u32) {
        // SAFETY: see the impl's comment.
        unsafe { self.register(offset).write_volatile(value) }
    }

    fn delay_us(&mut self, micros: u32) {
        time::delay_ns(u64::from(micros) * 1_000);
    }
}
