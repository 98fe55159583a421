//! `record_ring`: a bounded lock-free single-producer single-consumer ring
//! of variable-length capture records, kept in 64-bit words that both
//! sides touch only through atomic loads and stores (no unsafe code).
//!
//! A record is [`HEADER_WORDS`] words of header, then the captured bytes
//! packed little-endian into words, the last one zero-padded. Positions
//! count words up forever (wrapping); the word of position `p` is
//! `p & mask`, so a record may wrap around the end of the array. The
//! producer publishes whole records with one release store of its tail,
//! the consumer hands whole records back with one release store of its
//! head: the same protocol as [`SpscRing`](crate::SpscRing), per word.

use crate::mem::ring::RingError;
use alloc::boxed::Box;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use crossbeam_utils::CachePadded;

/// Words of a record's header: its first word (capture, captured length,
/// direction), its timestamp, its original length.
pub const HEADER_WORDS: usize = 3;

/// Which way a captured frame went through its port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The port received it.
    Received,
    /// The core handed it to the port to send.
    Sent,
}

/// What a record says about its frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    /// The capture it belongs to (see `CaptureBoard::arm`).
    pub capture: u32,
    /// Which way the frame went.
    pub direction: Direction,
    /// Bytes of the frame the record holds (at most the capture's snap
    /// length).
    pub captured_len: u16,
    /// The frame's length on the wire.
    pub original_len: u32,
    /// The platform clock when the core saw the frame, in nanoseconds.
    pub timestamp_ns: u64,
}

impl RecordHeader {
    /// Words the whole record takes: header and captured bytes.
    #[inline]
    pub fn words(&self) -> usize {
        HEADER_WORDS + usize::from(self.captured_len).div_ceil(8)
    }

    /// The header's words.
    #[inline]
    fn encode(&self) -> [u64; HEADER_WORDS] {
        let direction: u64 = match self.direction {
            Direction::Received => 0,
            Direction::Sent => 1,
        };
        [
            u64::from(self.capture) | u64::from(self.captured_len) << 32 | direction << 48,
            self.timestamp_ns,
            u64::from(self.original_len),
        ]
    }

    /// The header in `words`.
    #[inline]
    fn decode(words: [u64; HEADER_WORDS]) -> Self {
        Self {
            capture: words[0] as u32,
            captured_len: (words[0] >> 32) as u16,
            direction: if (words[0] >> 48) & 1 == 0 {
                Direction::Received
            } else {
                Direction::Sent
            },
            timestamp_ns: words[1],
            original_len: words[2] as u32,
        }
    }
}

/// The memory both halves share.
struct Shared {
    /// Next word the consumer reads; written only by the consumer.
    head: CachePadded<AtomicUsize>,
    /// Next word the producer writes; written only by the producer.
    tail: CachePadded<AtomicUsize>,
    words: Box<[AtomicU64]>,
    mask: usize,
}

impl Shared {
    #[inline]
    fn capacity(&self) -> usize {
        self.mask + 1
    }

    #[inline]
    fn word(&self, position: usize) -> &AtomicU64 {
        // `position & mask` is below the length: the index never panics.
        &self.words[position & self.mask]
    }
}

/// Makes a ring of `capacity_words` words (a power of two) and splits it.
/// A record longer than the whole ring never fits (it is refused, as if
/// the ring were full).
pub fn record_ring(capacity_words: usize) -> Result<(RecordProducer, RecordConsumer), RingError> {
    if !capacity_words.is_power_of_two() {
        return Err(RingError::CapacityNotPowerOfTwo(capacity_words));
    }
    let shared = Arc::new(Shared {
        head: CachePadded::new(AtomicUsize::new(0)),
        tail: CachePadded::new(AtomicUsize::new(0)),
        words: (0..capacity_words).map(|_| AtomicU64::new(0)).collect(),
        mask: capacity_words - 1,
    });
    let producer = RecordProducer {
        shared: Arc::clone(&shared),
        tail: 0,
        cached_head: 0,
    };
    let consumer = RecordConsumer {
        shared,
        head: 0,
        cached_tail: 0,
    };
    Ok((producer, consumer))
}

/// The writing half: the core that sees the frames.
pub struct RecordProducer {
    shared: Arc<Shared>,
    /// Our copy of the tail: only we write it.
    tail: usize,
    /// Last head we loaded; the consumer only moves it forward.
    cached_head: usize,
}

impl core::fmt::Debug for RecordProducer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RecordProducer")
            .field("capacity_words", &self.shared.capacity())
            .field("tail", &self.tail)
            .finish()
    }
}

