//! `ReceiveBuffer`: received bytes the app has not consumed yet, and
//! segments that arrived ahead of a gap, waiting for it to fill.

use super::seq::Seq;
use crate::wire::tcp::SackBlocks;
use alloc::vec::Vec;
use arrayvec::ArrayVec;

/// Most segments held out of order per connection; more are dropped (the
/// peer retransmits them). The bytes are bounded by the receive window
/// (segments beyond it are trimmed before they get here); this bounds the
/// bookkeeping: a 256 KiB window of 536-byte segments is 490.
const MAX_OUT_OF_ORDER: usize = 1024;

/// In-order bytes not yet consumed, then out-of-order segments by
/// sequence number.
#[derive(Debug, Default)]
pub struct ReceiveBuffer {
    /// In-order bytes the app has not consumed (or not been lent yet).
    unread: Vec<u8>,
    /// Segments after a gap: (first sequence number, bytes), sorted,
    /// not overlapping.
    out_of_order: Vec<(Seq, Vec<u8>)>,
    /// Bytes in `out_of_order`.
    out_of_order_bytes: usize,
    /// The first sequence number of the segment held last (its block
    /// goes first in our SACK option, RFC 2018 4).
    last_held: Option<Seq>,
}

impl ReceiveBuffer {
    /// Bytes held, in order or not: what the window shrinks by.
    pub fn held(&self) -> usize {
        self.unread.len() + self.out_of_order_bytes
    }

    /// In-order bytes waiting for the app.
    pub fn unread(&self) -> &[u8] {
        &self.unread
    }

    /// True when segments wait after a gap.
    pub fn has_gaps(&self) -> bool {
        !self.out_of_order.is_empty()
    }

    /// True when no in-order byte waits.
    pub fn is_empty(&self) -> bool {
        self.unread.is_empty()
    }

    /// Appends in-order bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.unread.extend_from_slice(bytes);
    }

    /// Forgets the first `count` in-order bytes (the app consumed them);
    /// a drained buffer gives its storage back.
    pub fn consume(&mut self, count: usize) {
        if count >= self.unread.len() {
            self.unread = Vec::new();
        } else {
            self.unread.drain(..count);
        }
    }

    /// Keeps `bytes` that start at `seq`, after a gap (ahead of `next`,
    /// the next expected number). Returns false when it was not kept.
    pub fn insert_out_of_order(&mut self, seq: Seq, bytes: &[u8]) -> bool {
        if bytes.is_empty() {
            return true;
        }
        let end = seq + bytes.len();
        // Skip what is already held: an exact or covering duplicate.
        let position = self
            .out_of_order
            .iter()
            .position(|(start, _)| *start >= seq)
            .unwrap_or(self.out_of_order.len());
        if let Some((start, held)) = position.checked_sub(1).map(|i| &self.out_of_order[i])
            && *start + held.len() >= end
        {
            return true;
        }
        if self.out_of_order.len() >= MAX_OUT_OF_ORDER {
            return false;
        }
        // Remove held segments the new one covers entirely.
        while position < self.out_of_order.len() {
            let (start, held) = &self.out_of_order[position];
            if *start + held.len() <= end {
                self.out_of_order_bytes -= held.len();
                self.out_of_order.remove(position);
            } else {
                break;
            }
        }
        self.out_of_order_bytes += bytes.len();
        self.out_of_order.insert(position, (seq, bytes.to_vec()));
        self.last_held = Some(seq);
        true
    }

    /// The SACK blocks for what is held after the gap (RFC 2018): runs of
    /// held segments as (left, right) edges, the run holding the segment
    /// kept last first, then the others in order, at most three.
    pub fn sack_blocks(&self) -> SackBlocks {
        let mut runs: ArrayVec<(Seq, Seq), 64> = ArrayVec::new();
        for (start, bytes) in &self.out_of_order {
            let end = *start + bytes.len();
            match runs.last_mut() {
                Some((_, right)) if *right >= *start => *right = (*right).max(end),
                _ => {
                    if runs.try_push((*start, end)).is_err() {
                        break;
                    }
                }
            }
        }
        let mut blocks = SackBlocks::default();
        let first = self.last_held.and_then(|last| {
            runs.iter()
                .position(|(left, right)| *left <= last && last < *right)
        });
        if let Some(index) = first {
            blocks.push(runs[index].0.0, runs[index].1.0);
        }
        for (index, (left, right)) in runs.iter().enumerate() {
            if Some(index) != first && !blocks.push(left.0, right.0) {
                break;
            }
        }
        blocks
    }

    /// Moves the held segments that `next` reaches into the in-order
    /// bytes, trimming overlaps; returns the new next expected number.
    pub fn reassemble(&mut self, mut next: Seq) -> Seq {
        while let Some((start, _)) = self.out_of_order.first() {
            if *start > next {
                break;
            }
            let (start, bytes) = self.out_of_order.remove(0);
            self.out_of_order_bytes -= bytes.len();
            let skip = (next - start) as usize;
            if skip < bytes.len() {
                self.unread.extend_from_slice(&bytes[skip..]);
                next = next + (bytes.len() - skip);
            }
        }
        next
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_fill_in_order_whatever_the_arrival_order() {
        let mut buffer = ReceiveBuffer::default();
        assert!(buffer.insert_out_of_order(Seq(20), b"cccc"));
        assert!(buffer.insert_out_of_order(Seq(10), b"bbbbbbbbbb"));
        assert!(buffer.insert_out_of_order(Seq(12), b"bb"), "duplicate");
        assert_eq!(buffer.held(), 14);
        buffer.push(b"aaaaaaaaaa");
        let next = buffer.reassemble(Seq(10));
        assert_eq!(next, Seq(24));
        assert_eq!(buffer.unread(), b"aaaaaaaaaabbbbbbbbbbcccc");
        buffer.consume(24);
        assert_eq!(buffer.held(), 0);
    }

    #[test]
    fn overlapping_segments_are_trimmed() {
        let mut buffer = ReceiveBuffer::default();
        assert!(buffer.insert_out_of_order(Seq(5), b"56789"));
        assert!(buffer.insert_out_of_order(Seq(3), b"3456789ab"));
        let next = buffer.reassemble(Seq(4));
        assert_eq!(buffer.unread(), b"456789ab");
        assert_eq!(next, Seq(12));
    }

    #[test]
    fn sack_blocks_put_the_latest_run_first() {
        let mut buffer = ReceiveBuffer::default();
        assert_eq!(buffer.sack_blocks().len, 0);
        buffer.insert_out_of_order(Seq(100), b"aaaa");
        buffer.insert_out_of_order(Seq(104), b"bbbb");
        buffer.insert_out_of_order(Seq(200), b"cc");
        buffer.insert_out_of_order(Seq(300), b"d");
        buffer.insert_out_of_order(Seq(210), b"e");
        assert_eq!(
            buffer.sack_blocks().as_slice(),
            &[(210, 211), (100, 108), (200, 202)]
        );
    }

    #[test]
    fn a_gap_still_open_keeps_the_segment() {
        let mut buffer = ReceiveBuffer::default();
        buffer.insert_out_of_order(Seq(100), b"x");
        assert_eq!(buffer.reassemble(Seq(50)), Seq(50));
        assert_eq!(buffer.held(), 1);
    }
}
