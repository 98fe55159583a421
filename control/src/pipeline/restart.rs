//! Supervision's factories: each service of a chain can be rebuilt from
//! its spec after a failure, with the context the core first built it
//! with; the links between cores, which a first build consumed, the
//! rebuilt node takes from the failed one (`Nanoservice::take_links`).

use alloc::boxed::Box;
use alloc::rc::Rc;
use alloc::sync::Arc;
use alloc::vec::Vec;
use dataplane::{Doorbell, Nanoservice, Rebuild};
use services::icmp_error::ErrorLimiter;
use services::registry::{BuildContext, Built, CoreLinks, InterfaceInfo, ServiceConfig};
use services::route::{LocalAddresses, RoutingTable};
use services::tcp::{AppRebuild, AppSupervision, Listener, Tcp, TcpConfig};

/// A [`BuildContext`] that owns what it lends, for builds after the core
/// started.
pub(super) struct OwnedContext {
    core: usize,
    interfaces: Vec<InterfaceInfo>,
    interface: Option<usize>,
    local: LocalAddresses,
    routes: RoutingTable,
    errors: ErrorLimiter,
    /// Empty: a restarted service takes the links to other cores from the
    /// one that failed (`Nanoservice::take_links`, `TcpApp::take_links`).
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

/// What the `tcp` node of a core is rebuilt from: the stack's settings and
/// each app's spec.
pub(super) struct TcpRecipe {
    /// `[tcp]`.
    pub(super) config: TcpConfig,
    /// How its apps are supervised.
    pub(super) supervision: AppSupervision,
    /// The clock, for a fresh seed.
    pub(super) clock: fn() -> u64,
    /// Each app: its port, tag, spec, and the supervision counters the
    /// graph exports for it (a rebuilt stack's apps count on in them).
    pub(super) apps: Vec<AppRecipe>,
}

/// One app of a rebuilt `tcp` node.
pub(super) struct AppRecipe {
    /// Its port.
    pub(super) port: u16,
    /// Its tag (what it stands for in the spec).
    pub(super) tag: u64,
    /// Its spec.
    pub(super) config: Arc<dyn ServiceConfig>,
    /// The supervision counters the graph exports for it.
    pub(super) counters: Arc<dataplane::supervise::SupervisionCounters>,
}

/// The factory that rebuilds a core's `tcp` node from `recipe`: a fresh
/// stack (no connections, a new seed) serving every app, each built anew
/// from its spec with its own factory for the app's supervision.
pub(super) fn rebuild_tcp(recipe: TcpRecipe, context: Rc<OwnedContext>) -> Rebuild {
    Box::new(move || -> Box<dyn Nanoservice> {
        let seed = (recipe.clock)().wrapping_mul(0x9e37_79b9_7f4a_7c15)
            ^ (context.core as u64).rotate_left(32);
        let mut stack = Tcp::new(context.local.clone(), recipe.config, seed)
            .with_routes(context.routes.clone());
        stack.set_supervision(recipe.supervision);
        for app in &recipe.apps {
            let AppRecipe {
                port,
                tag,
                config,
                counters,
            } = app;
            let listener = match config.build(&context.context()) {
                Built::Tcp(listener) => listener,
                Built::Node(node) => {
                    panic!("service {} rebuilt as a node, not a TCP app", node.name())
                }
            };
            let rebuild = rebuild_app(Arc::clone(config), Rc::clone(&context));
            stack.listen_counted(*port, listener, *tag, Some(rebuild), Arc::clone(counters));
        }
        Box::new(stack)
    })
}
