//! The frame slots of a packet socket's RX and TX rings and the ownership
//! hand-off of each frame through its `tp_status` word (`TPACKET_V2`), over
//! memory given to it: the kernel's mapping in use, memory a test owns
//! under Miri.

use core::ptr::NonNull;
use core::sync::atomic::{AtomicU32, Ordering};

/// Bytes per frame slot: a TPACKET_V2 header, the link address and a full
/// Ethernet frame fit with room to spare.
pub(crate) const FRAME_SIZE: usize = 2048;
/// Where transmit data starts in a TX frame: `TPACKET2_HDRLEN -
/// sizeof(sockaddr_ll)`, the aligned header size.
pub(crate) const TX_DATA_OFFSET: usize =
    (size_of::<libc::tpacket2_hdr>() + libc::TPACKET_ALIGNMENT - 1)
        & !(libc::TPACKET_ALIGNMENT - 1);
/// Largest frame a TX slot carries.
pub(crate) const TX_MAX_FRAME: usize = FRAME_SIZE - TX_DATA_OFFSET;

/// The two rings of one socket, side by side: `frames` RX frames, then
/// `frames` TX frames, `FRAME_SIZE` bytes each.
pub(crate) struct FrameRings {
    base: NonNull<u8>,
    frames: usize,
}

/// What the kernel wrote in an RX frame's header.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RxFrame {
    pub(crate) status: u32,
    pub(crate) len: u32,
    pub(crate) snaplen: u32,
    pub(crate) mac_offset: u16,
    pub(crate) packet_type: u8,
}

impl FrameRings {
    /// The rings in the `2 * frames * FRAME_SIZE` bytes at `base`.
    ///
    /// # Safety
    /// 1. `base` is valid for reads and writes of `2 * frames * FRAME_SIZE`
    ///    bytes for as long as the returned value lives, and aligned to 16.
    /// 2. Whatever else uses the memory (the kernel, a test's fake kernel)
    ///    accesses each frame's status word only atomically and the rest of
    ///    a frame only while its status gives the frame to that side.
    pub(crate) unsafe fn new(base: NonNull<u8>, frames: usize) -> Self {
        Self { base, frames }
    }

    /// Where the rings start.
    pub(crate) fn base(&self) -> NonNull<u8> {
        self.base
    }

    /// Frames in each ring.
    pub(crate) fn frames(&self) -> usize {
        self.frames
    }

    /// Start of frame `index` of the RX (`tx == false`) or TX ring.
    fn frame(&self, tx: bool, index: usize) -> *mut u8 {
        assert!(index < self.frames, "frame index out of range");
        let ring_offset = if tx { self.frames * FRAME_SIZE } else { 0 };
        // SAFETY: `ring_offset + index * FRAME_SIZE + FRAME_SIZE` is at most
        // `2 * frames * FRAME_SIZE` (two rings of `frames` slots), so the
        // result is inside the memory (`new` precondition 1).
        unsafe { self.base.as_ptr().add(ring_offset + index * FRAME_SIZE) }
    }

    /// The status word of a frame, shared with the kernel.
    fn status_word(&self, tx: bool, index: usize) -> &AtomicU32 {
        let pointer = self.frame(tx, index).cast::<u32>();
        // SAFETY: `tp_status` is the first field of the frame header; frames
        // start at multiples of 2048 from a 16-aligned base; the memory lives
        // as long as `self` (`new` precondition 1), and the other side
        // accesses the word only atomically (precondition 2).
        unsafe { AtomicU32::from_ptr(pointer) }
    }

