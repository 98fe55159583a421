//! `stats`: one shard's figures, summed over the shards of the service,
//! written as memcached's `STAT <name> <value>` lines and `END`.

use super::reply::{self, Sink};
use super::store::Store;

/// One shard's figures for `stats`; the origin core adds every shard's.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ShardStats {
    /// Items held.
    pub curr_items: u64,
    /// Items stored since start.
    pub total_items: u64,
    /// Bytes held (key, value and overhead).
    pub bytes: u64,
    /// Connections open on the shard's core.
    pub curr_connections: u64,
    /// Connections accepted since start.
    pub total_connections: u64,
    /// Keys asked for.
    pub cmd_get: u64,
    /// Storage commands.
    pub cmd_set: u64,
    /// Keys found.
    pub get_hits: u64,
    /// Keys not found.
    pub get_misses: u64,
    /// Items evicted.
    pub evictions: u64,
    /// Expired items reclaimed.
    pub reclaimed: u64,
    /// The memory limit.
    pub limit_maxbytes: u64,
}

impl ShardStats {
    /// The figures of `store` and of its core's connections.
    pub fn of(store: &Store, curr_connections: u64, total_connections: u64) -> Self {
        let counters = store.counters();
        Self {
            curr_items: store.len() as u64,
            total_items: counters.total_items,
            bytes: store.bytes() as u64,
            curr_connections,
            total_connections,
            cmd_get: counters.cmd_get,
            cmd_set: counters.cmd_set,
            get_hits: counters.get_hits,
            get_misses: counters.get_misses,
            evictions: counters.evictions,
            reclaimed: counters.reclaimed,
            limit_maxbytes: store.memory_bytes() as u64,
        }
    }

    /// Adds `other`'s figures to these.
    pub fn add(&mut self, other: &Self) {
        self.curr_items += other.curr_items;
        self.total_items += other.total_items;
        self.bytes += other.bytes;
        self.curr_connections += other.curr_connections;
        self.total_connections += other.total_connections;
        self.cmd_get += other.cmd_get;
        self.cmd_set += other.cmd_set;
        self.get_hits += other.get_hits;
        self.get_misses += other.get_misses;
        self.evictions += other.evictions;
        self.reclaimed += other.reclaimed;
        self.limit_maxbytes += other.limit_maxbytes;
    }

    /// Writes the `stats` answer: these (summed) figures, the uptime in
    /// seconds and the number of shards (`threads`). `pid` is 1: there
    /// are no processes.
    pub fn write(&self, sink: &mut impl Sink, uptime: u64, shards: usize) {
        reply::stat(sink, b"pid", 1);
        reply::stat(sink, b"uptime", uptime);
        reply::stat(sink, b"time", uptime);
        sink.put(b"STAT version 1.6.0-warpcore\r\n");
        reply::stat(sink, b"pointer_size", usize::BITS.into());
        reply::stat(sink, b"curr_connections", self.curr_connections);
        reply::stat(sink, b"total_connections", self.total_connections);
        reply::stat(sink, b"cmd_get", self.cmd_get);
        reply::stat(sink, b"cmd_set", self.cmd_set);
        reply::stat(sink, b"get_hits", self.get_hits);
        reply::stat(sink, b"get_misses", self.get_misses);
        reply::stat(sink, b"threads", shards as u64);
        reply::stat(sink, b"bytes", self.bytes);
        reply::stat(sink, b"curr_items", self.curr_items);
        reply::stat(sink, b"total_items", self.total_items);
        reply::stat(sink, b"evictions", self.evictions);
        reply::stat(sink, b"reclaimed", self.reclaimed);
        reply::stat(sink, b"limit_maxbytes", self.limit_maxbytes);
        sink.put(reply::END);
    }
}
