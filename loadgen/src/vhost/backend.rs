//! What loadgen's virtio-net device tells QEMU over the vhost-user socket
//! (features, queue count) and how the guest's kicks reach the generator.
//!
//! The protocol itself (memory table, vring setup, kick and call eventfds)
//! is rust-vmm's `vhost-user-backend`; this is the device-specific part.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use vhost::vhost_user::message::{VhostUserProtocolFeatures, VhostUserVirtioFeatures};
use vhost_user_backend::{VhostUserBackend, VringRwLock};
use virtio_bindings::virtio_config::VIRTIO_F_VERSION_1;
use virtio_bindings::virtio_ring::VIRTIO_RING_F_EVENT_IDX;
use vm_memory::{GuestMemoryAtomic, GuestMemoryMmap};
use rustix::event::{EventfdFlags, eventfd};
use std::os::fd::OwnedFd;
use vmm_sys_util::epoll::EventSet;

/// Largest ring QEMU may configure (virtio-net's `rx_queue_size` /
/// `tx_queue_size` go up to 1024).
pub const MAX_QUEUE_SIZE: usize = 1024;

/// Most queue pairs loadgen serves (one per guest vCPU).
pub const MAX_QUEUE_PAIRS: usize = 8;

/// The device state shared by the protocol threads and the generator.
pub struct Shared {
    /// Queue pairs offered (receive queue 2p, transmit queue 2p + 1).
    pairs: usize,
    /// The vrings, as the protocol threads hand them over on the first
    /// event of each pair.
    vrings: Mutex<Vec<Option<VringRwLock>>>,
    /// Whether the guest driver acked `VIRTIO_RING_F_EVENT_IDX`.
    event_idx: AtomicBool,
    /// An eventfd made readable by every kick, so that the generator can
    /// sleep on it.
    wake: Arc<OwnedFd>,
    /// Kicks seen (guest notifications of new buffers).
    kicks: AtomicU64,
}

impl Shared {
    /// The vrings of every pair once all have been handed over:
    /// (receive, transmit) per pair.
    pub fn vrings(&self) -> Option<Vec<(VringRwLock, VringRwLock)>> {
        let vrings = self.vrings.lock().unwrap_or_else(PoisonError::into_inner);
        (0..self.pairs)
            .map(|pair| Some((vrings[2 * pair].clone()?, vrings[2 * pair + 1].clone()?)))
            .collect()
    }

    /// Whether the guest uses event indices (else the ring flags).
    pub fn event_idx(&self) -> bool {
        // Ordering: Relaxed: set once during feature negotiation, before
        // the rings are enabled (the vring mutex orders that for us).
        self.event_idx.load(Ordering::Relaxed)
    }

    /// The eventfd every kick makes readable.
    pub fn wake(&self) -> &OwnedFd {
        &self.wake
    }

    /// Kicks seen so far.
    pub fn kicks(&self) -> u64 {
        // Ordering: Relaxed: a statistic.
        self.kicks.load(Ordering::Relaxed)
    }
}

/// loadgen's virtio-net device, as `vhost-user-backend` drives it.
#[derive(Clone)]
pub struct NetBackend {
    shared: Arc<Shared>,
}

impl NetBackend {
    /// A device with `pairs` queue pairs.
    pub fn new(pairs: usize) -> std::io::Result<Self> {
        let wake = eventfd(0, EventfdFlags::NONBLOCK | EventfdFlags::CLOEXEC)?;
        let shared = Arc::new(Shared {
            pairs,
            vrings: Mutex::new(vec![None; 2 * pairs]),
            event_idx: AtomicBool::new(false),
            wake: Arc::new(wake),
            kicks: AtomicU64::new(0),
        });
        Ok(Self { shared })
    }

    /// The state the generator reads.
    pub fn shared(&self) -> Arc<Shared> {
        Arc::clone(&self.shared)
    }
}

impl VhostUserBackend for NetBackend {
    type Bitmap = ();
    type Vring = VringRwLock;

    fn num_queues(&self) -> usize {
        2 * self.shared.pairs
    }

    fn max_queue_size(&self) -> usize {
        MAX_QUEUE_SIZE
    }

    /// Plain virtio 1.0 rings with event indices: no offloads, no mergeable
    /// receive buffers (so every header is 12 bytes and `num_buffers` 1).
    /// The MAC, link status, control queue and multi-queue features are
    /// QEMU's virtio-net device's own, not the backend's.
    fn features(&self) -> u64 {
        (1 << VIRTIO_F_VERSION_1)
            | (1 << VIRTIO_RING_F_EVENT_IDX)
            | VhostUserVirtioFeatures::PROTOCOL_FEATURES.bits()
    }

    fn protocol_features(&self) -> VhostUserProtocolFeatures {
        VhostUserProtocolFeatures::MQ | VhostUserProtocolFeatures::REPLY_ACK
    }

    fn set_event_idx(&self, enabled: bool) {
        // Ordering: Relaxed: see `Shared::event_idx`.
        self.shared.event_idx.store(enabled, Ordering::Relaxed);
    }

    fn update_memory(&self, _memory: GuestMemoryAtomic<GuestMemoryMmap>) -> std::io::Result<()> {
        // The generator reads guest memory through the same atomic handle
        // the protocol handler updates: nothing to keep here.
        Ok(())
    }

    /// One protocol thread per queue pair, so that every event hands over
    /// both rings of its pair.
    fn queues_per_thread(&self) -> Vec<u64> {
        (0..self.shared.pairs).map(|pair| 0b11 << (2 * pair)).collect()
    }

    /// A kick: the guest posted receive buffers or transmitted frames.
    /// Hands the pair's rings over (once) and wakes the generator.
    fn handle_event(
        &self,
        _device_event: u16,
        _events: EventSet,
        vrings: &[VringRwLock],
        thread_id: usize,
    ) -> std::io::Result<()> {
        {
            let mut slots = self
                .shared
                .vrings
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            for (offset, vring) in vrings.iter().enumerate() {
                if let Some(slot) = slots.get_mut(2 * thread_id + offset)
                    && slot.is_none()
                {
                    *slot = Some(vring.clone());
                }
            }
        }
        // Ordering: Relaxed: a statistic.
        self.shared.kicks.fetch_add(1, Ordering::Relaxed);
        match rustix::io::write(&*self.shared.wake, &1u64.to_ne_bytes()) {
            // EAGAIN: the counter is at its maximum, the generator is
            // woken anyway.
            Ok(_) | Err(rustix::io::Errno::AGAIN) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }
}
