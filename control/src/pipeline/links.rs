//! `core_links`: the links between cores that a spec's services ask for,
//! made once per spec before any core builds, one set per core.

use crate::spec::Spec;
use alloc::sync::Arc;
use alloc::vec::Vec;
use services::registry::CoreLinks;
use services::tcp::FlowDirectory;

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
    // Every core's TCP stack shares one directory of who owns which
    // connection, and rings to every other core's stack to pass it the
    // segments of its connections that arrive elsewhere, when there is
    // TCP to share.
    if cores > 1
        && spec
            .services
            .iter()
            .any(|service| service.config.serves_tcp())
    {
        let directory = Arc::new(FlowDirectory::new());
        let rings = services::tcp::strays::link(cores);
        for (core_links, strays) in links.iter_mut().zip(rings) {
            core_links.insert_shared(Arc::clone(&directory));
            core_links.insert_shared(strays);
        }
    }
    // Every core's ARP of an interface shares the bindings it learns with
    // the others': forwarding from any core needs them.
    if cores > 1 {
        for interface in 0..spec.interfaces.len() {
            for (core_links, relay) in links
                .iter_mut()
                .zip(services::arp::link_relays(interface, cores))
            {
                core_links.insert_shared(relay);
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use services::HookPoint;
    use services::kv::shard::ShardEnd;

    const SPEC: &str = "[[interface]]\nname = \"eth0\"\ndriver = \"loopback\"\nmac = \"02:00:00:00:00:01\"\naddress = \"10.0.0.2/24\"\n\
        [[service]]\nkind = \"kv\"\nport = 11211\n\
        [[service]]\nkind = \"kv\"\nport = 11212\ncores = [0]\n\
        [[service]]\nkind = \"udp-echo\"\nport = 7\n";

    #[test]
    fn a_sharded_service_gets_one_end_per_core_that_runs_it() {
        let spec = Spec::parse(SPEC, &services::Registry::with_builtin()).unwrap();
        let links = core_links(&spec, 3);
        assert_eq!(links.len(), 3);
        for core_links in &links {
            // Port 11212 runs on one core only: no rings; udp-echo asks
            // none; the TCP stack gets the shared flow directory.
            assert_eq!(core_links.len(), 1);
            assert!(core_links.take::<ShardEnd>(HookPoint::Tcp(11211)).is_some());
            assert!(core_links.take_shared::<Arc<FlowDirectory>>().is_some());
            assert!(core_links.take_shared::<services::tcp::Strays>().is_some());
        }
        assert!(core_links(&spec, 1).iter().all(CoreLinks::is_empty));
    }
}
