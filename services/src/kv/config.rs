//! `kv`'s spec table and its kind: `[[service]] kind = "kv" port = 11211
//! memory_bytes = 67108864 max_item_bytes = 1048576`.

use super::app::KvApp;
use super::command::MAX_KEY_LENGTH;
use super::shard::{RING_CAPACITY, ShardEnd, link_shards};
use super::store::item_size;
use crate::http::config::TcpPort;
use crate::registry::{BuildContext, HookPoint, SpecSummary, TcpServiceKind};
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::any::Any;
use serde::Deserialize;

/// Default memory limit of one core's shard: 64 MiB.
pub const DEFAULT_MEMORY_BYTES: usize = 64 * 1024 * 1024;
/// Default item limit (key, value and overhead): 1 MiB, as memcached's.
pub const DEFAULT_MAX_ITEM_BYTES: usize = 1024 * 1024;

/// `kv`'s table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KvConfig {
    /// The TCP port to serve (memcached's is 11211).
    pub port: TcpPort,
    /// Memory limit of each core's shard, counting keys, values and a
    /// per-item overhead; the least recently used items are evicted.
    #[serde(default = "default_memory_bytes")]
    pub memory_bytes: usize,
    /// Largest item (key, value and overhead).
    #[serde(default = "default_max_item_bytes")]
    pub max_item_bytes: usize,
}

/// See [`DEFAULT_MEMORY_BYTES`].
fn default_memory_bytes() -> usize {
    DEFAULT_MEMORY_BYTES
}

/// See [`DEFAULT_MAX_ITEM_BYTES`].
fn default_max_item_bytes() -> usize {
    DEFAULT_MAX_ITEM_BYTES
}

/// `kv`: a key-value store speaking the memcached text protocol at
/// `tcp:<port>`, sharded by key over the cores that run it.
#[derive(Debug)]
pub struct KvKind;

impl TcpServiceKind for KvKind {
    const NAME: &'static str = "kv";
    type Config = KvConfig;
    type App = KvApp;

    fn port(config: &KvConfig) -> u16 {
        config.port.0
    }

    fn check(config: &KvConfig, spec: &SpecSummary<'_>) -> Result<(), String> {
        let smallest = item_size(MAX_KEY_LENGTH, 1024);
        if config.max_item_bytes < smallest {
            return Err(alloc::format!(
                "max_item_bytes must be at least {smallest} (a longest key and 1 KiB)"
            ));
        }
        if config.max_item_bytes > config.memory_bytes {
            return Err("max_item_bytes cannot exceed memory_bytes".into());
        }
        // One app per port, as http: the later service is refused.
        let hook = HookPoint::Tcp(config.port.0);
        match spec
            .others()
            .find(|(index, other)| *index < spec.index && other.attach.contains(&hook))
        {
            Some((index, _)) => Err(alloc::format!("service[{index}] already serves {hook}")),
            None => Ok(()),
        }
    }

    /// The rings between every pair of the cores that run it (none on
    /// one core).
    fn link_cores(_config: &KvConfig, cores: usize) -> Vec<Box<dyn Any + Send>> {
        link_shards(cores, RING_CAPACITY)
            .into_iter()
            .map(|end| Box::new(end) as Box<dyn Any + Send>)
            .collect()
    }

    fn build(config: &KvConfig, context: &BuildContext<'_>) -> KvApp {
        let end = context
            .links
            .take::<ShardEnd>(HookPoint::Tcp(config.port.0));
        KvApp::new(config.memory_bytes, config.max_item_bytes, end).wake_with(context.doorbell)
    }
}
