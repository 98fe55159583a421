//! The probe header every generated payload starts with: which run, which
//! packet, when it was sent.

/// Marks a payload as ours.
pub const MAGIC: [u8; 4] = *b"WCLG";
/// Bytes of the probe header.
pub const PROBE_LEN: usize = 24;

/// What a payload says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    /// Distinguishes this run from stale replies of an earlier one.
    pub run_id: u32,
    /// Position in the stream, from 0.
    pub sequence: u64,
    /// Monotonic send time in nanoseconds.
    pub sent_ns: u64,
}

impl Probe {
    /// Writes the header into the first [`PROBE_LEN`] bytes of `out`.
    /// `out` must be at least that long.
    pub fn write(&self, out: &mut [u8]) {
        out[..4].copy_from_slice(&MAGIC);
        out[4..8].copy_from_slice(&self.run_id.to_be_bytes());
        out[8..16].copy_from_slice(&self.sequence.to_be_bytes());
        out[16..24].copy_from_slice(&self.sent_ns.to_be_bytes());
    }

    /// Reads a header, or `None` when `payload` is too short or not ours.
    pub fn read(payload: &[u8]) -> Option<Probe> {
        let header = payload.get(..PROBE_LEN)?;
        if header[..4] != MAGIC {
            return None;
        }
        Some(Probe {
            run_id: u32::from_be_bytes(header[4..8].try_into().ok()?),
            sequence: u64::from_be_bytes(header[8..16].try_into().ok()?),
            sent_ns: u64::from_be_bytes(header[16..24].try_into().ok()?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_foreign_payloads() {
        let probe = Probe {
            run_id: 7,
            sequence: 1 << 40,
            sent_ns: 123_456_789,
        };
        let mut bytes = [0u8; 30];
        probe.write(&mut bytes);
        assert_eq!(Probe::read(&bytes), Some(probe));
        assert_eq!(Probe::read(&bytes[..PROBE_LEN - 1]), None);
        bytes[0] = b'X';
        assert_eq!(Probe::read(&bytes), None);
    }
}
