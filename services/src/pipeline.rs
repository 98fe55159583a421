//! `build_core`: one core's nanoservice graph for a [`Spec`].
//!
//! ```text
//! port i ─rx─▶ eth[i] ─arp──▶ arp[i] ─tx─▶ port i
//!                     └ipv4─▶ ipv4 ─icmp─▶ icmp ─────────▶ ipv4-out ─if<n>─▶ arp[n]
//!                                  ├udp──▶ udp ─app<k>─▶ udp-echo ─┘
//!                                  │           └errors──────────────┘
//!                                  ├errors──────────────────────────┘
//!                                  └if<n> (l3fwd only) ─▶ arp[n]
//! ```
//!
//! Interfaces are numbered as in the spec (at most four: outputs `if0` to
//! `if3`). An interface without a port on this core has its `if<n>`
//! outputs wired to `Target::Discard`. `eth` and `arp` exist once per port
//! and share their names: sum same-named nodes when reading counters (see
//! [`drops`]). With `l2fwd` on the core, each port runs only a `l2fwd`
//! (MAC swap) node that reflects frames. Our MAC on an interface is the
//! spec's, whatever the driver reports.

use crate::MacSwap;
use crate::arp::Arp;
use crate::eth::Eth;
use crate::icmp::Icmp;
use crate::ipv4::Ipv4;
use crate::ipv4_out::Ipv4Out;
use crate::route::{LocalAddresses, RoutingTable};
use crate::udp::{BindError, Udp};
use crate::udp_echo::UdpEcho;
use alloc::boxed::Box;
use alloc::vec::Vec;
use dataplane::spec::{MAX_INTERFACES, ServiceKind, Spec};
use dataplane::stats::CoreCounters;
use dataplane::{Executor, ExecutorBuilder, ExecutorError, Mempool, Nic, NodeId, Target};

pub use crate::malformed::{MalformedFrame, malformed_frames};

/// Why a core's graph could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PipelineError {
    /// A port names an interface index the spec does not have.
    UnknownInterface(usize),
    /// Two ports for the same interface on one core.
    DuplicateInterface(usize),
    /// More UDP apps on the core than the `udp` node has outputs.
    TooManyApps,
    /// Two apps on one UDP port.
    PortInUse(u16),
    /// The executor refused the graph (a bug here).
    Executor(ExecutorError),
}

impl core::fmt::Display for PipelineError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::UnknownInterface(index) => write!(f, "the spec has no interface {index}"),
            Self::DuplicateInterface(index) => {
                write!(f, "interface {index} has two ports on this core")
            }
            Self::TooManyApps => write!(
                f,
                "more than {} UDP apps on one core",
                crate::udp::MAX_UDP_APPS
            ),
            Self::PortInUse(port) => write!(f, "UDP port {port} is bound twice"),
            Self::Executor(error) => write!(f, "executor: {error}"),
        }
    }
}

impl From<ExecutorError> for PipelineError {
    fn from(error: ExecutorError) -> Self {
        Self::Executor(error)
    }
}

impl From<BindError> for PipelineError {
    fn from(error: BindError) -> Self {
        match error {
            BindError::PortInUse(port) => Self::PortInUse(port),
            BindError::TooManyApps => Self::TooManyApps,
        }
    }
}

const INTERFACE_OUTPUTS: [&str; MAX_INTERFACES] = ["if0", "if1", "if2", "if3"];