    /// The header of RX frame `index` if the kernel handed it to us
    /// (`TP_STATUS_USER`), else `None`.
    pub(crate) fn rx_frame(&self, index: usize) -> Option<RxFrame> {
        // Ordering: Acquire pairs with the kernel's release (smp_wmb then
        // status store) so the header and data it wrote are visible.
        let status = self.status_word(false, index).load(Ordering::Acquire);
        if status & libc::TP_STATUS_USER == 0 {
            return None;
        }
        let header = self.frame(false, index).cast::<libc::tpacket2_hdr>();
        // SAFETY: the frame is ours (status USER, observed with Acquire), so
        // the kernel no longer writes its header; the header is aligned and
        // inside the memory.
        let header = unsafe { header.read() };
        // The sockaddr_ll follows the aligned header; its packet type tells
        // our own transmissions apart.
        let address = self.frame(false, index).wrapping_add(TX_DATA_OFFSET);
        // SAFETY: as above; `sockaddr_ll` lies within the first 64 bytes of
        // the frame, and `sll_pkttype` is a byte at a fixed offset.
        let packet_type = unsafe {
            address
                .add(core::mem::offset_of!(libc::sockaddr_ll, sll_pkttype))
                .read()
        };
        Some(RxFrame {
            status,
            len: header.tp_len,
            snaplen: header.tp_snaplen,
            mac_offset: header.tp_mac,
            packet_type,
        })
    }

    /// The frame bytes of RX frame `index`, described by `frame`.
    ///
    /// # Safety
    /// 1. `frame` is what `rx_frame(index)` returned, and the frame has not
    ///    been handed back with `release_rx` since.
    pub(crate) unsafe fn rx_data(&self, index: usize, frame: &RxFrame) -> &[u8] {
        let offset = usize::from(frame.mac_offset);
        let len = (frame.snaplen as usize).min(FRAME_SIZE.saturating_sub(offset));
        // SAFETY: precondition 1 makes the frame ours, so the kernel does not
        // write it while the slice lives; `offset + len <= FRAME_SIZE` keeps
        // the slice inside the frame slot.
        unsafe { core::slice::from_raw_parts(self.frame(false, index).add(offset), len) }
    }

    /// Hands RX frame `index` back to the kernel.
    pub(crate) fn release_rx(&self, index: usize) {
        // Ordering: Release so our reads of the frame finish before the
        // kernel may overwrite it.
        self.status_word(false, index)
            .store(libc::TP_STATUS_KERNEL, Ordering::Release);
    }

    /// The status of TX frame `index`.
    pub(crate) fn tx_status(&self, index: usize) -> u32 {
        // Ordering: Acquire, so a slot seen AVAILABLE is one the kernel
        // finished reading.
        self.status_word(true, index).load(Ordering::Acquire)
    }

    /// Copies `frame` into TX slot `index` and marks it `SEND_REQUEST`.
    ///
    /// # Safety
    /// 1. `tx_status(index)` returned `TP_STATUS_AVAILABLE` (or
    ///    `WRONG_FORMAT`), so the kernel does not touch the slot.
    /// 2. `frame.len() <= TX_MAX_FRAME`.
    pub(crate) unsafe fn fill_tx(&self, index: usize, frame: &[u8]) {
        let slot = self.frame(true, index);
        let header = slot.cast::<libc::tpacket2_hdr>();
        // SAFETY: precondition 1: the slot is ours. Precondition 2 keeps the
        // copy inside the slot; the source is our buffer, not the rings.
        unsafe {
            core::ptr::copy_nonoverlapping(frame.as_ptr(), slot.add(TX_DATA_OFFSET), frame.len());
            (&raw mut (*header).tp_len).write(frame.len() as u32);
            (&raw mut (*header).tp_snaplen).write(frame.len() as u32);
        }
        // Ordering: Release publishes the data and length before the kernel
        // can see the request.
        self.status_word(true, index)
            .store(libc::TP_STATUS_SEND_REQUEST, Ordering::Release);
    }

    /// Returns a rejected TX slot to available.
    pub(crate) fn reset_tx(&self, index: usize) {
        // Ordering: Relaxed: the slot carries nothing we publish; the kernel
        // reads the slot only after a Release `SEND_REQUEST` (`fill_tx`).
        self.status_word(true, index)
            .store(libc::TP_STATUS_AVAILABLE, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests;
