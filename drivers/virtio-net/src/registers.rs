//! Register layouts and bit names of virtio 1.2 (sections 2, 4.1 and 5.1).

use bitflags::bitflags;

/// PCI vendor id of virtio devices.
pub const PCI_VENDOR_VIRTIO: u16 = 0x1af4;
/// PCI device id of a transitional virtio-net device.
pub const PCI_DEVICE_NET_TRANSITIONAL: u16 = 0x1000;
/// PCI device id of a modern-only virtio-net device (0x1040 + device type 1).
pub const PCI_DEVICE_NET_MODERN: u16 = 0x1041;

/// PCI capability id of vendor-specific capabilities (virtio's structures).
pub const PCI_CAP_ID_VNDR: u8 = 0x09;

/// `cfg_type` of a virtio PCI capability (4.1.4).
pub mod cfg_type {
    /// Common configuration.
    pub const VIRTIO_PCI_CAP_COMMON_CFG: u8 = 1;
    /// Notifications.
    pub const VIRTIO_PCI_CAP_NOTIFY_CFG: u8 = 2;
    /// ISR status.
    pub const VIRTIO_PCI_CAP_ISR_CFG: u8 = 3;
    /// Device-specific configuration.
    pub const VIRTIO_PCI_CAP_DEVICE_CFG: u8 = 4;
}

/// `struct virtio_pci_cap` in PCI configuration space (4.1.4), followed for
/// the notify capability by `notify_off_multiplier` at 16.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct VirtioPciCap {
    /// 0x00: `PCI_CAP_ID_VNDR`.
    pub cap_vndr: u8,
    /// 0x01: next capability offset.
    pub cap_next: u8,
    /// 0x02: capability length.
    pub cap_len: u8,
    /// 0x03: which structure (`cfg_type`).
    pub cfg_type: u8,
    /// 0x04: BAR that holds the structure.
    pub bar: u8,
    /// 0x05: identifies multiple capabilities of one type.
    pub id: u8,
    /// 0x06: reserved.
    pub padding: [u8; 2],
    /// 0x08: offset of the structure within the BAR.
    pub offset: u32,
    /// 0x0c: length of the structure.
    pub length: u32,
}
const _: () = assert!(size_of::<VirtioPciCap>() == 16);

/// Config-space offset of `notify_off_multiplier` from the notify capability.
pub const NOTIFY_OFF_MULTIPLIER_OFFSET: u16 = 16;

/// `struct virtio_pci_common_cfg` (4.1.4.3), in a memory BAR.
#[repr(C)]
pub struct CommonConfig {
    /// 0x00: selects which 32 feature bits `device_feature` shows.
    pub device_feature_select: u32,
    /// 0x04: the device's feature bits (read-only).
    pub device_feature: u32,
    /// 0x08: selects which 32 feature bits `driver_feature` takes.
    pub driver_feature_select: u32,
    /// 0x0c: the driver's accepted feature bits.
    pub driver_feature: u32,
    /// 0x10: MSI-X vector for configuration changes.
    pub config_msix_vector: u16,
    /// 0x12: number of virtqueues the device has.
    pub num_queues: u16,
    /// 0x14: device status (`DeviceStatus`).
    pub device_status: u8,
    /// 0x15: changes whenever the device configuration changes.
    pub config_generation: u8,
    /// 0x16: selects the queue the `queue_*` fields refer to.
    pub queue_select: u16,
    /// 0x18: queue size (max on read, chosen on write).
    pub queue_size: u16,
    /// 0x1a: MSI-X vector of the queue.
    pub queue_msix_vector: u16,
    /// 0x1c: 1 enables the queue.
    pub queue_enable: u16,
    /// 0x1e: the queue's offset in the notify structure, in multiplier units.
    pub queue_notify_off: u16,
    /// 0x20: physical address of the descriptor table.
    pub queue_desc: u64,
    /// 0x28: physical address of the driver (available) ring.
    pub queue_driver: u64,
    /// 0x30: physical address of the device (used) ring.
    pub queue_device: u64,
    /// 0x38: notification data (with `VIRTIO_F_NOTIF_CONFIG_DATA`).
    pub queue_notify_data: u16,
    /// 0x3a: queue reset (with `VIRTIO_F_RING_RESET`).
    pub queue_reset: u16,
}
// 0x3c bytes of fields, padded to 0x40 by the 8-byte alignment of the u64s.
const _: () = assert!(size_of::<CommonConfig>() == 0x40);
const _: () = assert!(core::mem::offset_of!(CommonConfig, queue_desc) == 0x20);
const _: () = assert!(core::mem::offset_of!(CommonConfig, queue_reset) == 0x3a);

/// `struct virtio_net_config` (5.1.4), the device-specific structure.
#[repr(C)]
pub struct NetConfig {
    /// 0x00: MAC address (with `VIRTIO_NET_F_MAC`).
    pub mac: [u8; 6],
    /// 0x06: `NetStatus` bits (with `VIRTIO_NET_F_STATUS`).
    pub status: u16,
    /// 0x08: queue pairs the device has (with `VIRTIO_NET_F_MQ`).
    pub max_virtqueue_pairs: u16,
    /// 0x0a: MTU (with `VIRTIO_NET_F_MTU`).
    pub mtu: u16,
}
const _: () = assert!(size_of::<NetConfig>() == 12);

