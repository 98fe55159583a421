//! `Reassembly`: puts the fragments of IPv4 datagrams for us back together
//! (RFC 791 section 3.2, with a list of received runs in the spirit of the
//! RFC 815 hole list), one table per core, bounded in datagrams and bytes.
//!
//! * **Memory.** A datagram in progress owns one buffer of a dedicated pool
//!   of `datagrams` buffers of `max_bytes` bytes, allocated once when the
//!   core is built: memory never exceeds `datagrams × max_bytes`, and no
//!   fragment allocates (its payload is copied into place and its own
//!   buffer goes back to the receive pool at once). A new datagram when
//!   every buffer is taken evicts the oldest one (as Linux evicts under
//!   memory pressure).
//! * **Limits.** A fragment reaching past `max_bytes` (at most 65535: the
//!   ping of death) is dropped. Datagrams in progress time out after
//!   [`TIMEOUT_NS`] (Linux's `ipfrag_time`); the caller sends ICMP time
//!   exceeded (11/1) when the first fragment had arrived (RFC 1122
//!   3.2.1.4... 3.3.2).
//! * **Overlaps, as Linux does** (since 4.19, RFC 5722 in spirit): a
//!   fragment lying entirely inside received data is a duplicate and is
//!   ignored; any other overlap drops the whole datagram, as does a
//!   fragment contradicting the datagram's known end.
//! * **Result.** A complete datagram leaves as one packet starting at the
//!   first fragment's header (total length, flags and checksum rewritten):
//!   in a regular pool buffer when it fits an Ethernet frame (so headers
//!   can be prepended), else in its large buffer, which `ipv4-out`
//!   fragments on the way out.
//! * **Cores.** Each core reassembles what reaches it. With several queues,
//!   RSS must bring every fragment of a datagram to one core: Toeplitz RSS
//!   (virtio-net, igb, Linux's tap flow hash) hashes fragments, which carry
//!   no ports, on their address pair only, so all fragments of one datagram
//!   meet on one core. A datagram whose fragments do land on two cores
//!   times out on both (counted); we do not steer between cores.

use crate::wire::ipv4::{self, Ipv4Packet};
use alloc::vec::Vec;
use arrayvec::ArrayVec;
use core::net::Ipv4Addr;
use dataplane::{Mempool, Packet};

/// How long a datagram may stay incomplete (Linux: 30 s).
pub const TIMEOUT_NS: u64 = 30_000_000_000;
/// Datagrams in progress per core unless the spec says otherwise.
pub const DEFAULT_DATAGRAMS: usize = 8;
/// Most datagrams in progress per core a spec may ask for.
pub const MAX_DATAGRAMS: usize = 64;
/// Largest reassembled datagram (IP total length) unless the spec says
/// otherwise: any IPv4 datagram.
pub const DEFAULT_MAX_BYTES: usize = 65535;
/// The smallest `max_bytes` a spec may ask for: RFC 791 requires every
/// host to accept 576-byte datagrams.
pub const MIN_MAX_BYTES: usize = 576;
/// Separate runs of received data one datagram may have (fragments in
/// order, or nearly, make one or two).
pub const MAX_RUNS: usize = 16;
/// A reassembled datagram this long or shorter moves to a regular buffer.
const SMALL_DATAGRAM: usize = 1500;
/// Where payload byte 0 lives in a datagram's buffer: room for a header
/// without options in front of it.
const PAYLOAD_START: usize = ipv4::HEADER_LEN;

/// The spec's reassembly limits for each core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReassemblyLimits {
    /// Datagrams in progress at once (0: fragments are dropped).
    pub datagrams: usize,
    /// Largest datagram reassembled, header included (576 to 65535).
    pub max_bytes: usize,
}

