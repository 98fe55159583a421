//! What a run needs from the thing it sends through: bursts of frames out,
//! bursts of frames in, and a bounded wait for either. An AF_PACKET socket
//! and the vhost-user device are both ports.

use crate::socket::{FRAME_BUFFER, PacketSocket, wait_readable};
use std::io;
use std::time::Duration;

/// A source and sink of Ethernet frames that loadgen drives.
pub trait FramePort {
    /// Our MAC address on this port.
    fn mac(&self) -> [u8; 6];

    /// Sends a prefix of `frames` without waiting; returns its length (0
    /// when the port has no room).
    fn send_batch(&self, frames: &[Vec<u8>]) -> io::Result<usize>;

    /// Receives up to `buffers.len()` frames without waiting; `lengths[i]`
    /// is frame `i`'s size. Returns how many arrived.
    fn recv_batch(
        &self,
        buffers: &mut [[u8; FRAME_BUFFER]],
        lengths: &mut [usize],
    ) -> io::Result<usize>;

    /// Sleeps until a frame may have arrived or `timeout` passed.
    fn wait_readable(&self, timeout: Duration) -> io::Result<()>;

    /// Called when `send_batch` took nothing: sleeps until there may be
    /// room again or `timeout` passed. Ports whose room comes back without
    /// a wake-up (a socket's queue) return at once.
    fn wait_send_room(&self, _timeout: Duration) -> io::Result<()> {
        Ok(())
    }

    /// How long a closed loop whose window is full keeps polling for
    /// replies before it sleeps in [`FramePort::wait_readable`]: zero (sleep
    /// at once) unless the port knows a host CPU is left for loadgen beside
    /// the system under test.
    fn poll_before_sleep(&self) -> Duration {
        Duration::ZERO
    }

    /// A name for messages (interface, socket path).
    fn describe(&self) -> String;
}

impl FramePort for PacketSocket {
    fn mac(&self) -> [u8; 6] {
        PacketSocket::mac(self)
    }

    fn send_batch(&self, frames: &[Vec<u8>]) -> io::Result<usize> {
        PacketSocket::send_batch(self, frames)
    }

    fn recv_batch(
        &self,
        buffers: &mut [[u8; FRAME_BUFFER]],
        lengths: &mut [usize],
    ) -> io::Result<usize> {
        PacketSocket::recv_batch(self, buffers, lengths)
    }

    fn wait_readable(&self, timeout: Duration) -> io::Result<()> {
        wait_readable(&[self], timeout)
    }

    fn describe(&self) -> String {
        self.interface().to_owned()
    }
}
