//! loadgen's virtio-net device state as QEMU's vhost-user messages set it
//! up (features, guest memory table, vring sizes, addresses, indices, kick
//! and call eventfds): rust-vmm `virtio-queue` queues over a `vm-memory`
//! map of the guest's shared memory. `protocol.rs` reads the messages.

use std::fs::File;
use std::sync::{Arc, Mutex, PoisonError};
use virtio_bindings::virtio_config::{VIRTIO_F_IN_ORDER, VIRTIO_F_VERSION_1};
use virtio_bindings::virtio_net::VIRTIO_NET_F_MQ;
use virtio_bindings::virtio_ring::VIRTIO_RING_F_EVENT_IDX;
use virtio_queue::{Queue, QueueT};
use vm_memory::mmap::MmapRegion;
use vm_memory::{
    FileOffset, GuestAddress, GuestAddressSpace, GuestMemoryAtomic, GuestMemoryMmap,
    GuestRegionMmap,
};

/// `VHOST_USER_F_PROTOCOL_FEATURES`: the backend speaks the protocol
/// extensions (here: multi-queue).
pub const PROTOCOL_FEATURES: u64 = 1 << 30;

/// `VHOST_USER_PROTOCOL_F_MQ`.
pub const PROTOCOL_F_MQ: u64 = 1 << 0;

/// Why a message was refused.
#[derive(Debug)]
pub enum DeviceError {
    /// A queue index, size, address or feature out of range.
    InvalidParam(&'static str),
    /// Mapping guest memory failed.
    Memory(String),
}

impl std::fmt::Display for DeviceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::InvalidParam(what) => write!(f, "invalid {what}"),
            Self::Memory(error) => write!(f, "mapping guest memory: {error}"),
        }
    }
}

/// One region of QEMU's SET_MEM_TABLE.
#[derive(Debug, Clone, Copy)]
pub struct MemoryRegion {
    /// Guest-physical start.
    pub guest_address: u64,
    /// Bytes.
    pub size: u64,
    /// Where QEMU has it mapped (SET_VRING_ADDR speaks these addresses).
    pub qemu_address: u64,
    /// Offset of the region in its file descriptor.
    pub mmap_offset: u64,
}

type DeviceResult<T> = Result<T, DeviceError>;

/// Largest ring QEMU may configure (virtio-net's `rx_queue_size` /
/// `tx_queue_size` go up to 1024).
pub const MAX_QUEUE_SIZE: u16 = 1024;

/// Most queue pairs loadgen serves (one per guest vCPU).
pub const MAX_QUEUE_PAIRS: usize = 8;

/// One virtqueue and its eventfds.
pub struct QueueSlot {
    /// The split ring in guest memory.
    pub queue: Queue,
    /// The guest kicks this eventfd (QEMU's ioeventfd) on new buffers.
    pub kick: Option<File>,
    /// Writing this eventfd interrupts the guest.
    pub call: Option<File>,
    /// SET_VRING_ENABLE (or SET_FEATURES without protocol features).
    pub enabled: bool,
}

/// A guest-physical range and where QEMU has it mapped (its addresses are
/// how SET_VRING_ADDR names the rings).
struct Mapping {
    qemu_address: u64,
    size: u64,
    guest_address: u64,
}

/// The device: what QEMU set up, shared with the generator behind a mutex.
pub struct NetDevice {
    pairs: usize,
    acked_features: u64,
    /// Receive queue 2p and transmit queue 2p + 1 of pair p.
    pub queues: Vec<QueueSlot>,
    memory: GuestMemoryAtomic<GuestMemoryMmap>,
    mappings: Vec<Mapping>,
    /// Bumped whenever QEMU changes rings or memory, so that the generator
    /// knows its view may be stale.
    pub generation: u64,
}

/// The device as the protocol thread and the generator share it.
pub type SharedDevice = Arc<Mutex<NetDevice>>;