/// Builds core `core`'s executor for `spec`: every port is (index of its
/// interface in `spec.interfaces`, the NIC queue this core polls).
pub fn build_core(
    spec: &Spec,
    core: usize,
    ports: Vec<(usize, Box<dyn Nic>)>,
    pool: Mempool,
    clock: fn() -> u64,
) -> Result<Executor, PipelineError> {
    let mut seen = [false; MAX_INTERFACES];
    for (interface, _) in &ports {
        if *interface >= spec.interfaces.len() || *interface >= MAX_INTERFACES {
            return Err(PipelineError::UnknownInterface(*interface));
        }
        if core::mem::replace(&mut seen[*interface], true) {
            return Err(PipelineError::DuplicateInterface(*interface));
        }
    }
    let mut builder = ExecutorBuilder::new();
    builder.pool(pool).clock(clock);
    let services: Vec<ServiceKind> = spec.services_on(core).map(|service| service.kind).collect();

    if services.contains(&ServiceKind::L2fwd) {
        for (_, nic) in ports {
            let port = builder.add_port(nic);
            let node = builder.add_node(Box::new(MacSwap));
            builder.route_rx(port, node)?;
            builder.connect(node, "out", Target::Port(port))?;
        }
        return Ok(builder.build()?);
    }

    let local = LocalAddresses::from_spec(spec);
    let routes = RoutingTable::from_spec(spec);
    let forwarding = services.contains(&ServiceKind::L3fwd);
    let ipv4 = builder.add_node(Box::new(Ipv4::new(
        local.clone(),
        routes.clone(),
        forwarding,
    )));
    let ipv4_out = builder.add_node(Box::new(Ipv4Out::new(
        routes,
        spec.interfaces
            .iter()
            .map(|interface| interface.mac)
            .collect(),
    )));
    let icmp = builder.add_node(Box::new(Icmp::new(local.clone())));
    let mut udp = Udp::new(local.clone());
    let mut apps: Vec<(usize, Box<dyn dataplane::Nanoservice>)> = Vec::new();
    for kind in &services {
        if let ServiceKind::UdpEcho { port } = kind {
            let app = udp.bind(*port)?;
            apps.push((app, Box::new(UdpEcho::new(local.clone()))));
        }
    }
    let udp = builder.add_node(Box::new(udp));

    let mut arp_nodes: [Option<NodeId>; MAX_INTERFACES] = [None; MAX_INTERFACES];
    for (interface, nic) in ports {
        let config = &spec.interfaces[interface];
        let port = builder.add_port(nic);
        let eth = builder.add_node(Box::new(Eth::new(config.mac)));
        let arp = builder.add_node(Box::new(Arp::new(config.mac, config.address)));
        builder.route_rx(port, eth)?;
        builder.connect(eth, "arp", Target::Node(arp))?;
        builder.connect(eth, "ipv4", Target::Node(ipv4))?;
        builder.connect(arp, "tx", Target::Port(port))?;
        builder.connect(arp, "absorbed", Target::Discard)?;
        arp_nodes[interface] = Some(arp);
    }
    for (output, arp) in INTERFACE_OUTPUTS.iter().zip(arp_nodes) {
        let target = arp.map_or(Target::Discard, Target::Node);
        builder.connect(ipv4, output, target)?;
        builder.connect(ipv4_out, output, target)?;
    }
    builder.connect(ipv4, "icmp", Target::Node(icmp))?;
    builder.connect(ipv4, "udp", Target::Node(udp))?;
    builder.connect(ipv4, "errors", Target::Node(ipv4_out))?;
    builder.connect(icmp, "out", Target::Node(ipv4_out))?;
    builder.connect(udp, "errors", Target::Node(ipv4_out))?;
    let app_outputs = [
        "app0", "app1", "app2", "app3", "app4", "app5", "app6", "app7",
    ];
    let mut bound = [false; 8];
    for (index, app) in apps {
        let node = builder.add_node(app);
        builder.connect(node, "out", Target::Node(ipv4_out))?;
        builder.connect(udp, app_outputs[index], Target::Node(node))?;
        bound[index] = true;
    }
    for (output, bound) in app_outputs.iter().zip(bound) {
        if !bound {
            builder.connect(udp, output, Target::Discard)?;
        }
    }
    Ok(builder.build()?)
}

/// The sum of drop counter `reason` over every node called `node` (per-port
/// nodes like `eth` and `arp` share a name); 0 when there is none.
pub fn drops(counters: &CoreCounters, node: &str, reason: &str) -> u64 {
    counters
        .nodes
        .iter()
        .filter(|counters| counters.name == node)
        .filter_map(|counters| counters.drops_named(reason))
        .sum()
}
