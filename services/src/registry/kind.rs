//! `ServiceKind`: what a service author implements to make a nanoservice
//! nameable in a spec, and the contexts its factory receives.

use super::{CoreLinks, HookPoint};
use crate::claim::LocalClaim;
use crate::icmp_error::ErrorLimiter;
use crate::route::{LocalAddresses, RoutingTable};
use crate::tcp::{Hosted, Listener, TcpApp};
use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::any::Any;
use core::fmt::Debug;
use dataplane::{Doorbell, Ipv4Cidr, MacAddr, Nanoservice};
use serde::de::DeserializeOwned;

/// A kind of service: a name bound to a factory. The spec's
/// `[[service]]` table names it with `kind = "<NAME>"`; the table's other
/// keys (all but `kind`, `cores` and `attach`) are deserialized into
/// [`Config`](Self::Config) with serde, so a mistake is reported with its
/// line and field. Register it with [`Registry::register`](super::Registry::register).
///
/// The node a kind builds talks to the graph through output names that the
/// hook point binds (see [`HookPoint`]): `pass` (on to what comes next at
/// the hook point), `out` (transmit: on the same port at layer 2, through
/// IPv4 routing above), `errors` (ICMP errors, through routing) and
/// `if<n>` (out of interface `n` after ARP resolution).
pub trait ServiceKind: 'static {
    /// The name in a spec, like `udp-echo`.
    const NAME: &'static str;

    /// The service's own settings, from its spec table. Use
    /// `#[serde(deny_unknown_fields)]` so that typos are refused.
    type Config: DeserializeOwned + Debug + Send + Sync + 'static;

    /// Where the service attaches when the spec does not say (`attach`).
    fn attach(config: &Self::Config) -> Vec<HookPoint>;

    /// Checks the service against the rest of the spec; the error says
    /// why in a sentence (the spec error adds the line and field).
    fn check(_config: &Self::Config, _spec: &SpecSummary<'_>) -> Result<(), String> {
        Ok(())
    }

    /// Links between the `cores` cores that run the service, made once per
    /// spec before any core builds: one end per core, in core order.
    /// `build` takes its core's end back with
    /// `context.links.take::<End>(hook)` (its first hook point). None by
    /// default.
    fn link_cores(_config: &Self::Config, _cores: usize) -> Vec<Box<dyn Any + Send>> {
        Vec::new()
    }

    /// Packets for our own addresses that the service takes at
    /// `ipv4:forward` instead of the local stack (a NAT's replies and
    /// forwarded ports), given the spec's interfaces. None by default.
    fn claims(_config: &Self::Config, _interfaces: &[InterfaceInfo]) -> Vec<LocalClaim> {
        Vec::new()
    }

    /// Builds the node for one core (or one port of it, at a per-port hook
    /// point).
    fn build(config: &Self::Config, context: &BuildContext<'_>) -> Box<dyn Nanoservice>;

    /// Builds the node for one core like [`build`](Self::build), for a
    /// service whose settings changed, taking over the state of
    /// `previous`: a node the previous spec ran here that no unchanged
    /// service takes over (of any kind). A kind that can carry its state
    /// across a change of settings (the `lb` its flow pins over a change
    /// of backends, `firewall` and `nat` their flows and bindings over a
    /// change of rules) checks that `previous` is its own predecessor
    /// (its kind, and what names it, like the `lb`'s VIP) and returns the
    /// new node; `Err(previous)`, untouched, when it is not (then
    /// [`build`](Self::build) builds it anew, and `context` must not have
    /// been used). By default nothing is adopted.
    fn adopt(
        _config: &Self::Config,
        _context: &BuildContext<'_>,
        previous: Box<dyn Nanoservice>,
    ) -> Result<Box<dyn Nanoservice>, Box<dyn Nanoservice>> {
        Err(previous)
    }
}

