//! `build_core`: one core's nanoservice graph for a [`Spec`]: the stack's
//! own stages, and every service of the spec built by its kind's factory
//! and spliced in at its hook points.
//!
//! ```text
//! port i ─rx─▶ [port:rx chain] ─pass─▶ eth[i] ─arp──▶ arp[i] ─tx─▶ port i
//!                                        ├ethertype<k>─▶ [eth:<type> chain]
//!                                        └ipv4─▶ ipv4 ─icmp─▶ [ipv4:proto:1 chain] ─pass─▶ icmp ─▶ ipv4-out
//!                                                     ├udp──▶ [ipv4:proto:17 chain] ─pass─▶ udp
//!                                                     ├proto<k>─▶ [ipv4:proto:<n> chain]
//!                                                     ├forward─▶ [ipv4:forward chain] (l3fwd) ─if<n>─▶ arp[n]
//!                                                     ├errors─▶ ipv4-out
//!                                                     └held─▶ (fragments taken into reassembly: discard)
//! udp ─app<k>─▶ [udp:<port> chain] (udp-echo) ─out─▶ ipv4-out ─if<n>─▶ arp[n]
//! ```
//!
//! Services at one hook point form a chain in spec order; a service's
//! outputs are bound by name: `pass` to the next in the chain (the last
//! one's to the stage the hook point feeds, or a discard), `out` to the
//! port's transmit at layer 2 and to `ipv4-out` above, `errors` to
//! `ipv4-out`, `if<n>` to interface `n`'s ARP stage. A core whose `port:rx`
//! services pass nothing on (l2fwd) gets no IP stack at all.
//!
//! Interfaces are numbered as in the spec. `eth` and `arp` exist once per
//! port and share their names: sum same-named nodes when reading counters
//! (`CoreCounters::node_drops`). Our MAC on an interface is the spec's,
//! whatever the driver reports.

use crate::spec::Spec;
use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use dataplane::{
    Executor, ExecutorBuilder, ExecutorError, Mempool, Nanoservice, Nic, NodeId, Target,
};
use services::icmp_error::ErrorLimiter;
use services::reassembly::Reassembly;
use services::registry::{BuildContext, InterfaceInfo, ServiceConfig};
use services::route::{LocalAddresses, RouteEntry, RoutingTable};
use services::udp::BindError;
use services::{Arp, Eth, HookPoint, Icmp, Ipv4, Ipv4Out, MAX_INTERFACES, Udp};

/// Why a core's graph could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PipelineError {
    /// A port names an interface index the spec does not have.
    UnknownInterface(usize),
    /// Two ports for the same interface on one core.
    DuplicateInterface(usize),
    /// More services at one kind of hook point than its stage has outputs,
    /// like a ninth UDP port on one core.
    TooManyHooks(HookPoint),
    /// A service has an output that no hook point binds.
    UnboundOutput {
        /// The node's name.
        service: &'static str,
        /// The output.
        output: &'static str,
    },
    /// A service passes nothing on, so the services after it (or the whole
    /// IP stack) would never see a packet.
    Unreachable {
        /// The node that passes nothing on.
        service: &'static str,
    },
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
            Self::TooManyHooks(hook) => {
                write!(f, "no room for another hook point like {hook} on one core")
            }
            Self::UnboundOutput { service, output } => write!(
                f,
                "service `{service}` has an output `{output}` that no hook point binds \
                 (use pass, out, errors or if<n>)"
            ),
            Self::Unreachable { service } => write!(
                f,
                "service `{service}` has no `pass` output, so what follows it would never see a packet"
            ),
            Self::Executor(error) => write!(f, "executor: {error}"),
        }
    }
}

impl From<ExecutorError> for PipelineError {
    fn from(error: ExecutorError) -> Self {
        Self::Executor(error)
    }
}

/// The services of one hook point on this core, in spec order.
struct Chain<'a> {
    hook: HookPoint,
    services: Vec<&'a dyn ServiceConfig>,
}

/// The stage nodes that service outputs may lead to.
#[derive(Clone, Copy)]
struct Stack {
    ipv4_out: Option<NodeId>,
    arp: [Option<NodeId>; MAX_INTERFACES],
}

