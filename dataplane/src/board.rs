//! `CountersBoard`: every core's counters in one place, for readers on any
//! core (the management plane's `/metrics`). Each core puts its executor's
//! counters up after building, and again when a new spec swaps its graph;
//! readers take a clone of the `Arc` under a short lock (never held by the
//! data path: a core touches the board only when it builds), then load the
//! counters with relaxed atomics and never stop or slow the core that
//! writes them.

use crate::stats::CoreCounters;
use alloc::sync::Arc;
use alloc::vec::Vec;
use spin::Mutex;

/// One slot per core.
#[derive(Debug)]
pub struct CountersBoard {
    cores: Vec<Mutex<Option<Arc<CoreCounters>>>>,
}

impl CountersBoard {
    /// A board for `cores` cores, none registered yet.
    pub fn new(cores: usize) -> Self {
        Self {
            cores: (0..cores).map(|_| Mutex::new(None)).collect(),
        }
    }

    /// Puts up core `core`'s counters, in place of those it had up (a
    /// core whose graph was swapped: the new counters go on from the old
    /// totals); a core past the board changes nothing.
    pub fn register(&self, core: usize, counters: Arc<CoreCounters>) {
        if let Some(slot) = self.cores.get(core) {
            *slot.lock() = Some(counters);
        }
    }

    /// Cores the board has room for.
    pub fn len(&self) -> usize {
        self.cores.len()
    }

    /// True for a board of no cores.
    pub fn is_empty(&self) -> bool {
        self.cores.is_empty()
    }

    /// The registered cores' counters, by core.
    pub fn cores(&self) -> impl Iterator<Item = (usize, Arc<CoreCounters>)> + use<> {
        let registered: Vec<(usize, Arc<CoreCounters>)> = self
            .cores
            .iter()
            .enumerate()
            .filter_map(|(core, slot)| slot.lock().clone().map(|counters| (core, counters)))
            .collect();
        registered.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_core_registers_again_in_place() {
        let board = CountersBoard::new(2);
        assert_eq!(board.cores().count(), 0);
        let first = Arc::new(CoreCounters::default());
        first.polls.add(3);
        board.register(1, Arc::new(CoreCounters::default()));
        board.register(1, first);
        board.register(5, Arc::new(CoreCounters::default()));
        let registered: Vec<(usize, u64)> = board
            .cores()
            .map(|(core, counters)| (core, counters.polls.get()))
            .collect();
        assert_eq!(registered, [(1, 3)]);
    }
}
