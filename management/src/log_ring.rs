//! `LogRing`: the newest log records, each a bounded message, kept in
//! memory for `GET /api/v1/logs` and shared by both platforms' loggers.
//!
//! A `spin::Mutex` guards the ring: logging is never on the data path
//! (STYLE.md habit 7 keeps it off the per-packet path), so a short lock
//! per record and per query costs nothing that matters. A writer that
//! cannot take the lock after a bounded spin (a fault handler logging on
//! top of a half-done append on the same core) drops its record and
//! counts it rather than deadlock.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU64, Ordering};
use spin::Mutex;

/// Records kept; the oldest is overwritten first.
pub const LOG_RING_ENTRIES: usize = 512;
/// Longest message kept, in bytes; a longer one is cut at a character
/// boundary.
pub const MESSAGE_BYTES: usize = 240;
/// Longest target kept, in bytes.
pub const TARGET_BYTES: usize = 48;
/// Tries at the lock before a writer gives up on its record.
const LOCK_TRIES: u32 = 1 << 16;

/// UTF-8 text of at most `N` bytes, cut at a character boundary.
#[derive(Clone, Copy)]
struct BoundedText<const N: usize> {
    bytes: [u8; N],
    len: usize,
}

impl<const N: usize> BoundedText<N> {
    const EMPTY: Self = Self {
        bytes: [0; N],
        len: 0,
    };

    fn as_str(&self) -> &str {
        // Only whole characters are ever copied in, so this never fails.
        core::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }
}

impl<const N: usize> Write for BoundedText<N> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let room = N - self.len;
        let mut take = text.len().min(room);
        while !text.is_char_boundary(take) {
            take -= 1;
        }
        self.bytes[self.len..self.len + take].copy_from_slice(&text.as_bytes()[..take]);
        self.len += take;
        Ok(())
    }
}

/// One stored record.
#[derive(Clone, Copy)]
struct Slot {
    seq: u64,
    time_ms: u64,
    level: log::Level,
    target: BoundedText<TARGET_BYTES>,
    message: BoundedText<MESSAGE_BYTES>,
}

impl Slot {
    const EMPTY: Self = Self {
        seq: 0,
        time_ms: 0,
        level: log::Level::Trace,
        target: BoundedText::EMPTY,
        message: BoundedText::EMPTY,
    };
}

/// A record as a query returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// Its sequence number: 1 for the first record ever, one more for each.
    pub seq: u64,
    /// The platform clock when it was logged, in milliseconds since boot
    /// (appliance) or process start (hosted).
    pub time_ms: u64,
    /// Its level.
    pub level: log::Level,
    /// Its `log` target (the module that logged it), bounded.
    pub target: String,
    /// Its message, bounded to [`MESSAGE_BYTES`].
    pub message: String,
}

/// What a query asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFilter<'a> {
    /// Only messages or targets that contain this (empty: any).
    pub contains: &'a str,
    /// Only records at least this severe.
    pub level: log::LevelFilter,
    /// Only records whose `seq` is greater.
    pub since: u64,
    /// At most this many, newest first.
    pub limit: usize,
}

/// What [`LogRing::follow`] found after a sequence number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Followed {
    /// The records after the filter's `since` that match it, oldest
    /// first, at most its `limit`.
    pub entries: Vec<LogEntry>,
    /// Records after `since` that were overwritten before this call: the
    /// follower never saw them (whether they matched is not known).
    pub lost: u64,
    /// The newest sequence number looked at: the `since` of the next call.
    pub cursor: u64,
    /// Records after `cursor` are in the ring already (the limit stopped
    /// the scan).
    pub more: bool,
}

struct Ring {
    slots: [Slot; LOG_RING_ENTRIES],
    /// Records ever pushed; the next goes to `pushed % LOG_RING_ENTRIES`
    /// with `seq == pushed + 1`.
    pushed: u64,
}

/// The newest [`LOG_RING_ENTRIES`] log records.
pub struct LogRing {
    ring: Mutex<Ring>,
    dropped: AtomicU64,
}

impl Default for LogRing {
    fn default() -> Self {
        Self::new()
    }
}

impl LogRing {
    /// An empty ring (const, for a `static`).
    pub const fn new() -> Self {
        Self {
            ring: Mutex::new(Ring {
                slots: [Slot::EMPTY; LOG_RING_ENTRIES],
                pushed: 0,
            }),
            dropped: AtomicU64::new(0),
        }
    }

