//! `FlowDirectory`: which core owns which connection, shared by every
//! core's TCP stack, so that a segment arriving on a core that does not
//! own its connection is counted (`wrong-core`) and dropped rather than
//! answered with a RST that would kill the connection where it lives.
//!
//! It is a direct-mapped table of atomics: a core writes its connections'
//! entries when they open and clears them when they end (one relaxed
//! store each, never per segment), and reads one only for a segment that
//! matched no connection of its own. Two connections may share a slot:
//! the later one overwrites, and the table then under-counts. It answers
//! "who owns this", never "is it owned": a miss is only a miss.

use super::connection::FourTuple;
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::hash::BuildHasher;
use core::sync::atomic::{AtomicU64, Ordering};
use foldhash::fast::FixedState;

/// Slots: 64 Ki, 512 KiB for the whole appliance.
const SLOTS: usize = 1 << 16;

/// The shared table.
#[derive(Debug)]
pub struct FlowDirectory {
    /// Per slot: the connection's hash tag (high 32 bits) and its core
    /// plus one (low 32 bits); 0 is empty.
    slots: Box<[AtomicU64]>,
    hasher: FixedState,
}

impl Default for FlowDirectory {
    fn default() -> Self {
        Self::new()
    }
}

impl FlowDirectory {
    /// An empty directory. Every core must hash alike, so the seed is
    /// fixed: a peer that chooses colliding addresses can only blur a
    /// counter.
    pub fn new() -> Self {
        let slots: Vec<AtomicU64> = (0..SLOTS).map(|_| AtomicU64::new(0)).collect();
        Self {
            slots: slots.into_boxed_slice(),
            hasher: FixedState::with_seed(0x7763_7466_6c6f_7773),
        }
    }

    /// The slot and the entry `core` writes there for `tuple`.
    fn entry(&self, tuple: &FourTuple, core: usize) -> (usize, u64) {
        let hash = self.hasher.hash_one(tuple);
        let slot = (hash as usize) & (SLOTS - 1);
        let tag = (hash >> 32) | 1;
        (slot, tag << 32 | (core as u64 + 1))
    }

    /// Records that `core` owns `tuple`.
    pub fn claim(&self, tuple: &FourTuple, core: usize) {
        let (slot, entry) = self.entry(tuple, core);
        // Relaxed: the entry is a hint for a counter; nothing is published
        // through it.
        self.slots[slot].store(entry, Ordering::Relaxed);
    }

    /// Forgets `core`'s claim on `tuple`, unless another connection has
    /// taken the slot since.
    pub fn release(&self, tuple: &FourTuple, core: usize) {
        let (slot, entry) = self.entry(tuple, core);
        let _ = self.slots[slot].compare_exchange(entry, 0, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// The core that claimed `tuple`, if the slot still says so.
    pub fn owner(&self, tuple: &FourTuple) -> Option<usize> {
        let (slot, probe) = self.entry(tuple, 0);
        let entry = self.slots[slot].load(Ordering::Relaxed);
        let core = entry & 0xffff_ffff;
        (entry >> 32 == probe >> 32 && core != 0).then(|| (core - 1) as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, SocketAddrV4};

    fn tuple(port: u16) -> FourTuple {
        FourTuple {
            local: SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 80),
            remote: SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), port),
        }
    }

    #[test]
    fn claims_name_their_core_until_released() {
        let directory = FlowDirectory::new();
        assert_eq!(directory.owner(&tuple(1)), None);
        directory.claim(&tuple(1), 1);
        directory.claim(&tuple(2), 0);
        assert_eq!(directory.owner(&tuple(1)), Some(1));
        assert_eq!(directory.owner(&tuple(2)), Some(0));
        directory.release(&tuple(1), 0);
        assert_eq!(
            directory.owner(&tuple(1)),
            Some(1),
            "only the owner releases"
        );
        directory.release(&tuple(1), 1);
        assert_eq!(directory.owner(&tuple(1)), None);
    }
}