impl Default for ReassemblyLimits {
    fn default() -> Self {
        Self {
            datagrams: DEFAULT_DATAGRAMS,
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }
}

/// Why a fragment was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FragmentError {
    /// Reassembly is off, no buffer is free, or the datagram has too many
    /// holes (the datagram is dropped then).
    NoRoom,
    /// Empty, or not the last and not a multiple of 8 bytes.
    BadLength,
    /// Reaches past `max_bytes` (or 65535).
    TooLarge,
    /// Entirely inside data already received: ignored.
    Duplicate,
    /// Overlaps received data partially or contradicts the datagram's end:
    /// the whole datagram is dropped.
    Overlap,
}

/// What became of a fragment.
#[derive(Debug)]
pub enum Outcome {
    /// Held until the rest arrives (its bytes are copied: the fragment's
    /// own buffer may go).
    Held {
        /// True when the oldest datagram was dropped to make room (its
        /// buffer now holds this one).
        evicted: bool,
    },
    /// It completed its datagram, here whole.
    Complete(Packet),
    /// Not taken.
    Rejected(FragmentError),
}

/// What identifies the fragments of one datagram (RFC 791).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key {
    source: Ipv4Addr,
    destination: Ipv4Addr,
    ident: u16,
    protocol: u8,
}

/// One datagram in progress.
#[derive(Debug)]
struct Datagram {
    key: Key,
    started_ns: u64,
    /// Payload byte `i` at `PAYLOAD_START + i`.
    buffer: Packet,
    /// Received payload ranges `[start, end)`, sorted, never touching.
    runs: ArrayVec<(u32, u32), MAX_RUNS>,
    /// The payload length, once the last fragment has come.
    total: Option<u32>,
    /// The first fragment's header (empty until it has come).
    header: ArrayVec<u8, 60>,
}

impl Datagram {
    /// True when every byte has come.
    fn is_complete(&self) -> bool {
        !self.header.is_empty()
            && self
                .total
                .is_some_and(|total| self.runs.as_slice() == [(0, total)])
    }

    /// Where `[start, end)` falls among the runs: a duplicate, an overlap,
    /// or new data.
    fn check(&self, start: u32, end: u32, last: bool) -> Result<(), FragmentError> {
        for &(run_start, run_end) in &self.runs {
            if start >= run_start && end <= run_end {
                return Err(FragmentError::Duplicate);
            }
            if start < run_end && end > run_start {
                return Err(FragmentError::Overlap);
            }
        }
        let received_end = self.runs.last().map_or(0, |run| run.1);
        match self.total {
            Some(total) if end > total || (last && end != total) => Err(FragmentError::Overlap),
            None if last && received_end > end => Err(FragmentError::Overlap),
            _ => Ok(()),
        }
    }

    /// Records `[start, end)` as received, merging touching runs.
    fn add_run(&mut self, start: u32, end: u32) -> Result<(), FragmentError> {
        let index = self.runs.partition_point(|run| run.1 < start);
        let merges_left = index < self.runs.len() && self.runs[index].1 == start;
        let next = index + usize::from(merges_left);
        let merges_right = next < self.runs.len() && self.runs[next].0 == end;
        match (merges_left, merges_right) {
            (true, true) => {
                self.runs[index].1 = self.runs[next].1;
                self.runs.remove(next);
            }
            (true, false) => self.runs[index].1 = end,
            (false, true) => self.runs[next].0 = start,
            (false, false) => self
                .runs
                .try_insert(index, (start, end))
                .map_err(|_| FragmentError::NoRoom)?,
        }
        Ok(())
    }

    /// The first fragment's header and the first 8 bytes of payload: what
    /// an ICMP error about the datagram quotes. Empty before the first
    /// fragment came.
    fn quote(&self) -> ArrayVec<u8, 68> {
        let mut quoted = ArrayVec::new();
        if !self.header.is_empty() {
            let payload = &self.buffer.payload()[PAYLOAD_START..PAYLOAD_START + 8];
            let _ = quoted.try_extend_from_slice(&self.header);
            let _ = quoted.try_extend_from_slice(payload);
        }
        quoted
    }
}

