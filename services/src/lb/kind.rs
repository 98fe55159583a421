//! The `lb` service kind: its spec table and factory.

use super::{Endpoint, LoadBalancer, MaglevTable, PinTable};
use crate::registry::{BuildContext, HookPoint, ServiceKind, SpecSummary};
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::any::Any;
use core::net::Ipv4Addr;
use dataplane::Nanoservice;
use serde::{Deserialize, Deserializer};

/// The Maglev table's size when the spec does not say (the paper's
/// smallest example prime, 65 537 slots: 1 byte each).
pub const DEFAULT_TABLE_SIZE: usize = 65_537;

/// The largest table a spec may ask for (a prime above 4 Mi slots would
/// pass: the bound is on memory, 4 MiB a core).
pub const MAX_TABLE_SIZE: usize = 1 << 22;

/// Backends a service may have: each has two counters of its own, and a
/// node has at most 32 (`dataplane::MAX_EVENTS`), three of them the
/// node's own.
pub const MAX_BACKENDS: usize = 14;

/// Flows each core pins when the spec does not say.
pub const DEFAULT_FLOWS: usize = 65_536;

/// Most flows each core may pin (16 bytes an entry: 64 MiB).
const MAX_FLOWS: usize = 1 << 22;

fn default_table_size() -> usize {
    DEFAULT_TABLE_SIZE
}

fn default_flows() -> usize {
    DEFAULT_FLOWS
}

impl<'de> Deserialize<'de> for Endpoint {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let parsed = text.rsplit_once(':').and_then(|(address, port)| {
            Some(Endpoint {
                address: address.parse::<Ipv4Addr>().ok()?,
                port: port.parse::<u16>().ok().filter(|&port| port != 0)?,
            })
        });
        parsed.ok_or_else(|| {
            serde::de::Error::custom(alloc::format!(
                "expected an IPv4 address:port like \"10.0.2.100:80\", got {text:?}"
            ))
        })
    }
}

/// `lb`'s table:
///
/// ```toml
/// [[service]]
/// kind = "lb"
/// vip = "10.0.2.100:80"                      # TCP and UDP to this
/// backends = ["10.0.2.2:8000", "10.0.2.3:8000", "10.0.2.4:8000"]
/// table_size = 65537                         # a prime
/// flows = 65536                              # pinned per core
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LbConfig {
    /// The virtual address and port clients connect to.
    pub vip: Endpoint,
    /// The real servers, in any order (a backend's slots depend on its
    /// address:port only, not on its place in the list).
    pub backends: Vec<Endpoint>,
    /// Slots of the Maglev table: a prime, at least the number of
    /// backends (the paper wants it well above: 100 × N).
    #[serde(default = "default_table_size")]
    pub table_size: usize,
    /// Flows each core pins to their backend at most.
    #[serde(default = "default_flows")]
    pub flows: usize,
}

/// A balancer as `config` says, with no flows pinned yet.
fn balancer(config: &LbConfig) -> LoadBalancer {
    LoadBalancer::new(
        config.vip,
        config.backends.clone(),
        MaglevTable::new(&config.backends, config.table_size),
        PinTable::new(config.flows),
    )
}

/// True when `n` is prime (trial division: at most 2 048 steps for the
/// largest table).
pub fn is_prime(n: usize) -> bool {
    if n < 2 {
        return false;
    }
    let mut divisor = 2;
    while divisor * divisor <= n {
        if n.is_multiple_of(divisor) {
            return false;
        }
        divisor += 1;
    }
    true
}

/// `lb`: NAT-mode load balancing of a VIP at `ipv4:forward`, in front of
/// `l3fwd` (which routes the rewritten packet to its backend).
#[derive(Debug)]
pub struct LbKind;

impl ServiceKind for LbKind {
    const NAME: &'static str = "lb";
    type Config = LbConfig;

    fn attach(_config: &LbConfig) -> Vec<HookPoint> {
        vec![HookPoint::Ipv4Forward]
    }

    fn check(config: &LbConfig, _spec: &SpecSummary<'_>) -> Result<(), String> {
        let count = config.backends.len();
        if count == 0 || count > MAX_BACKENDS {
            return Err(alloc::format!(
                "backends: from 1 to {MAX_BACKENDS} backends, got {count}"
            ));
        }
        for (index, backend) in config.backends.iter().enumerate() {
            if config.backends[..index].contains(backend) {
                return Err(alloc::format!(
                    "backends: {}:{} is listed twice",
                    backend.address,
                    backend.port
                ));
            }
            if *backend == config.vip {
                return Err(String::from("backends: the VIP cannot be its own backend"));
            }
        }
        let size = config.table_size;
        if !is_prime(size) || size < count || size > MAX_TABLE_SIZE {
            return Err(alloc::format!(
                "table_size: a prime from {count} to {MAX_TABLE_SIZE}, got {size}"
            ));
        }
        if config.flows == 0 || config.flows > MAX_FLOWS {
            return Err(alloc::format!(
                "flows: from 1 to {MAX_FLOWS}, got {}",
                config.flows
            ));
        }
        Ok(())
    }

    fn build(config: &LbConfig, _context: &BuildContext<'_>) -> Box<dyn Nanoservice> {
        Box::new(balancer(config))
    }

    /// The node of the same VIP is the predecessor: its flow pins carry
    /// over (renumbered to the new list of backends), the Maglev table is
    /// built for the new backends.
    fn adopt(
        config: &LbConfig,
        _context: &BuildContext<'_>,
        previous: Box<dyn Nanoservice>,
    ) -> Result<Box<dyn Nanoservice>, Box<dyn Nanoservice>> {
        let same_vip = (&*previous as &dyn Any)
            .downcast_ref::<LoadBalancer>()
            .is_some_and(|old| old.vip() == config.vip);
        if !same_vip {
            return Err(previous);
        }
        let previous: Box<dyn Any> = previous;
        let Ok(previous) = previous.downcast::<LoadBalancer>() else {
            unreachable!("checked to be a LoadBalancer above");
        };
        let mut balancer = balancer(config);
        balancer.adopt(&previous);
        Ok(Box::new(balancer))
    }
}
