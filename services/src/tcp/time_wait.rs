//! `TimeWaitTable`: connections in TIME-WAIT, kept as a few numbers each
//! (no buffers, no app state) for 2 MSL, oldest first out.

use super::connection::FourTuple;
use super::seq::Seq;
use alloc::collections::VecDeque;
use core::hash::BuildHasher;
use hashbrown::HashMap;

/// What a connection in TIME-WAIT keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWaitEntry {
    /// Our next sequence number (for the ACKs we send).
    pub snd_nxt: Seq,
    /// The next sequence number we expected (the peer's FIN + 1).
    pub rcv_nxt: Seq,
    /// The peer's last timestamp, when timestamps were in use.
    pub ts_recent: Option<u32>,
    /// When the entry ends.
    pub expires_ms: u64,
}

/// The table, with expiry in arrival order (every entry lives as long).
#[derive(Debug)]
pub struct TimeWaitTable<S: BuildHasher> {
    entries: HashMap<FourTuple, TimeWaitEntry, S>,
    order: VecDeque<(FourTuple, u64)>,
    capacity: usize,
}

impl<S: BuildHasher> TimeWaitTable<S> {
    /// An empty table holding at most `capacity` entries.
    pub fn new(capacity: usize, hasher: S) -> Self {
        Self {
            entries: HashMap::with_hasher(hasher),
            order: VecDeque::new(),
            capacity,
        }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when none is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds an entry; returns true when the oldest had to make room.
    pub fn insert(&mut self, tuple: FourTuple, entry: TimeWaitEntry) -> bool {
        let mut recycled = false;
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&tuple) {
            while let Some((oldest, _)) = self.order.pop_front() {
                if self.entries.remove(&oldest).is_some() {
                    recycled = true;
                    break;
                }
            }
        }
        self.entries.insert(tuple, entry);
        self.order.push_back((tuple, entry.expires_ms));
        recycled
    }

    /// The entry for `tuple`.
    pub fn get(&self, tuple: &FourTuple) -> Option<&TimeWaitEntry> {
        self.entries.get(tuple)
    }

    /// Removes the entry for `tuple` (a new connection reuses it).
    pub fn remove(&mut self, tuple: &FourTuple) {
        self.entries.remove(tuple);
    }

    /// When the oldest entry's time is up (milliseconds), if any: the
    /// next [`expire`](Self::expire) with something to do. Entries leave
    /// in arrival order and all live as long.
    pub fn next_expiry_ms(&self) -> Option<u64> {
        self.order.front().map(|(_, expires_ms)| *expires_ms)
    }

    /// Forgets entries whose time is up.
    pub fn expire(&mut self, now_ms: u64) {
        while let Some((tuple, expires_ms)) = self.order.front().copied() {
            if expires_ms > now_ms {
                break;
            }
            self.order.pop_front();
            if self
                .entries
                .get(&tuple)
                .is_some_and(|entry| entry.expires_ms == expires_ms)
            {
                self.entries.remove(&tuple);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, SocketAddrV4};
    use hashbrown::DefaultHashBuilder;

    fn tuple(port: u16) -> FourTuple {
        FourTuple {
            local: SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 80),
            remote: SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), port),
        }
    }

    fn entry(expires_ms: u64) -> TimeWaitEntry {
        TimeWaitEntry {
            snd_nxt: Seq(1),
            rcv_nxt: Seq(2),
            ts_recent: None,
            expires_ms,
        }
    }

    #[test]
    fn entries_expire_in_order_and_the_oldest_is_recycled_when_full() {
        let mut table = TimeWaitTable::new(2, DefaultHashBuilder::default());
        assert_eq!(table.next_expiry_ms(), None);
        assert!(!table.insert(tuple(1), entry(100)));
        assert_eq!(table.next_expiry_ms(), Some(100));
        assert!(!table.insert(tuple(2), entry(200)));
        assert!(table.insert(tuple(3), entry(300)));
        assert!(table.get(&tuple(1)).is_none());
        assert_eq!(table.next_expiry_ms(), Some(200));
        table.expire(250);
        assert_eq!(table.next_expiry_ms(), Some(300));
        assert!(table.get(&tuple(2)).is_none());
        assert!(table.get(&tuple(3)).is_some());
        // Re-entered: the old expiry does not remove the new entry.
        table.insert(tuple(3), entry(900));
        table.expire(300);
        assert_eq!(table.len(), 1);
        table.expire(900);
        assert!(table.is_empty());
    }
}