impl RecordProducer {
    /// Appends a record of `header` holding `bytes` (its `captured_len`
    /// is taken from `bytes`, which must be at most `u16::MAX` long: the
    /// rest is cut). Returns false, writing nothing, when the ring has no
    /// room for the whole record.
    #[inline]
    pub fn push(&mut self, header: RecordHeader, bytes: &[u8]) -> bool {
        let bytes = &bytes[..bytes.len().min(usize::from(u16::MAX))];
        let header = RecordHeader {
            captured_len: bytes.len() as u16,
            ..header
        };
        let needed = header.words();
        let capacity = self.shared.capacity();
        if capacity - self.tail.wrapping_sub(self.cached_head) < needed {
            // Ordering: Acquire pairs with the consumer's Release store of
            // head: its reads of those words finished before we reuse them.
            self.cached_head = self.shared.head.load(Ordering::Acquire);
            if capacity - self.tail.wrapping_sub(self.cached_head) < needed {
                return false;
            }
        }
        let mut position = self.tail;
        let mut put = |value: u64| {
            // Ordering: Relaxed; the Release store of tail below publishes
            // every word of the record at once.
            self.shared.word(position).store(value, Ordering::Relaxed);
            position = position.wrapping_add(1);
        };
        for word in header.encode() {
            put(word);
        }
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            put(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            put(u64::from_le_bytes(word));
        }
        self.tail = position;
        // Ordering: Release publishes the record's words to the consumer's
        // Acquire load of tail.
        self.shared.tail.store(self.tail, Ordering::Release);
        true
    }

    /// Words in the ring.
    pub fn capacity_words(&self) -> usize {
        self.shared.capacity()
    }
}

/// The reading half: the management core.
pub struct RecordConsumer {
    shared: Arc<Shared>,
    /// Our copy of the head: only we write it.
    head: usize,
    /// Last tail we loaded; the producer only moves it forward.
    cached_tail: usize,
}

impl core::fmt::Debug for RecordConsumer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RecordConsumer")
            .field("capacity_words", &self.shared.capacity())
            .field("head", &self.head)
            .finish()
    }
}

impl RecordConsumer {
    /// Words published and not yet read, refreshing the cached tail when
    /// fewer than `wanted` seem ready.
    #[inline]
    fn ready_words(&mut self, wanted: usize) -> usize {
        let mut ready = self.cached_tail.wrapping_sub(self.head);
        if ready < wanted {
            // Ordering: Acquire pairs with the producer's Release store of
            // tail, so the record words before it are visible.
            self.cached_tail = self.shared.tail.load(Ordering::Acquire);
            ready = self.cached_tail.wrapping_sub(self.head);
        }
        ready
    }

    /// Reads the word at `offset` past the head.
    #[inline]
    fn read(&self, offset: usize) -> u64 {
        // Ordering: Relaxed; the Acquire load of tail in `ready_words`
        // made the published words visible.
        self.shared
            .word(self.head.wrapping_add(offset))
            .load(Ordering::Relaxed)
    }

    /// The next record's header, leaving the record in the ring.
    pub fn peek(&mut self) -> Option<RecordHeader> {
        if self.ready_words(HEADER_WORDS) < HEADER_WORDS {
            return None;
        }
        let header = RecordHeader::decode([self.read(0), self.read(1), self.read(2)]);
        // The producer publishes whole records, so this holds; were the
        // ring ever inconsistent, everything in it is thrown away rather
        // than read past what was published.
        if self.ready_words(header.words()) < header.words() {
            self.clear();
            return None;
        }
        Some(header)
    }