    /// Appends a record, overwriting the oldest when full.
    pub fn push(&self, time_ms: u64, level: log::Level, target: &str, message: fmt::Arguments<'_>) {
        let mut slot = Slot {
            level,
            time_ms,
            ..Slot::EMPTY
        };
        let _ = slot.target.write_str(target);
        let _ = slot.message.write_fmt(message);
        let mut tries = 0;
        let mut ring = loop {
            if let Some(ring) = self.ring.try_lock() {
                break ring;
            }
            tries += 1;
            if tries == LOCK_TRIES {
                // Ordering: Relaxed: a statistic, read on its own.
                self.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            core::hint::spin_loop();
        };
        ring.pushed += 1;
        slot.seq = ring.pushed;
        let index = ((ring.pushed - 1) % LOG_RING_ENTRIES as u64) as usize;
        ring.slots[index] = slot;
    }

    /// Appends a `log` record.
    pub fn push_record(&self, time_ms: u64, record: &log::Record<'_>) {
        self.push(time_ms, record.level(), record.target(), *record.args());
    }

    /// Records dropped because the ring's lock stayed taken.
    pub fn dropped(&self) -> u64 {
        // Ordering: Relaxed: a statistic.
        self.dropped.load(Ordering::Relaxed)
    }

    /// The sequence number of the newest record (0: none yet).
    pub fn newest_seq(&self) -> u64 {
        self.ring.lock().pushed
    }

    /// The records `filter` asks for, newest first, and the newest
    /// sequence number in the ring.
    pub fn query(&self, filter: &LogFilter<'_>) -> (Vec<LogEntry>, u64) {
        let mut found = Vec::new();
        let ring = self.ring.lock();
        let kept = ring.pushed.min(LOG_RING_ENTRIES as u64);
        for seq in (ring.pushed - kept + 1..=ring.pushed).rev() {
            if seq <= filter.since || found.len() >= filter.limit {
                break;
            }
            let slot = &ring.slots[((seq - 1) % LOG_RING_ENTRIES as u64) as usize];
            found.extend(matching(slot, filter));
        }
        (found, ring.pushed)
    }

    /// The records after `filter.since` that match it, oldest first (at
    /// most `filter.limit`), for a follower that saw everything up to
    /// `since`: what it missed to the ring's overwriting, and where to
    /// go on from. A `since` newer than the newest record finds nothing.
    pub fn follow(&self, filter: &LogFilter<'_>) -> Followed {
        let mut followed = Followed {
            entries: Vec::new(),
            lost: 0,
            cursor: filter.since,
            more: false,
        };
        let ring = self.ring.lock();
        let kept = ring.pushed.min(LOG_RING_ENTRIES as u64);
        let oldest = ring.pushed - kept + 1;
        let mut next = filter.since.saturating_add(1);
        if next < oldest {
            followed.lost = oldest - next;
            followed.cursor = oldest - 1;
            next = oldest;
        }
        // At most `LOG_RING_ENTRIES` records are looked at.
        for seq in next..=ring.pushed {
            if followed.entries.len() >= filter.limit {
                followed.more = true;
                break;
            }
            followed.cursor = seq;
            let slot = &ring.slots[((seq - 1) % LOG_RING_ENTRIES as u64) as usize];
            if let Some(entry) = matching(slot, filter) {
                followed.entries.push(entry);
            }
        }
        followed
    }
}

/// The slot as an entry, when it matches `filter`'s level and text.
fn matching(slot: &Slot, filter: &LogFilter<'_>) -> Option<LogEntry> {
    if slot.level > filter.level {
        return None;
    }
    let (target, message) = (slot.target.as_str(), slot.message.as_str());
    if !filter.contains.is_empty()
        && !message.contains(filter.contains)
        && !target.contains(filter.contains)
    {
        return None;
    }
    Some(LogEntry {
        seq: slot.seq,
        time_ms: slot.time_ms,
        level: slot.level,
        target: String::from(target),
        message: String::from(message),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::boxed::Box;
    use alloc::format;

    fn filter(contains: &str, level: log::LevelFilter, since: u64, limit: usize) -> LogFilter<'_> {
        LogFilter {
            contains,
            level,
            since,
            limit,
        }
    }

    fn ring() -> Box<LogRing> {
        Box::new(LogRing::new())
    }

    #[test]
    fn wraps_around_oldest_first() {
        let ring = ring();
        let total = LOG_RING_ENTRIES as u64 + 10;
        for index in 1..=total {
            ring.push(index, log::Level::Info, "t", format_args!("line {index}"));
        }
        let (entries, newest) = ring.query(&filter("", log::LevelFilter::Trace, 0, usize::MAX));
        assert_eq!(newest, total);
        assert_eq!(entries.len(), LOG_RING_ENTRIES);
        assert_eq!(entries[0].seq, total);
        assert_eq!(entries[0].message, format!("line {total}"));
        assert_eq!(entries.last().unwrap().seq, 11);
        assert!(
            entries
                .windows(2)
                .all(|pair| pair[0].seq == pair[1].seq + 1)
        );
    }

    #[test]
    fn filters_by_text_level_since_and_limit() {
        let ring = ring();
        ring.push(1, log::Level::Error, "net", format_args!("link down"));
        ring.push(2, log::Level::Info, "net", format_args!("link up"));
        ring.push(3, log::Level::Debug, "tcp", format_args!("accepted"));
        ring.push(4, log::Level::Warn, "tcp", format_args!("retransmit"));
        let seqs = |filter: LogFilter<'_>| -> Vec<u64> {
            ring.query(&filter)
                .0
                .iter()
                .map(|entry| entry.seq)
                .collect()
        };
        assert_eq!(
            seqs(filter("", log::LevelFilter::Trace, 0, 100)),
            [4, 3, 2, 1]
        );
        assert_eq!(
            seqs(filter("link", log::LevelFilter::Trace, 0, 100)),
            [2, 1]
        );
        assert_eq!(seqs(filter("tcp", log::LevelFilter::Trace, 0, 100)), [4, 3]);
        assert_eq!(seqs(filter("", log::LevelFilter::Warn, 0, 100)), [4, 1]);
        assert_eq!(seqs(filter("", log::LevelFilter::Trace, 2, 100)), [4, 3]);
        assert_eq!(seqs(filter("", log::LevelFilter::Trace, 0, 2)), [4, 3]);
        assert_eq!(
            seqs(filter("", log::LevelFilter::Trace, 4, 100)),
            [] as [u64; 0]
        );
        assert_eq!(
            seqs(filter("nothing", log::LevelFilter::Trace, 0, 100)),
            [] as [u64; 0]
        );
    }

    #[test]
    fn long_messages_are_cut_at_a_character_boundary() {
        let ring = ring();
        let long = "é".repeat(MESSAGE_BYTES);
        ring.push(
            0,
            log::Level::Info,
            &"x".repeat(100),
            format_args!("{long}"),
        );
        let (entries, _) = ring.query(&filter("", log::LevelFilter::Trace, 0, 1));
        assert_eq!(entries[0].message.len(), MESSAGE_BYTES);
        assert!(entries[0].message.chars().all(|character| character == 'é'));
        assert_eq!(entries[0].target.len(), TARGET_BYTES);
    }

    #[test]
    fn a_follower_gets_what_came_after_its_cursor_oldest_first() {
        let ring = ring();
        let follow =
            |contains, level, since, limit| ring.follow(&filter(contains, level, since, limit));
        let empty = follow("", log::LevelFilter::Trace, 0, 10);
        assert_eq!(
            (empty.entries.len(), empty.lost, empty.cursor, empty.more),
            (0, 0, 0, false)
        );
        for index in 1..=5 {
            let level = if index % 2 == 0 {
                log::Level::Warn
            } else {
                log::Level::Info
            };
            ring.push(index, level, "t", format_args!("line {index}"));
        }
        let seqs = |followed: &Followed| {
            followed
                .entries
                .iter()
                .map(|entry| entry.seq)
                .collect::<Vec<_>>()
        };
        let all = follow("", log::LevelFilter::Trace, 0, 10);
        assert_eq!(
            (seqs(&all), all.cursor, all.more),
            (vec![1, 2, 3, 4, 5], 5, false)
        );
        let first = follow("", log::LevelFilter::Trace, 1, 2);
        assert_eq!(
            (seqs(&first), first.cursor, first.more),
            (vec![2, 3], 3, true)
        );
        // Filtered records move the cursor too.
        let warnings = follow("", log::LevelFilter::Warn, 0, 10);
        assert_eq!((seqs(&warnings), warnings.cursor), (vec![2, 4], 5));
        let text = follow("line 3", log::LevelFilter::Trace, 0, 1);
        assert_eq!((seqs(&text), text.cursor, text.more), (vec![3], 3, true));
        let ahead = follow("", log::LevelFilter::Trace, 9, 10);
        assert_eq!((ahead.entries.len(), ahead.cursor), (0, 9));
    }

    #[test]
    fn a_follower_left_behind_is_told_how_many_it_lost() {
        let ring = ring();
        let total = LOG_RING_ENTRIES as u64 + 30;
        for index in 1..=total {
            ring.push(index, log::Level::Info, "t", format_args!("line {index}"));
        }
        let followed = ring.follow(&filter("", log::LevelFilter::Trace, 10, 3));
        // 11..=30 were overwritten; 31 is the oldest kept.
        assert_eq!(followed.lost, 20);
        assert_eq!(followed.entries[0].seq, 31);
        assert_eq!(followed.cursor, 33);
        let caught_up = ring.follow(&filter("", log::LevelFilter::Trace, 33, usize::MAX));
        assert_eq!(caught_up.lost, 0);
        assert_eq!(caught_up.entries.len() as u64, total - 33);
    }

    #[test]
    fn a_writer_that_cannot_lock_drops_and_counts() {
        let ring = ring();
        let held = ring.ring.lock();
        ring.push(0, log::Level::Info, "t", format_args!("lost"));
        drop(held);
        assert_eq!(ring.dropped(), 1);
        assert_eq!(ring.newest_seq(), 0);
    }
}
