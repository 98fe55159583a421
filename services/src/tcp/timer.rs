//! `TimerWheel`: when each connection next needs attention (retransmit,
//! probe, app timeout), in one slot per millisecond of a ring: scheduling
//! and firing cost the same with ten connections as with ten thousand.
//!
//! Entries are lazy. A connection is in the wheel at most once per
//! deadline it was scheduled for; moving its deadline later leaves the
//! entry where it is (it fires early, finds nothing due and is scheduled
//! again), moving it earlier adds an entry and the old one, when it fires,
//! no longer matches the connection's deadline and is skipped.

use alloc::vec::Vec;

/// Slots in the ring: one per millisecond, a little over four seconds.
/// Later deadlines wait in the last slot of the horizon and are put back.
const SLOTS: usize = 4096;

/// A scheduled visit: the connection slot, its generation and the
/// deadline the entry was made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerEntry {
    /// The connection's slot.
    pub slot: u32,
    /// Its generation when scheduled.
    pub generation: u32,
    /// The deadline (milliseconds) the entry stands for.
    pub deadline_ms: u64,
}

/// The wheel.
#[derive(Debug)]
pub struct TimerWheel {
    slots: Vec<Vec<TimerEntry>>,
    /// Every slot before this millisecond has fired.
    next_ms: u64,
}

impl TimerWheel {
    /// An empty wheel starting at `now_ms`.
    pub fn new(now_ms: u64) -> Self {
        Self {
            slots: (0..SLOTS).map(|_| Vec::new()).collect(),
            next_ms: now_ms,
        }
    }

    /// Schedules `entry` (its `deadline_ms` in the past fires on the next
    /// advance).
    pub fn schedule(&mut self, entry: TimerEntry) {
        let at = entry
            .deadline_ms
            .clamp(self.next_ms, self.next_ms + SLOTS as u64 - 1);
        self.slots[(at % SLOTS as u64) as usize].push(entry);
    }

    /// Moves time to `now_ms` and hands every entry of the slots passed to
    /// `fire` (entries not yet due among them too: the horizon's; the
    /// caller reschedules what it still wants, after this returns).
    pub fn advance(&mut self, now_ms: u64, mut fire: impl FnMut(TimerEntry)) {
        // After a long pause, one turn of the ring covers every slot.
        let end = now_ms.min(self.next_ms + SLOTS as u64 - 1);
        while self.next_ms <= end {
            let index = (self.next_ms % SLOTS as u64) as usize;
            self.next_ms += 1;
            for entry in self.slots[index].drain(..) {
                fire(entry);
            }
        }
        self.next_ms = self.next_ms.max(now_ms + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(slot: u32, deadline_ms: u64) -> TimerEntry {
        TimerEntry {
            slot,
            generation: 0,
            deadline_ms,
        }
    }

    #[test]
    fn fires_in_deadline_order_and_only_when_due() {
        let mut wheel = TimerWheel::new(100);
        wheel.schedule(entry(1, 105));
        wheel.schedule(entry(2, 103));
        wheel.schedule(entry(3, 50));
        let mut fired = Vec::new();
        wheel.advance(102, |entry| fired.push(entry.slot));
        assert_eq!(fired, [3]);
        wheel.advance(110, |entry| fired.push(entry.slot));
        assert_eq!(fired, [3, 2, 1]);
    }

    #[test]
    fn far_deadlines_come_back_at_the_horizon() {
        let mut wheel = TimerWheel::new(0);
        wheel.schedule(entry(7, 10_000));
        let mut seen = Vec::new();
        wheel.advance(4094, |entry| seen.push(entry));
        assert!(seen.is_empty());
        wheel.advance(4095, |entry| seen.push(entry));
        assert_eq!(seen, [entry(7, 10_000)]);
        wheel.schedule(seen[0]);
        let mut again = Vec::new();
        wheel.advance(10_000, |entry| again.push(entry.slot));
        assert_eq!(again, [7]);
    }

    #[test]
    fn a_long_pause_fires_everything_once() {
        let mut wheel = TimerWheel::new(0);
        for slot in 0..100 {
            wheel.schedule(entry(slot, u64::from(slot) * 40));
        }
        let mut count = 0;
        wheel.advance(1_000_000, |_| count += 1);
        assert_eq!(count, 100);
    }
}
