//! Sharding across cores: the messages that carry a command to the core
//! owning its key and the answer back, the SPSC rings between every pair
//! of the service's cores ([`link_shards`]), and [`Mesh`], one core's view
//! of them with an outbox per peer for when a ring is full.
//!
//! No locks and no shared table: a key lives on exactly one core
//! (`shard_of(key, cores)`), and only that core touches it.

use super::hash::shard_of;
use super::operation::OwnedOperation;
use super::stats::ShardStats;
use crate::tcp::ConnectionId;
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use dataplane::{Consumer, Doorbell, Producer, SpscRing};

/// Slots of each ring between two cores (one per direction).
pub const RING_CAPACITY: usize = 1024;
/// Most messages taken from one peer's ring per poll, so that one busy
/// peer cannot hold the core.
const RECEIVE_BURST: usize = 256;
/// Between two keys of a [`Work::Get`]: a space, which no key holds (the
/// command line is split at spaces).
pub const KEY_SEPARATOR: u8 = b' ';

/// A command sent to the core that owns its key(s). It owns its keys and
/// data: a remote operation costs an allocation or two (the key, the data
/// block), the price of a table no other core shares; a remote get's keys
/// and answer travel in buffers the cores reuse
/// ([`Buffers`](super::buffers::Buffers)), so it allocates nothing once
/// warm. Local commands allocate nothing beyond what the store keeps.
#[derive(Debug)]
pub struct Request {
    /// The connection on the origin core that waits for the answer.
    pub connection: ConnectionId,
    /// The origin's sequence number for the answer's place in the
    /// connection's reply queue.
    pub sequence: u64,
    /// The origin's clock: the owner runs the command at this time.
    pub now_ns: u64,
    /// False for `noreply` and broadcasts that answer nothing: no reply
    /// message comes back.
    pub answer: bool,
    /// What to do.
    pub work: Work,
}

/// What a [`Request`] asks of the owner.
#[derive(Debug)]
pub enum Work {
    /// The `VALUE` blocks of these keys, in order, then `END` when `end`.
    Get {
        /// The keys (a run of consecutive keys of one get owned by one
        /// core), each after the last with a [`KEY_SEPARATOR`] between:
        /// one buffer, from the origin's [`Buffers`](super::buffers::Buffers).
        keys: Vec<u8>,
        /// `gets`.
        with_cas: bool,
        /// The run ends the get: the owner appends its `END`, so that the
        /// whole answer comes in one piece.
        end: bool,
    },
    /// One operation and its answer.
    Operation(OwnedOperation),
    /// The owner's figures for `stats`.
    Stats,
}

/// The owner's answer to a [`Request`].
#[derive(Debug)]
pub struct Reply {
    /// The request's connection.
    pub connection: ConnectionId,
    /// The request's sequence number.
    pub sequence: u64,
    /// The answer.
    pub answer: Answer,
}

/// An answer's content.
#[derive(Debug)]
pub enum Answer {
    /// Reply bytes, written to the client as they are (a buffer of the
    /// owner's [`Buffers`](super::buffers::Buffers), kept by the origin
    /// once written).
    Bytes(Vec<u8>),
    /// Figures the origin adds to its own for `stats`.
    Stats(ShardStats),
}

/// What travels on a ring between two cores.
#[derive(Debug)]
pub enum Message {
    /// A command for the receiver's shard.
    Request(Request),
    /// An answer to one of the receiver's requests.
    Reply(Reply),
}

/// The rings between one core and another: one each way.
struct Link {
    to: Producer<Message>,
    from: Consumer<Message>,
}

/// One core's ends of the rings to every other core running the service:
/// what [`link_shards`] makes and `CoreLinks` carries to the core.
pub struct ShardEnd {
    index: usize,
    links: Vec<Option<Link>>,
}

impl core::fmt::Debug for ShardEnd {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "ShardEnd({} of {})", self.index, self.links.len())
    }
}

/// Makes the rings between `count` shards, `capacity` slots each way
/// (a power of two): one end per shard, in shard order. None for one
/// shard.
pub fn link_shards(count: usize, capacity: usize) -> Vec<ShardEnd> {
    if count <= 1 {
        return Vec::new();
    }
    let mut ends: Vec<ShardEnd> = (0..count)
        .map(|index| ShardEnd {
            index,
            links: (0..count).map(|_| None).collect(),
        })
        .collect();
    for low in 0..count {
        for high in low + 1..count {
            let capacity = capacity.next_power_of_two();
            let Ok((low_to_high, from_low)) = SpscRing::with_capacity(capacity) else {
                unreachable!("a power of two")
            };
            let Ok((high_to_low, from_high)) = SpscRing::with_capacity(capacity) else {
                unreachable!("a power of two")
            };
            ends[low].links[high] = Some(Link {
                to: low_to_high,
                from: from_high,
            });
            ends[high].links[low] = Some(Link {
                to: high_to_low,
                from: from_low,
            });
        }
    }
    ends
}