/// A TCP app kind: a name bound to a factory for a [`TcpApp`] served on
/// the port its configuration names (hook point `tcp:<port>`). Register it
/// with [`Registry::register_tcp`](super::Registry::register_tcp).
pub trait TcpServiceKind: 'static {
    /// The name in a spec, like `http`.
    const NAME: &'static str;

    /// The app's own settings, from its spec table (`port` among them).
    type Config: DeserializeOwned + Debug + Send + Sync + 'static;

    /// The app this kind builds.
    type App: TcpApp;

    /// The TCP port the app serves.
    fn port(config: &Self::Config) -> u16;

    /// Checks the service against the rest of the spec.
    fn check(_config: &Self::Config, _spec: &SpecSummary<'_>) -> Result<(), String> {
        Ok(())
    }

    /// Links between the `cores` cores that run the service, made once per
    /// spec before any core builds: one end per core, in core order (the
    /// first end goes to the lowest-numbered core that runs it). `build`
    /// takes its core's end back with
    /// `context.links.take::<End>(HookPoint::Tcp(port))`. None by default.
    fn link_cores(_config: &Self::Config, _cores: usize) -> Vec<Box<dyn Any + Send>> {
        Vec::new()
    }

    /// Builds the app for one core.
    fn build(config: &Self::Config, context: &BuildContext<'_>) -> Self::App;
}

/// What a service's factory built: a node of the packet graph, or an app
/// of the core's TCP stack.
pub enum Built {
    /// A nanoservice, wired into the graph at its hook point.
    Node(Box<dyn Nanoservice>),
    /// A TCP app, served by the core's `tcp` node on its port.
    Tcp(Box<dyn Listener>),
}

impl Built {
    /// The built thing's kind name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Node(node) => node.name(),
            Self::Tcp(listener) => listener.name(),
        }
    }
}

impl Debug for Built {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Node(node) => write!(f, "Node({})", node.name()),
            Self::Tcp(listener) => write!(f, "Tcp({})", listener.name()),
        }
    }
}

/// An interface as services see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceInfo {
    /// Its name in the spec, like `eth0`.
    pub name: String,
    /// Our MAC address on it.
    pub mac: MacAddr,
    /// Our address on it and the connected subnet.
    pub address: Ipv4Cidr,
}

/// A service of the spec as other services' checks see it.
#[derive(Debug, Clone, Copy)]
pub struct ServiceSummary<'a> {
    /// Its kind's name.
    pub kind: &'a str,
    /// Where it attaches.
    pub attach: &'a [HookPoint],
}

/// The spec as a service's [`ServiceKind::check`] sees it.
#[derive(Debug, Clone, Copy)]
pub struct SpecSummary<'a> {
    /// Every interface, in spec order.
    pub interfaces: &'a [InterfaceInfo],
    /// Every service, in spec order.
    pub services: &'a [ServiceSummary<'a>],
    /// The index in `services` of the service being checked.
    pub index: usize,
}

impl SpecSummary<'_> {
    /// The other services of the spec, with their indexes.
    pub fn others(&self) -> impl Iterator<Item = (usize, &ServiceSummary<'_>)> {
        let index = self.index;
        self.services
            .iter()
            .enumerate()
            .filter(move |(other, _)| *other != index)
    }
}

/// What a factory gets to build one node.
#[derive(Debug, Clone, Copy)]
pub struct BuildContext<'a> {
    /// The core the node runs on.
    pub core: usize,
    /// Every interface of the spec, by index.
    pub interfaces: &'a [InterfaceInfo],
    /// The interface the node serves, at a per-port hook point.
    pub interface: Option<usize>,
    /// Our addresses, for "is this for us" questions.
    pub local: &'a LocalAddresses,
    /// The routing table (connected and static routes).
    pub routes: &'a RoutingTable,
    /// The core's ICMP error limiter, shared by every node that sends
    /// errors (clone it).
    pub errors: &'a ErrorLimiter,
    /// This core's ends of the links between cores that services asked
    /// for ([`TcpServiceKind::link_cores`]); a factory takes its own.
    pub links: &'a CoreLinks,
    /// This core's doorbell, when the platform lets it sleep: a service
    /// fed by rings from other cores sets it on their consumer ends
    /// (`Consumer::set_doorbell`) so that their producers wake the core.
    pub doorbell: Option<&'a Arc<Doorbell>>,
}

