//! Driver-level counters of one AF_PACKET socket.

use dataplane::Counter;

/// What one AF_PACKET queue did, beyond the executor's packet counts. Written
/// by the owning core only; shared behind an `Arc` so the runtime can print
/// it after the NIC moved into an executor.
#[derive(Debug, Default)]
pub struct AfPacketStats {
    /// Frames taken from the RX ring.
    pub rx_packets: Counter,
    /// Bytes of those frames.
    pub rx_bytes: Counter,
    /// Frames the kernel cut short (`tp_snaplen < tp_len`), passed on as cut.
    pub rx_truncated: Counter,
    /// Frames whose transport checksum the kernel had left to hardware
    /// (`TP_STATUS_CSUMNOTREADY`) and the driver completed.
    pub rx_checksums_completed: Counter,
    /// Our own outgoing frames the ring showed us, skipped.
    pub rx_outgoing_skipped: Counter,
    /// Bursts cut short because the mempool had no free buffer.
    pub rx_no_buffer: Counter,
    /// 1 when the queue transmits with `sendmmsg` on a send-only socket
    /// (`TxPath::Sendmmsg`), 0 when through its TX ring.
    pub tx_sendmmsg: Counter,
    /// Frames placed in the TX ring or sent with `sendmmsg`.
    pub tx_packets: Counter,
    /// Bytes of those frames.
    pub tx_bytes: Counter,
    /// Bursts cut short because the TX ring was full.
    pub tx_ring_full: Counter,
    /// Packets too large for a TX frame, left to the executor to drop.
    pub tx_too_large: Counter,
    /// Frames the kernel rejected (`TP_STATUS_WRONG_FORMAT` on the ring;
    /// `EMSGSIZE` or `EINVAL` from `sendmmsg`), taken off the burst.
    pub tx_wrong_format: Counter,
    /// Doorbell `send(2)` or `sendmmsg` calls that failed (other than
    /// `EAGAIN`/`ENOBUFS`).
    pub tx_doorbell_errors: Counter,
    /// Doorbells the kernel cut short with `EAGAIN` or `ENOBUFS`; with
    /// `sendmmsg`, bursts whose rest the executor then dropped.
    pub tx_doorbell_busy: Counter,
    /// Doorbells rung (`send(2)` kicks of the TX ring), for any reason, or
    /// `sendmmsg` calls; `tx_packets / tx_doorbells` is the frames per
    /// system call.
    pub tx_doorbells: Counter,
    /// Doorbells a transmit burst rang because `tx_kick_frames` frames were
    /// waiting.
    pub tx_doorbells_pending: Counter,
    /// Doorbells a transmit burst rang because it was cut short (TX ring
    /// full, or a frame too large) with frames waiting.
    pub tx_doorbells_cut_short: Counter,
    /// Doorbells rung from a receive poll that found the RX ring empty,
    /// for frames waiting since the last one.
    pub tx_doorbells_rx_empty: Counter,
    /// Doorbells rung after `MAX_DEFERRED_POLLS` receive polls in a row
    /// found frames while frames waited.
    pub tx_doorbells_deferred_polls: Counter,
    /// Doorbells rung again from a receive poll because frames were still
    /// marked `SEND_REQUEST` after the last one (no transmit burst to carry
    /// them).
    pub tx_rekicks: Counter,
}
