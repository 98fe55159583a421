//! `Seq`: a TCP sequence number, compared modulo 2^32 (RFC 9293 3.4).

use core::cmp::Ordering;
use core::ops::{Add, Sub};

/// A sequence number. Two numbers compare by the sign of their wrapping
/// difference, which is right while they are within 2^31 of each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Seq(pub u32);

impl Seq {
    /// The larger of two numbers.
    pub fn max(self, other: Self) -> Self {
        if self > other { self } else { other }
    }

    /// The smaller of two numbers.
    pub fn min_seq(self, other: Self) -> Self {
        if self < other { self } else { other }
    }
}

impl PartialOrd for Seq {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Seq {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.0.wrapping_sub(other.0) as i32).cmp(&0)
    }
}

impl Add<u32> for Seq {
    type Output = Seq;
    fn add(self, count: u32) -> Seq {
        Seq(self.0.wrapping_add(count))
    }
}

impl Add<usize> for Seq {
    type Output = Seq;
    fn add(self, count: usize) -> Seq {
        Seq(self.0.wrapping_add(count as u32))
    }
}

impl Sub for Seq {
    type Output = u32;
    /// The distance from `other` up to `self` (callers make sure `self`
    /// is not before `other`).
    fn sub(self, other: Seq) -> u32 {
        self.0.wrapping_sub(other.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_across_the_wrap() {
        assert!(Seq(u32::MAX) < Seq(0));
        assert!(Seq(5) > Seq(u32::MAX - 5));
        assert_eq!(Seq(3) - Seq(u32::MAX), 4);
        assert_eq!(Seq(u32::MAX) + 2u32, Seq(1));
        assert_eq!(Seq(1).max(Seq(u32::MAX)), Seq(1));
    }
}
