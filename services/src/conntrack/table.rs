//! `FlowTable`: a fixed-size, set-associative flow table. A flow lives in
//! one bucket of [`WAYS`] entries chosen by a keyed hash of its canonical
//! tuple, so both directions find it with one bucket scan and nothing is
//! allocated after the table is built. A new flow takes a free or expired
//! entry of its bucket; when there is none it evicts the unassured entry
//! closest to expiry (counted), and when every entry is assured (TCP
//! established or a flow that saw replies) it is refused (counted), as
//! Linux's `early_drop` does.

use super::flow::{Direction, FiveTuple, FlowPacket};
use super::tcp_state::{TcpState, TcpStep, Timeouts};
use super::window::Windows;
use crate::wire::ipv4::protocol;
use alloc::vec;
use alloc::vec::Vec;
use core::hash::BuildHasher;
use core::net::Ipv4Addr;

/// Entries per bucket.
pub const WAYS: usize = 8;

/// A packet's relation to the flows tracked (nftables' `ct state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CtState {
    /// The flow has seen packets one way only (it may be the one just
    /// created).
    New,
    /// The flow has seen packets both ways.
    Established,
    /// An ICMP error about a tracked flow.
    Related,
    /// Fits no flow: a TCP segment that does not open or continue one, a
    /// reply with no request, an ICMP error about nothing tracked.
    Invalid,
    /// Would open a flow, but its bucket is full of assured flows.
    Full,
}

/// What [`FlowTable::track`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tracked {
    /// The packet's relation to the tracked flows.
    pub state: CtState,
    /// Its direction along its flow (`Original` when it has none).
    pub direction: Direction,
    /// The packet created its flow (a firewall that drops it
    /// [`forget`](FlowTable::forget)s the flow again).
    pub created: bool,
}

/// Counts since the last [`FlowTable::take_stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableStats {
    /// Flows created.
    pub created: u64,
    /// Flows that timed out (found expired or swept).
    pub expired: u64,
    /// Unassured flows evicted to make room for new ones.
    pub evicted: u64,
    /// New flows refused: their bucket was full of assured flows.
    pub full: u64,
    /// Packets that fit no flow ([`CtState::Invalid`]).
    pub invalid: u64,
}

/// Per-protocol state of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Tcp(TcpState),
    Udp,
    Icmp,
    Other,
}

/// One tracked flow.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// The flow's canonical tuple.
    key: FiveTuple,
    /// When it expires on the platform clock; 0 marks a free entry.
    expires_ns: u64,
    protocol: Protocol,
    /// The opener sent in the canonical direction.
    original_forward: bool,
    /// A packet travelled the reply direction.
    replied: bool,
    /// The direction of the first FIN (TCP).
    fin_by: Direction,
    /// Both sides' sequence spaces (TCP).
    windows: Windows,
}

impl Entry {
    const FREE: Self = Self {
        key: FiveTuple {
            source: Ipv4Addr::UNSPECIFIED,
            destination: Ipv4Addr::UNSPECIFIED,
            source_port: 0,
            destination_port: 0,
            protocol: 0,
        },
        expires_ns: 0,
        protocol: Protocol::Other,
        original_forward: true,
        replied: false,
        fin_by: Direction::Original,
        windows: Windows::EMPTY,
    };

    fn live(&self, now_ns: u64) -> bool {
        self.expires_ns > now_ns
    }

    /// Assured flows are never evicted for new ones.
    fn assured(&self) -> bool {
        match self.protocol {
            Protocol::Tcp(state) => !matches!(state, TcpState::SynSent | TcpState::SynRecv),
            _ => self.replied,
        }
    }

    fn timeout_s(&self, timeouts: &Timeouts) -> u32 {
        match self.protocol {
            Protocol::Tcp(state) => timeouts.tcp(state),
            Protocol::Udp if self.replied => timeouts.udp_stream,
            Protocol::Udp => timeouts.udp,
            Protocol::Icmp => timeouts.icmp,
            Protocol::Other => timeouts.generic,
        }
    }
}

