//! The kernel's side of the virtio-net driver: PCI configuration space through
//! `pci`, BARs identity-mapped uncached through `pci_bar`, ring memory from the
//! frame allocator (identity mapped, so physical equals virtual).

use core::ptr::NonNull;

use virtio_net::{DmaMemory, VirtioPlatform};

use crate::dev::pci::{self, PciDevice};
use crate::dev::pci_bar::Bar;
use crate::mem::frames;

/// PCI ids of virtio-net functions (transitional and modern).
pub const VIRTIO_NET_IDS: [(u16, u16); 2] = [
    (
        virtio_net::registers::PCI_VENDOR_VIRTIO,
        virtio_net::registers::PCI_DEVICE_NET_TRANSITIONAL,
    ),
    (
        virtio_net::registers::PCI_VENDOR_VIRTIO,
        virtio_net::registers::PCI_DEVICE_NET_MODERN,
    ),
];

/// Every virtio-net function found at boot, in PCI order (the order of the
/// `-device virtio-net-pci` options, which is the order of the spec's interfaces).
pub fn virtio_net_devices() -> impl Iterator<Item = &'static PciDevice> {
    pci::devices()
        .iter()
        .filter(|device| VIRTIO_NET_IDS.contains(&(device.vendor_id, device.device_id)))
}

/// One PCI function as the driver's platform.
pub struct KernelVirtioPlatform<'a> {
    device: &'a PciDevice,
}

impl<'a> KernelVirtioPlatform<'a> {
    /// Wraps `device` and turns on memory decoding and bus mastering.
    pub fn new(device: &'a PciDevice) -> Self {
        device.enable_bus_master();
        Self { device }
    }
}

// SAFETY: 1. config accesses go to `device.address` only; 2. `Bar::map` maps the
// whole memory BAR uncached and the mapping is never removed; 3. frames come from
// the frame allocator, are never freed, identity mapped (phys == virt), physically
// contiguous, zeroed, aligned as asked, and DMA on x86 is cache coherent.
unsafe impl VirtioPlatform for KernelVirtioPlatform<'_> {
    fn config_read32(&self, offset: u16) -> u32 {
        pci::read32(self.device.address, offset)
    }

    fn config_write32(&self, offset: u16, value: u32) {
        pci::write32(self.device.address, offset, value);
    }

    fn map_bar(&self, bar: u8) -> Option<(NonNull<u8>, u64)> {
        let entry = self.device.bars.get(usize::from(bar))?;
        let Bar::Memory { size, .. } = *entry else {
            return None;
        };
        let base = NonNull::new(entry.map()?)?;
        Some((base, size))
    }

    fn allocate_dma(&self, bytes: usize, align: usize) -> Option<DmaMemory> {
        let align = (align as u64).max(frames::FRAME_BYTES);
        let phys = frames::allocate_zeroed(bytes as u64, align).ok()?;
        Some(DmaMemory {
            virt: NonNull::new(phys as *mut u8)?,
            phys,
            len: bytes,
        })
    }
}
