//! The notifications around the rings (kicks from the guest, calls to it)
//! and the guest's mistakes that cost a buffer; the frames themselves move
//! in bursts (`split.rs`).

use super::handler::QueueSlot;
use std::io::Write;
use std::sync::atomic::Ordering;
use virtio_queue::{Queue, QueueT};
use vm_memory::GuestMemoryMmap;

/// The virtio-net header without mergeable receive buffers (virtio 1.x,
/// `struct virtio_net_hdr` with `num_buffers`): 12 bytes.
pub const NET_HEADER_LEN: usize = 12;

/// The guest's mistakes that cost a buffer, counted and survived.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RingErrors {
    /// Receive buffers too small, read-only or out of guest memory.
    pub bad_receive_buffers: u64,
    /// Transmit chains without a header, larger than a frame, or out of
    /// guest memory.
    pub bad_transmit_chains: u64,
    /// Bursts on a started ring that does not lie (whole and aligned) in
    /// guest memory.
    pub used_ring_errors: u64,
}

/// Interrupts the guest for `slot`'s queue (writes its call eventfd, if
/// QEMU gave one). Returns whether it called.
pub fn call(slot: &QueueSlot) -> std::io::Result<bool> {
    match &slot.call {
        Some(call) => {
            let mut call: &std::fs::File = call;
            call.write_all(&1u64.to_ne_bytes())?;
            Ok(true)
        }
        None => Ok(false),
    }
}

/// Asks the guest to kick on its next buffer. `true`: buffers are already
/// waiting (then notifications stay off and there is no need to sleep).
pub fn arm_kick(queue: &mut Queue, memory: &GuestMemoryMmap) -> bool {
    match queue.enable_notification(memory) {
        Ok(false) => false,
        _ => {
            let _ = queue.disable_notification(memory);
            true
        }
    }
}

/// Asks the guest not to kick while loadgen polls the ring anyway.
pub fn disarm_kick(queue: &mut Queue, memory: &GuestMemoryMmap) {
    let _ = queue.disable_notification(memory);
}

/// Whether the guest has posted buffers loadgen has not taken yet.
pub fn has_available(queue: &Queue, memory: &GuestMemoryMmap) -> bool {
    queue
        .avail_idx(memory, Ordering::Acquire)
        .is_ok_and(|index| index.0 != queue.next_avail())
}
