//! Device bring-up (virtio 1.2 section 3.1): reset, feature negotiation,
//! virtqueue setup, `DRIVER_OK`, and the control-queue command that turns on
//! multi-queue.

use crate::error::VirtioError;
use crate::platform::{DmaMemory, VirtioPlatform};
use crate::queue::{RingWithSlots, VirtioNetQueue};
use crate::registers::{
    DeviceStatus, Features, VIRTIO_MSI_NO_VECTOR, VIRTIO_NET_CTRL_MQ,
    VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, VIRTIO_NET_OK,
};
use crate::transport::{Doorbell, ModernTransport, NetConfigView};
use crate::virtqueue::{MAX_QUEUE_SIZE, RingLayout, Segment, SplitQueue};
use alloc::format;
use alloc::vec::Vec;
use dataplane::{MacAddr, Mempool};

/// Features the driver asks for when the device offers them. Offloads stay off.
pub const WANTED_FEATURES: Features = Features::VIRTIO_F_VERSION_1
    .union(Features::VIRTIO_NET_F_MAC)
    .union(Features::VIRTIO_NET_F_STATUS)
    .union(Features::VIRTIO_NET_F_MQ)
    .union(Features::VIRTIO_NET_F_CTRL_VQ)
    .union(Features::VIRTIO_F_IN_ORDER);

/// Polls of the device status or the control queue before giving up.
const SPIN_BUDGET: u32 = 50_000_000;

/// Whether receive queues interrupt, so that a halted core wakes on a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RxInterrupts {
    /// Pure polling: no queue has an MSI-X vector.
    Never,
    /// The receive queue of pair `i` signals MSI-X table entry `i` (while the
    /// core has asked for it, see [`VirtioNetQueue`]'s `enable_wakeup`).
    /// The platform routes entry `i` to the core that polls pair `i` and
    /// enables MSI-X on the function. Configuration changes never interrupt;
    /// transmit queues never interrupt.
    MsixEntryPerPair,
}

/// A configured queue pair waiting for the core that will poll it.
pub struct QueuePairSetup {
    index: u16,
    rx: SplitQueue,
    rx_doorbell: Doorbell,
    /// Whether the device accepted an MSI-X vector for the receive queue.
    rx_interrupts: bool,
    tx: SplitQueue,
    tx_doorbell: Doorbell,
    mac: MacAddr,
    config: NetConfigView,
}

impl QueuePairSetup {
    /// Which pair this is (0-based).
    pub fn index(&self) -> u16 {
        self.index
    }

    /// Starts the pair on the calling core: the receive ring fills from
    /// `pool` (created on this core) and keeps refilling from it.
    pub fn start(self, pool: Mempool) -> VirtioNetQueue {
        VirtioNetQueue::new(
            RingWithSlots::new(self.rx, Some(self.rx_doorbell)),
            RingWithSlots::new(self.tx, Some(self.tx_doorbell)),
            pool,
            self.mac,
            Some(self.config),
            format!("virtio0.q{}", self.index),
            self.rx_interrupts,
        )
    }

    /// Whether the receive queue can interrupt (the device accepted its
    /// MSI-X vector).
    pub fn rx_interrupts(&self) -> bool {
        self.rx_interrupts
    }
}

/// An initialised virtio-net device: negotiated, queues enabled, `DRIVER_OK`.
pub struct VirtioNet {
    transport: ModernTransport,
    features: Features,
    mac: MacAddr,
    max_pairs: u16,
    pairs: u16,
}

