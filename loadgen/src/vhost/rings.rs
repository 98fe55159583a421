//! One frame into a guest's receive ring, one frame out of its transmit
//! ring, and the notifications around them (kicks from the guest, calls to
//! it), over rust-vmm's split virtqueue.

use super::handler::QueueSlot;
use crate::socket::FRAME_BUFFER;
use std::io::{Read, Write};
use std::sync::atomic::{Ordering, fence};
use virtio_queue::{Queue, QueueT};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

/// The virtio-net header without mergeable receive buffers (virtio 1.x,
/// `struct virtio_net_hdr` with `num_buffers`): 12 bytes.
pub const NET_HEADER_LEN: usize = 12;

/// The header loadgen writes before every frame: no checksum or GSO work
/// for the guest, one buffer.
const RECEIVE_HEADER: [u8; NET_HEADER_LEN] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0];

/// `VRING_AVAIL_F_NO_INTERRUPT`: the driver asks not to be called.
const AVAIL_F_NO_INTERRUPT: u16 = 1;

/// The guest's mistakes that cost a buffer, counted and survived.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RingErrors {
    /// Receive buffers too small, read-only or out of guest memory.
    pub bad_receive_buffers: u64,
    /// Transmit chains without a header, larger than a frame, or out of
    /// guest memory.
    pub bad_transmit_chains: u64,
    /// Used-ring updates the queue refused (a ring outside guest memory).
    pub used_ring_errors: u64,
}

/// Writes `frame` into the next receive buffer that can hold it; buffers
/// that cannot are returned empty and counted. `false`: the ring has no
/// buffer left.
pub fn push_frame(
    queue: &mut Queue,
    memory: &GuestMemoryMmap,
    frame: &[u8],
    errors: &mut RingErrors,
) -> bool {
    loop {
        let Some(chain) = queue.pop_descriptor_chain(memory) else {
            return false;
        };
        let head = chain.head_index();
        let written = chain.writer(memory).ok().and_then(|mut writer| {
            (writer.available_bytes() >= NET_HEADER_LEN + frame.len()
                && writer.write_all(&RECEIVE_HEADER).is_ok()
                && writer.write_all(frame).is_ok())
            .then_some(NET_HEADER_LEN + frame.len())
        });
        if written.is_none() {
            errors.bad_receive_buffers += 1;
        }
        if queue
            .add_used(memory, head, written.unwrap_or(0) as u32)
            .is_err()
        {
            errors.used_ring_errors += 1;
        }
        if written.is_some() {
            return true;
        }
    }
}

/// Takes the next frame the guest transmitted into `buffer`: `None` when
/// the ring is empty, `Some(None)` for a chain that held no frame (counted).
pub fn pop_frame(
    queue: &mut Queue,
    memory: &GuestMemoryMmap,
    buffer: &mut [u8; FRAME_BUFFER],
    errors: &mut RingErrors,
) -> Option<Option<usize>> {
    let chain = queue.pop_descriptor_chain(memory)?;
    let head = chain.head_index();
    let length = chain.reader(memory).ok().and_then(|mut reader| {
        let total = reader.available_bytes();
        let length = total.checked_sub(NET_HEADER_LEN)?;
        let mut header = [0u8; NET_HEADER_LEN];
        (length <= FRAME_BUFFER
            && reader.read_exact(&mut header).is_ok()
            && reader.read_exact(&mut buffer[..length]).is_ok())
        .then_some(length)
    });
    if length.is_none() {
        errors.bad_transmit_chains += 1;
    }
    if queue.add_used(memory, head, 0).is_err() {
        errors.used_ring_errors += 1;
    }
    Some(length)
}

/// Calls the guest (its interrupt) for the used entries just added, unless
/// it said it does not want one: by its used-event index when event
/// indices were negotiated, by `VRING_AVAIL_F_NO_INTERRUPT` otherwise.
/// Returns whether it called.
pub fn call_if_wanted(
    slot: &mut QueueSlot,
    memory: &GuestMemoryMmap,
    event_idx: bool,
) -> std::io::Result<bool> {
    let queue = &mut slot.queue;
    let wanted = if event_idx {
        queue.needs_notification(memory).unwrap_or(true)
    } else {
        // Ordering: SeqCst: the used index written by add_used must be
        // visible before we read the driver's flag, or a driver that just
        // cleared it could miss this batch (the virtio memory-barrier rule).
        fence(Ordering::SeqCst);
        memory
            .load::<u16>(GuestAddress(queue.avail_ring()), Ordering::Acquire)
            .map_or(true, |flags| flags & AVAIL_F_NO_INTERRUPT == 0)
    };
    match (&slot.call, wanted) {
        (Some(call), true) => {
            let mut call: &std::fs::File = call;
            call.write_all(&1u64.to_ne_bytes())?;
            Ok(true)
        }
        _ => Ok(false),
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
