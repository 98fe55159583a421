//! Driver-level counters of one XSK socket.

use dataplane::Counter;

/// What one AF_XDP queue did, beyond the executor's packet counts. Written
/// by the owning core only; shared behind an `Arc` so the runtime can print
/// it after the NIC moved into an executor. The `kernel_*` counters are
/// the socket's own (`XDP_STATISTICS`), refreshed every 1024 bursts and
/// when the NIC is dropped.
#[derive(Debug, Default)]
pub struct AfXdpStats {
    /// 1 when the socket runs zero copy (`XDP_ZEROCOPY`), 0 in copy mode.
    pub zero_copy: Counter,
    /// 1 when the socket busy-polls (`AfXdpConfig::busy_poll` was set and
    /// the kernel took it), else 0.
    pub busy_poll: Counter,
    /// The NAPI instance the socket's frames come from
    /// (`SO_INCOMING_NAPI_ID`), read with the kernel statistics: the one
    /// busy polling runs. 0 means none, and busy polling then does
    /// nothing (a veth's XDP queue on Linux 6.18 reports none).
    pub napi_id: Counter,
    /// `recvfrom` calls of a busy-polling socket whose RX ring was empty
    /// (each runs the queue's NAPI poll once).
    pub rx_busy_polls: Counter,
    /// Frames taken from the RX ring.
    pub rx_packets: Counter,
    /// Bytes of those frames.
    pub rx_bytes: Counter,
    /// RX descriptors naming a buffer we had not lent or a range outside
    /// it: dropped.
    pub rx_invalid: Counter,
    /// Buffers lent to the kernel through the fill ring.
    pub fill_posted: Counter,
    /// Fill-ring refills cut short because the pool was empty.
    pub fill_no_buffer: Counter,
    /// `recvfrom` calls because the kernel set need-wakeup on the fill ring.
    pub rx_wakeups: Counter,
    /// Packets placed in the TX ring.
    pub tx_packets: Counter,
    /// Bytes of those packets.
    pub tx_bytes: Counter,
    /// Of those, packets from another pool copied into a UMEM buffer
    /// (generated replies, other interfaces' packets); the rest went out
    /// in their own buffer.
    pub tx_copied: Counter,
    /// Transmit bursts cut short because the TX ring was full.
    pub tx_ring_full: Counter,
    /// Transmit bursts cut short because no UMEM buffer was free for a copy.
    pub tx_no_buffer: Counter,
    /// `sendto` calls because the kernel set need-wakeup on the TX ring.
    pub tx_wakeups: Counter,
    /// Wake-up calls the kernel answered with `EAGAIN`/`EBUSY`/`ENOBUFS`.
    pub wakeups_busy: Counter,
    /// Wake-up calls that failed otherwise.
    pub wakeup_errors: Counter,
    /// Buffers the completion ring gave back.
    pub tx_completed: Counter,
    /// Kernel: frames dropped for want of room or other reasons.
    pub kernel_rx_dropped: Counter,
    /// Kernel: invalid RX descriptors.
    pub kernel_rx_invalid_descs: Counter,
    /// Kernel: invalid TX descriptors.
    pub kernel_tx_invalid_descs: Counter,
    /// Kernel: frames dropped because the RX ring was full.
    pub kernel_rx_ring_full: Counter,
    /// Kernel: times the fill ring was empty when a frame came.
    pub kernel_rx_fill_ring_empty: Counter,
}
