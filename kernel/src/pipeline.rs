//! Builds a core's executor from the spec through `services::pipeline::build_core`
//! (eth, arp, ipv4, icmp, udp and the spec's apps over this core's queue pairs).

use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use dataplane::spec::Spec;
use dataplane::{Executor, Mempool, Nic};

/// The executor of core `core` over `ports` (spec interface index, NIC queue).
pub fn build(
    spec: &Spec,
    core: usize,
    ports: Vec<(usize, Box<dyn Nic>)>,
    pool: Mempool,
    clock: fn() -> u64,
) -> Result<Executor, String> {
    services::pipeline::build_core(spec, core, ports, pool, clock)
        .map_err(|error| error.to_string())
}
