//! `KvCounters`: one core's kv figures, plain integers summed when read.

/// One core's kv counters: its shard's (gets, sets, evictions) and its
/// connections' traffic to other shards.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct KvCounters {
    /// Keys asked for by get/gets on this shard.
    pub cmd_get: u64,
    /// Of those, found.
    pub get_hits: u64,
    /// Of those, not found.
    pub get_misses: u64,
    /// Storage commands run on this shard.
    pub cmd_set: u64,
    /// Live items evicted from this shard to make room.
    pub evictions: u64,
    /// Requests this core's connections sent to other shards.
    pub remote_requests_sent: u64,
    /// Requests from other cores run on this shard.
    pub remote_requests_served: u64,
    /// Pushes that found a ring full (the message waits in an outbox and
    /// is retried at the next poll; nothing is dropped).
    pub ring_full_retries: u64,
    /// Command lines refused (`ERROR`, `CLIENT_ERROR`) and bad data blocks.
    pub protocol_errors: u64,
    /// Answers from other cores for connections that had closed.
    pub orphan_replies: u64,
    /// Buffers for remote requests' keys and answers taken from the heap
    /// (no spare was left): grows with the traffic in flight, then stays,
    /// except that each remote operation sent with `noreply` takes one
    /// on its origin (its key buffer stays with the owner, nothing comes
    /// back).
    pub message_buffers_allocated: u64,
}

impl KvCounters {
    /// Adds `other`'s counts to these (summing cores).
    pub fn add(&mut self, other: &Self) {
        self.cmd_get += other.cmd_get;
        self.get_hits += other.get_hits;
        self.get_misses += other.get_misses;
        self.cmd_set += other.cmd_set;
        self.evictions += other.evictions;
        self.remote_requests_sent += other.remote_requests_sent;
        self.remote_requests_served += other.remote_requests_served;
        self.ring_full_retries += other.ring_full_retries;
        self.protocol_errors += other.protocol_errors;
        self.orphan_replies += other.orphan_replies;
        self.message_buffers_allocated += other.message_buffers_allocated;
    }
}
