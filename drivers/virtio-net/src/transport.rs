//! The virtio 1.x modern PCI transport (4.1.4): finds the common, notify,
//! ISR and device configuration structures through the vendor capabilities,
//! and gives typed volatile access to them.

use crate::error::VirtioError;
use crate::platform::VirtioPlatform;
use crate::registers::{
    CommonConfig, DeviceStatus, NOTIFY_OFF_MULTIPLIER_OFFSET, NetConfig, PCI_CAP_ID_VNDR, cfg_type,
};
use crate::virtqueue::RingAddresses;
use core::ptr::{NonNull, addr_of, addr_of_mut};

/// Config-space offsets of the PCI header fields the walk reads.
const PCI_STATUS_COMMAND: u16 = 0x04;
const PCI_CAPABILITIES_POINTER: u16 = 0x34;
/// Status register bit (in the command/status dword): capability list present.
const PCI_STATUS_CAPABILITIES: u32 = 1 << 20;

/// Where a queue's doorbell is.
#[derive(Debug, Clone, Copy)]
pub struct Doorbell {
    address: NonNull<u16>,
    queue: u16,
}

// SAFETY: a doorbell is an MMIO address in a mapping valid for the rest of
// the program (`VirtioPlatform` precondition 2); any core may write it.
unsafe impl Send for Doorbell {}

impl Doorbell {
    /// A doorbell at an ordinary memory location, for host tests.
    #[cfg(test)]
    pub(crate) fn at(address: NonNull<u16>, queue: u16) -> Self {
        Self { address, queue }
    }

    /// Tells the device that queue `queue` has new available buffers.
    pub fn ring(&self) {
        // SAFETY: the address lies inside the notify structure of a mapped
        // BAR (checked in `ModernTransport::doorbell`).
        unsafe { self.address.as_ptr().write_volatile(self.queue) };
    }
}

/// The mapped configuration structures of one virtio PCI function.
pub struct ModernTransport {
    common: NonNull<CommonConfig>,
    notify_base: NonNull<u8>,
    notify_len: u64,
    notify_multiplier: u32,
    device: NonNull<NetConfig>,
    isr: NonNull<u8>,
}

// SAFETY: all pointers are MMIO in mappings valid for the rest of the
// program; the transport is used by one core at a time (it is not Sync).
unsafe impl Send for ModernTransport {}

/// A capability's structure located in its BAR.
struct Located {
    base: NonNull<u8>,
    length: u64,
}

impl ModernTransport {
    /// Walks the capability list of `platform`'s function and maps the four
    /// structures.
    pub fn probe(platform: &dyn VirtioPlatform) -> Result<Self, VirtioError> {
        let mut found: [Option<(u16, u8, u32, u32)>; 5] = [None; 5];
        let status = platform.config_read32(PCI_STATUS_COMMAND);
        let mut next = if status & PCI_STATUS_CAPABILITIES != 0 {
            (platform.config_read32(PCI_CAPABILITIES_POINTER) & 0xfc) as u16
        } else {
            0
        };
        // At most 48 capabilities fit in 256 bytes: stop on loops.
        for _ in 0..48 {
            if next == 0 {
                break;
            }
            let header = platform.config_read32(next);
            let (id, following, kind) = (
                (header & 0xff) as u8,
                ((header >> 8) & 0xfc) as u16,
                (header >> 24) as u8,
            );
            if id == PCI_CAP_ID_VNDR {
                let bar = (platform.config_read32(next + 4) & 0xff) as u8;
                let offset = platform.config_read32(next + 8);
                let length = platform.config_read32(next + 12);
                // The first capability of each type is the preferred one (4.1.4).
                if let Some(slot) = found.get_mut(usize::from(kind))
                    && slot.is_none()
                {
                    *slot = Some((next, bar, offset, length));
                }
            }
            next = following;
        }
        let locate = |kind: u8, minimum: usize| -> Result<(u16, Located), VirtioError> {
            let (capability, bar, offset, length) =
                found[usize::from(kind)].ok_or(VirtioError::MissingCapability(kind))?;
            let (base, bar_len) = platform
                .map_bar(bar)
                .ok_or(VirtioError::BadCapability(kind))?;
            let end = u64::from(offset) + u64::from(length);
            if end > bar_len || (length as usize) < minimum {
                return Err(VirtioError::BadCapability(kind));
            }
            // SAFETY: `offset + length <= bar_len`, inside the mapped BAR.
            let base = unsafe { base.add(offset as usize) };
            Ok((
                capability,
                Located {
                    base,
                    length: u64::from(length),
                },
            ))
        };
        let (_, common) = locate(
            cfg_type::VIRTIO_PCI_CAP_COMMON_CFG,
            size_of::<CommonConfig>() - 4,
        )?;
        let (notify_capability, notify) = locate(cfg_type::VIRTIO_PCI_CAP_NOTIFY_CFG, 2)?;
        let (_, isr) = locate(cfg_type::VIRTIO_PCI_CAP_ISR_CFG, 1)?;
        let (_, device) = locate(cfg_type::VIRTIO_PCI_CAP_DEVICE_CFG, 10)?;
        let notify_multiplier =
            platform.config_read32(notify_capability + NOTIFY_OFF_MULTIPLIER_OFFSET);
        Ok(Self {
            common: common.base.cast(),
            notify_base: notify.base,
            notify_len: notify.length,
            notify_multiplier,
            device: device.base.cast(),
            isr: isr.base,
        })
    }

