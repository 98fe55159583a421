//! `Store`: one shard's items: a hash table of slab indexes, the slab of
//! items, and their recency ([`Lru`]) for eviction under a memory limit.
//!
//! Time is whole seconds of the platform clock, which starts at boot: we
//! have no wall clock. An exptime of 0 never expires; a negative one has
//! expired already; up to 30 days (2,592,000 s) it counts from now; above
//! that memcached reads a Unix time, and we read it as seconds since the
//! clock's zero (boot), the epoch we have.

use super::command::{Direction, StoreMode};
use super::hash::key_hash;
use super::lru::Lru;
use alloc::boxed::Box;
use alloc::vec::Vec;
use hashbrown::HashTable;

/// Bytes an item costs beyond its key and value: the slab slot, its LRU
/// links, the table slot and the allocators' headers, roughly.
pub const ITEM_OVERHEAD: usize = 96;
/// Longest relative exptime; larger ones are absolute times.
const RELATIVE_EXPTIME_LIMIT: i64 = 30 * 24 * 60 * 60;
/// A deadline that never comes.
const NEVER: u64 = u64::MAX;

/// One stored item.
#[derive(Debug)]
pub struct Item {
    /// The key.
    pub key: Box<[u8]>,
    /// The data block.
    pub value: Vec<u8>,
    /// The client's opaque flags.
    pub flags: u32,
    /// The cas unique, new at every change.
    pub cas: u64,
    /// The second from which the item is gone ([`NEVER`]).
    deadline: u64,
    /// The second it was last stored (for a delayed `flush_all`).
    stored_at: u64,
}

impl Item {
    /// Bytes counted against the memory limit.
    fn size(&self) -> usize {
        item_size(self.key.len(), self.value.len())
    }
}

/// Bytes an item with this key and value costs.
pub fn item_size(key: usize, value: usize) -> usize {
    key + value + ITEM_OVERHEAD
}

/// What a storage command did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOutcome {
    /// Stored.
    Stored,
    /// The condition failed (`add` of a present key, `replace`, `append`,
    /// `prepend` of an absent one).
    NotStored,
    /// `cas`: the item changed since.
    Exists,
    /// `cas`: no such item.
    NotFound,
    /// Larger than the item limit.
    TooLarge,
}

/// What `incr`/`decr` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArithmeticOutcome {
    /// The new value.
    Value(u64),
    /// No such item.
    NotFound,
    /// The value is not a decimal number.
    NonNumeric,
}

/// One shard's counters, as `stats` sums them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StoreCounters {
    /// Keys asked for by get/gets.
    pub cmd_get: u64,
    /// Of those, found.
    pub get_hits: u64,
    /// Of those, not found.
    pub get_misses: u64,
    /// Storage commands.
    pub cmd_set: u64,
    /// Items stored since start.
    pub total_items: u64,
    /// Live items evicted to make room.
    pub evictions: u64,
    /// Expired items reclaimed.
    pub reclaimed: u64,
}

/// One shard's items under a memory limit.
#[derive(Debug)]
pub struct Store {
    table: HashTable<u32>,
    slab: Vec<Option<Item>>,
    free: Vec<u32>,
    lru: Lru,
    bytes: usize,
    memory_bytes: usize,
    max_item_bytes: usize,
    last_cas: u64,
    /// A delayed `flush_all`: from this second on, items stored before it
    /// are gone.
    flush_at: Option<u64>,
    counters: StoreCounters,
}

impl Store {
    /// An empty shard holding at most `memory_bytes` of items, each at most
    /// `max_item_bytes` (key, value and overhead counted).
    pub fn new(memory_bytes: usize, max_item_bytes: usize) -> Self {
        Self {
            table: HashTable::new(),
            slab: Vec::new(),
            free: Vec::new(),
            lru: Lru::new(),
            bytes: 0,
            memory_bytes,
            max_item_bytes,
            last_cas: 0,
            flush_at: None,
            counters: StoreCounters::default(),
        }
    }

    /// Items held (expired ones not yet reclaimed included).
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// True when no item is held.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Bytes held, as counted against the limit.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The memory limit.
    pub fn memory_bytes(&self) -> usize {
        self.memory_bytes
    }

    /// The counters.
    pub fn counters(&self) -> StoreCounters {
        self.counters
    }

    /// The deadline of `exptime` read at second `now` (see the module).
    pub fn deadline(exptime: i64, now: u64) -> u64 {
        match exptime {
            0 => NEVER,
            negative if negative < 0 => 0,
            relative if relative <= RELATIVE_EXPTIME_LIMIT => now + relative as u64,
            absolute => absolute as u64,
        }
    }

    /// The live item under `key`, made most recently used; counts a get.
    pub fn get(&mut self, key: &[u8], now: u64) -> Option<&Item> {
        self.counters.cmd_get += 1;
        let Some(index) = self.find(key, now) else {
            self.counters.get_misses += 1;
            return None;
        };
        self.counters.get_hits += 1;
        self.lru.touch(index);
        self.slab[index as usize].as_ref()
    }

