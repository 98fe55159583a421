//! Builds a core's executor from the spec with the shared pipeline builder,
//! the same one the appliance uses.

use dataplane::spec::Spec;
use dataplane::{Executor, Mempool, Nic};

/// The executor of core `core` over `ports` (spec interface index, NIC
/// queue), allocating from `pool`.
pub fn build(
    spec: &Spec,
    core: usize,
    ports: Vec<(usize, Box<dyn Nic>)>,
    pool: Mempool,
    clock: fn() -> u64,
) -> Result<Executor, String> {
    services::pipeline::build_core(spec, core, ports, pool, clock)
        .map_err(|error| format!("pipeline: {error}"))
}
