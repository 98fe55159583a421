//! `CaptureBoard`: where a capture is armed and its records are read. The
//! platform makes one and shares it with every core (as it shares the
//! counters board); each core gets a [`PortTap`] per port from it while
//! it builds, and the management core arms one capture at a time and
//! reads every tap's ring.

use super::flow::TcpFlow;
use super::record_ring::{HEADER_WORDS, RecordConsumer, RecordHeader, record_ring};
use super::tap::PortTap;
use crate::Counter;
use crate::mem::ring::RingError;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use crossbeam_utils::CachePadded;
use spin::Mutex;

/// The longest snap length: a whole frame of a 1500-byte MTU, Ethernet
/// header included.
pub const MAX_SNAPLEN: u16 = 1514;
/// The snap length of a capture that names none.
pub const DEFAULT_SNAPLEN: u16 = 256;
/// Words of each tap's ring unless the platform says otherwise: 64 KiB,
/// some 230 records at the default snap length, per port and core.
pub const DEFAULT_RING_WORDS: usize = 8192;
/// Bits of the armed word that hold the interface (plus one; zero when
/// nothing is armed).
const INTERFACE_BITS: u64 = 0xffff;

/// Why a capture could not be armed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArmError {
    /// Another capture is armed.
    Busy,
    /// The interface index does not fit the armed word.
    InterfaceOutOfRange(usize),
    /// The snap length is zero or over [`MAX_SNAPLEN`].
    BadSnaplen(u16),
}

impl core::fmt::Display for ArmError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Busy => f.write_str("another capture is running"),
            Self::InterfaceOutOfRange(index) => write!(f, "interface {index} cannot be captured"),
            Self::BadSnaplen(snaplen) => {
                write!(f, "snap length {snaplen} is not 1 to {MAX_SNAPLEN}")
            }
        }
    }
}

/// An armed capture, as [`CaptureBoard::arm`] handed it out: only its
/// holder disarms it.
#[derive(Debug, PartialEq, Eq)]
pub struct Capture {
    /// The armed word while this capture is armed.
    word: u64,
}

impl Capture {
    /// The capture's number (records carry it).
    pub fn id(&self) -> u32 {
        (self.word >> 32) as u32
    }

    /// The index of the captured interface in the spec.
    pub fn interface(&self) -> usize {
        (self.word & INTERFACE_BITS) as usize - 1
    }

    /// The snap length.
    pub fn snaplen(&self) -> u16 {
        (self.word >> 16) as u16
    }
}

/// What one tap has done, for `/metrics`: written by its core, read by
/// anyone.
#[derive(Debug, Default)]
pub struct TapCounters {
    /// Frames copied into the ring.
    pub captured: Counter,
    /// Frames the full ring had no room for.
    pub dropped: Counter,
}

/// The management core's end of one tap.
struct TapEnd {
    core: usize,
    interface: usize,
    consumer: RecordConsumer,
    counters: Arc<TapCounters>,
}

/// One capture armed at a time, and every tap's ring.
pub struct CaptureBoard {
    /// What the taps look at once per burst: 0 when nothing is armed, else
    /// the capture id (bits 32..64), the snap length (16..32) and the
    /// interface plus one (0..16). On its own cache line: the management
    /// core's work on the rest of the board does not disturb the data
    /// cores' loads.
    pub(super) armed: CachePadded<AtomicU64>,
    /// The connection the armed capture leaves out ([`TcpFlow`], packed;
    /// 0 for none). Stored before the armed word, read by taps only once
    /// they saw their interface armed.
    pub(super) excluded: AtomicU64,
    /// The last capture id handed out.
    last_id: AtomicU32,
    /// Taps registered while the cores built, in registration order. Only
    /// the cores' builds (once each) and the management core take the
    /// lock; the data path never does.
    ends: Mutex<Vec<TapEnd>>,
    ring_words: usize,
}

impl core::fmt::Debug for CaptureBoard {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CaptureBoard")
            .field("armed", &self.armed.load(Ordering::Relaxed))
            .field("taps", &self.ends.lock().len())
            .finish()
    }
}