impl Stack {
    /// Where output `output` of a service leads; `out` is the hook point's
    /// transmit target and `pass` what follows the service.
    fn target(
        &self,
        service: &'static str,
        output: &'static str,
        pass: Target,
        out: Target,
    ) -> Result<Target, PipelineError> {
        let unbound = || PipelineError::UnboundOutput { service, output };
        match output {
            "pass" => Ok(pass),
            "out" => Ok(out),
            "errors" => self.ipv4_out.map(Target::Node).ok_or_else(unbound),
            _ => {
                let index: usize = output
                    .strip_prefix("if")
                    .and_then(|digits| digits.parse().ok())
                    .filter(|index| *index < MAX_INTERFACES)
                    .ok_or_else(unbound)?;
                match self.ipv4_out {
                    Some(_) => Ok(self.arp[index].map_or(Target::Discard, Target::Node)),
                    None => Err(unbound()),
                }
            }
        }
    }
}

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
    let interfaces: Vec<InterfaceInfo> = spec.interface_infos();
    let local = LocalAddresses::new(interfaces.iter().map(|info| info.address).collect());
    let static_routes: Vec<RouteEntry> = spec
        .routes
        .iter()
        .map(|route| RouteEntry {
            destination: route.destination,
            interface: route.interface,
            via: route.via,
        })
        .collect();
    let addresses: Vec<_> = interfaces.iter().map(|info| info.address).collect();
    let routes = RoutingTable::new(&addresses, &static_routes);
    let errors = ErrorLimiter::new();
    let context = BuildContext {
        core,
        interfaces: &interfaces,
        interface: None,
        local: &local,
        routes: &routes,
        errors: &errors,
    };
    let chains = chains(spec, core);
    let chain = |hook: HookPoint| chains.iter().find(|chain| chain.hook == hook);

    let mut builder = ExecutorBuilder::new();
    builder.pool(pool).clock(clock);

    // Layer 2 first: each port's `port:rx` chain decides whether the stack
    // is reachable at all.
    let port_rx = chain(HookPoint::PortRx);
    let mut port_chains = Vec::with_capacity(ports.len());
    let mut stack_needed = false;
    for (interface, nic) in ports {
        let port = builder.add_port(nic);
        let port_context = BuildContext {
            interface: Some(interface),
            ..context
        };
        let nodes = build_chain(&mut builder, port_rx, &port_context)?;
        stack_needed |= passes_on(&nodes);
        port_chains.push((interface, port, nodes));
    }
    if !stack_needed {
        if let Some(chain) = chains.iter().find(|chain| chain.hook != HookPoint::PortRx) {
            return Err(PipelineError::Unreachable {
                service: port_chains
                    .first()
                    .and_then(|(_, _, nodes)| nodes.last())
                    .map_or(chain.services[0].kind(), |(_, name, _)| *name),
            });
        }
        let stack = Stack {
            ipv4_out: None,
            arp: [None; MAX_INTERFACES],
        };
        for (_, port, nodes) in &port_chains {
            wire_chain(
                &mut builder,
                &stack,
                nodes,
                Target::Discard,
                Target::Port(*port),
            )?;
            if let Some((head, _, _)) = nodes.first() {
                builder.route_rx(*port, *head)?;
            }
        }
        return Ok(builder.build()?);
    }

    // The IP stack, with every hook point's demultiplexer bound first.
    let forwarding = chain(HookPoint::Ipv4Forward).is_some();
    let mut ipv4 = Ipv4::new(
        local.clone(),
        forwarding,
        errors.clone(),
        Reassembly::new(spec.ipv4.reassembly),
    );
    let mut udp = Udp::new(local.clone(), errors.clone());
    let mut protocol_slots = Vec::new();
    let mut udp_slots = Vec::new();
    for chain in &chains {
        match chain.hook {
            HookPoint::Ipv4Protocol(protocol) if protocol != 1 && protocol != 17 => {
                let slot = ipv4
                    .bind_protocol(protocol)
                    .map_err(|_| PipelineError::TooManyHooks(chain.hook))?;
                protocol_slots.push((slot, chain));
            }
            HookPoint::Udp(port) => {
                let slot = udp.bind(port).map_err(|error| match error {
                    BindError::PortInUse(_) | BindError::TooManyApps => {
                        PipelineError::TooManyHooks(chain.hook)
                    }
                })?;
                udp_slots.push((slot, chain));
            }
            _ => {}
        }
    }
    let ipv4 = builder.add_node(Box::new(ipv4));
    let ipv4_out = builder.add_node(Box::new(Ipv4Out::new(
        routes.clone(),
        interfaces.iter().map(|interface| interface.mac).collect(),
    )));
    let icmp = builder.add_node(Box::new(Icmp::new(local.clone())));
    let udp = builder.add_node(Box::new(udp));

    let mut stack = Stack {
        ipv4_out: Some(ipv4_out),
        arp: [None; MAX_INTERFACES],
    };
    let mut ports_eth = Vec::with_capacity(port_chains.len());
    for (interface, port, rx_chain) in &port_chains {
        let config = &spec.interfaces[*interface];
        let mut eth = Eth::new(config.mac);
        let mut ethertype_slots = Vec::new();
        for chain in &chains {
            if let HookPoint::Ethertype(ethertype) = chain.hook {
                let slot = eth
                    .bind_ethertype(ethertype)
                    .map_err(|_| PipelineError::TooManyHooks(chain.hook))?;
                ethertype_slots.push((slot, chain));
            }
        }
        let eth = builder.add_node(Box::new(eth));
        let arp = builder.add_node(Box::new(Arp::new(config.mac, config.address)));
        builder.connect(eth, "arp", Target::Node(arp))?;
        builder.connect(eth, "ipv4", Target::Node(ipv4))?;
        builder.connect(arp, "tx", Target::Port(*port))?;
        builder.connect(arp, "absorbed", Target::Discard)?;
        stack.arp[*interface] = Some(arp);
        match rx_chain.first() {
            Some((head, _, _)) => builder.route_rx(*port, *head)?,
            None => builder.route_rx(*port, eth)?,
        };
        ports_eth.push((*interface, *port, eth, ethertype_slots));
    }
    for output in ["if0", "if1", "if2", "if3"] {
        let index = usize::from(output.as_bytes()[2] - b'0');
        let target = stack.arp[index].map_or(Target::Discard, Target::Node);
        builder.connect(ipv4_out, output, target)?;
    }
    builder.connect(icmp, "out", Target::Node(ipv4_out))?;
    builder.connect(udp, "errors", Target::Node(ipv4_out))?;
    builder.connect(ipv4, "errors", Target::Node(ipv4_out))?;
    builder.connect(ipv4, "held", Target::Discard)?;

    // Layer 2 chains, per port: `pass` from port:rx leads to eth.
    for ((_, port, rx_chain), (interface, _, eth, ethertype_slots)) in
        port_chains.iter().zip(&ports_eth)
    {
        wire_chain(
            &mut builder,
            &stack,
            rx_chain,
            Target::Node(*eth),
            Target::Port(*port),
        )?;
        let port_context = BuildContext {
            interface: Some(*interface),
            ..context
        };
        let mut bound = [false; services::eth::MAX_ETHERTYPE_HOOKS];
        for (slot, chain) in ethertype_slots {
            let nodes = build_chain(&mut builder, Some(chain), &port_context)?;
            wire_chain(
                &mut builder,
                &stack,
                &nodes,
                Target::Discard,
                Target::Port(*port),
            )?;
            builder.connect(*eth, &format!("ethertype{slot}"), Target::Node(nodes[0].0))?;
            bound[*slot] = true;
        }
        connect_unbound(&mut builder, *eth, "ethertype", &bound)?;
    }

    // Layer 3 and 4 chains, per core.
    let routed = Target::Node(ipv4_out);
    for (hook, source, output, tail) in [
        (HookPoint::Ipv4Protocol(1), ipv4, "icmp", Target::Node(icmp)),
        (HookPoint::Ipv4Protocol(17), ipv4, "udp", Target::Node(udp)),
        (HookPoint::Ipv4Forward, ipv4, "forward", Target::Discard),
    ] {
        let nodes = build_chain(&mut builder, chain(hook), &context)?;
        wire_chain(&mut builder, &stack, &nodes, tail, routed)?;
        let head = nodes
            .first()
            .map_or(tail, |(head, _, _)| Target::Node(*head));
        builder.connect(source, output, head)?;
    }
    for (slots, source, prefix, capacity) in [
        (
            &protocol_slots,
            ipv4,
            "proto",
            services::ipv4::MAX_PROTOCOL_HOOKS,
        ),
        (&udp_slots, udp, "app", services::udp::MAX_UDP_APPS),
    ] {
        let mut bound = alloc::vec![false; capacity];
        for (slot, chain) in slots {
            let nodes = build_chain(&mut builder, Some(chain), &context)?;
            wire_chain(&mut builder, &stack, &nodes, Target::Discard, routed)?;
            builder.connect(source, &format!("{prefix}{slot}"), Target::Node(nodes[0].0))?;
            bound[*slot] = true;
        }
        connect_unbound(&mut builder, source, prefix, &bound)?;
    }
    Ok(builder.build()?)
}