/// A bounded per-core flow table.
#[derive(Debug, Clone)]
pub struct FlowTable {
    entries: Vec<Entry>,
    /// Buckets - 1 (a power of two minus one).
    mask: usize,
    hasher: foldhash::fast::FixedState,
    timeouts: Timeouts,
    live: usize,
    /// Where the next [`sweep`](Self::sweep) starts.
    cursor: usize,
    stats: TableStats,
}

impl FlowTable {
    /// A table for at least `capacity` flows (rounded up to a power of
    /// two number of buckets of [`WAYS`]), hashing with `seed` (vary it per
    /// boot so that a peer cannot aim flows at one bucket).
    pub fn new(capacity: usize, timeouts: Timeouts, seed: u64) -> Self {
        let buckets = capacity.div_ceil(WAYS).max(1).next_power_of_two();
        Self {
            entries: vec![Entry::FREE; buckets * WAYS],
            mask: buckets - 1,
            hasher: foldhash::fast::FixedState::with_seed(seed),
            timeouts,
            live: 0,
            cursor: 0,
            stats: TableStats::default(),
        }
    }

    /// How many flows fit.
    pub fn capacity(&self) -> usize {
        self.entries.len()
    }

    /// Flows held, live or expired but not yet reclaimed.
    pub fn len(&self) -> usize {
        self.live
    }

    /// True when no flow is held.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// The counts since the last call, reset.
    pub fn take_stats(&mut self) -> TableStats {
        core::mem::take(&mut self.stats)
    }

    /// The range of entries of `key`'s bucket.
    fn bucket(&self, key: &FiveTuple) -> core::ops::Range<usize> {
        let start = (self.hasher.hash_one(key) as usize & self.mask) * WAYS;
        start..start + WAYS
    }

    /// The live entry of canonical `key`.
    fn find(&self, key: &FiveTuple, now_ns: u64) -> Option<usize> {
        self.bucket(key)
            .find(|&index| self.entries[index].key == *key && self.entries[index].live(now_ns))
    }

    /// Looks `packet` up, creating its flow when it opens one, and moves
    /// the flow's state along.
    pub fn track(&mut self, packet: &FlowPacket, now_ns: u64) -> Tracked {
        if let Some(quoted) = packet.quoted {
            return self.related(&quoted, now_ns);
        }
        let (key, forward) = packet.tuple.canonical();
        let tracked = match self.find(&key, now_ns) {
            Some(index) => self.update(index, forward, packet, now_ns),
            None if packet.opens => self.create(key, forward, packet, now_ns),
            None => CtState::Invalid.into(),
        };
        if tracked.state == CtState::Invalid {
            self.stats.invalid += 1;
        }
        tracked
    }

    /// An ICMP error quoting `quoted`: related when that flow is tracked.
    fn related(&mut self, quoted: &FiveTuple, now_ns: u64) -> Tracked {
        let (key, forward) = quoted.canonical();
        match self.find(&key, now_ns) {
            Some(index) => {
                // The error travels against the quoted packet.
                let quoted_original = forward == self.entries[index].original_forward;
                let direction = if quoted_original {
                    Direction::Reply
                } else {
                    Direction::Original
                };
                Tracked {
                    state: CtState::Related,
                    direction,
                    created: false,
                }
            }
            None => {
                self.stats.invalid += 1;
                CtState::Invalid.into()
            }
        }
    }

    /// A packet of the flow at `index`.
    fn update(&mut self, index: usize, forward: bool, packet: &FlowPacket, now_ns: u64) -> Tracked {
        let timeouts = self.timeouts;
        let entry = &mut self.entries[index];
        let direction = if forward == entry.original_forward {
            Direction::Original
        } else {
            Direction::Reply
        };
        if let Protocol::Tcp(state) = entry.protocol {
            match state.step(packet.tcp_flags, direction, entry.fin_by) {
                TcpStep::Invalid => return CtState::Invalid.into(),
                TcpStep::To(next) => {
                    if next == TcpState::SynSent && state != TcpState::SynSent {
                        // Reopened after TIME-WAIT or CLOSE: a new
                        // connection on the same tuple.
                        entry.replied = false;
                        entry.windows = Windows::open(&packet.segment);
                    } else if !entry.windows.accept(
                        direction,
                        packet.tcp_flags,
                        state,
                        &packet.segment,
                    ) {
                        // Out of the window: changes nothing.
                        return CtState::Invalid.into();
                    }
                    if next == TcpState::FinWait && state != TcpState::FinWait {
                        entry.fin_by = direction;
                    }
                    entry.protocol = Protocol::Tcp(next);
                }
            }
        }
        entry.replied |= direction == Direction::Reply;
        entry.expires_ns =
            now_ns.saturating_add(u64::from(entry.timeout_s(&timeouts)) * 1_000_000_000);
        let state = if entry.replied {
            CtState::Established
        } else {
            CtState::New
        };
        Tracked {
            state,
            direction,
            created: false,
        }
    }