impl Default for CaptureBoard {
    fn default() -> Self {
        Self::new()
    }
}

impl CaptureBoard {
    /// A board whose taps each get a ring of [`DEFAULT_RING_WORDS`].
    pub fn new() -> Self {
        Self {
            armed: CachePadded::new(AtomicU64::new(0)),
            excluded: AtomicU64::new(0),
            last_id: AtomicU32::new(0),
            ends: Mutex::new(Vec::new()),
            ring_words: DEFAULT_RING_WORDS,
        }
    }

    /// A board whose taps each get a ring of `ring_words` words (a power
    /// of two).
    pub fn with_ring_words(ring_words: usize) -> Result<Self, RingError> {
        if !ring_words.is_power_of_two() {
            return Err(RingError::CapacityNotPowerOfTwo(ring_words));
        }
        Ok(Self {
            ring_words,
            ..Self::new()
        })
    }

    /// A tap for the port of spec interface `interface` on core `core`:
    /// its ring's reading end stays here. Called by the core's build.
    pub fn tap(self: &Arc<Self>, core: usize, interface: usize) -> PortTap {
        let (producer, consumer) = match record_ring(self.ring_words) {
            Ok(ends) => ends,
            // `ring_words` was checked when the board was made.
            Err(error) => unreachable!("{error}"),
        };
        let counters = Arc::new(TapCounters::default());
        self.ends.lock().push(TapEnd {
            core,
            interface,
            consumer,
            counters: Arc::clone(&counters),
        });
        // Interfaces past the armed word's range get a tag no armed word
        // carries: never captured (`arm` refuses them too).
        let tag = u64::try_from(interface)
            .ok()
            .filter(|index| *index < INTERFACE_BITS)
            .map_or(u64::MAX, |index| index + 1);
        PortTap::new(Arc::clone(self), tag, producer, counters)
    }

    /// Arms a capture of spec interface `interface` at `snaplen` bytes a
    /// frame, leaving out the frames of `excluded` (the connection that
    /// carries the capture); every core's taps start copying that
    /// interface's frames at their next burst. Refused while another
    /// capture is armed.
    pub fn arm(
        &self,
        interface: usize,
        snaplen: u16,
        excluded: Option<TcpFlow>,
    ) -> Result<Capture, ArmError> {
        if snaplen == 0 || snaplen > MAX_SNAPLEN {
            return Err(ArmError::BadSnaplen(snaplen));
        }
        let tag = u64::try_from(interface)
            .ok()
            .filter(|index| *index < INTERFACE_BITS)
            .ok_or(ArmError::InterfaceOutOfRange(interface))?
            + 1;
        // Ordering: Relaxed; the id only has to differ from the last few.
        let mut id = self.last_id.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        if id == 0 {
            id = self.last_id.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        }
        let word = u64::from(id) << 32 | u64::from(snaplen) << 16 | tag;
        if self.is_armed() {
            return Err(ArmError::Busy);
        }
        // Ordering: Relaxed; the Release of the exchange below publishes it
        // to the taps, which fence with Acquire after seeing the word.
        self.excluded
            .store(excluded.map_or(0, TcpFlow::pack), Ordering::Relaxed);
        // Ordering: AcqRel; Release publishes `excluded` with the word. One
        // core (the management core) arms; were there two, the exchange
        // still lets one win (the other's flow might then stand for the
        // winner's: one connection's frames more or fewer in a capture).
        self.armed
            .compare_exchange(0, word, Ordering::AcqRel, Ordering::Relaxed)
            .map_err(|_| ArmError::Busy)?;
        Ok(Capture { word })
    }

    /// True while some capture is armed.
    pub fn is_armed(&self) -> bool {
        self.armed_interface().is_some()
    }

    /// The interface an armed capture copies, if one is armed.
    pub fn armed_interface(&self) -> Option<usize> {
        // Ordering: a snapshot.
        let tag = self.armed.load(Ordering::Relaxed) & INTERFACE_BITS;
        (tag as usize).checked_sub(1)
    }

