//! Supervision's factories: each service of a chain can be rebuilt from
//! its spec after a failure, with the context the core first built it
//! with (less the links between cores, which a first build consumed).

use alloc::boxed::Box;
use alloc::rc::Rc;
use alloc::sync::Arc;
use alloc::vec::Vec;
use dataplane::{Doorbell, Nanoservice, Rebuild};
use services::icmp_error::ErrorLimiter;
use services::registry::{BuildContext, Built, CoreLinks, InterfaceInfo, ServiceConfig};
use services::route::{LocalAddresses, RoutingTable};
use services::tcp::{AppRebuild, Listener};

/// A [`BuildContext`] that owns what it lends, for builds after the core
/// started.
pub(super) struct OwnedContext {
    core: usize,
    interfaces: Vec<InterfaceInfo>,
    interface: Option<usize>,
    local: LocalAddresses,
    routes: RoutingTable,
    errors: ErrorLimiter,
    /// Empty: a restarted service gets no links to other cores.
    links: CoreLinks,
    doorbell: Option<Arc<Doorbell>>,
}

impl OwnedContext {
    /// A copy of `context` (the core's ICMP error limiter shared, not
    /// copied).
    pub(super) fn of(context: &BuildContext<'_>) -> Rc<Self> {
        Rc::new(Self {
            core: context.core,
            interfaces: context.interfaces.to_vec(),
            interface: context.interface,
            local: context.local.clone(),
            routes: context.routes.clone(),
            errors: context.errors.clone(),
            links: CoreLinks::new(),
            doorbell: context.doorbell.cloned(),
        })
    }

    fn context(&self) -> BuildContext<'_> {
        BuildContext {
            core: self.core,
            interfaces: &self.interfaces,
            interface: self.interface,
            local: &self.local,
            routes: &self.routes,
            errors: &self.errors,
            links: &self.links,
            doorbell: self.doorbell.as_ref(),
        }
    }
}

/// The factory that rebuilds the node of `config` (a kind that built a
/// node the first time) in `context`.
pub(super) fn rebuild(config: Arc<dyn ServiceConfig>, context: Rc<OwnedContext>) -> Rebuild {
    Box::new(move || -> Box<dyn Nanoservice> {
        match config.build(&context.context()) {
            Built::Node(node) => node,
            // The first build of the same configuration made a node; a
            // kind whose shape changes is a bug, contained as a failed
            // restart (the supervisor catches this and backs off).
            Built::Tcp(listener) => panic!(
                "service {} rebuilt as a TCP app, not a node",
                listener.name()
            ),
        }
    })
}

/// The factory that rebuilds the TCP app of `config` (a kind that built an
/// app the first time) in `context`, for the `tcp` node's supervision.
pub(super) fn rebuild_app(config: Arc<dyn ServiceConfig>, context: Rc<OwnedContext>) -> AppRebuild {
    Box::new(move || -> Box<dyn Listener> {
        match config.build(&context.context()) {
            Built::Tcp(listener) => listener,
            // As in `rebuild`: a kind whose shape changes is a bug,
            // contained as a failed restart.
            Built::Node(node) => panic!("service {} rebuilt as a node, not a TCP app", node.name()),
        }
    })
}