impl VirtioNet {
    /// Brings the device up with `pairs` receive/transmit queue pairs (capped
    /// at what the device offers), receive interrupts as `interrupts` says,
    /// and returns one setup per pair.
    pub fn init(
        platform: &dyn VirtioPlatform,
        pairs: u16,
        interrupts: RxInterrupts,
    ) -> Result<(Self, Vec<QueuePairSetup>), VirtioError> {
        let transport = ModernTransport::probe(platform)?;
        transport.set_status(DeviceStatus::empty());
        let mut spins = 0;
        while !transport.status().is_empty() {
            spins += 1;
            if spins > SPIN_BUDGET {
                return Err(VirtioError::ResetTimeout);
            }
            core::hint::spin_loop();
        }
        transport.add_status(DeviceStatus::ACKNOWLEDGE);
        transport.add_status(DeviceStatus::DRIVER);
        let offered = Features::from_bits_retain(transport.device_features());
        if !offered.contains(Features::VIRTIO_F_VERSION_1) {
            transport.add_status(DeviceStatus::FAILED);
            return Err(VirtioError::MissingFeature(
                Features::VIRTIO_F_VERSION_1.bits(),
            ));
        }
        let mut features = offered & WANTED_FEATURES;
        // MQ needs the control queue to be switched on.
        if !features.contains(Features::VIRTIO_NET_F_CTRL_VQ) {
            features.remove(Features::VIRTIO_NET_F_MQ);
        }
        transport.set_driver_features(features.bits());
        transport.add_status(DeviceStatus::FEATURES_OK);
        if !transport.status().contains(DeviceStatus::FEATURES_OK) {
            transport.add_status(DeviceStatus::FAILED);
            return Err(VirtioError::FeaturesRejected);
        }
        let config = transport.net_config();
        let max_pairs = if features.contains(Features::VIRTIO_NET_F_MQ) {
            config.max_virtqueue_pairs().max(1)
        } else {
            1
        };
        if pairs == 0 {
            return Err(VirtioError::BadQueuePairCount {
                requested: pairs,
                available: max_pairs,
            });
        }
        let pairs = pairs.min(max_pairs);
        let mac = if features.contains(Features::VIRTIO_NET_F_MAC) {
            MacAddr(config.mac())
        } else {
            MacAddr([0x02, 0, 0, 0, 0, 0x01])
        };
        transport.set_config_vector(VIRTIO_MSI_NO_VECTOR);
        let mut setups = Vec::with_capacity(usize::from(pairs));
        for index in 0..pairs {
            let rx_vector = match interrupts {
                RxInterrupts::Never => VIRTIO_MSI_NO_VECTOR,
                RxInterrupts::MsixEntryPerPair => index,
            };
            let (mut rx, rx_doorbell, accepted) =
                Self::make_queue(platform, &transport, 2 * index, rx_vector)?;
            let (mut tx, tx_doorbell, _) =
                Self::make_queue(platform, &transport, 2 * index + 1, VIRTIO_MSI_NO_VECTOR)?;
            // The control queue stays on its free list: its one command
            // takes descriptors 0, 1, 2 in table order, as 2.7.9 asks.
            if features.contains(Features::VIRTIO_F_IN_ORDER) {
                rx.set_in_order();
                tx.set_in_order();
            }
            setups.push(QueuePairSetup {
                index,
                rx,
                rx_doorbell,
                rx_interrupts: accepted != VIRTIO_MSI_NO_VECTOR,
                tx,
                tx_doorbell,
                mac,
                config,
            });
        }
        let control = if features.contains(Features::VIRTIO_NET_F_CTRL_VQ) {
            // The control queue follows the last pair the device has, not the
            // last one we use (5.1.2).
            let (queue, doorbell, _) =
                Self::make_queue(platform, &transport, 2 * max_pairs, VIRTIO_MSI_NO_VECTOR)?;
            Some((queue, doorbell))
        } else {
            None
        };
        transport.add_status(DeviceStatus::DRIVER_OK);
        let device = Self {
            transport,
            features,
            mac,
            max_pairs,
            pairs,
        };
        if let Some((mut queue, doorbell)) = control
            && pairs > 1
        {
            let command = platform
                .allocate_dma(64, 64)
                .ok_or(VirtioError::OutOfDmaMemory)?;
            set_queue_pairs(&mut queue, &doorbell, command, pairs)?;
        }
        Ok((device, setups))
    }

