//! `core_links`: the links between cores that a spec's services ask for,
//! made once per spec before any core builds, one set per core.

use crate::spec::Spec;
use alloc::vec::Vec;
use services::registry::CoreLinks;

/// Makes the links between cores that the spec's services ask for
/// ([`TcpServiceKind::link_cores`]): element `core` of the result goes to
/// [`build_core`](super::build_core) on core `core`. `cores` is how many
/// cores the platform runs; a service's ends go to the cores among them
/// that run it, each kept under the service's first hook point. Call it
/// once per spec, before the cores build (they build on their own threads
/// and each moves its `CoreLinks` there).
///
/// [`TcpServiceKind::link_cores`]: services::registry::TcpServiceKind::link_cores
pub fn core_links(spec: &Spec, cores: usize) -> Vec<CoreLinks> {
    let mut links: Vec<CoreLinks> = (0..cores).map(|_| CoreLinks::new()).collect();
    for service in &spec.services {
        let Some(hook) = service.attach.first() else {
            continue;
        };
        let running: Vec<usize> = (0..cores).filter(|core| service.runs_on(*core)).collect();
        let ends = service.config.link_cores(running.len());
        for (core, end) in running.into_iter().zip(ends) {
            links[core].insert(*hook, end);
        }
    }
    links
}