    /// Disarms `capture`: taps stop copying at their next burst, and what
    /// they copied stays readable (a capture whose time is up still sends
    /// the frames seen before). Records a tap pushes after it (it saw the
    /// word a burst late) carry the old id: later captures skip them.
    pub fn disarm(&self, capture: &Capture) {
        // Ordering: as in `arm`. It fails only when the capture was
        // disarmed already: nothing to do then.
        let _ = self
            .armed
            .compare_exchange(capture.word, 0, Ordering::AcqRel, Ordering::Relaxed);
    }

    /// Ends `capture`: disarms it and throws away its unread records, so
    /// the next capture starts with empty rings.
    pub fn finish(&self, capture: Capture) {
        self.disarm(&capture);
        for end in self.ends.lock().iter_mut() {
            end.consumer.clear();
        }
    }

    /// Takes the oldest waiting record of `capture` out of the taps of its
    /// interface, if `fits` accepts it: copies its bytes into `out` (at
    /// most `out.len()`) and returns its header and the bytes copied.
    /// Records of other captures met on the way are thrown away. "Oldest"
    /// is by timestamp among the rings' first records: each ring is in
    /// order, and frames of different cores interleave by time.
    pub fn next_record(
        &self,
        capture: &Capture,
        fits: impl FnOnce(&RecordHeader) -> bool,
        out: &mut [u8],
    ) -> Option<(RecordHeader, usize)> {
        let mut ends = self.ends.lock();
        let mut oldest: Option<(usize, u64)> = None;
        for (index, end) in ends.iter_mut().enumerate() {
            if end.interface != capture.interface() {
                continue;
            }
            // At most a ringful of records of other captures is skipped
            // per call (a late core may still be adding some).
            for _ in 0..self.ring_words / HEADER_WORDS {
                let Some(header) = end.consumer.peek() else {
                    break;
                };
                if header.capture == capture.id() {
                    if oldest.is_none_or(|(_, time)| header.timestamp_ns < time) {
                        oldest = Some((index, header.timestamp_ns));
                    }
                    break;
                }
                end.consumer.skip();
            }
        }
        let consumer = &mut ends[oldest?.0].consumer;
        if !fits(&consumer.peek()?) {
            return None;
        }
        consumer.pop(out)
    }

    /// Every tap's core, interface and counters, in registration order.
    pub fn for_each_tap(&self, mut visit: impl FnMut(usize, usize, &TapCounters)) {
        for end in self.ends.lock().iter() {
            visit(end.core, end.interface, &end.counters);
        }
    }