    /// Allocates, lays out and enables virtqueue `index` with MSI-X table
    /// entry `msix_vector`; returns the vector the device accepted too.
    fn make_queue(
        platform: &dyn VirtioPlatform,
        transport: &ModernTransport,
        index: u16,
        msix_vector: u16,
    ) -> Result<(SplitQueue, Doorbell, u16), VirtioError> {
        let max = transport.queue_max_size(index);
        if max == 0 {
            return Err(VirtioError::QueueUnavailable(index));
        }
        // Split queue sizes are powers of two; take the largest one allowed.
        let size = if max.is_power_of_two() {
            max.min(MAX_QUEUE_SIZE)
        } else {
            (1u16 << (15 - max.leading_zeros())).min(MAX_QUEUE_SIZE)
        };
        let layout = RingLayout::new(size);
        let memory = platform
            .allocate_dma(layout.total, 4096)
            .ok_or(VirtioError::OutOfDmaMemory)?;
        // SAFETY: `allocate_dma` returned exclusive, physically contiguous,
        // 4096-aligned memory of at least `total` bytes for the rest of the
        // program (`VirtioPlatform` precondition 3); `size` is a power of two
        // no larger than 256.
        let queue = unsafe { SplitQueue::new(memory.virt, memory.phys, size) };
        let (doorbell, accepted) =
            transport.enable_queue(index, size, queue.addresses(), msix_vector)?;
        Ok((queue, doorbell, accepted))
    }

    /// The negotiated features.
    pub fn features(&self) -> Features {
        self.features
    }

    /// The device's MAC address.
    pub fn mac(&self) -> MacAddr {
        self.mac
    }

    /// Queue pairs the device offers.
    pub fn max_queue_pairs(&self) -> u16 {
        self.max_pairs
    }

    /// Queue pairs in use.
    pub fn queue_pairs(&self) -> u16 {
        self.pairs
    }

    /// Device status as the device reports it.
    pub fn status(&self) -> DeviceStatus {
        self.transport.status()
    }
}

/// Sends `VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET` and waits for the acknowledgement.
/// `command` is scratch DMA memory: class and command at 0, the pair count at
/// 2, the acknowledgement byte at 8.
fn set_queue_pairs(
    queue: &mut SplitQueue,
    doorbell: &Doorbell,
    command: DmaMemory,
    pairs: u16,
) -> Result<(), VirtioError> {
    let base = command.virt.as_ptr();
    // SAFETY: `command` is at least 64 bytes of DMA memory we own exclusively
    // until the device completes the chain below.
    unsafe {
        base.write_volatile(VIRTIO_NET_CTRL_MQ);
        base.add(1).write_volatile(VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET);
        base.add(2).cast::<u16>().write_volatile(pairs.to_le());
        base.add(8).write_volatile(0xff);
    }
    let chain = [
        Segment {
            addr: command.phys,
            len: 2,
            device_writes: false,
        },
        Segment {
            addr: command.phys + 2,
            len: 2,
            device_writes: false,
        },
        Segment {
            addr: command.phys + 8,
            len: 1,
            device_writes: true,
        },
    ];
    let failed = |ack| VirtioError::ControlCommandFailed {
        class: VIRTIO_NET_CTRL_MQ,
        command: VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET,
        ack,
    };
    queue.push(&chain).map_err(|_| failed(0xff))?;
    if queue.publish() {
        doorbell.ring();
    }
    let mut spins = 0;
    while queue.used_pending() == 0 {
        spins += 1;
        if spins > SPIN_BUDGET {
            return Err(failed(0xff));
        }
        core::hint::spin_loop();
    }
    queue.take_used();
    // SAFETY: the device completed the chain; the byte is ours again.
    let ack = unsafe { base.add(8).read_volatile() };
    if ack == VIRTIO_NET_OK {
        Ok(())
    } else {
        Err(failed(ack))
    }
}