impl NetDevice {
    /// A device with `pairs` queue pairs over `memory` (empty until QEMU
    /// sends its memory table).
    pub fn new(pairs: usize, memory: GuestMemoryAtomic<GuestMemoryMmap>) -> SharedDevice {
        let queues = (0..2 * pairs)
            .map(|_| QueueSlot {
                queue: Queue::new(MAX_QUEUE_SIZE).expect("a power-of-two queue size is valid"),
                kick: None,
                call: None,
                enabled: false,
            })
            .collect();
        Arc::new(Mutex::new(Self {
            pairs,
            acked_features: 0,
            queues,
            memory,
            mappings: Vec::new(),
            generation: 0,
        }))
    }

    /// Whether the guest acked `VIRTIO_RING_F_EVENT_IDX`.
    pub fn event_idx(&self) -> bool {
        self.acked_features & (1 << VIRTIO_RING_F_EVENT_IDX) != 0
    }

    /// Virtio features offered: plain virtio 1.x rings with event indices,
    /// no offloads and no mergeable receive buffers (every header is 12
    /// bytes, `num_buffers` 1), and multi-queue with more than one pair
    /// (QEMU masks the device's `VIRTIO_NET_F_MQ` with the backend's). MAC,
    /// link status and the control queue are QEMU's device's own.
    /// `VIRTIO_F_IN_ORDER` (reaching the guest when QEMU's device has
    /// `in_order=on`) costs nothing: `split.rs` returns every chain used in
    /// the order it took it from the available ring, one used entry each.
    fn offered_features(&self) -> u64 {
        let features = (1 << VIRTIO_F_VERSION_1)
            | (1 << VIRTIO_RING_F_EVENT_IDX)
            | (1 << VIRTIO_F_IN_ORDER)
            | PROTOCOL_FEATURES;
        if self.pairs > 1 {
            features | (1 << VIRTIO_NET_F_MQ)
        } else {
            features
        }
    }

    fn slot(&mut self, index: u32) -> DeviceResult<&mut QueueSlot> {
        self.queues
            .get_mut(index as usize)
            .ok_or(DeviceError::InvalidParam("queue index"))
    }

    /// QEMU's virtual address `address` as a guest-physical one.
    fn guest_address(&self, address: u64) -> DeviceResult<u64> {
        self.mappings
            .iter()
            .find(|mapping| {
                address >= mapping.qemu_address && address - mapping.qemu_address < mapping.size
            })
            .map(|mapping| address - mapping.qemu_address + mapping.guest_address)
            .ok_or(DeviceError::InvalidParam("ring address"))
    }
}

/// Locks the shared device; a panic elsewhere poisons nothing we rely on.
pub fn lock(device: &SharedDevice) -> std::sync::MutexGuard<'_, NetDevice> {
    device.lock().unwrap_or_else(PoisonError::into_inner)
}

impl NetDevice {
    /// RESET_OWNER.
    pub fn reset_owner(&mut self) {
        self.acked_features = 0;
    }

    /// GET_FEATURES.
    pub fn get_features(&self) -> u64 {
        self.offered_features()
    }

    /// SET_FEATURES.
    pub fn set_features(&mut self, features: u64) -> DeviceResult<()> {
        if features & !self.offered_features() != 0 {
            return Err(DeviceError::InvalidParam("features"));
        }
        self.acked_features = features;
        let event_idx = self.event_idx();
        let protocol = features & PROTOCOL_FEATURES != 0;
        for slot in &mut self.queues {
            slot.queue.set_event_idx(event_idx);
            // Without protocol features the rings are enabled from here on
            // (vhost-user spec, "Ring states").
            if !protocol {
                slot.enabled = true;
            }
        }
        self.generation += 1;
        Ok(())
    }