    /// Frames the taps of `interface` had no room for, over all time
    /// (a capture's drops are the difference across it).
    pub fn dropped(&self, interface: usize) -> u64 {
        let mut dropped = 0;
        self.for_each_tap(|_, tapped, counters| {
            if tapped == interface {
                dropped += counters.dropped.get();
            }
        });
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::Direction;
    use crate::{Batch, Mempool};

    fn frames(pool: &Mempool, lengths: &[usize]) -> Batch {
        let mut batch = Batch::new();
        for (index, length) in lengths.iter().enumerate() {
            let mut packet = pool.alloc().unwrap();
            let bytes = packet.append(*length).unwrap();
            for (offset, byte) in bytes.iter_mut().enumerate() {
                *byte = (index * 16 + offset) as u8;
            }
            batch.push(packet).unwrap();
        }
        batch
    }

    #[test]
    fn one_capture_at_a_time_and_only_valid_ones() {
        let board = CaptureBoard::new();
        assert_eq!(board.arm(0, 0, None), Err(ArmError::BadSnaplen(0)));
        assert_eq!(
            board.arm(0, MAX_SNAPLEN + 1, None),
            Err(ArmError::BadSnaplen(MAX_SNAPLEN + 1))
        );
        assert_eq!(
            board.arm(usize::MAX, 64, None),
            Err(ArmError::InterfaceOutOfRange(usize::MAX))
        );
        assert!(!board.is_armed());
        let first = board.arm(1, 64, None).unwrap();
        assert_eq!((first.interface(), first.snaplen()), (1, 64));
        assert_eq!(board.armed_interface(), Some(1));
        assert_eq!(board.arm(0, 64, None), Err(ArmError::Busy));
        board.finish(first);
        assert!(!board.is_armed());
        let second = board.arm(0, MAX_SNAPLEN, None).unwrap();
        assert_ne!(second.id(), 0);
        assert_eq!(second.interface(), 0);
    }

    #[test]
    fn taps_copy_only_the_armed_interface_cut_at_the_snap_length() {
        let board = Arc::new(CaptureBoard::new());
        let pool = Mempool::with_heap(8, 0).unwrap();
        let mut eth0 = board.tap(0, 0);
        let mut eth1 = board.tap(0, 1);
        let burst = frames(&pool, &[60, 100]);
        // Nothing armed: nothing copied.
        eth0.observe(Direction::Received, &burst, 10);
        let mut out = [0u8; MAX_SNAPLEN as usize];
        let capture = board.arm(0, 64, None).unwrap();
        assert_eq!(board.next_record(&capture, |_| true, &mut out), None);
        eth0.observe(Direction::Received, &burst, 20);
        eth1.observe(Direction::Sent, &burst, 30);
        eth0.observe(Direction::Sent, &burst, 40);
        let mut seen = Vec::new();
        while let Some((header, copied)) = board.next_record(&capture, |_| true, &mut out) {
            assert_eq!(header.capture, capture.id());
            seen.push((
                header.direction,
                header.timestamp_ns,
                header.original_len,
                copied,
            ));
            let first = &out[..copied];
            assert!(
                first
                    .iter()
                    .enumerate()
                    .all(|(offset, byte)| { *byte as usize % 16 == offset % 16 })
            );
        }
        assert_eq!(
            seen,
            [
                (Direction::Received, 20, 60, 60),
                (Direction::Received, 20, 100, 64),
                (Direction::Sent, 40, 60, 60),
                (Direction::Sent, 40, 100, 64),
            ]
        );
        let mut captured = 0;
        board.for_each_tap(|_, _, counters| captured += counters.captured.get());
        assert_eq!(captured, 4);
        // Disarmed: what was copied before stays readable, nothing new is.
        eth0.observe(Direction::Sent, &burst, 45);
        board.disarm(&capture);
        eth0.observe(Direction::Received, &burst, 50);
        let mut left = Vec::new();
        while let Some((header, _)) = board.next_record(&capture, |_| true, &mut out) {
            left.push(header.timestamp_ns);
        }
        assert_eq!(left, [45, 45]);
        board.finish(capture);
        let mut after = 0;
        board.for_each_tap(|_, _, counters| after += counters.captured.get());
        assert_eq!(after, 6, "a disarmed tap copies nothing");
    }

    #[test]
    fn records_of_cores_interleave_by_time_and_old_captures_are_skipped() {
        let board = Arc::new(CaptureBoard::new());
        let pool = Mempool::with_heap(8, 0).unwrap();
        let mut core0 = board.tap(0, 0);
        let mut core1 = board.tap(1, 0);
        let burst = frames(&pool, &[42]);
        let old = board.arm(0, 64, None).unwrap();
        // A core that saw the disarm late keeps writing the old capture.
        let stale_word = old.word;
        board.finish(old);
        board.armed.store(stale_word, Ordering::Relaxed);
        core1.observe(Direction::Received, &burst, 1);
        board.armed.store(0, Ordering::Relaxed);
        let capture = board.arm(0, 64, None).unwrap();
        core0.observe(Direction::Received, &burst, 30);
        core1.observe(Direction::Sent, &burst, 20);
        core0.observe(Direction::Sent, &burst, 40);
        let mut out = [0u8; 64];
        let mut times = Vec::new();
        while let Some((header, _)) = board.next_record(&capture, |_| true, &mut out) {
            times.push(header.timestamp_ns);
        }
        assert_eq!(times, [20, 30, 40]);
    }

    #[test]
    fn the_excluded_connection_is_left_out() {
        let board = Arc::new(CaptureBoard::new());
        let pool = Mempool::with_heap(8, 0).unwrap();
        let mut tap = board.tap(0, 0);
        // An IPv4 TCP segment 10.0.0.1:40000 -> 10.0.0.2:8080, and a frame
        // of the same length that is not one.
        let mut segment = alloc::vec![0u8; 54];
        segment[12..14].copy_from_slice(&[0x08, 0x00]);
        segment[14] = 0x45;
        segment[23] = 6;
        segment[26..30].copy_from_slice(&[10, 0, 0, 1]);
        segment[30..34].copy_from_slice(&[10, 0, 0, 2]);
        segment[34..36].copy_from_slice(&40000u16.to_be_bytes());
        segment[36..38].copy_from_slice(&8080u16.to_be_bytes());
        let mut burst = Batch::new();
        for first in [0x45, 0x00] {
            let mut packet = pool.alloc().unwrap();
            let bytes = packet.append(segment.len()).unwrap();
            bytes.copy_from_slice(&segment);
            bytes[14] = first;
            burst.push(packet).unwrap();
        }
        let flow = TcpFlow {
            peer: core::net::SocketAddrV4::new(core::net::Ipv4Addr::new(10, 0, 0, 1), 40000),
            local_port: 8080,
        };
        let capture = board.arm(0, 64, Some(flow)).unwrap();
        tap.observe(Direction::Received, &burst, 1);
        let mut out = [0u8; 64];
        let (_, copied) = board.next_record(&capture, |_| true, &mut out).unwrap();
        assert_eq!(out[14], 0x00, "only the frame that is not the flow's");
        assert_eq!(copied, 54);
        assert_eq!(board.next_record(&capture, |_| true, &mut out), None);
        // A busy board keeps the running capture's exclusion.
        assert_eq!(board.arm(0, 64, None), Err(ArmError::Busy));
        tap.observe(Direction::Sent, &burst, 2);
        assert!(board.next_record(&capture, |_| true, &mut out).is_some());
        assert_eq!(board.next_record(&capture, |_| true, &mut out), None);
        board.finish(capture);
        let unfiltered = board.arm(0, 64, None).unwrap();
        tap.observe(Direction::Received, &burst, 3);
        assert!(board.next_record(&unfiltered, |_| true, &mut out).is_some());
        assert!(board.next_record(&unfiltered, |_| true, &mut out).is_some());
    }

    #[test]
    fn finishing_empties_the_rings_for_the_next_capture() {
        // 16 words: one record of 3 + 6 words fits, two do not.
        let board = Arc::new(CaptureBoard::with_ring_words(16).unwrap());
        let pool = Mempool::with_heap(8, 0).unwrap();
        let mut tap = board.tap(0, 0);
        let burst = frames(&pool, &[42]);
        let first = board.arm(0, 64, None).unwrap();
        tap.observe(Direction::Received, &burst, 1);
        board.finish(first);
        let second = board.arm(0, 64, None).unwrap();
        tap.observe(Direction::Received, &burst, 2);
        assert_eq!(board.dropped(0), 0, "the first capture's record was left");
        let mut out = [0u8; 64];
        assert_eq!(
            board
                .next_record(&second, |_| true, &mut out)
                .map(|(header, _)| header.timestamp_ns),
            Some(2)
        );
    }

    #[test]
    fn a_record_that_does_not_fit_stays_and_a_full_ring_counts_drops() {
        let board = Arc::new(CaptureBoard::with_ring_words(32).unwrap());
        assert!(CaptureBoard::with_ring_words(48).is_err());
        let pool = Mempool::with_heap(8, 0).unwrap();
        let mut tap = board.tap(0, 0);
        let capture = board.arm(0, 64, None).unwrap();
        // 3 + 8 words a record: two fit in 32 words, three do not.
        let burst = frames(&pool, &[64, 64, 64]);
        tap.observe(Direction::Received, &burst, 1);
        assert_eq!(board.dropped(0), 1);
        assert_eq!(board.dropped(1), 0);
        let mut out = [0u8; 64];
        assert_eq!(board.next_record(&capture, |_| false, &mut out), None);
        assert!(board.next_record(&capture, |_| true, &mut out).is_some());
        assert!(board.next_record(&capture, |_| true, &mut out).is_some());
        assert_eq!(board.next_record(&capture, |_| true, &mut out), None);
    }
}