/// A peer core: the rings and what waits for room in the outgoing one.
struct Peer {
    link: Link,
    outbox: VecDeque<Message>,
    /// Messages went into the outgoing ring since the peer's doorbell was
    /// last rung.
    unannounced: bool,
}

/// One core's view of the service's shards.
pub struct Mesh {
    index: usize,
    count: usize,
    peers: Vec<Option<Peer>>,
}

impl core::fmt::Debug for Mesh {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Mesh({} of {})", self.index, self.count)
    }
}

impl Mesh {
    /// A service on one core: every key is local.
    pub fn alone() -> Self {
        Self {
            index: 0,
            count: 1,
            peers: Vec::new(),
        }
    }

    /// The mesh of `end`.
    pub fn new(end: ShardEnd) -> Self {
        Self {
            index: end.index,
            count: end.links.len(),
            peers: end
                .links
                .into_iter()
                .map(|link| {
                    link.map(|link| Peer {
                        link,
                        outbox: VecDeque::new(),
                        unannounced: false,
                    })
                })
                .collect(),
        }
    }

    /// This core's shard.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Shards in all.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The shard that owns `key`.
    pub fn owner(&self, key: &[u8]) -> usize {
        shard_of(key, self.count)
    }

    /// The other shards.
    pub fn peers(&self) -> impl Iterator<Item = usize> + use<> {
        let index = self.index;
        (0..self.count).filter(move |shard| *shard != index)
    }

    /// Sends `message` to shard `to`, behind anything already waiting for
    /// room; a full ring keeps it in the outbox for the next poll (counted
    /// in `ring_full`), it is never dropped.
    pub fn send(&mut self, to: usize, message: Message, ring_full: &mut u64) {
        let Some(Some(peer)) = self.peers.get_mut(to) else {
            debug_assert!(false, "no shard {to}");
            return;
        };
        if !peer.outbox.is_empty() {
            peer.outbox.push_back(message);
            return;
        }
        match peer.link.to.push(message) {
            Ok(()) => peer.unannounced = true,
            Err(message) => {
                *ring_full += 1;
                peer.outbox.push_back(message);
            }
        }
    }

    /// Moves what waits in the outboxes into the rings, as room allows.
    pub fn flush_outboxes(&mut self, ring_full: &mut u64) {
        for peer in self.peers.iter_mut().flatten() {
            while let Some(message) = peer.outbox.pop_front() {
                if let Err(message) = peer.link.to.push(message) {
                    *ring_full += 1;
                    peer.outbox.push_front(message);
                    break;
                }
                peer.unannounced = true;
            }
        }
    }

    /// Rings the doorbell of every peer whose ring got messages since the
    /// last call, so that a peer asleep wakes for them: once per poll, not
    /// per message (each ring costs a full fence).
    pub fn notify_peers(&mut self) {
        for peer in self.peers.iter_mut().flatten() {
            if core::mem::take(&mut peer.unannounced) {
                peer.link.to.notify();
            }
        }
    }

    /// Has the peers ring `doorbell` (this core's) when they send to it.
    pub fn set_doorbell(&self, doorbell: &Arc<Doorbell>) {
        for peer in self.peers.iter().flatten() {
            peer.link.from.set_doorbell(Arc::clone(doorbell));
        }
    }

    /// True when a peer's ring holds messages for us or ours wait for
    /// room: the next poll has work.
    pub fn has_work(&self) -> bool {
        self.peers
            .iter()
            .flatten()
            .any(|peer| !peer.link.from.is_empty() || !peer.outbox.is_empty())
    }

    /// Takes the next message from shard `from`, if any.
    pub fn receive(&mut self, from: usize) -> Option<Message> {
        self.peers.get_mut(from)?.as_mut()?.link.from.pop()
    }

    /// Most messages to take from one peer per poll.
    pub const fn receive_burst() -> usize {
        RECEIVE_BURST
    }

    /// Messages waiting in outboxes.
    pub fn waiting(&self) -> usize {
        self.peers
            .iter()
            .flatten()
            .map(|peer| peer.outbox.len())
            .sum()
    }
}