    /// SET_MEM_TABLE: maps every region from its file descriptor.
    pub fn set_mem_table(
        &mut self,
        regions: &[MemoryRegion],
        files: Vec<File>,
    ) -> DeviceResult<()> {
        if regions.len() != files.len() {
            return Err(DeviceError::InvalidParam(
                "memory table (one fd per region)",
            ));
        }
        let mut mapped = Vec::with_capacity(regions.len());
        for (region, file) in regions.iter().zip(files) {
            let mapping = MmapRegion::from_file(
                FileOffset::new(file, region.mmap_offset),
                region.size as usize,
            )
            .map_err(|error| DeviceError::Memory(error.to_string()))?;
            let guest_region = GuestRegionMmap::new(mapping, GuestAddress(region.guest_address))
                .ok_or(DeviceError::InvalidParam("memory region"))?;
            mapped.push(guest_region);
        }
        let memory = GuestMemoryMmap::from_regions(mapped)
            .map_err(|error| DeviceError::Memory(error.to_string()))?;
        self.memory
            .lock()
            .map_err(|_| DeviceError::Memory("memory lock poisoned".into()))?
            .replace(memory);
        self.mappings = regions
            .iter()
            .map(|region| Mapping {
                qemu_address: region.qemu_address,
                size: region.size,
                guest_address: region.guest_address,
            })
            .collect();
        self.generation += 1;
        Ok(())
    }

    /// SET_VRING_NUM.
    pub fn set_vring_num(&mut self, index: u32, num: u32) -> DeviceResult<()> {
        if num == 0 || num > u32::from(MAX_QUEUE_SIZE) || !num.is_power_of_two() {
            return Err(DeviceError::InvalidParam("ring size"));
        }
        self.slot(index)?.queue.set_size(num as u16);
        Ok(())
    }

    /// SET_VRING_ADDR, in QEMU's virtual addresses.
    pub fn set_vring_addr(
        &mut self,
        index: u32,
        descriptor: u64,
        used: u64,
        available: u64,
    ) -> DeviceResult<()> {
        let descriptor = self.guest_address(descriptor)?;
        let used = self.guest_address(used)?;
        let available = self.guest_address(available)?;
        let halves = |address: u64| (Some(address as u32), Some((address >> 32) as u32));
        let queue = &mut self.slot(index)?.queue;
        let (low, high) = halves(descriptor);
        queue.set_desc_table_address(low, high);
        let (low, high) = halves(available);
        queue.set_avail_ring_address(low, high);
        let (low, high) = halves(used);
        queue.set_used_ring_address(low, high);
        self.generation += 1;
        Ok(())
    }

    /// SET_VRING_BASE.
    pub fn set_vring_base(&mut self, index: u32, base: u32) -> DeviceResult<()> {
        let queue = &mut self.slot(index)?.queue;
        queue.set_next_avail(base as u16);
        queue.set_next_used(base as u16);
        Ok(())
    }

    /// GET_VRING_BASE: stops the ring (vhost-user: "stop ring upon
    /// receiving GET_VRING_BASE") and says where it stopped.
    pub fn get_vring_base(&mut self, index: u32) -> DeviceResult<u32> {
        let slot = self.slot(index)?;
        slot.queue.set_ready(false);
        slot.kick = None;
        slot.call = None;
        let next_avail = slot.queue.next_avail();
        self.generation += 1;
        Ok(u32::from(next_avail))
    }

    /// SET_VRING_KICK: starts the ring; loadgen may use it from now on.
    pub fn set_vring_kick(&mut self, index: u32, fd: Option<File>) -> DeviceResult<()> {
        let slot = self.slot(index)?;
        slot.kick = fd;
        slot.queue.set_ready(true);
        self.generation += 1;
        Ok(())
    }

    /// SET_VRING_CALL.
    pub fn set_vring_call(&mut self, index: u32, fd: Option<File>) -> DeviceResult<()> {
        self.slot(index)?.call = fd;
        Ok(())
    }

    /// GET_PROTOCOL_FEATURES.
    pub fn get_protocol_features(&self) -> u64 {
        PROTOCOL_F_MQ
    }

    /// GET_QUEUE_NUM.
    pub fn get_queue_num(&self) -> u64 {
        2 * self.pairs as u64
    }

    /// SET_VRING_ENABLE, accepted whenever QEMU sends it: its
    /// vhost-user-net sends it before SET_FEATURES.
    pub fn set_vring_enable(&mut self, index: u32, enable: bool) -> DeviceResult<()> {
        self.slot(index)?.enabled = enable;
        self.generation += 1;
        Ok(())
    }
}

/// The guest memory map as of now.
pub fn memory(device: &NetDevice) -> <GuestMemoryAtomic<GuestMemoryMmap> as GuestAddressSpace>::T {
    device.memory.memory()
}
