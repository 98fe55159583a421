//! In-memory ring of recent console output bytes (the management plane serves log records from `console::LOG_RING`).

/// Capacity of the ring in bytes.
pub const LOG_RING_BYTES: usize = 64 * 1024;

/// A byte ring that keeps the newest `LOG_RING_BYTES` bytes written to it.
pub struct LogRing {
    bytes: [u8; LOG_RING_BYTES],
    /// Total bytes ever written; the write position is `written % LOG_RING_BYTES`.
    written: u64,
}

#[allow(dead_code)] // raw console bytes, not yet served (`/api/v1/logs` serves `console::LOG_RING`)
impl LogRing {
    /// An empty ring.
    pub const fn new() -> Self {
        Self {
            bytes: [0; LOG_RING_BYTES],
            written: 0,
        }
    }

    /// Appends bytes, overwriting the oldest when full.
    pub fn push(&mut self, data: &[u8]) {
        for &byte in data {
            let index = (self.written % LOG_RING_BYTES as u64) as usize;
            self.bytes[index] = byte;
            self.written += 1;
        }
    }

    /// Calls `f` with the retained bytes, oldest first, in at most two slices.
    pub fn for_each_chunk(&self, mut f: impl FnMut(&[u8])) {
        let len = self.written.min(LOG_RING_BYTES as u64) as usize;
        let end = (self.written % LOG_RING_BYTES as u64) as usize;
        if len < LOG_RING_BYTES {
            f(&self.bytes[..len]);
        } else {
            f(&self.bytes[end..]);
            f(&self.bytes[..end]);
        }
    }

    /// Total bytes ever written (including those already overwritten).
    pub fn total_written(&self) -> u64 {
        self.written
    }
}