/// `struct virtio_net_hdr` as laid out with `VIRTIO_F_VERSION_1` (5.1.6):
/// always 12 bytes, `num_buffers` included.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetHeader {
    /// 0x00: `VIRTIO_NET_HDR_F_*`.
    pub flags: u8,
    /// 0x01: `VIRTIO_NET_HDR_GSO_*`.
    pub gso_type: u8,
    /// 0x02: header length for GSO.
    pub hdr_len: u16,
    /// 0x04: GSO segment size.
    pub gso_size: u16,
    /// 0x06: checksum start.
    pub csum_start: u16,
    /// 0x08: checksum offset from `csum_start`.
    pub csum_offset: u16,
    /// 0x0a: buffers a received packet spans (mergeable buffers).
    pub num_buffers: u16,
}
/// Bytes of `virtio_net_hdr` in front of every frame.
pub const NET_HEADER_LEN: usize = size_of::<NetHeader>();
const _: () = assert!(NET_HEADER_LEN == 12);

bitflags! {
    /// Device status bits (2.1).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct DeviceStatus: u8 {
        /// The guest found the device.
        const ACKNOWLEDGE = 1;
        /// The guest knows how to drive it.
        const DRIVER = 2;
        /// The driver is ready.
        const DRIVER_OK = 4;
        /// Feature negotiation is complete.
        const FEATURES_OK = 8;
        /// The device hit an error it cannot recover from.
        const DEVICE_NEEDS_RESET = 64;
        /// The driver gave up on the device.
        const FAILED = 128;
    }
}

bitflags! {
    /// Feature bits the driver knows (5.1.3 and 6).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Features: u64 {
        /// Device handles packets with partial checksum.
        const VIRTIO_NET_F_CSUM = 1 << 0;
        /// Driver handles packets with partial checksum.
        const VIRTIO_NET_F_GUEST_CSUM = 1 << 1;
        /// Device reports its maximum MTU.
        const VIRTIO_NET_F_MTU = 1 << 3;
        /// Device has a given MAC address.
        const VIRTIO_NET_F_MAC = 1 << 5;
        /// Driver can merge receive buffers.
        const VIRTIO_NET_F_MRG_RXBUF = 1 << 15;
        /// Configuration status field is available.
        const VIRTIO_NET_F_STATUS = 1 << 16;
        /// Control channel is available.
        const VIRTIO_NET_F_CTRL_VQ = 1 << 17;
        /// Used and available event indices.
        const VIRTIO_F_EVENT_IDX = 1 << 29;
        /// Device supports multiqueue with automatic receive steering.
        const VIRTIO_NET_F_MQ = 1 << 22;
        /// Compliance with virtio 1.x.
        const VIRTIO_F_VERSION_1 = 1 << 32;
        /// The device sits behind an IOMMU.
        const VIRTIO_F_ACCESS_PLATFORM = 1 << 33;
        /// Packed virtqueue layout.
        const VIRTIO_F_RING_PACKED = 1 << 34;
        /// The device uses buffers in the order they were made available.
        const VIRTIO_F_IN_ORDER = 1 << 35;
    }
}

bitflags! {
    /// `virtio_net_config.status` bits.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct NetStatus: u16 {
        /// Link is up.
        const VIRTIO_NET_S_LINK_UP = 1;
        /// Driver should send a gratuitous packet.
        const VIRTIO_NET_S_ANNOUNCE = 2;
    }
}

bitflags! {
    /// `struct virtq_desc.flags` (2.7.5).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct DescriptorFlags: u16 {
        /// The buffer continues in the `next` descriptor.
        const VIRTQ_DESC_F_NEXT = 1;
        /// The device writes the buffer (otherwise it reads it).
        const VIRTQ_DESC_F_WRITE = 2;
        /// The buffer holds a list of descriptors.
        const VIRTQ_DESC_F_INDIRECT = 4;
    }
}

/// `virtq_avail.flags`: the driver does not want used-buffer interrupts.
pub const VIRTQ_AVAIL_F_NO_INTERRUPT: u16 = 1;
/// `virtq_used.flags`: the device does not want available-buffer notifications.
pub const VIRTQ_USED_F_NO_NOTIFY: u16 = 1;
/// `queue_msix_vector` / `config_msix_vector` value for "no vector".
pub const VIRTIO_MSI_NO_VECTOR: u16 = 0xffff;

/// Control queue class and command that set the number of queue pairs (5.1.6.5.5).
pub const VIRTIO_NET_CTRL_MQ: u8 = 4;
/// Command of `VIRTIO_NET_CTRL_MQ`: set the number of queue pairs.
pub const VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET: u8 = 0;
/// Control queue acknowledgement: success.
pub const VIRTIO_NET_OK: u8 = 0;
