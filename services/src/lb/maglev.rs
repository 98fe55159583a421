//! `MaglevTable`: the Maglev lookup table. Each backend walks its own
//! permutation of the table's slots (`offset + j * skip mod M`, offset and
//! skip from two hashes of the backend's address:port, M prime so every
//! skip is coprime with it); the backends take turns claiming their next
//! free slot until the table is full (the paper's Pseudocode 1). Each
//! backend ends with M/N slots give or take one round's worth, and
//! removing a backend moves few slots other than its own.

use super::rewrite::Endpoint;
use alloc::vec;
use alloc::vec::Vec;
use core::hash::BuildHasher;
use foldhash::fast::FixedState;

/// Seeds of the two permutation hashes and of the flow hash: fixed, so that
/// every core and every restart builds the same table and sends a flow to
/// the same backend.
const OFFSET_SEED: u64 = 0x6d61_676c_6576_0001;
const SKIP_SEED: u64 = 0x6d61_676c_6576_0002;
const FLOW_SEED: u64 = 0x6d61_676c_6576_0003;

/// Slot value of a table with no backends.
const EMPTY: u8 = u8::MAX;

/// One of a backend's two permutation hashes (`seed` picks which).
pub fn backend_key_hash(backend: &Endpoint, seed: u64) -> u64 {
    FixedState::with_seed(seed).hash_one((backend.address.to_bits(), backend.port))
}

/// The hash a flow is looked up by: the client's address and port and the
/// protocol (one VIP per service, so those name the flow).
pub fn flow_hash(client: core::net::Ipv4Addr, client_port: u16, protocol: u8) -> u64 {
    FixedState::with_seed(FLOW_SEED).hash_one((client.to_bits(), client_port, protocol))
}

/// The lookup table: slot → backend index.
#[derive(Debug, Clone)]
pub struct MaglevTable {
    slots: Vec<u8>,
}

impl MaglevTable {
    /// Builds the table of `size` slots (a prime, at least the number of
    /// backends) over `backends` (at most 255).
    pub fn new(backends: &[Endpoint], size: usize) -> Self {
        let mut slots = vec![EMPTY; size];
        if backends.is_empty() || size == 0 {
            return Self { slots };
        }
        let modulus = size as u64;
        let walks: Vec<(u64, u64)> = backends
            .iter()
            .map(|backend| {
                let offset = backend_key_hash(backend, OFFSET_SEED) % modulus;
                let skip = if modulus > 1 {
                    backend_key_hash(backend, SKIP_SEED) % (modulus - 1) + 1
                } else {
                    1
                };
                (offset, skip)
            })
            .collect();
        let mut next = vec![0u64; backends.len()];
        let mut filled = 0;
        'fill: loop {
            for (index, &(offset, skip)) in walks.iter().enumerate() {
                let mut slot;
                loop {
                    slot = ((offset + next[index] * skip) % modulus) as usize;
                    next[index] += 1;
                    if slots[slot] == EMPTY {
                        break;
                    }
                }
                slots[slot] = index as u8;
                filled += 1;
                if filled == size {
                    break 'fill;
                }
            }
        }
        Self { slots }
    }

    /// The table's size M.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True for a table of no slots.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The backend index for a flow hash, or `None` with no backends.
    #[inline]
    pub fn lookup(&self, hash: u64) -> Option<usize> {
        let len = self.slots.len() as u64;
        if len == 0 {
            return None;
        }
        match self.slots[(hash % len) as usize] {
            EMPTY => None,
            index => Some(usize::from(index)),
        }
    }

    /// Every slot's backend index.
    pub fn slots(&self) -> &[u8] {
        &self.slots
    }
}