/// The spec's services on `core`, grouped by hook point, in spec order.
fn chains(spec: &Spec, core: usize) -> Vec<Chain<'_>> {
    let mut chains: Vec<Chain<'_>> = Vec::new();
    for service in spec.services_on(core) {
        for hook in &service.attach {
            match chains.iter_mut().find(|chain| chain.hook == *hook) {
                Some(chain) => chain.services.push(&*service.config),
                None => chains.push(Chain {
                    hook: *hook,
                    services: alloc::vec![&*service.config],
                }),
            }
        }
    }
    chains
}

/// A built chain node: its id, name and output names.
type ChainNode = (NodeId, &'static str, Vec<&'static str>);

/// Builds the nodes of `chain` (none for no chain).
fn build_chain(
    builder: &mut ExecutorBuilder,
    chain: Option<&Chain<'_>>,
    context: &BuildContext<'_>,
) -> Result<Vec<ChainNode>, PipelineError> {
    let Some(chain) = chain else {
        return Ok(Vec::new());
    };
    let mut nodes: Vec<ChainNode> = Vec::with_capacity(chain.services.len());
    for service in &chain.services {
        if let Some((_, name, outputs)) = nodes.last()
            && !outputs.contains(&"pass")
        {
            return Err(PipelineError::Unreachable { service: name });
        }
        let node: Box<dyn Nanoservice> = service.build(context);
        let (name, outputs) = (node.name(), node.outputs().to_vec());
        nodes.push((builder.add_node(node), name, outputs));
    }
    Ok(nodes)
}

