//! `TimerWheel`: when each connection next needs attention (retransmit,
//! probe, app timeout), in one slot per millisecond of a ring: scheduling
//! and firing cost the same with ten connections as with ten thousand.
//!
//! Entries are lazy. A connection is in the wheel at most once per
//! deadline it was scheduled for; moving its deadline later leaves the
//! entry where it is (it fires early, finds nothing due and is scheduled
//! again), moving it earlier adds an entry and the old one, when it fires,
//! no longer matches the connection's deadline and is skipped.
//!
//! A bitmap of the slots that hold entries finds the next one to fire in
//! 64 word tests at most ([`TimerWheel::next_due_ms`]): what an idle core
//! arms its one-shot timer for.

use alloc::vec::Vec;

/// Slots in the ring: one per millisecond, a little over four seconds.
/// Later deadlines wait in the last slot of the horizon and are put back.
const SLOTS: usize = 4096;
/// Words of the bitmap of occupied slots.
const WORDS: usize = SLOTS / 64;

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
    /// Bit `i % 64` of word `i / 64` is set when slot `i` holds entries.
    occupied: [u64; WORDS],
    /// Every slot before this millisecond has fired; every entry is in a
    /// slot of `next_ms..next_ms + SLOTS`.
    next_ms: u64,
}

impl TimerWheel {
    /// An empty wheel starting at `now_ms`.
    pub fn new(now_ms: u64) -> Self {
        Self {
            slots: (0..SLOTS).map(|_| Vec::new()).collect(),
            occupied: [0; WORDS],
            next_ms: now_ms,
        }
    }

    /// Schedules `entry` (its `deadline_ms` in the past fires on the next
    /// advance).
    pub fn schedule(&mut self, entry: TimerEntry) {
        let at = entry
            .deadline_ms
            .clamp(self.next_ms, self.next_ms + SLOTS as u64 - 1);
        let index = (at % SLOTS as u64) as usize;
        self.slots[index].push(entry);
        self.occupied[index / 64] |= 1 << (index % 64);
    }

    /// The millisecond of the next slot with entries (they fire once the
    /// clock's millisecond reaches it), `None` when the wheel is empty.
    /// It may be early: an entry whose connection moved its deadline later
    /// still sits there.
    pub fn next_due_ms(&self) -> Option<u64> {
        let start = (self.next_ms % SLOTS as u64) as usize;
        let (first_word, first_bit) = (start / 64, start % 64);
        // The words from `start` on, round the ring, and back to the bits
        // before `start` in its own word.
        for step in 0..=WORDS {
            let word_index = (first_word + step) % WORDS;
            let mut word = self.occupied[word_index];
            if step == 0 {
                word &= u64::MAX << first_bit;
            } else if step == WORDS {
                word &= (1u64 << first_bit) - 1;
            }
            if word != 0 {
                let index = word_index * 64 + word.trailing_zeros() as usize;
                let distance = (index + SLOTS - start) % SLOTS;
                return Some(self.next_ms + distance as u64);
            }
        }
        None
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
            if self.occupied[index / 64] & (1 << (index % 64)) == 0 {
                continue;
            }
            self.occupied[index / 64] &= !(1 << (index % 64));
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
    fn the_next_due_slot_is_found_round_the_ring() {
        let mut wheel = TimerWheel::new(4000);
        assert_eq!(wheel.next_due_ms(), None);
        // Past the end of the array: slot 4500 % 4096 = 404, before `next_ms`'s.
        wheel.schedule(entry(1, 4500));
        assert_eq!(wheel.next_due_ms(), Some(4500));
        wheel.schedule(entry(2, 4001));
        assert_eq!(wheel.next_due_ms(), Some(4001));
        // In the past: fires on the next advance, due now.
        wheel.schedule(entry(3, 10));
        assert_eq!(wheel.next_due_ms(), Some(4000));
        let mut fired = Vec::new();
        wheel.advance(4001, |entry| fired.push(entry.slot));
        assert_eq!(fired, [3, 2]);
        assert_eq!(wheel.next_due_ms(), Some(4500));
        // Beyond the horizon: due at the horizon's last slot.
        wheel.schedule(entry(4, 100_000));
        assert_eq!(wheel.next_due_ms(), Some(4500));
        wheel.advance(4500, |entry| fired.push(entry.slot));
        assert_eq!(wheel.next_due_ms(), Some(4002 + SLOTS as u64 - 1));
        // In `next_ms`'s word, before its bit (slot 65 against 70): found
        // after the whole turn.
        let mut wheel = TimerWheel::new(70);
        wheel.schedule(entry(5, 4161));
        assert_eq!(wheel.next_due_ms(), Some(4161));
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
