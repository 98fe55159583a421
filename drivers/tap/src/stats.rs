//! Driver-level counters of one tap queue.

use dataplane::Counter;

/// What one tap queue did, beyond the executor's packet counts. Written by the
/// owning core only; shared behind an `Arc` so the runtime can print it after
/// the NIC moved into an executor.
#[derive(Debug, Default)]
pub struct TapStats {
    /// Frames read from the tap.
    pub rx_packets: Counter,
    /// Bytes of those frames.
    pub rx_bytes: Counter,
    /// Reads that failed with something other than `EAGAIN`.
    pub rx_errors: Counter,
    /// Bursts cut short because the mempool had no free buffer.
    pub rx_no_buffer: Counter,
    /// Frames written to the tap.
    pub tx_packets: Counter,
    /// Bytes of those frames.
    pub tx_bytes: Counter,
    /// Writes the kernel refused with `EAGAIN` (its queue was full).
    pub tx_full: Counter,
    /// Writes that failed otherwise (for example the interface is down).
    pub tx_errors: Counter,
}
