//! `CountersBoard`: every core's counters in one place, for readers on any
//! core (the management plane's `/metrics`). Each core puts its executor's
//! counters up after building, and again when a new spec swaps its graph;
//! readers take a clone of the `Arc` under a short lock (never held by the
//! data path: a core touches the board only when it builds), then load the
//! counters with relaxed atomics and never stop or slow the core that
//! writes them.

use crate::nic::NicCounters;
use crate::stats::CoreCounters;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use spin::Mutex;

/// A queue's driver counters on the board: its core, its name (like
/// `igb0.q1`) and the counters.
pub type NicEntry = (usize, String, Arc<dyn NicCounters>);

/// One slot per core, and the NIC queues' counters.
#[derive(Debug)]
pub struct CountersBoard {
    cores: Vec<Mutex<Option<Arc<CoreCounters>>>>,
    nics: Mutex<Vec<NicEntry>>,
}

impl CountersBoard {
    /// A board for `cores` cores, none registered yet.
    pub fn new(cores: usize) -> Self {
        Self {
            cores: (0..cores).map(|_| Mutex::new(None)).collect(),
            nics: Mutex::new(Vec::new()),
        }
    }

    /// Puts up the driver counters of queue `name` on core `core`, in
    /// place of those of the same core and name.
    pub fn register_nic(&self, core: usize, name: &str, counters: Arc<dyn NicCounters>) {
        let mut nics = self.nics.lock();
        match nics
            .iter_mut()
            .find(|(at, named, _)| *at == core && named == name)
        {
            Some(entry) => entry.2 = counters,
            None => nics.push((core, String::from(name), counters)),
        }
    }

    /// The registered NIC queues' counters, in registration order.
    pub fn nics(&self) -> Vec<NicEntry> {
        self.nics.lock().clone()
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

    #[derive(Debug)]
    struct Fixed(u64);

    impl NicCounters for Fixed {
        fn counter_entries(&self) -> Vec<(&'static str, u64)> {
            alloc::vec![("rx_packets", self.0)]
        }
    }

    #[test]
    fn a_nic_queue_registers_again_in_place() {
        let board = CountersBoard::new(2);
        board.register_nic(0, "igb0.q0", Arc::new(Fixed(1)));
        board.register_nic(1, "igb0.q1", Arc::new(Fixed(2)));
        board.register_nic(0, "igb0.q0", Arc::new(Fixed(3)));
        let seen: Vec<(usize, String, u64)> = board
            .nics()
            .into_iter()
            .map(|(core, name, counters)| (core, name, counters.counter_entries()[0].1))
            .collect();
        assert_eq!(seen, [(0, "igb0.q0".into(), 3), (1, "igb0.q1".into(), 2)]);
    }
}