    /// Runs a storage command with the data block `data`.
    pub fn store(
        &mut self,
        mode: StoreMode,
        key: &[u8],
        flags: u32,
        exptime: i64,
        data: &[u8],
        now: u64,
    ) -> StoreOutcome {
        self.counters.cmd_set += 1;
        let present = self.find(key, now);
        let old = present.and_then(|index| self.slab[index as usize].as_ref());
        let value: Vec<u8> = match (mode, old) {
            (StoreMode::Add, Some(_))
            | (StoreMode::Replace | StoreMode::Append | StoreMode::Prepend, None) => {
                return StoreOutcome::NotStored;
            }
            (StoreMode::Cas(_), None) => return StoreOutcome::NotFound,
            (StoreMode::Cas(unique), Some(item)) if item.cas != unique => {
                return StoreOutcome::Exists;
            }
            (StoreMode::Append, Some(item)) => [&item.value[..], data].concat(),
            (StoreMode::Prepend, Some(item)) => [data, &item.value[..]].concat(),
            _ => data.to_vec(),
        };
        let (flags, deadline) = match (mode, old) {
            // append and prepend keep the item's flags and expiry.
            (StoreMode::Append | StoreMode::Prepend, Some(item)) => (item.flags, item.deadline),
            _ => (flags, Self::deadline(exptime, now)),
        };
        if item_size(key.len(), value.len()) > self.max_item_bytes.min(self.memory_bytes) {
            // memcached drops the old value of a failed set, so that a
            // stale one is not served.
            if let (StoreMode::Set, Some(index)) = (mode, present) {
                self.unlink(index);
            }
            return StoreOutcome::TooLarge;
        }
        if let Some(index) = present {
            self.unlink(index);
        }
        self.last_cas += 1;
        self.insert(Item {
            key: key.into(),
            value,
            flags,
            cas: self.last_cas,
            deadline,
            stored_at: now,
        });
        self.counters.total_items += 1;
        StoreOutcome::Stored
    }

    /// Removes the item under `key`; false when there was none.
    pub fn delete(&mut self, key: &[u8], now: u64) -> bool {
        match self.find(key, now) {
            Some(index) => {
                self.unlink(index);
                true
            }
            None => false,
        }
    }

    /// `incr`/`decr`: the value must be a decimal number (trailing spaces
    /// allowed); incr wraps at 2^64, decr stops at 0.
    pub fn arithmetic(
        &mut self,
        key: &[u8],
        delta: u64,
        direction: Direction,
        now: u64,
    ) -> ArithmeticOutcome {
        let Some(index) = self.find(key, now) else {
            return ArithmeticOutcome::NotFound;
        };
        self.last_cas += 1;
        let cas = self.last_cas;
        let Some(item) = self.slab[index as usize].as_mut() else {
            return ArithmeticOutcome::NotFound;
        };
        let digits = item.value.trim_ascii_end();
        let Some(current) = super::command::parse_u64(digits) else {
            return ArithmeticOutcome::NonNumeric;
        };
        let value = match direction {
            Direction::Increment => current.wrapping_add(delta),
            Direction::Decrement => current.saturating_sub(delta),
        };
        let text = super::reply::Decimal::new(value);
        let old_size = item.size();
        item.value.clear();
        item.value.extend_from_slice(text.as_bytes());
        item.cas = cas;
        self.bytes = self.bytes - old_size + item.size();
        self.lru.touch(index);
        ArithmeticOutcome::Value(value)
    }

    /// Gives the item under `key` a new expiry; false when there is none.
    pub fn touch(&mut self, key: &[u8], exptime: i64, now: u64) -> bool {
        let Some(index) = self.find(key, now) else {
            return false;
        };
        if let Some(item) = self.slab[index as usize].as_mut() {
            item.deadline = Self::deadline(exptime, now);
        }
        self.lru.touch(index);
        true
    }

    /// `flush_all`: every item now (`delay` 0), or from `delay` seconds on
    /// every item stored before then.
    pub fn flush(&mut self, delay: i64, now: u64) {
        if delay <= 0 {
            self.table.clear();
            self.slab.clear();
            self.free.clear();
            self.lru.clear();
            self.bytes = 0;
            self.flush_at = None;
        } else {
            self.flush_at = Some(now + delay as u64);
        }
    }

    /// The slab index of the live item under `key`; a dead one found on
    /// the way is reclaimed.
    fn find(&mut self, key: &[u8], now: u64) -> Option<u32> {
        let slab = &self.slab;
        let index = *self.table.find(key_hash(key), |index| {
            slab[*index as usize]
                .as_ref()
                .is_some_and(|item| *item.key == *key)
        })?;
        let item = self.slab[index as usize].as_ref()?;
        let flushed = self
            .flush_at
            .is_some_and(|at| now >= at && item.stored_at < at);
        if item.deadline <= now || flushed {
            self.unlink(index);
            self.counters.reclaimed += 1;
            return None;
        }
        Some(index)
    }

    /// Files `item` (whose key is absent), evicting the least recently
    /// used items until it fits.
    fn insert(&mut self, item: Item) {
        let size = item.size();
        while self.bytes + size > self.memory_bytes {
            let Some(oldest) = self.lru.oldest() else {
                break;
            };
            self.unlink(oldest);
            self.counters.evictions += 1;
        }
        let hash = key_hash(&item.key);
        let index = match self.free.pop() {
            Some(index) => {
                self.slab[index as usize] = Some(item);
                index
            }
            None => {
                self.slab.push(Some(item));
                (self.slab.len() - 1) as u32
            }
        };
        let slab = &self.slab;
        self.table.insert_unique(hash, index, |index| {
            slab[*index as usize]
                .as_ref()
                .map_or(0, |item| key_hash(&item.key))
        });
        self.lru.push_newest(index);
        self.bytes += size;
    }

    /// Removes the item at `index` from the table, the recency list and
    /// the slab.
    fn unlink(&mut self, index: u32) {
        let Some(item) = self.slab[index as usize].take() else {
            return;
        };
        if let Ok(entry) = self
            .table
            .find_entry(key_hash(&item.key), |other| *other == index)
        {
            entry.remove();
        }
        self.lru.remove(index);
        self.free.push(index);
        self.bytes -= item.size();
    }
}