/// The reassembly table of one core.
pub struct Reassembly {
    limits: ReassemblyLimits,
    /// Declared before `pool`, so dropped first: a pool dropped while its
    /// buffers are out is leaked (see `Drop for Mempool`).
    datagrams: Vec<Datagram>,
    pool: Option<Mempool>,
}

impl core::fmt::Debug for Reassembly {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Reassembly")
            .field("limits", &self.limits)
            .field("in_progress", &self.datagrams.len())
            .finish()
    }
}

impl Reassembly {
    /// A table within `limits`, with its pool of large buffers (none when
    /// `limits.datagrams` is 0 or the memory cannot be had: fragments are
    /// then dropped).
    pub fn new(limits: ReassemblyLimits) -> Self {
        let max_bytes = limits.max_bytes.clamp(MIN_MAX_BYTES, DEFAULT_MAX_BYTES);
        let datagrams = limits.datagrams.min(MAX_DATAGRAMS);
        let pool = (datagrams > 0)
            .then(|| Mempool::with_heap_data_size(datagrams, 0, max_bytes).ok())
            .flatten();
        Self {
            limits: ReassemblyLimits {
                datagrams,
                max_bytes,
            },
            datagrams: Vec::with_capacity(datagrams),
            pool,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> ReassemblyLimits {
        self.limits
    }

    /// Datagrams in progress.
    pub fn in_progress(&self) -> usize {
        self.datagrams.len()
    }

    /// The pool of large buffers (its counters show the memory bound).
    pub fn pool(&self) -> Option<&Mempool> {
        self.pool.as_ref()
    }

    /// Takes in a fragment: `fragment` is a valid IPv4 packet (checksum
    /// verified, trimmed to its total length) with MF set or a non-zero
    /// offset, addressed to us.
    pub fn insert(&mut self, fragment: &[u8], now_ns: u64) -> Outcome {
        let Ok(view) = Ipv4Packet::new_checked(fragment) else {
            return Outcome::Rejected(FragmentError::BadLength);
        };
        let last = !view.more_fragments();
        let payload = view.payload();
        let start = u32::from(view.fragment_offset());
        let end = start + payload.len() as u32;
        if payload.is_empty() || (!last && payload.len() % 8 != 0) {
            return Outcome::Rejected(FragmentError::BadLength);
        }
        if PAYLOAD_START + end as usize > self.limits.max_bytes {
            return Outcome::Rejected(FragmentError::TooLarge);
        }
        let key = Key {
            source: view.source(),
            destination: view.destination(),
            ident: view.ident(),
            protocol: view.protocol(),
        };
        let mut evicted = false;
        let index = match self
            .datagrams
            .iter()
            .position(|datagram| datagram.key == key)
        {
            Some(index) => index,
            None => match self.start(key, now_ns) {
                Ok((index, oldest)) => {
                    evicted = oldest;
                    index
                }
                Err(error) => return Outcome::Rejected(error),
            },
        };
        let datagram = &mut self.datagrams[index];
        if let Err(error) = datagram
            .check(start, end, last)
            .and_then(|()| datagram.add_run(start, end))
        {
            if error != FragmentError::Duplicate {
                self.datagrams.swap_remove(index);
            }
            return Outcome::Rejected(error);
        }
        let offset = PAYLOAD_START + start as usize;
        datagram.buffer.payload_mut()[offset..offset + payload.len()].copy_from_slice(payload);
        if last {
            datagram.total = Some(end);
        }
        if start == 0 {
            datagram.header.clear();
            let _ = datagram.header.try_extend_from_slice(view.header());
        }
        if !datagram.is_complete() {
            return Outcome::Held { evicted };
        }
        let datagram = self.datagrams.swap_remove(index);
        match self.finish(datagram) {
            Some(packet) => Outcome::Complete(packet),
            None => Outcome::Rejected(FragmentError::TooLarge),
        }
    }

    /// Starts a datagram for `key`, in the oldest one's buffer when every
    /// buffer is taken; returns its index and whether it evicted one.
    fn start(&mut self, key: Key, now_ns: u64) -> Result<(usize, bool), FragmentError> {
        let pool = self.pool.as_ref().ok_or(FragmentError::NoRoom)?;
        let (buffer, evicted) = if self.datagrams.len() >= self.limits.datagrams {
            let oldest = self
                .datagrams
                .iter()
                .enumerate()
                .min_by_key(|(_, datagram)| datagram.started_ns)
                .map(|(index, _)| index)
                .ok_or(FragmentError::NoRoom)?;
            (self.datagrams.swap_remove(oldest).buffer, true)
        } else {
            let mut buffer = pool.alloc().ok_or(FragmentError::NoRoom)?;
            // The whole buffer is the datagram's: bytes are written where
            // their offset says, and the range is cut to the datagram at
            // the end.
            let room = buffer.tailroom();
            buffer.append(room).map_err(|_| FragmentError::NoRoom)?;
            (buffer, false)
        };
        self.datagrams.push(Datagram {
            key,
            started_ns: now_ns,
            buffer,
            runs: ArrayVec::new(),
            total: None,
            header: ArrayVec::new(),
        });
        Ok((self.datagrams.len() - 1, evicted))
    }

    /// Writes the header in front of a complete datagram's payload and
    /// cuts its buffer to it. `None` when the header's options push it
    /// past the buffer.
    fn finish(&self, datagram: Datagram) -> Option<Packet> {
        let Datagram {
            mut buffer,
            header,
            total,
            ..
        } = datagram;
        let total = total? as usize;
        let header_len = header.len();
        let total_len = header_len + total;
        if total_len > self.limits.max_bytes {
            return None;
        }
        let bytes = buffer.payload_mut();
        if header_len > PAYLOAD_START {
            bytes.copy_within(PAYLOAD_START..PAYLOAD_START + total, header_len);
        }
        bytes[..header_len].copy_from_slice(&header);
        let mut ip = Ipv4Packet::new_unchecked(&mut bytes[..total_len]);
        let dont_fragment = ip.dont_fragment();
        ip.set_total_len(total_len as u16);
        ip.set_fragment(dont_fragment, false, 0);
        ip.fill_checksum();
        buffer.set_range(0, total_len).ok()?;
        Some(buffer)
    }

    /// When the oldest datagram in progress times out (nanoseconds), if
    /// any: the next [`expire`](Self::expire) with something to do.
    pub fn next_expiry_ns(&self) -> Option<u64> {
        self.datagrams
            .iter()
            .map(|datagram| datagram.started_ns.saturating_add(TIMEOUT_NS))
            .min()
    }

    /// Removes every datagram older than [`TIMEOUT_NS`] and hands each to
    /// `expired` with its quote (see [`Datagram::quote`]; empty when the
    /// first fragment never came).
    pub fn expire(&mut self, now_ns: u64, mut expired: impl FnMut(Packet, &[u8])) {
        let mut index = 0;
        while index < self.datagrams.len() {
            if now_ns.saturating_sub(self.datagrams[index].started_ns) < TIMEOUT_NS {
                index += 1;
                continue;
            }
            let datagram = self.datagrams.swap_remove(index);
            let quoted = datagram.quote();
            expired(datagram.buffer, &quoted);
        }
    }
}

/// `packet` (a reassembled datagram) in a regular buffer of `pool` when it
/// is short enough for one frame, so that link headers fit in front of
/// it; as it is otherwise, or when `pool` has no buffer.
pub fn into_regular_buffer(packet: Packet, alloc: impl FnOnce() -> Option<Packet>) -> Packet {
    if packet.len() > SMALL_DATAGRAM {
        return packet;
    }
    let Some(mut regular) = alloc() else {
        return packet;
    };
    match regular.append(packet.len()) {
        Ok(bytes) => {
            bytes.copy_from_slice(packet.payload());
            regular
        }
        Err(_) => packet,
    }
}

#[cfg(test)]
mod tests;
