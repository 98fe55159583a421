//! The `conntrack` service kind: its spec table and factory.

use super::{Conntrack, FlowTable, Timeouts};
use crate::registry::{BuildContext, HookPoint, ServiceKind};
use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;
use core::hash::BuildHasher;
use dataplane::Nanoservice;
use serde::Deserialize;

/// Flows per core when the spec does not say.
pub const DEFAULT_CAPACITY: usize = 65_536;

/// Most flows per core a spec may ask for (64 bytes an entry: 256 MiB).
pub const MAX_CAPACITY: usize = 1 << 22;

fn default_capacity() -> usize {
    DEFAULT_CAPACITY
}

fn default_true() -> bool {
    true
}

/// `conntrack`'s table: `capacity = 65536`, `drop_invalid = true`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConntrackConfig {
    /// Flows each core tracks at most (rounded up to a power of two).
    #[serde(default = "default_capacity")]
    pub capacity: usize,
    /// Drop packets that fit no flow (else pass them, counted).
    #[serde(default = "default_true")]
    pub drop_invalid: bool,
}

/// A per-core, per-boot seed for the flow hash.
pub(crate) fn flow_seed(core: usize) -> u64 {
    foldhash::fast::RandomState::default().hash_one(core)
}

/// Checks a capacity from a spec.
pub(crate) fn check_capacity(capacity: usize) -> Result<(), alloc::string::String> {
    if capacity == 0 || capacity > MAX_CAPACITY {
        return Err(alloc::format!(
            "capacity must be from 1 to {MAX_CAPACITY} flows, got {capacity}"
        ));
    }
    Ok(())
}

/// `conntrack`: tracks the flows passing through, at `ipv4:forward`.
#[derive(Debug)]
pub struct ConntrackKind;

impl ServiceKind for ConntrackKind {
    const NAME: &'static str = "conntrack";
    type Config = ConntrackConfig;

    fn attach(_config: &ConntrackConfig) -> Vec<HookPoint> {
        vec![HookPoint::Ipv4Forward]
    }

    fn check(
        config: &ConntrackConfig,
        _spec: &crate::registry::SpecSummary<'_>,
    ) -> Result<(), alloc::string::String> {
        check_capacity(config.capacity)
    }

    fn build(config: &ConntrackConfig, context: &BuildContext<'_>) -> Box<dyn Nanoservice> {
        let table = FlowTable::new(config.capacity, Timeouts::LINUX, flow_seed(context.core));
        Box::new(Conntrack::new(table, config.drop_invalid))
    }
}
