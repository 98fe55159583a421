//! PCI configuration space (ECAM from the MCFG, legacy 0xcf8/0xcfc as fallback), bus
//! enumeration, capability walking, and the boot-time device list.

use alloc::vec::Vec;
use spin::Once;

use crate::arch::cpu::{inl, outl};
use crate::dev::acpi::EcamWindow;
use crate::dev::pci_bar::{self, Bar};

/// Config-space offsets (PCI Local Bus 3.0, type 0/1 headers).
mod offset {
    pub const VENDOR_ID: u16 = 0x00;
    pub const COMMAND: u16 = 0x04;
    pub const CLASS_REVISION: u16 = 0x08;
    pub const HEADER_TYPE: u16 = 0x0e;
    pub const BUS_NUMBERS: u16 = 0x18;
    pub const CAPABILITIES: u16 = 0x34;
}
/// Status register bit: the capabilities list is valid.
const STATUS_CAPABILITIES: u32 = 1 << 20;

/// Bus/device/function of a PCI function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PciAddress {
    /// Bus number.
    pub bus: u8,
    /// Device number (0..32).
    pub device: u8,
    /// Function number (0..8).
    pub function: u8,
}

impl core::fmt::Display for PciAddress {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:02x}:{:02x}.{}", self.bus, self.device, self.function)
    }
}

/// How configuration space is reached.
#[derive(Clone, Copy, Debug)]
pub enum ConfigAccess {
    /// Memory-mapped (PCIe ECAM) window for segment 0.
    Ecam(EcamWindow),
    /// Legacy configuration mechanism #1 through ports 0xcf8/0xcfc.
    PortIo,
}

static ACCESS: Once<ConfigAccess> = Once::new();
static DEVICES: Once<Vec<PciDevice>> = Once::new();

fn access() -> ConfigAccess {
    *ACCESS.get().unwrap_or(&ConfigAccess::PortIo)
}

/// Reads a 32-bit config register (`offset` is 4-byte aligned).
pub fn read32(address: PciAddress, offset: u16) -> u32 {
    match access() {
        ConfigAccess::Ecam(window) => {
            let pointer = ecam_pointer(window, address, offset);
            // SAFETY: the ECAM window is identity mapped uncached and decodes every
            // function of its buses; absent functions read as all-ones.
            unsafe { pointer.read_volatile() }
        }
        ConfigAccess::PortIo => {
            // SAFETY: configuration mechanism #1 on its fixed ports; reads have no
            // memory-safety effect.
            unsafe {
                outl(0xcf8, port_address(address, offset));
                inl(0xcfc)
            }
        }
    }
}

/// Writes a 32-bit config register (`offset` is 4-byte aligned).
pub fn write32(address: PciAddress, offset: u16, value: u32) {
    match access() {
        ConfigAccess::Ecam(window) => {
            let pointer = ecam_pointer(window, address, offset);
            // SAFETY: as in `read32`; config writes only program the device.
            unsafe { pointer.write_volatile(value) }
        }
        ConfigAccess::PortIo => {
            // SAFETY: as in `read32`; the caller programs the device, not our memory.
            unsafe {
                outl(0xcf8, port_address(address, offset));
                outl(0xcfc, value);
            }
        }
    }
}

fn ecam_pointer(window: EcamWindow, address: PciAddress, offset: u16) -> *mut u32 {
    let index = (u64::from(address.bus) << 20)
        | (u64::from(address.device) << 15)
        | (u64::from(address.function) << 12);
    (window.base + index + u64::from(offset & 0xffc)) as *mut u32
}

fn port_address(address: PciAddress, offset: u16) -> u32 {
    0x8000_0000
        | (u32::from(address.bus) << 16)
        | (u32::from(address.device) << 11)
        | (u32::from(address.function) << 8)
        | u32::from(offset & 0xfc)
}

/// One PCI function found at boot.
#[derive(Clone, Debug)]
pub struct PciDevice {
    /// Where it lives.
    pub address: PciAddress,
    /// Vendor id.
    pub vendor_id: u16,
    /// Device id.
    pub device_id: u16,
    /// Base class, subclass, programming interface.
    pub class: (u8, u8, u8),
    /// Sized base address registers (type-0 headers only).
    pub bars: [Bar; 6],
}

