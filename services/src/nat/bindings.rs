//! `Bindings`: the translations of one core. A binding is the tuple its
//! opening packet arrived with (`original`) and the tuple it leaves with
//! (`translated`); replies arrive as `translated` reversed and leave as
//! `original` reversed. Both arriving tuples index the binding in one
//! hash table made at its full size once, so nothing is allocated per
//! packet. Whether a binding still lives is the flow table's business:
//! its flow (keyed by `original`) is tracked there, and a binding whose
//! flow is gone is released by the sweep.

use crate::conntrack::{FiveTuple, FlowTable};
use alloc::vec;
use alloc::vec::Vec;
use core::hash::BuildHasher;
use core::net::Ipv4Addr;

/// Which way a packet travels along its binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    /// As the opening packet did.
    Original,
    /// As its replies do.
    Reply,
}

/// One translation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding {
    /// The opening packet's tuple as it arrived.
    pub original: FiveTuple,
    /// The opening packet's tuple as it left.
    pub translated: FiveTuple,
}

impl Binding {
    /// The tuple a packet arriving as `way` leaves with.
    pub fn leaves_as(&self, way: Way) -> FiveTuple {
        match way {
            Way::Original => self.translated,
            Way::Reply => self.original.reversed(),
        }
    }

    /// The tuple a packet travelling `way` is tracked with: the inside
    /// view (before translation for the original way, after it for
    /// replies), both the flow of `original`.
    pub fn tracked_as(&self, way: Way) -> FiveTuple {
        match way {
            Way::Original => self.original,
            Way::Reply => self.original.reversed(),
        }
    }
}

/// Why a binding could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindError {
    /// Every slot holds a live binding.
    Full,
    /// No port in the range gives a reply tuple that is free (and lands on
    /// this core).
    PortsExhausted,
    /// The reply tuple belongs to another binding already.
    Conflict,
}

/// Ports tried for one new binding before it counts as exhausted.
pub const MAX_PORT_TRIES: u32 = 1024;

/// The bindings of one core.
#[derive(Debug)]
pub struct Bindings {
    slots: Vec<Option<Binding>>,
    free: Vec<u32>,
    /// Arriving tuple to slot (and way, in the low bit).
    index: hashbrown::HashMap<FiveTuple, u32, foldhash::fast::FixedState>,
    /// Where the next sweep starts.
    cursor: usize,
    /// Released by the sweep since the last [`Bindings::take_released`].
    released: u64,
}

impl Bindings {
    /// Room for `capacity` bindings, hashing with `seed`.
    pub fn new(capacity: usize, seed: u64) -> Self {
        let capacity = capacity.max(1);
        Self {
            slots: vec![None; capacity],
            free: (0..capacity as u32).rev().collect(),
            index: hashbrown::HashMap::with_capacity_and_hasher(
                2 * capacity,
                foldhash::fast::FixedState::with_seed(seed),
            ),
            cursor: 0,
            released: 0,
        }
    }

    /// Bindings it holds at most.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Bindings held.
    pub fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// True when none is held.
    pub fn is_empty(&self) -> bool {
        self.free.len() == self.slots.len()
    }

    /// The binding a packet arriving with `tuple` belongs to, and its way.
    #[inline]
    pub fn find(&self, tuple: &FiveTuple) -> Option<(usize, Binding, Way)> {
        let value = *self.index.get(tuple)?;
        let slot = (value >> 1) as usize;
        let binding = self.slots[slot]?;
        let way = if value & 1 == 0 {
            Way::Original
        } else {
            Way::Reply
        };
        Some((slot, binding, way))
    }

    /// The binding in `slot`, if any.
    pub fn get(&self, slot: usize) -> Option<Binding> {
        self.slots.get(slot).copied().flatten()
    }

    /// Binds `original` to `translated`.
    pub fn insert(
        &mut self,
        original: FiveTuple,
        translated: FiveTuple,
    ) -> Result<usize, BindError> {
        let reply = translated.reversed();
        if self.index.contains_key(&reply) || self.index.contains_key(&original) {
            return Err(BindError::Conflict);
        }
        let slot = self.free.pop().ok_or(BindError::Full)?;
        self.slots[slot as usize] = Some(Binding {
            original,
            translated,
        });
        self.index.insert(original, slot << 1);
        self.index.insert(reply, (slot << 1) | 1);
        Ok(slot as usize)
    }

    /// Binds `original` to itself with source `(address, port)`, the port
    /// chosen in `ports` (RFC 6056: a start derived from the tuple, then
    /// the next ones) so that the reply tuple is free and `lands` (on this
    /// core, across cores).
    pub fn insert_masquerade(
        &mut self,
        original: FiveTuple,
        translated_destination: (Ipv4Addr, u16),
        address: Ipv4Addr,
        ports: (u16, u16),
        lands: impl Fn(&FiveTuple) -> bool,
    ) -> Result<usize, BindError> {
        if self.free.is_empty() {
            return Err(BindError::Full);
        }
        let span = u32::from(ports.1 - ports.0) + 1;
        let start = self.index.hasher().hash_one(original) as u32 % span;
        for step in 0..span.min(MAX_PORT_TRIES) {
            let port = ports.0 + ((start + step) % span) as u16;
            let translated = FiveTuple {
                source: address,
                destination: translated_destination.0,
                source_port: port,
                destination_port: if original.protocol == crate::wire::ipv4::protocol::ICMP {
                    port
                } else {
                    translated_destination.1
                },
                protocol: original.protocol,
            };
            let reply = translated.reversed();
            if !lands(&reply) || self.index.contains_key(&reply) {
                continue;
            }
            return self.insert(original, translated);
        }
        Err(BindError::PortsExhausted)
    }

    /// Removes the binding in `slot`.
    pub fn release(&mut self, slot: usize) {
        if let Some(binding) = self.slots[slot].take() {
            self.index.remove(&binding.original);
            self.index.remove(&binding.translated.reversed());
            self.free.push(slot as u32);
        }
    }

    /// Releases the bindings among the next `budget` slots whose flow
    /// `flows` no longer tracks.
    pub fn sweep(&mut self, flows: &FlowTable, now_ns: u64, budget: usize) {
        for _ in 0..budget.min(self.slots.len()) {
            let slot = self.cursor;
            self.cursor = (self.cursor + 1) % self.slots.len();
            if let Some(binding) = self.slots[slot]
                && !flows.contains(&binding.original, now_ns)
            {
                self.release(slot);
                self.released += 1;
            }
        }
    }

    /// Bindings the sweep released since the last call, reset.
    pub fn take_released(&mut self) -> u64 {
        core::mem::take(&mut self.released)
    }
}
