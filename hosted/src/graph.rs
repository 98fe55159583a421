//! Builds a core's executor from the spec. Until the spec-driven pipeline
//! (`services::pipeline::build_core`) lands, every port reflects frames
//! through `services::MacSwap`, which exercises the NIC path end to end.

use dataplane::spec::Spec;
use dataplane::{Executor, ExecutorBuilder, Mempool, Nic, Target};

/// The executor of core `core` over `ports` (spec interface index, NIC
/// queue), allocating from `pool`.
pub fn build(
    _spec: &Spec,
    _core: usize,
    ports: Vec<(usize, Box<dyn Nic>)>,
    pool: Mempool,
    clock: fn() -> u64,
) -> Result<Executor, String> {
    let mut builder = ExecutorBuilder::new();
    builder.pool(pool);
    builder.clock(clock);
    for (_, nic) in ports {
        let port = builder.add_port(nic);
        let node = builder.add_node(Box::new(services::MacSwap));
        builder
            .route_rx(port, node)
            .and_then(|builder| builder.connect(node, "out", Target::Port(port)))
            .map_err(|error| error.to_string())?;
    }
    builder.build().map_err(|error| error.to_string())
}
