//! Devices and firmware tables: ACPI, PCI and MSI-X, the serial console and log ring, time, QEMU exit, and the virtio-net and igb platform glue.

pub mod acpi;
pub mod console;
pub mod exit;
pub mod igb_platform;
pub mod msix;
pub mod pci;
pub mod pci_bar;
pub mod serial;
pub mod time;
pub mod virtio_platform;
