//! The RX and TX rings of a packet socket mapped into the process
//! (`PACKET_MMAP`, `TPACKET_V2` frames): setting them up and unmapping them.
//! The frame hand-off itself is [`FrameRings`], which tests drive over
//! memory they own.

use crate::frames::{FRAME_SIZE, FrameRings};
use crate::sys::{self, AfPacketError};
use core::ptr::NonNull;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

/// Bytes per ring block: 32 frames (a multiple of every page size in use).
const BLOCK_SIZE: usize = 64 * 1024;

/// The two rings of one socket in one mapping: RX frames first, then TX.
pub(crate) struct Rings {
    frame_rings: FrameRings,
    map_len: usize,
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
        // SAFETY: the mapping is `2 * frames * FRAME_SIZE` bytes (two rings
        // of `blocks` blocks), page aligned, and lives until `drop`, after
        // the last use of `frame_rings`; the kernel hands frames over
        // through their status words only.
        let frame_rings = unsafe { FrameRings::new(base, frames) };
        Ok(Self {
            frame_rings,
            map_len,
        })
    }
}

impl core::ops::Deref for Rings {
    type Target = FrameRings;

    fn deref(&self) -> &FrameRings {
        &self.frame_rings
    }
}

impl Drop for Rings {
    fn drop(&mut self) {
        // SAFETY: `frame_rings.base()` and `map_len` are exactly the mapping
        // made in `map`, and no reference into it outlives `self`.
        unsafe { libc::munmap(self.frame_rings.base().as_ptr().cast(), self.map_len) };
    }
}
