//! The RX and TX rings of a packet socket, mapped into the process
//! (`PACKET_MMAP`, `TPACKET_V2` frames), and the ownership hand-off of each
//! frame through its `tp_status` word.

use crate::sys::{self, AfPacketError};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU32, Ordering};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

/// Bytes per frame slot: a TPACKET_V2 header, the link address and a full
/// Ethernet frame fit with room to spare.
pub(crate) const FRAME_SIZE: usize = 2048;
/// Bytes per ring block: 32 frames (a multiple of every page size in use).
const BLOCK_SIZE: usize = 64 * 1024;
/// Where transmit data starts in a TX frame: `TPACKET2_HDRLEN -
/// sizeof(sockaddr_ll)`, the aligned header size.
pub(crate) const TX_DATA_OFFSET: usize =
    (size_of::<libc::tpacket2_hdr>() + libc::TPACKET_ALIGNMENT - 1)
        & !(libc::TPACKET_ALIGNMENT - 1);
/// Largest frame a TX slot carries.
pub(crate) const TX_MAX_FRAME: usize = FRAME_SIZE - TX_DATA_OFFSET;

/// The two rings of one socket in one mapping: RX frames first, then TX.
pub(crate) struct Rings {
    base: NonNull<u8>,
    map_len: usize,
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

impl Rings {
    /// Sets up `frames` frames in each direction (rounded up to whole
    /// blocks) on `socket`, which must already be `TPACKET_V2`, and maps
    /// them.
    pub(crate) fn map(socket: &OwnedFd, frames: usize) -> Result<Self, AfPacketError> {
        let frames_per_block = BLOCK_SIZE / FRAME_SIZE;
        let blocks = frames.div_ceil(frames_per_block).max(1);
        let frames = blocks * frames_per_block;
        let request = libc::tpacket_req {
            tp_block_size: BLOCK_SIZE as u32,
            tp_block_nr: u32::try_from(blocks).map_err(|_| AfPacketError::BadGeometry)?,
            tp_frame_size: FRAME_SIZE as u32,
            tp_frame_nr: u32::try_from(frames).map_err(|_| AfPacketError::BadGeometry)?,
        };
        sys::request_ring(socket, libc::PACKET_RX_RING, &request)?;
        sys::request_ring(socket, libc::PACKET_TX_RING, &request)?;
        let map_len = 2 * blocks * BLOCK_SIZE;
        // SAFETY: a fresh shared mapping of the socket's rings at an address
        // the kernel picks; it touches no memory of ours.
        let address = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_LOCKED | libc::MAP_POPULATE,
                socket.as_raw_fd(),
                0,
            )
        };
        let address = if address == libc::MAP_FAILED {
            // MAP_LOCKED needs RLIMIT_MEMLOCK room; try again without it.
            // SAFETY: as above.
            unsafe {
                libc::mmap(
                    core::ptr::null_mut(),
                    map_len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED | libc::MAP_POPULATE,
                    socket.as_raw_fd(),
                    0,
                )
            }
        } else {
            address
        };
        if address == libc::MAP_FAILED {
            return Err(AfPacketError::Setup("mmap", io::Error::last_os_error()));
        }
        let base = NonNull::new(address.cast()).ok_or(AfPacketError::BadGeometry)?;
        Ok(Self {
            base,
            map_len,
            frames,
        })
    }

    /// Frames in each ring.
    pub(crate) fn frames(&self) -> usize {
        self.frames
    }

    /// Start of frame `index` of the RX (`tx == false`) or TX ring.
    fn frame(&self, tx: bool, index: usize) -> *mut u8 {
        assert!(index < self.frames, "frame index out of range");
        let ring_offset = if tx { self.frames * FRAME_SIZE } else { 0 };
        // SAFETY: `ring_offset + index * FRAME_SIZE + FRAME_SIZE <= map_len`
        // (two rings of `frames` slots), so the result is inside the mapping.
        unsafe { self.base.as_ptr().add(ring_offset + index * FRAME_SIZE) }
    }

    /// The status word of a frame, shared with the kernel.
    fn status_word(&self, tx: bool, index: usize) -> &AtomicU32 {
        let pointer = self.frame(tx, index).cast::<u32>();
        // SAFETY: `tp_status` is the first field of the frame header, frames
        // are 2048-byte aligned inside a page-aligned mapping, the mapping
        // lives as long as `self`, and the kernel only accesses the word
        // atomically (it is the hand-off flag).
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
        // inside the mapping.
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
        // copy inside the slot; the source is our buffer, not the mapping.
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
        // Ordering: Relaxed: the slot carries nothing we publish.
        self.status_word(true, index)
            .store(libc::TP_STATUS_AVAILABLE, Ordering::Relaxed);
    }
}

impl Drop for Rings {
    fn drop(&mut self) {
        // SAFETY: `base`/`map_len` are exactly the mapping made in `map`, and
        // no reference into it outlives `self`.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.map_len) };
    }
}