    /// Takes the next record out: copies its bytes into the front of `out`
    /// (as many as fit) and returns its header and how many were copied.
    pub fn pop(&mut self, out: &mut [u8]) -> Option<(RecordHeader, usize)> {
        let header = self.peek()?;
        let copied = usize::from(header.captured_len).min(out.len());
        for (index, chunk) in out[..copied].chunks_mut(8).enumerate() {
            let word = self.read(HEADER_WORDS + index).to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
        self.advance(header.words());
        Some((header, copied))
    }

    /// Takes the next record out without reading its bytes.
    pub fn skip(&mut self) -> Option<RecordHeader> {
        let header = self.peek()?;
        self.advance(header.words());
        Some(header)
    }

    /// Throws away every published record.
    pub fn clear(&mut self) {
        // Ordering: Acquire, as in `ready_words`.
        self.cached_tail = self.shared.tail.load(Ordering::Acquire);
        let ready = self.cached_tail.wrapping_sub(self.head);
        self.advance(ready);
    }

    /// Hands `words` words back to the producer.
    #[inline]
    fn advance(&mut self, words: usize) {
        self.head = self.head.wrapping_add(words);
        // Ordering: Release hands the words back after our reads completed.
        self.shared.head.store(self.head, Ordering::Release);
    }

    /// Words in the ring.
    pub fn capacity_words(&self) -> usize {
        self.shared.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn header(capture: u32, timestamp_ns: u64) -> RecordHeader {
        RecordHeader {
            capture,
            direction: Direction::Sent,
            captured_len: 0,
            original_len: 1514,
            timestamp_ns,
        }
    }

    #[test]
    fn capacity_must_be_a_power_of_two() {
        assert!(matches!(
            record_ring(0),
            Err(RingError::CapacityNotPowerOfTwo(0))
        ));
        assert!(record_ring(24).is_err());
        assert_eq!(record_ring(32).unwrap().0.capacity_words(), 32);
    }

    #[test]
    fn records_come_out_as_they_went_in() {
        let (mut producer, mut consumer) = record_ring(64).unwrap();
        assert_eq!(consumer.peek(), None);
        let frame: Vec<u8> = (0..13).collect();
        assert!(producer.push(header(7, 1_000), &frame));
        assert!(producer.push(
            RecordHeader {
                direction: Direction::Received,
                ..header(7, 2_000)
            },
            &[]
        ));
        let mut out = [0xffu8; 32];
        let (first, copied) = consumer.pop(&mut out).unwrap();
        assert_eq!(
            first,
            RecordHeader {
                captured_len: 13,
                ..header(7, 1_000)
            }
        );
        assert_eq!(&out[..copied], frame.as_slice());
        assert_eq!(first.words(), HEADER_WORDS + 2);
        let (second, copied) = consumer.pop(&mut out).unwrap();
        assert_eq!(
            (second.direction, second.timestamp_ns),
            (Direction::Received, 2_000)
        );
        assert_eq!(copied, 0);
        assert_eq!(consumer.pop(&mut out), None);
    }

    #[test]
    fn a_short_buffer_gets_the_front_of_the_record() {
        let (mut producer, mut consumer) = record_ring(64).unwrap();
        assert!(producer.push(header(1, 5), b"abcdefghijk"));
        assert!(producer.push(header(1, 6), b"z"));
        let mut out = [0u8; 3];
        let (_, copied) = consumer.pop(&mut out).unwrap();
        assert_eq!(&out[..copied], b"abc");
        // The whole first record left the ring.
        let (next, copied) = consumer.pop(&mut out).unwrap();
        assert_eq!((next.timestamp_ns, &out[..copied]), (6, &b"z"[..]));
    }

    #[test]
    fn a_full_ring_refuses_whole_records_and_records_wrap() {
        // 16 words: two records of 3 + 4 words fit, a third does not.
        let (mut producer, mut consumer) = record_ring(16).unwrap();
        let frame = [0x5au8; 32];
        assert!(producer.push(header(1, 1), &frame));
        assert!(producer.push(header(1, 2), &frame));
        assert!(!producer.push(header(1, 3), &frame));
        assert_eq!(consumer.skip().map(|header| header.timestamp_ns), Some(1));
        // Now 9 words are free: the record goes in, across the end.
        let wrapped: Vec<u8> = (100..132).collect();
        assert!(producer.push(header(1, 3), &wrapped));
        assert_eq!(consumer.skip().map(|header| header.timestamp_ns), Some(2));
        let mut out = [0u8; 64];
        let (third, copied) = consumer.pop(&mut out).unwrap();
        assert_eq!(third.timestamp_ns, 3);
        assert_eq!(&out[..copied], wrapped.as_slice());
        // A record larger than the ring never fits.
        assert!(!producer.push(header(1, 4), &[0u8; 200]));
    }

    #[test]
    fn clear_throws_away_what_was_published() {
        let (mut producer, mut consumer) = record_ring(32).unwrap();
        assert!(producer.push(header(1, 1), b"one"));
        assert!(producer.push(header(1, 2), b"two"));
        consumer.clear();
        assert_eq!(consumer.peek(), None);
        assert!(producer.push(header(2, 3), b"three"));
        assert_eq!(consumer.skip().map(|header| header.capture), Some(2));
    }

    #[test]
    fn long_frames_are_cut_at_the_largest_record() {
        let (mut producer, mut consumer) = record_ring(16_384).unwrap();
        let frame = alloc::vec![1u8; 70_000];
        assert!(producer.push(header(1, 1), &frame));
        assert_eq!(
            consumer.skip().map(|header| header.captured_len),
            Some(u16::MAX)
        );
    }

    #[test]
    fn records_cross_threads_whole_and_in_order() {
        let records: u32 = if cfg!(miri) { 200 } else { 20_000 };
        let (mut producer, mut consumer) = record_ring(64).unwrap();
        let sender = std::thread::spawn(move || {
            let mut next = 0u32;
            while next < records {
                let length = (next % 40) as usize;
                let bytes: Vec<u8> = (0..length)
                    .map(|index| (next as usize + index) as u8)
                    .collect();
                if producer.push(header(next, u64::from(next)), &bytes) {
                    next += 1;
                } else {
                    std::thread::yield_now();
                }
            }
        });
        let mut expected = 0u32;
        let mut out = [0u8; 64];
        while expected < records {
            let Some((header, copied)) = consumer.pop(&mut out) else {
                std::thread::yield_now();
                continue;
            };
            assert_eq!(
                (header.capture, header.timestamp_ns),
                (expected, u64::from(expected))
            );
            let bytes: Vec<u8> = (0..copied)
                .map(|index| (expected as usize + index) as u8)
                .collect();
            assert_eq!(&out[..copied], bytes.as_slice());
            assert_eq!(copied, (expected % 40) as usize);
            expected += 1;
        }
        sender.join().unwrap();
    }
}