    fn common(&self) -> *mut CommonConfig {
        self.common.as_ptr()
    }

    /// Device status.
    pub fn status(&self) -> DeviceStatus {
        // SAFETY: `common` points at the mapped common configuration structure.
        DeviceStatus::from_bits_retain(unsafe {
            addr_of!((*self.common()).device_status).read_volatile()
        })
    }

    /// Writes the device status (0 resets the device).
    pub fn set_status(&self, status: DeviceStatus) {
        // SAFETY: as in `status`.
        unsafe { addr_of_mut!((*self.common()).device_status).write_volatile(status.bits()) };
    }

    /// Adds `bits` to the device status.
    pub fn add_status(&self, bits: DeviceStatus) {
        self.set_status(self.status() | bits);
    }

    /// The device's 64 feature bits.
    pub fn device_features(&self) -> u64 {
        let mut features = 0u64;
        for select in 0..2u32 {
            // SAFETY: as in `status`; select, then read the selected half.
            let half = unsafe {
                addr_of_mut!((*self.common()).device_feature_select).write_volatile(select);
                addr_of!((*self.common()).device_feature).read_volatile()
            };
            features |= u64::from(half) << (32 * select);
        }
        features
    }

    /// Writes the driver's accepted feature bits.
    pub fn set_driver_features(&self, features: u64) {
        for select in 0..2u32 {
            // SAFETY: as in `status`; select, then write the selected half.
            unsafe {
                addr_of_mut!((*self.common()).driver_feature_select).write_volatile(select);
                addr_of_mut!((*self.common()).driver_feature)
                    .write_volatile((features >> (32 * select)) as u32);
            }
        }
    }

    /// Number of virtqueues the device has.
    pub fn queue_count(&self) -> u16 {
        // SAFETY: as in `status`.
        unsafe { addr_of!((*self.common()).num_queues).read_volatile() }
    }

    /// Largest size of queue `index` (0 when the queue does not exist).
    pub fn queue_max_size(&self, index: u16) -> u16 {
        // SAFETY: as in `status`; select, then read.
        unsafe {
            addr_of_mut!((*self.common()).queue_select).write_volatile(index);
            addr_of!((*self.common()).queue_size).read_volatile()
        }
    }

    /// Sets the MSI-X vector for configuration changes
    /// (`VIRTIO_MSI_NO_VECTOR`: none).
    pub fn set_config_vector(&self, vector: u16) {
        // SAFETY: as in `status`.
        unsafe { addr_of_mut!((*self.common()).config_msix_vector).write_volatile(vector) };
    }

