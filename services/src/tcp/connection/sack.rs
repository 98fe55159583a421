//! Loss recovery with the peer's SACK blocks (RFC 2018, after RFC 6675):
//! a scoreboard of what the peer holds beyond our oldest unacknowledged
//! byte, recovery entered when three segments' worth lies beyond a hole
//! (whether or not the ACKs that said so carried data, which is what a
//! two-way stream's ACKs do), and the holes retransmitted one after the
//! other instead of one per round trip.

use super::*;

/// Ranges a scoreboard keeps; more SACKed ranges are merged into the last.
pub(super) const SCOREBOARD_RANGES: usize = 16;

/// Hole segments retransmitted per arriving ACK during recovery: each ACK
/// says about one segment left the network; two keep recovery ahead.
const HOLES_PER_ACK: usize = 2;

impl Connection {
    /// Takes the SACK blocks of an ACK into the scoreboard: blocks above
    /// the oldest unacknowledged byte and within what we sent, merged.
    pub(super) fn take_sack_blocks(&mut self, blocks: &crate::wire::tcp::SackBlocks) {
        for &(left, right) in blocks.as_slice() {
            let (left, right) = (Seq(left), Seq(right));
            if right <= left || left < self.snd_una || right > self.snd_max {
                // Old news (a D-SACK), or nonsense: ignored.
                continue;
            }
            self.mark_sacked(left, right);
        }
    }

    /// Adds `[left, right)` to the sorted, disjoint scoreboard.
    fn mark_sacked(&mut self, mut left: Seq, mut right: Seq) {
        let ranges = &mut self.sacked;
        let mut index = 0;
        while index < ranges.len() {
            let (start, end) = ranges[index];
            if end < left {
                index += 1;
            } else if start > right {
                break;
            } else {
                left = left.min_seq(start);
                right = right.max(end);
                ranges.remove(index);
            }
        }
        if ranges.is_full() {
            // Merge into the last range rather than lose the newest news.
            if let Some(last) = ranges.last_mut() {
                last.1 = last.1.max(right);
            }
            return;
        }
        ranges.insert(index, (left, right));
    }

    /// Forgets scoreboard ranges the cumulative ACK now covers.
    pub(super) fn trim_sacked(&mut self) {
        let una = self.snd_una;
        self.sacked.retain(|(_, end)| *end > una);
        if let Some(first) = self.sacked.first_mut()
            && first.0 < una
        {
            first.0 = una;
        }
    }

    /// Bytes the peer holds beyond our oldest unacknowledged one.
    fn sacked_bytes(&self) -> u32 {
        self.sacked.iter().map(|(start, end)| *end - *start).sum()
    }

    /// The first hole at or after `from`: its start and length (at most
    /// one MSS), below the highest SACKed byte.
    fn next_hole(&self, from: Seq) -> Option<(Seq, usize)> {
        let mut at = from.max(self.snd_una);
        for (start, end) in &self.sacked {
            if at < *start {
                let length = ((*start - at) as usize).min(self.payload_room());
                return Some((at, length));
            }
            at = at.max(*end);
        }
        None
    }

    /// Enters recovery (RFC 5681 3.2 / 6675 5): halve the window, note how
    /// far we had sent, retransmit from the first hole.
    pub(super) fn enter_recovery(&mut self, tally: &mut Tally) {
        let mss = u32::from(self.mss);
        let flight = self.snd_max - self.snd_una;
        self.ssthresh = (flight / 2).max(2 * mss);
        self.recover = self.snd_max;
        self.in_recovery = true;
        self.retransmit_next = self.snd_una;
        tally.bump(TcpEvent::FastRetransmits);
    }

    /// After an ACK with SACK in use: start recovery when three segments'
    /// worth lies beyond a hole, and during recovery retransmit the next
    /// holes. True when it retransmitted.
    pub(super) fn recover_with_sack(
        &mut self,
        now_ms: u64,
        config: &TcpConfig,
        sink: &mut dyn SegmentSink,
        tally: &mut Tally,
    ) -> bool {
        let mss = u32::from(self.mss);
        if !self.in_recovery {
            if self.sacked_bytes() < 3 * mss || self.snd_una < self.recover {
                return false;
            }
            self.enter_recovery(tally);
            self.cwnd = self.ssthresh;
        }
        let mut sent = false;
        for _ in 0..HOLES_PER_ACK {
            let Some((seq, length)) = self.next_hole(self.retransmit_next) else {
                break;
            };
            self.retransmit_range(seq, length, now_ms, config, sink, tally);
            self.retransmit_next = seq + length;
            sent = true;
        }
        sent
    }

    /// Sends `length` bytes from `seq` (within the send buffer) again.
    fn retransmit_range(
        &mut self,
        seq: Seq,
        length: usize,
        now_ms: u64,
        config: &TcpConfig,
        sink: &mut dyn SegmentSink,
        tally: &mut Tally,
    ) {
        let offset = (seq - self.snd_una) as usize;
        let length = length.min(self.send.len().saturating_sub(offset));
        if length == 0 {
            return;
        }
        let segment = Outgoing {
            seq,
            ack: self.rcv_nxt,
            flags: TcpFlags::ACK,
            window: self.window_field(config, false),
            options: self.options(now_ms),
            payload_offset: offset,
            payload_len: length,
        };
        // Karn: a retransmitted segment gives no sample.
        self.timed = None;
        self.transmit(&segment, sink, tally);
        self.rto_deadline_ms = now_ms + self.rtt.timeout_ms();
    }
}