impl PciDevice {
    /// Offsets of the capabilities with id `capability_id`.
    pub fn find_capability(&self, capability_id: u8) -> Option<u16> {
        capabilities(self.address)
            .find(|&(id, _)| id == capability_id)
            .map(|(_, offset)| offset)
    }

    /// Enables memory decoding and bus mastering (needed for DMA and MSI-X).
    pub fn enable_bus_master(&self) {
        let command = read32(self.address, offset::COMMAND);
        write32(self.address, offset::COMMAND, (command & 0xffff) | 0b110);
    }
}

/// Iterates `(capability id, config offset)` over a function's capability list.
pub fn capabilities(address: PciAddress) -> impl Iterator<Item = (u8, u16)> {
    let status_ok = read32(address, offset::COMMAND) & STATUS_CAPABILITIES != 0;
    let mut next = if status_ok {
        (read32(address, offset::CAPABILITIES) & 0xfc) as u16
    } else {
        0
    };
    let mut budget = 48; // at most 48 capabilities fit in 256 bytes: stop on loops
    core::iter::from_fn(move || {
        if next == 0 || budget == 0 {
            return None;
        }
        budget -= 1;
        let header = read32(address, next);
        let current = next;
        next = ((header >> 8) & 0xfc) as u16;
        Some(((header & 0xff) as u8, current))
    })
}

/// Chooses the config access method: ECAM for segment 0 if the MCFG has it.
pub fn init(ecam: &[EcamWindow]) {
    let window = ecam.iter().find(|window| window.segment == 0).copied();
    ACCESS.call_once(|| match window {
        Some(window) => ConfigAccess::Ecam(window),
        None => ConfigAccess::PortIo,
    });
}

/// The access method in use.
pub fn access_method() -> ConfigAccess {
    access()
}

/// Enumerates all buses reachable from bus 0 and records the devices.
pub fn enumerate() -> &'static [PciDevice] {
    DEVICES.call_once(|| {
        let mut devices = Vec::new();
        scan_bus(0, &mut devices, 0);
        devices
    })
}

/// Devices found by `enumerate` (empty before).
pub fn devices() -> &'static [PciDevice] {
    DEVICES.get().map(Vec::as_slice).unwrap_or(&[])
}

fn scan_bus(bus: u8, devices: &mut Vec<PciDevice>, depth: u32) {
    if let ConfigAccess::Ecam(window) = access()
        && (bus < window.start_bus || bus > window.end_bus)
    {
        return;
    }
    for device in 0..32 {
        let first = PciAddress {
            bus,
            device,
            function: 0,
        };
        if read32(first, offset::VENDOR_ID) & 0xffff == 0xffff {
            continue;
        }
        let multi_function = (read32(first, offset::HEADER_TYPE & !3) >> 16) & 0x80 != 0;
        let functions = if multi_function { 8 } else { 1 };
        for function in 0..functions {
            let address = PciAddress {
                bus,
                device,
                function,
            };
            let ids = read32(address, offset::VENDOR_ID);
            if ids & 0xffff == 0xffff {
                continue;
            }
            let class = read32(address, offset::CLASS_REVISION);
            let header_type = (read32(address, offset::HEADER_TYPE & !3) >> 16) & 0x7f;
            let bars = if header_type == 0 {
                pci_bar::size_all(address)
            } else {
                [Bar::None; 6]
            };
            devices.push(PciDevice {
                address,
                vendor_id: ids as u16,
                device_id: (ids >> 16) as u16,
                class: ((class >> 24) as u8, (class >> 16) as u8, (class >> 8) as u8),
                bars,
            });
            // PCI-to-PCI bridge: recurse into its secondary bus.
            if header_type == 1 && depth < 8 {
                let secondary = ((read32(address, offset::BUS_NUMBERS) >> 8) & 0xff) as u8;
                if secondary > bus {
                    scan_bus(secondary, devices, depth + 1);
                }
            }
        }
    }
}