    /// Configures and enables queue `index` with `size` entries at
    /// `addresses`, interrupting through MSI-X table entry `msix_vector`
    /// (`VIRTIO_MSI_NO_VECTOR`: never). Returns its doorbell and the vector
    /// the device accepted: a device that cannot map the entry answers
    /// `VIRTIO_MSI_NO_VECTOR` (4.1.4.3.3).
    pub fn enable_queue(
        &self,
        index: u16,
        size: u16,
        addresses: RingAddresses,
        msix_vector: u16,
    ) -> Result<(Doorbell, u16), VirtioError> {
        let common = self.common();
        let write64 = |field: *mut u64, value: u64| {
            let halves = field.cast::<u32>();
            // SAFETY: `field` is a 64-bit field of the mapped common structure;
            // the transport takes 64-bit fields as two 32-bit writes (4.1.3.1).
            unsafe {
                halves.write_volatile(value as u32);
                halves.add(1).write_volatile((value >> 32) as u32);
            }
        };
        // SAFETY: as in `status`: volatile accesses to the selected queue's fields.
        let (notify_off, accepted) = unsafe {
            addr_of_mut!((*common).queue_select).write_volatile(index);
            addr_of_mut!((*common).queue_size).write_volatile(size);
            addr_of_mut!((*common).queue_msix_vector).write_volatile(msix_vector);
            let accepted = addr_of!((*common).queue_msix_vector).read_volatile();
            write64(addr_of_mut!((*common).queue_desc), addresses.descriptors);
            write64(addr_of_mut!((*common).queue_driver), addresses.driver);
            write64(addr_of_mut!((*common).queue_device), addresses.device);
            let notify_off = addr_of!((*common).queue_notify_off).read_volatile();
            addr_of_mut!((*common).queue_enable).write_volatile(1);
            (notify_off, accepted)
        };
        Ok((self.doorbell(index, notify_off)?, accepted))
    }

    fn doorbell(&self, queue: u16, notify_off: u16) -> Result<Doorbell, VirtioError> {
        let offset = u64::from(notify_off) * u64::from(self.notify_multiplier);
        if offset + 2 > self.notify_len {
            return Err(VirtioError::BadCapability(
                cfg_type::VIRTIO_PCI_CAP_NOTIFY_CFG,
            ));
        }
        // SAFETY: `offset + 2 <= notify_len`, inside the mapped notify structure.
        let address = unsafe { self.notify_base.add(offset as usize) }.cast::<u16>();
        Ok(Doorbell { address, queue })
    }

    /// The device-specific configuration structure.
    pub fn net_config(&self) -> NetConfigView {
        NetConfigView {
            config: self.device,
        }
    }

    /// Reads (and so acknowledges) the ISR status byte.
    pub fn read_isr(&self) -> u8 {
        // SAFETY: `isr` points into the mapped ISR structure.
        unsafe { self.isr.as_ptr().read_volatile() }
    }
}

/// Read access to `virtio_net_config`, usable from any core.
#[derive(Debug, Clone, Copy)]
pub struct NetConfigView {
    config: NonNull<NetConfig>,
}

// SAFETY: read-only MMIO in a mapping valid for the rest of the program.
unsafe impl Send for NetConfigView {}

impl NetConfigView {
    /// The MAC address.
    pub fn mac(&self) -> [u8; 6] {
        let mut mac = [0u8; 6];
        for (index, byte) in mac.iter_mut().enumerate() {
            // SAFETY: byte `index < 6` of the mapped `mac` field.
            *byte = unsafe {
                addr_of!((*self.config.as_ptr()).mac)
                    .cast::<u8>()
                    .add(index)
                    .read_volatile()
            };
        }
        mac
    }

    /// The `status` field.
    pub fn status(&self) -> u16 {
        // SAFETY: the mapped `status` field.
        unsafe { addr_of!((*self.config.as_ptr()).status).read_volatile() }
    }

    /// The `max_virtqueue_pairs` field.
    pub fn max_virtqueue_pairs(&self) -> u16 {
        // SAFETY: the mapped `max_virtqueue_pairs` field.
        unsafe { addr_of!((*self.config.as_ptr()).max_virtqueue_pairs).read_volatile() }
    }
}