/// True when traffic gets past a built chain: it is empty, or its last
/// node has a `pass` output.
fn passes_on(nodes: &[ChainNode]) -> bool {
    nodes
        .last()
        .is_none_or(|(_, _, outputs)| outputs.contains(&"pass"))
}

/// Connects every output of a chain's nodes: `pass` to the next node (the
/// last one's to `tail`), the rest as [`Stack::target`] says.
fn wire_chain(
    builder: &mut ExecutorBuilder,
    stack: &Stack,
    nodes: &[ChainNode],
    tail: Target,
    out: Target,
) -> Result<(), PipelineError> {
    for (index, (node, name, outputs)) in nodes.iter().enumerate() {
        let pass = nodes
            .get(index + 1)
            .map_or(tail, |(next, _, _)| Target::Node(*next));
        for output in outputs {
            let target = stack.target(name, output, pass, out)?;
            builder.connect(*node, output, target)?;
        }
    }
    Ok(())
}

/// Connects `node`'s outputs `<prefix><n>` not marked in `bound` to a
/// discard (the node never uses them: nothing is bound there).
fn connect_unbound(
    builder: &mut ExecutorBuilder,
    node: NodeId,
    prefix: &str,
    bound: &[bool],
) -> Result<(), PipelineError> {
    for (slot, bound) in bound.iter().enumerate() {
        if !bound {
            let output: String = format!("{prefix}{slot}");
            builder.connect(node, &output, Target::Discard)?;
        }
    }
    Ok(())
}