    /// A new flow for canonical `key`, opened by `packet` in its
    /// direction.
    fn create(
        &mut self,
        key: FiveTuple,
        forward: bool,
        packet: &FlowPacket,
        now_ns: u64,
    ) -> Tracked {
        let bucket = self.bucket(&key);
        let free = bucket
            .clone()
            .find(|&index| !self.entries[index].live(now_ns));
        let index = match free {
            Some(index) => {
                if self.entries[index].expires_ns == 0 {
                    self.live += 1;
                } else {
                    self.stats.expired += 1;
                }
                index
            }
            None => {
                let victim = bucket
                    .filter(|&index| !self.entries[index].assured())
                    .min_by_key(|&index| self.entries[index].expires_ns);
                let Some(index) = victim else {
                    self.stats.full += 1;
                    return CtState::Full.into();
                };
                self.stats.evicted += 1;
                index
            }
        };
        let protocol = match key.protocol {
            protocol::TCP => Protocol::Tcp(TcpState::SynSent),
            protocol::UDP => Protocol::Udp,
            protocol::ICMP => Protocol::Icmp,
            _ => Protocol::Other,
        };
        let mut entry = Entry {
            key,
            expires_ns: 0,
            protocol,
            original_forward: forward,
            replied: false,
            fin_by: Direction::Original,
            windows: if key.protocol == protocol::TCP {
                Windows::open(&packet.segment)
            } else {
                Windows::EMPTY
            },
        };
        entry.expires_ns =
            now_ns.saturating_add(u64::from(entry.timeout_s(&self.timeouts)) * 1_000_000_000);
        self.entries[index] = entry;
        self.stats.created += 1;
        Tracked {
            state: CtState::New,
            direction: Direction::Original,
            created: true,
        }
    }

    /// Frees expired entries among the next `budget` (a bounded slice of
    /// the table per call, so that a housekeeping tick costs little).
    pub fn sweep(&mut self, now_ns: u64, budget: usize) {
        for _ in 0..budget.min(self.entries.len()) {
            let entry = &mut self.entries[self.cursor];
            if entry.expires_ns != 0 && !entry.live(now_ns) {
                *entry = Entry::FREE;
                self.live -= 1;
                self.stats.expired += 1;
            }
            self.cursor = (self.cursor + 1) % self.entries.len();
        }
    }

    /// Removes the flow of `tuple` (either direction), which the packet
    /// that created it did not get through: it is not counted as created.
    pub fn forget(&mut self, tuple: &FiveTuple, now_ns: u64) {
        let (key, _) = tuple.canonical();
        if let Some(index) = self.find(&key, now_ns) {
            self.entries[index] = Entry::FREE;
            self.live -= 1;
            self.stats.created = self.stats.created.saturating_sub(1);
        }
    }

    /// True when the flow of `tuple` (either direction) is tracked and
    /// live.
    pub fn contains(&self, tuple: &FiveTuple, now_ns: u64) -> bool {
        self.find(&tuple.canonical().0, now_ns).is_some()
    }

    /// The TCP state of the flow of `tuple` (either direction), if tracked.
    pub fn tcp_state(&self, tuple: &FiveTuple, now_ns: u64) -> Option<TcpState> {
        let (key, _) = tuple.canonical();
        match self.entries[self.find(&key, now_ns)?].protocol {
            Protocol::Tcp(state) => Some(state),
            _ => None,
        }
    }
}

impl From<CtState> for Tracked {
    fn from(state: CtState) -> Self {
        Self {
            state,
            direction: Direction::Original,
            created: false,
        }
    }
}