/// A service's configuration with its kind erased: what the spec keeps for
/// each `[[service]]` and the graph builder asks to build nodes.
pub trait ServiceConfig: Debug + Send + Sync {
    /// The kind's name.
    fn kind(&self) -> &'static str;
    /// The kind's default hook points for this configuration.
    fn attach(&self) -> Vec<HookPoint>;
    /// See [`ServiceKind::check`].
    fn check(&self, spec: &SpecSummary<'_>) -> Result<(), String>;
    /// See [`TcpServiceKind::link_cores`]; none by default.
    fn link_cores(&self, _cores: usize) -> Vec<Box<dyn Any + Send>> {
        Vec::new()
    }
    /// See [`ServiceKind::claims`]; none by default.
    fn claims(&self, _interfaces: &[InterfaceInfo]) -> Vec<LocalClaim> {
        Vec::new()
    }
    /// See [`ServiceKind::build`] and [`TcpServiceKind::build`].
    fn build(&self, context: &BuildContext<'_>) -> Built;
    /// See [`ServiceKind::adopt`]; nothing is adopted by default.
    fn adopt(
        &self,
        _context: &BuildContext<'_>,
        previous: Box<dyn Nanoservice>,
    ) -> Result<Box<dyn Nanoservice>, Box<dyn Nanoservice>> {
        Err(previous)
    }
    /// True for a TCP app (it attaches only at `tcp:<port>`).
    fn serves_tcp(&self) -> bool {
        false
    }
}

/// A kind's configuration, erased behind [`ServiceConfig`].
pub(super) struct Configured<K: ServiceKind>(pub(super) K::Config);

impl<K: ServiceKind> Debug for Configured<K> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} {:?}", K::NAME, self.0)
    }
}

impl<K: ServiceKind> ServiceConfig for Configured<K> {
    fn kind(&self) -> &'static str {
        K::NAME
    }

    fn attach(&self) -> Vec<HookPoint> {
        K::attach(&self.0)
    }

    fn check(&self, spec: &SpecSummary<'_>) -> Result<(), String> {
        K::check(&self.0, spec)
    }

    fn link_cores(&self, cores: usize) -> Vec<Box<dyn Any + Send>> {
        K::link_cores(&self.0, cores)
    }

    fn claims(&self, interfaces: &[InterfaceInfo]) -> Vec<LocalClaim> {
        K::claims(&self.0, interfaces)
    }

    fn build(&self, context: &BuildContext<'_>) -> Built {
        Built::Node(K::build(&self.0, context))
    }

    fn adopt(
        &self,
        context: &BuildContext<'_>,
        previous: Box<dyn Nanoservice>,
    ) -> Result<Box<dyn Nanoservice>, Box<dyn Nanoservice>> {
        K::adopt(&self.0, context, previous)
    }
}

/// A TCP kind's configuration, erased behind [`ServiceConfig`].
pub(super) struct ConfiguredTcp<K: TcpServiceKind>(pub(super) K::Config);

impl<K: TcpServiceKind> Debug for ConfiguredTcp<K> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} {:?}", K::NAME, self.0)
    }
}

impl<K: TcpServiceKind> ServiceConfig for ConfiguredTcp<K> {
    fn kind(&self) -> &'static str {
        K::NAME
    }

    fn attach(&self) -> Vec<HookPoint> {
        alloc::vec![HookPoint::Tcp(K::port(&self.0))]
    }

    fn check(&self, spec: &SpecSummary<'_>) -> Result<(), String> {
        K::check(&self.0, spec)
    }

    fn serves_tcp(&self) -> bool {
        true
    }

    fn link_cores(&self, cores: usize) -> Vec<Box<dyn Any + Send>> {
        K::link_cores(&self.0, cores)
    }

    fn build(&self, context: &BuildContext<'_>) -> Built {
        Built::Tcp(Box::new(Hosted::new(K::NAME, K::build(&self.0, context))))
    }
}
