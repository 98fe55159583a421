//! `PortTap`: the data path's side of a capture, one per port of a core.
//! The executor shows it each burst the port receives and each burst the
//! core hands the port to send; while nobody captures, that costs one
//! relaxed load and one compare per burst.

use super::board::{CaptureBoard, TapCounters};
use super::flow::TcpFlow;
use super::record_ring::{Direction, RecordHeader, RecordProducer};
use crate::Batch;
use alloc::sync::Arc;
use core::sync::atomic::{Ordering, fence};

/// One port's tap: its ring's writing end and what it compares the armed
/// word with.
pub struct PortTap {
    board: Arc<CaptureBoard>,
    /// The port's interface plus one, as the armed word's low bits carry
    /// it (`u64::MAX`, which no armed word's low bits equal, for an
    /// interface that can never be captured).
    tag: u64,
    producer: RecordProducer,
    counters: Arc<TapCounters>,
}

impl core::fmt::Debug for PortTap {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PortTap")
            .field("tag", &self.tag)
            .field("producer", &self.producer)
            .finish()
    }
}

impl PortTap {
    pub(super) fn new(
        board: Arc<CaptureBoard>,
        tag: u64,
        producer: RecordProducer,
        counters: Arc<TapCounters>,
    ) -> Self {
        Self {
            board,
            tag,
            producer,
            counters,
        }
    }

    /// Shows the tap a burst going `direction` at `now_ns`: when a capture
    /// of this port's interface is armed, each frame's first bytes (up to
    /// the snap length) go into the ring, or are counted as dropped when
    /// it is full.
    #[inline]
    pub fn observe(&mut self, direction: Direction, burst: &Batch, now_ns: u64) {
        // Ordering: Relaxed; the armed word carries everything the tap
        // needs (capture id, snap length, interface), and seeing it a
        // burst late is harmless.
        let armed = self.board.armed.load(Ordering::Relaxed);
        if armed & 0xffff == self.tag {
            self.copy(armed, direction, burst, now_ns);
        }
    }

    /// Copies the burst's frames for the capture `armed` names.
    #[cold]
    #[inline(never)]
    fn copy(&mut self, armed: u64, direction: Direction, burst: &Batch, now_ns: u64) {
        let capture = (armed >> 32) as u32;
        let snaplen = usize::from((armed >> 16) as u16);
        // Ordering: pairs with the Release of `arm`'s exchange, whose word
        // the Relaxed load in `observe` read: the flow stored before it is
        // visible.
        fence(Ordering::Acquire);
        let excluded = match self.board.excluded.load(Ordering::Relaxed) {
            0 => None,
            word => Some(TcpFlow::unpack(word)),
        };
        let (mut captured, mut dropped) = (0, 0);
        for packet in burst.iter() {
            let frame = packet.payload();
            if excluded.is_some_and(|flow| flow.carries(frame)) {
                continue;
            }
            let header = RecordHeader {
                capture,
                direction,
                captured_len: 0,
                original_len: u32::try_from(frame.len()).unwrap_or(u32::MAX),
                timestamp_ns: now_ns,
            };
            if self
                .producer
                .push(header, &frame[..frame.len().min(snaplen)])
            {
                captured += 1;
            } else {
                dropped += 1;
            }
        }
        self.counters.captured.add(captured);
        self.counters.dropped.add(dropped);
    }
}
