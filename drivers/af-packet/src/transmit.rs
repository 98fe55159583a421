//! How frames leave an AF_PACKET queue: the two transmit paths, the TX
//! ring's doorbell coalescing bounds, and the `sendmmsg` path's burst.

use crate::frames::TX_MAX_FRAME;
use crate::stats::AfPacketStats;
use crate::sys;
use dataplane::Batch;
use std::os::fd::{AsRawFd, OwnedFd};

/// [`AfPacketConfig::tx_kick_frames`](crate::AfPacketConfig::tx_kick_frames)'s
/// default: four bursts.
pub const DEFAULT_TX_KICK_FRAMES: usize = 4 * dataplane::BURST_SIZE;
/// Receive polls that found frames after which frames waiting for a
/// doorbell get one anyway, so a reply never waits behind a long run of
/// incoming frames that produce few replies.
pub const MAX_DEFERRED_POLLS: u32 = 8;

/// How an [`AfPacketNic`](crate::AfPacketNic) hands frames to the kernel
/// for transmission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxPath {
    /// [`TxPath::Sendmmsg`] on devices that copy every transmitted frame
    /// out of the sender's pages anyway (`veth`, `tun`: they hand the skb
    /// to another device or a socket, `skb_orphan_frags`), the ring
    /// everywhere else (a NIC's driver sends from the ring's page).
    Auto,
    /// Copied into the socket's mapped `TPACKET_V2` TX ring, which a
    /// doorbell `send(2)` makes the kernel walk (coalesced across bursts,
    /// see [`AfPacketConfig::tx_kick_frames`]). The kernel builds each skb
    /// around the ring frame's page; a device that must own the data (veth
    /// forwarding to its peer) then copies it into a fresh page.
    ///
    /// [`AfPacketConfig::tx_kick_frames`]: crate::AfPacketConfig::tx_kick_frames
    Ring,
    /// One `sendmmsg(2)` per burst on a second, send-only packet socket
    /// bound to the same interface: the kernel copies each frame into the
    /// skb's own buffer at once, which on a veth saves the ring path's page
    /// allocation, copy and completion per frame (perf/RESULTS.md, "AF_PACKET
    /// transmits with sendmmsg on a veth"). The TX ring is still mapped,
    /// unused.
    Sendmmsg,
}

/// [`TxPath::Sendmmsg`]'s transmit: the batch's leading frames that fit a
/// frame slot, in one `sendmmsg`; returns how many it took off the
/// batch: those sent, and those the kernel refused for themselves
/// (counted in `tx_wrong_format`).
pub(crate) fn send_burst(socket: &OwnedFd, batch: &Batch, stats: &AfPacketStats) -> usize {
    let mut frames: [&[u8]; dataplane::BURST_SIZE] = [&[]; dataplane::BURST_SIZE];
    let mut count = 0;
    for (slot, packet) in frames.iter_mut().zip(batch.iter()) {
        let frame = packet.payload();
        if frame.len() > TX_MAX_FRAME {
            stats.tx_too_large.increment();
            break;
        }
        *slot = frame;
        count += 1;
    }
    if count == 0 {
        return 0;
    }
    // A call stops at a frame the kernel refused or the device dropped
    // (ENOBUFS: a full peer ring); the next call starts with that frame.
    // A frame refused for itself (EMSGSIZE: longer than the link's MTU;
    // EINVAL: a header the link refuses) is counted, taken and skipped, as
    // the ring path skips a frame marked `TP_STATUS_WRONG_FORMAT`, so the
    // frames behind it still go out; any other error, or the device busy,
    // ends the burst and leaves the rest to the executor. Bounded: every
    // call but the last takes at least one frame.
    let mut taken = 0;
    while taken < count {
        stats.tx_doorbells.increment();
        match sys::send_frames(socket.as_raw_fd(), &frames[taken..count]) {
            Ok(0) => break,
            Ok(sent) => {
                for frame in &frames[taken..taken + sent] {
                    stats.tx_packets.increment();
                    stats.tx_bytes.add(frame.len() as u64);
                }
                taken += sent;
            }
            Err(error) => match error.raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::ENOBUFS) => {
                    stats.tx_doorbell_busy.increment();
                    break;
                }
                Some(libc::EMSGSIZE) | Some(libc::EINVAL) => {
                    stats.tx_wrong_format.increment();
                    taken += 1;
                }
                _ => {
                    stats.tx_doorbell_errors.increment();
                    break;
                }
            },
        }
    }
    taken
}
