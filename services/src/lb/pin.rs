//! `PinTable`: which backend each flow went to, so that a flow keeps its
//! backend for as long as this node lives. Set-associative like the
//! conntrack table (a flow lives in one bucket of [`PIN_WAYS`] entries
//! chosen by its hash); an entry idle for [`PIN_IDLE_NS`] is free again,
//! and a new flow in a full bucket replaces the entry idle longest
//! (counted). Nothing is allocated after the table is built.

use core::net::Ipv4Addr;

/// Entries per bucket.
pub const PIN_WAYS: usize = 4;

/// How long a flow stays pinned without packets: 300 s (IPVS keeps an
/// established TCP flow 900 s, a UDP one 300 s; a pin that lapses only
/// means the flow is looked up in the Maglev table again).
pub const PIN_IDLE_NS: u64 = 300_000_000_000;

/// A flow as the load balancer names it: the client's end and protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key {
    client: Ipv4Addr,
    client_port: u16,
    protocol: u8,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    key: Key,
    backend: u8,
    /// When it lapses; 0 marks a free entry.
    expires_ns: u64,
}

const FREE: Entry = Entry {
    key: Key {
        client: Ipv4Addr::UNSPECIFIED,
        client_port: 0,
        protocol: 0,
    },
    backend: 0,
    expires_ns: 0,
};

/// What [`PinTable::pin`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pinned {
    /// The flow's backend.
    pub backend: usize,
    /// The flow was not pinned before (a new flow for the backend).
    pub new: bool,
    /// A live flow was pushed out to make room.
    pub evicted: bool,
}

/// The flows of one core and their backends.
#[derive(Debug)]
pub struct PinTable {
    entries: alloc::vec::Vec<Entry>,
    mask: usize,
}

impl PinTable {
    /// A table of at least `capacity` flows (rounded up to a power of two
    /// and to whole buckets).
    pub fn new(capacity: usize) -> Self {
        let buckets = capacity.div_ceil(PIN_WAYS).max(1).next_power_of_two();
        Self {
            entries: alloc::vec![FREE; buckets * PIN_WAYS],
            mask: buckets - 1,
        }
    }

    /// The flows the table holds at most.
    pub fn capacity(&self) -> usize {
        self.entries.len()
    }

    /// The flow's backend: the pinned one if it is live and `valid` says
    /// it still exists, else `choose()` (which is then pinned). `hash` is
    /// the flow's hash. `None` when `choose` finds no backend.
    pub fn pin(
        &mut self,
        hash: u64,
        flow: (Ipv4Addr, u16, u8),
        now_ns: u64,
        valid: impl Fn(usize) -> bool,
        choose: impl FnOnce() -> Option<usize>,
    ) -> Option<Pinned> {
        let key = Key {
            client: flow.0,
            client_port: flow.1,
            protocol: flow.2,
        };
        let bucket = (hash as usize & self.mask) * PIN_WAYS;
        let ways = &mut self.entries[bucket..bucket + PIN_WAYS];
        let expires_ns = now_ns.saturating_add(PIN_IDLE_NS);
        if let Some(entry) = ways
            .iter_mut()
            .find(|entry| entry.key == key && entry.expires_ns > now_ns)
            && valid(usize::from(entry.backend))
        {
            entry.expires_ns = expires_ns;
            return Some(Pinned {
                backend: usize::from(entry.backend),
                new: false,
                evicted: false,
            });
        }
        let backend = choose()?;
        // The flow's own stale entry, a free or lapsed one, or the one
        // idle longest.
        let (slot, evicted) = match ways
            .iter()
            .position(|entry| entry.key == key || entry.expires_ns <= now_ns)
        {
            Some(slot) => (slot, false),
            None => {
                let oldest = (0..PIN_WAYS)
                    .min_by_key(|&slot| ways[slot].expires_ns)
                    .unwrap_or(0);
                (oldest, true)
            }
        };
        ways[slot] = Entry {
            key,
            backend: backend as u8,
            expires_ns,
        };
        Some(Pinned {
            backend,
            new: true,
            evicted,
        })
    }

    /// The backend `flow` (with hash `hash`) is pinned to while live at
    /// `now_ns`, without touching the pin.
    pub fn peek(&self, hash: u64, flow: (Ipv4Addr, u16, u8), now_ns: u64) -> Option<usize> {
        let key = Key {
            client: flow.0,
            client_port: flow.1,
            protocol: flow.2,
        };
        let bucket = (hash as usize & self.mask) * PIN_WAYS;
        self.entries[bucket..bucket + PIN_WAYS]
            .iter()
            .find(|entry| entry.key == key && entry.expires_ns > now_ns)
            .map(|entry| usize::from(entry.backend))
    }

    /// Takes over the pins of `previous` (the table of the node this one
    /// replaces), each with its backend renumbered by `renumber`: `None`
    /// for a backend that is gone, whose flows are then unpinned (their
    /// next packet is looked up in the Maglev table again). `flow_hash`
    /// gives a flow's hash, as [`PinTable::pin`] takes it. Returns the
    /// pins kept; a pin whose bucket here is full (a smaller table) is
    /// dropped.
    pub fn adopt(
        &mut self,
        previous: &PinTable,
        renumber: impl Fn(usize) -> Option<usize>,
        flow_hash: impl Fn(Ipv4Addr, u16, u8) -> u64,
    ) -> usize {
        let mut kept = 0;
        for entry in previous
            .entries
            .iter()
            .filter(|entry| entry.expires_ns != 0)
        {
            let Some(backend) = renumber(usize::from(entry.backend)) else {
                continue;
            };
            let key = entry.key;
            let hash = flow_hash(key.client, key.client_port, key.protocol);
            let bucket = (hash as usize & self.mask) * PIN_WAYS;
            let ways = &mut self.entries[bucket..bucket + PIN_WAYS];
            if let Some(slot) = ways.iter_mut().find(|slot| slot.expires_ns == 0) {
                *slot = Entry {
                    key,
                    backend: backend as u8,
                    expires_ns: entry.expires_ns,
                };
                kept += 1;
            }
        }
        kept
    }

    /// The live pins' backends (for tests): one per pinned flow.
    pub fn backends(&self, now_ns: u64) -> impl Iterator<Item = usize> + '_ {
        self.entries
            .iter()
            .filter(move |entry| entry.expires_ns > now_ns)
            .map(|entry| usize::from(entry.backend))
    }
}
