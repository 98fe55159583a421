//! `build_core` in steps: the ports and their `port:rx` chains, then (when
//! anything passes on) the IP stack with its demultiplexers bound to the
//! hook points in use, then every chain wired to its stage.

use super::PipelineError;
use super::carry::{
    Carry, PLATFORM_LISTENER, arp_tag, context_tag, listener_tag, spec_tags, tcp_tag,
};
use super::chain::{Chain, ChainNode, Reuse, Stack, build_chain, chains, connect_slots, passes_on};
use super::restart::{AppRecipe, OwnedContext, TcpRecipe, rebuild_app, rebuild_tcp};
use crate::spec::Spec;
use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cell::RefCell;
use dataplane::rss::RssSteering;
use dataplane::stats::CoreCounters;
use dataplane::{
    CaptureBoard, CountersBoard, Doorbell, Executor, ExecutorBuilder, ExecutorParts, Guard,
    MacAddr, Mempool, Nanoservice, Nic, NicCounters, NodeId, PortId, Rebuild, Target,
};
use services::icmp_error::ErrorLimiter;
use services::neighbour::Neighbour;
use services::reassembly::{Reassembly, ReassemblyLimits};
use services::registry::{BuildContext, CoreLinks, InterfaceInfo};
use services::registry::{Built, PlatformListener};
use services::route::{LocalAddresses, RouteEntry, RoutingTable};
use services::tcp::{
    AppSupervision, FlowDirectory, HandoffReceiver, HandoffSender, Strays, Tcp, TcpConfig,
    TcpHandoff,
};
use services::{Arp, Eth, HookPoint, Icmp, Ipv4, Ipv4Out, MAX_INTERFACES, Udp};

/// Builds core `core`'s executor for `spec`: every port is (index of its
/// interface in `spec.interfaces`, the NIC queue this core polls).
/// `links` is this core's element of [`core_links`](super::core_links)
/// (`CoreLinks::new()` when the core runs alone). A platform whose cores
/// sleep when idle puts the core's `Arc<Doorbell>` among the links'
/// shared values ([`CoreLinks::insert_shared`]): the executor and the
/// services fed by other cores' rings take it.
pub fn build_core(
    spec: &Spec,
    core: usize,
    ports: Vec<(usize, Box<dyn Nic>)>,
    pool: Mempool,
    clock: fn() -> u64,
    links: CoreLinks,
) -> Result<Executor, PipelineError> {
    check_ports(spec, &ports)?;
    let nic_counters: Vec<(String, Arc<dyn NicCounters>)> = ports
        .iter()
        .filter_map(|(_, nic)| Some((nic.name().to_string(), nic.counters()?)))
        .collect();
    let doorbell = links.take_shared::<Arc<Doorbell>>();
    // The platform's panic guard, when it can catch a panic (hosted).
    let guard = links.take_shared::<Guard>();
    let start = Start {
        ports,
        pool: Some(pool),
        clock,
        doorbell,
        guard,
        carry: Carry::empty(),
    };
    match build(spec, core, start, &links) {
        Ok(executor) => Ok(on_the_board(executor, core, &links, nic_counters)),
        Err(failure) => Err(failure.error),
    }
}

/// Why [`rebuild_core`] failed, and everything the core had, so that it
/// can build another graph (its previous spec's) at once.
pub struct BuildFailure {
    /// Why.
    pub error: PipelineError,
    /// The ports, pool, clock and doorbell, the nodes that could still be
    /// taken over, and the counters of the graph taken apart.
    pub parts: Box<ExecutorParts>,
}

impl core::fmt::Debug for BuildFailure {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BuildFailure")
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

/// Builds core `core`'s next graph for `spec` from its running one, taken
/// apart at a batch boundary ([`Executor::into_parts`]): the same ports
/// (tagged with their interface) and pool, and every node whose tag the
/// new spec yields again, taken over with its state (ARP caches, the TCP
/// stack with its connections and the apps of unchanged services, a KV
/// store; see [`Carry`]); the rest is built from the spec. The TCP stack
/// drops the apps of services that went or changed, with their
/// connections. The new counters start from the old totals
/// ([`CoreCounters::carry_from`](dataplane::stats::CoreCounters::carry_from))
/// and count the swap (`graph_swaps`). `links` is this core's element of
/// [`core_links`](super::core_links) for the new spec, with the platform's
/// shared boards; the doorbell, the panic guard and the management
/// plane's handoff rings (`services::tcp::handoff`) come from `parts`.
pub fn rebuild_core(
    spec: &Spec,
    core: usize,
    parts: ExecutorParts,
    mut links: CoreLinks,
) -> Result<Executor, BuildFailure> {
    let ExecutorParts {
        ports,
        nodes,
        pool,
        clock,
        doorbell,
        guard,
        rings_in,
        rings_out,
        counters,
    } = parts;
    // The only rings between graphs are the management plane's handoff
    // (the kv shards' live in their apps): they go back to the build.
    for consumer in rings_in {
        links.insert_shared(HandoffReceiver { consumer });
    }
    if let Some(management) = spec.management {
        for producer in rings_out {
            links.insert_shared(HandoffSender {
                listen: management.listen,
                producer,
            });
        }
    }
    let ports: Vec<(usize, Box<dyn Nic>)> = ports
        .into_iter()
        .map(|(tag, nic)| (tag as usize, nic))
        .collect();
    let start = Start {
        ports,
        pool,
        clock,
        doorbell,
        guard,
        carry: Carry::new(nodes),
    };
    if let Err(error) = check_ports(spec, &start.ports) {
        return Err(BuildFailure {
            error,
            parts: Box::new(start.into_parts(counters)),
        });
    }
    match build(spec, core, start, &links) {
        Ok(executor) => {
            executor.counters().carry_from(&counters);
            executor.counters().graph_swaps.increment();
            Ok(on_the_board(executor, core, &links, Vec::new()))
        }
        Err(failure) => {
            let mut parts = ExecutorParts {
                counters,
                ..*failure.parts
            };
            // The handoff rings the build did not get to.
            while let Some(HandoffReceiver { consumer }) = links.take_shared() {
                parts.rings_in.push(consumer);
            }
            while let Some(HandoffSender { producer, .. }) = links.take_shared() {
                parts.rings_out.push(producer);
            }
            Err(BuildFailure {
                error: failure.error,
                parts: Box::new(parts),
            })
        }
    }
}

/// What a build starts from.
struct Start {
    ports: Vec<(usize, Box<dyn Nic>)>,
    pool: Option<Mempool>,
    clock: fn() -> u64,
    doorbell: Option<Arc<Doorbell>>,
    guard: Option<Guard>,
    carry: Carry,
}

impl Start {
    /// Back to parts, unused.
    fn into_parts(self, counters: Arc<CoreCounters>) -> ExecutorParts {
        ExecutorParts {
            ports: self
                .ports
                .into_iter()
                .map(|(interface, nic)| (interface as u64, nic))
                .collect(),
            nodes: self.carry.into_nodes(),
            pool: self.pool,
            clock: self.clock,
            doorbell: self.doorbell,
            guard: self.guard,
            rings_in: Vec::new(),
            rings_out: Vec::new(),
            counters,
        }
    }
}

/// Builds the graph from `start`; on failure gives back what the builder
/// had, with the nodes not taken over.
fn build(
    spec: &Spec,
    core: usize,
    start: Start,
    links: &CoreLinks,
) -> Result<Executor, BuildFailure> {
    let Start {
        ports,
        pool,
        clock,
        doorbell,
        guard,
        carry,
    } = start;
    let mut builder = ExecutorBuilder::new();
    if let Some(pool) = pool {
        builder.pool(pool);
    }
    builder.clock(clock).supervision(core, spec.supervision);
    if let Some(guard) = guard {
        builder.guard(guard);
    }
    if let Some(doorbell) = &doorbell {
        builder.doorbell(Arc::clone(doorbell));
    }
    let mut carry = carry;
    let context = context_tag(spec);
    carry.protect(spec_tags(spec, core, context));
    let carry = RefCell::new(carry);
    let reuse = Reuse {
        carry: &carry,
        context,
        apps: AppSupervision {
            guard,
            clock,
            policy: spec.supervision,
            core,
        },
    };
    let built = wire(
        &mut builder,
        spec,
        core,
        ports,
        clock,
        links,
        doorbell.as_ref(),
        &reuse,
    )
    .and_then(|()| builder.check().map_err(PipelineError::from));
    match built {
        Ok(()) => Ok(builder.build().map_err(|error| BuildFailure {
            error: error.into(),
            parts: Box::new(ExecutorBuilder::new().into_parts(Arc::default())),
        })?),
        Err(error) => {
            let mut parts = builder.into_parts(Arc::default());
            let mut carry = carry.into_inner();
            carry.extend(core::mem::take(&mut parts.nodes));
            parts.nodes = carry.into_nodes();
            Err(BuildFailure {
                error,
                parts: Box::new(parts),
            })
        }
    }
}

/// Adds the ports, the stack and the spec's services to `builder` and
/// wires them.
#[expect(clippy::too_many_arguments)]
fn wire(
    builder: &mut ExecutorBuilder,
    spec: &Spec,
    core: usize,
    ports: Vec<(usize, Box<dyn Nic>)>,
    clock: fn() -> u64,
    links: &CoreLinks,
    doorbell: Option<&Arc<Doorbell>>,
    reuse: &Reuse<'_>,
) -> Result<(), PipelineError> {
    let interfaces: Vec<InterfaceInfo> = spec.interface_infos();
    let local = LocalAddresses::new(interfaces.iter().map(|info| info.address).collect());
    let routes = routing_table(spec, &interfaces);
    let errors = ErrorLimiter::new();
    let context = BuildContext {
        core,
        interfaces: &interfaces,
        interface: None,
        local: &local,
        routes: &routes,
        errors: &errors,
        links,
        doorbell,
    };
    let chains = chains(spec, core);
    let ports = add_ports(
        builder,
        ports,
        find(&chains, HookPoint::PortRx),
        &context,
        reuse,
    )?;
    tap_ports(builder, &ports, core, links)?;
    // A core without ports (more cores than queue pairs) still builds the
    // stack: its apps may own state other cores reach over rings (kv).
    if !ports.is_empty() && !ports.iter().any(|port| passes_on(&port.rx_chain)) {
        return layer2_only(builder, &chains, &ports);
    }
    // Keys sequence numbers, SYN cookies and the connection hash. The
    // clock at start-up differs per boot and per core; a platform with a
    // hardware random source should mix it in here.
    let seed = clock().wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (core as u64).rotate_left(32);
    let stack = add_stack(builder, spec, &chains, &ports, &context, seed, reuse)?;
    wire_layer2(builder, &stack, &chains, &ports, &context, reuse)?;
    wire_layer3(builder, &stack, &chains, &context, reuse)
}

/// Puts the core's counters, and its NIC queues' driver counters (at
/// the first build: a rebuild keeps the same queues), up on the
/// platform's counters board, when it shares one (for the management
/// plane's `/metrics`).
fn on_the_board(
    executor: Executor,
    core: usize,
    links: &CoreLinks,
    nic_counters: Vec<(String, Arc<dyn NicCounters>)>,
) -> Executor {
    if let Some(board) = links.take_shared::<Arc<CountersBoard>>() {
        board.register(core, executor.counters().clone());
        for (name, counters) in nic_counters {
            board.register_nic(core, &name, counters);
        }
    }
    executor
}

/// Puts a packet-capture tap on every port, when the platform shares a
/// capture board (the management plane's `/api/v1/capture`).
fn tap_ports(
    builder: &mut ExecutorBuilder,
    ports: &[Port],
    core: usize,
    links: &CoreLinks,
) -> Result<(), PipelineError> {
    if let Some(board) = links.take_shared::<Arc<CaptureBoard>>() {
        for port in ports {
            builder.tap_port(port.id, board.tap(core, port.interface))?;
        }
    }
    Ok(())
}

/// Refuses ports for interfaces the spec lacks, and two ports for one.
fn check_ports(spec: &Spec, ports: &[(usize, Box<dyn Nic>)]) -> Result<(), PipelineError> {
    let mut seen = [false; MAX_INTERFACES];
    for (interface, _) in ports {
        if *interface >= spec.interfaces.len() || *interface >= MAX_INTERFACES {
            return Err(PipelineError::UnknownInterface(*interface));
        }
        if core::mem::replace(&mut seen[*interface], true) {
            return Err(PipelineError::DuplicateInterface(*interface));
        }
    }
    Ok(())
}

/// Connected routes for the interfaces and the spec's static routes.
fn routing_table(spec: &Spec, interfaces: &[InterfaceInfo]) -> RoutingTable {
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
    RoutingTable::new(&addresses, &static_routes)
}

/// The chain of `hook`, if any service attaches there.
fn find<'c>(chains: &'c [Chain<'c>], hook: HookPoint) -> Option<&'c Chain<'c>> {
    chains.iter().find(|chain| chain.hook == hook)
}

/// A port of this core with its `port:rx` chain.
struct Port {
    interface: usize,
    id: PortId,
    rx_chain: Vec<ChainNode>,
}

/// Adds the ports, each with its own nodes of the `port:rx` chain.
fn add_ports(
    builder: &mut ExecutorBuilder,
    ports: Vec<(usize, Box<dyn Nic>)>,
    port_rx: Option<&Chain<'_>>,
    context: &BuildContext<'_>,
    reuse: &Reuse<'_>,
) -> Result<Vec<Port>, PipelineError> {
    let mut added = Vec::with_capacity(ports.len());
    for (interface, nic) in ports {
        let id = builder.add_port(nic);
        builder.tag_port(id, interface as u64)?;
        let port_context = BuildContext {
            interface: Some(interface),
            ..*context
        };
        let rx_chain = build_chain(builder, port_rx, &port_context, reuse)?;
        added.push(Port {
            interface,
            id,
            rx_chain,
        });
    }
    Ok(added)
}

/// A core whose `port:rx` services pass nothing on (l2fwd): no IP stack,
/// and no other service could ever see a packet.
fn layer2_only(
    builder: &mut ExecutorBuilder,
    chains: &[Chain<'_>],
    ports: &[Port],
) -> Result<(), PipelineError> {
    if let Some(chain) = chains.iter().find(|chain| chain.hook != HookPoint::PortRx) {
        let service = ports
            .first()
            .and_then(|port| port.rx_chain.last())
            .map_or(chain.services[0].kind, |node| node.name);
        return Err(PipelineError::Unreachable { service });
    }
    let stack = Stack {
        ipv4_out: None,
        arp: [None; MAX_INTERFACES],
    };
    for port in ports {
        let head = stack.wire(
            builder,
            &port.rx_chain,
            Target::Discard,
            Target::Port(port.id),
        )?;
        if let Target::Node(head) = head {
            builder.route_rx(port.id, head)?;
        }
    }
    Ok(())
}

/// The IP stack's nodes, with the hook slots bound on its demultiplexers.
struct IpStack {
    stack: Stack,
    ipv4: NodeId,
    icmp: NodeId,
    udp: NodeId,
    /// The TCP stack, when an app serves a TCP port on this core.
    tcp: Option<NodeId>,
    /// `(slot, protocol)` bound on `ipv4`.
    protocols: Vec<(usize, u8)>,
    /// `(slot, port)` bound on `udp`.
    udp_ports: Vec<(usize, u16)>,
    /// Each port's `eth` node and its `(slot, ethertype)` bindings.
    eth: Vec<(NodeId, Vec<(usize, u16)>)>,
}

/// Adds ipv4, ipv4-out, icmp, udp, and eth and arp per port, binding the
/// hook points the chains use; routes each port to its `port:rx` chain or
/// its `eth`.
fn add_stack(
    builder: &mut ExecutorBuilder,
    spec: &Spec,
    chains: &[Chain<'_>],
    ports: &[Port],
    context: &BuildContext<'_>,
    seed: u64,
    reuse: &Reuse<'_>,
) -> Result<IpStack, PipelineError> {
    let forwarding = find(chains, HookPoint::Ipv4Forward).is_some();
    let mut ipv4 = Ipv4::new(
        context.local.clone(),
        forwarding,
        context.errors.clone(),
        Reassembly::new(spec.ipv4.reassembly),
    );
    if let Some(chain) = find(chains, HookPoint::Ipv4Forward) {
        for service in &chain.services {
            for claim in service.config.claims(context.interfaces) {
                ipv4.claim(claim);
            }
        }
    }
    let mut udp = Udp::new(context.local.clone(), context.errors.clone());
    let (mut protocols, mut udp_ports) = (Vec::new(), Vec::new());
    for chain in chains {
        match chain.hook {
            HookPoint::Ipv4Protocol(protocol)
                if protocol != 1 && protocol != 17 && protocol != 6 =>
            {
                let slot = ipv4
                    .bind_protocol(protocol)
                    .map_err(|_| PipelineError::TooManyHooks(chain.hook))?;
                protocols.push((slot, protocol));
            }
            HookPoint::Udp(port) => {
                let slot = udp
                    .bind(port)
                    .map_err(|_| PipelineError::TooManyHooks(chain.hook))?;
                udp_ports.push((slot, port));
            }
            _ => {}
        }
    }
    let handoff = context.links.take_shared::<HandoffSender>();
    let tcp = tcp_stack(chains, context, spec.tcp, seed, handoff.is_some(), reuse)?;
    if tcp.is_some() || find(chains, HookPoint::Ipv4Protocol(6)).is_some() {
        let hook = HookPoint::Ipv4Protocol(6);
        let slot = ipv4
            .bind_protocol(6)
            .map_err(|_| PipelineError::TooManyHooks(hook))?;
        protocols.push((slot, 6));
    }
    // The stages' factories, for supervision: each rebuilds its stage as
    // this build made it (same hook bindings, so the same output slots).
    let stages = StageRecipe {
        local: context.local.clone(),
        routes: context.routes.clone(),
        errors: context.errors.clone(),
        // Per interface with a port here, the binding its ARP publishes
        // for `ipv4-out` (`services::neighbour`).
        neighbours: core::array::from_fn(|interface| {
            ports
                .iter()
                .any(|port| port.interface == interface)
                .then(|| Arc::new(Neighbour::new()))
        }),
        macs: context
            .interfaces
            .iter()
            .map(|interface| interface.mac)
            .collect(),
    };
    // The stack is rebuilt from the spec's apps; what the spec cannot
    // build (the links to other cores, the apps' links, the platform's
    // apps) the rebuilt stack takes from the failed one
    // (`Nanoservice::take_links`).
    let tcp_recipe = tcp
        .as_ref()
        .map(|stack| tcp_recipe(stack, chains, spec, reuse));
    let ipv4 = builder.add_node(Box::new(ipv4));
    builder.rebuild(
        ipv4,
        stages.ipv4(forwarding, spec.ipv4.reassembly, protocols.clone()),
    )?;
    let ipv4_out = builder.add_node(Box::new(
        Ipv4Out::new(context.routes.clone(), stages.macs.clone())
            .with_neighbours(stages.neighbours.clone()),
    ));
    builder.rebuild(ipv4_out, stages.ipv4_out())?;
    let icmp = builder.add_node(Box::new(Icmp::new(context.local.clone())));
    builder.rebuild(icmp, stages.icmp())?;
    let udp = builder.add_node(Box::new(udp));
    builder.rebuild(udp, stages.udp(udp_ports.clone()))?;
    let tcp = match tcp {
        Some(tcp) => {
            let tcp = builder.add_node(Box::new(tcp));
            builder.tag_node(tcp, tcp_tag(&spec.tcp))?;
            if let Some(recipe) = tcp_recipe {
                builder.rebuild(tcp, rebuild_tcp(recipe, OwnedContext::of(context)))?;
            }
            builder.connect(tcp, "out", Target::Node(ipv4_out))?;
            builder.connect(tcp, "absorbed", Target::Discard)?;
            Some(tcp)
        }
        None => None,
    };
    let tcp = hand_off(builder, context, tcp, handoff)?;
    let mut stack = Stack {
        ipv4_out: Some(ipv4_out),
        arp: [None; MAX_INTERFACES],
    };
    let mut relays = Vec::new();
    while let Some(relay) = context.links.take_shared::<services::arp::ArpRelay>() {
        relays.push(relay);
    }
    let mut eth_nodes = Vec::with_capacity(ports.len());
    // Each interface's port, for the frames `ipv4-out` completes itself.
    let mut tx_ports = [None; MAX_INTERFACES];
    for port in ports {
        let config = &spec.interfaces[port.interface];
        let mut eth = Eth::new(config.mac);
        let mut ethertypes = Vec::new();
        for chain in chains {
            if let HookPoint::Ethertype(ethertype) = chain.hook {
                let slot = eth
                    .bind_ethertype(ethertype)
                    .map_err(|_| PipelineError::TooManyHooks(chain.hook))?;
                ethertypes.push((slot, ethertype));
            }
        }
        let eth = builder.add_node(Box::new(eth));
        builder.rebuild(eth, stages.eth(config.mac, ethertypes.clone()))?;
        let tag = arp_tag(port.interface, config.mac, config.address);
        let carried = reuse.carry.borrow_mut().take(tag);
        // A carried ARP keeps the relay it was built with; a fresh one
        // takes this interface's relay, when the core links hold one.
        let relay = relays
            .iter()
            .position(|relay| relay.interface == port.interface)
            .map(|index| relays.swap_remove(index));
        let neighbour = stages.neighbours[port.interface.min(MAX_INTERFACES - 1)].clone();
        let arp = builder.add_node(match carried {
            Some(mut carried) => {
                // A carried ARP publishes for this graph's `ipv4-out` now.
                let any: &mut dyn core::any::Any = &mut *carried;
                if let Some(arp) = any.downcast_mut::<Arp>() {
                    arp.set_neighbour(neighbour.clone());
                }
                carried
            }
            None => {
                let mut arp = Arp::new(config.mac, config.address);
                arp.set_neighbour(neighbour.clone());
                Box::new(match relay {
                    Some(relay) => arp.with_relay(relay),
                    None => arp,
                })
            }
        });
        builder.tag_node(arp, tag)?;
        // An ARP that shares its cache with other cores is rebuilt
        // without its relay: the executor hands it the failed one's
        // (`Nanoservice::take_links`), whose rings are made once per boot.
        let (mac, address) = (config.mac, config.address);
        builder.rebuild(
            arp,
            Box::new(move || -> Box<dyn Nanoservice> {
                let mut arp = Arp::new(mac, address);
                arp.set_neighbour(neighbour.clone());
                Box::new(arp)
            }),
        )?;
        builder.connect(eth, "arp", Target::Node(arp))?;
        builder.connect(eth, "ipv4", Target::Node(ipv4))?;
        builder.connect(arp, "tx", Target::Port(port.id))?;
        builder.connect(arp, "absorbed", Target::Discard)?;
        stack.arp[port.interface] = Some(arp);
        tx_ports[port.interface.min(MAX_INTERFACES - 1)] = Some(port.id);
        let first = port.rx_chain.first().map_or(eth, |head| head.id);
        builder.route_rx(port.id, first)?;
        eth_nodes.push((eth, ethertypes));
    }
    for (index, arp) in stack.arp.iter().enumerate() {
        let target = arp.map_or(Target::Discard, Target::Node);
        builder.connect(ipv4_out, &alloc::format!("if{index}"), target)?;
    }
    for (index, port) in tx_ports.iter().enumerate() {
        let target = port.map_or(Target::Discard, Target::Port);
        builder.connect(ipv4_out, &alloc::format!("tx{index}"), target)?;
    }
    builder.connect(icmp, "out", Target::Node(ipv4_out))?;
    builder.connect(udp, "errors", Target::Node(ipv4_out))?;
    builder.connect(ipv4, "errors", Target::Node(ipv4_out))?;
    builder.connect(ipv4, "held", Target::Discard)?;
    Ok(IpStack {
        stack,
        ipv4,
        icmp,
        udp,
        tcp,
        protocols,
        udp_ports,
        eth: eth_nodes,
    })
}

/// The core's TCP stack with the apps of every `tcp:<port>` hook point,
/// or `None` when no app serves TCP here and the core hands nothing over
/// (`handing_off`: it does, and answers other TCP as the serving core
/// would, closed ports with RST, from a stack without apps). The previous
/// graph's stack is taken over when `[tcp]` is the same (with its
/// connections): it keeps the apps of unchanged services and the
/// platform's, drops the others with their connections, and gets the
/// apps of new or changed services.
fn tcp_stack(
    chains: &[Chain<'_>],
    context: &BuildContext<'_>,
    config: TcpConfig,
    seed: u64,
    handing_off: bool,
    reuse: &Reuse<'_>,
) -> Result<Option<Tcp>, PipelineError> {
    let wanted: Vec<(u16, u64, &Chain<'_>, usize)> = chains
        .iter()
        .filter_map(|chain| match chain.hook {
            HookPoint::Tcp(port) => Some((port, chain)),
            _ => None,
        })
        .flat_map(|(port, chain)| {
            chain
                .services
                .iter()
                .enumerate()
                .map(move |(index, service)| (port, listener_tag(service), chain, index))
        })
        .collect();
    let mut tcp: Option<Tcp> = reuse.carry.borrow_mut().take_tcp(tcp_tag(&config));
    if let Some(stack) = &mut tcp {
        stack.set_local(context.local.clone());
        stack.set_supervision(reuse.apps);
        let running: Vec<(u16, u64)> = stack.listener_tags().collect();
        for (port, tag) in running {
            let kept = tag == PLATFORM_LISTENER
                || wanted.iter().any(|(wanted_port, wanted_tag, _, _)| {
                    *wanted_port == port && *wanted_tag == tag
                });
            if !kept && let Some(ended) = stack.unlisten(port) {
                log::info!(
                    "core {}: tcp port {port}: app removed, {ended} connection(s) ended",
                    context.core
                );
            }
        }
        if wanted.is_empty()
            && !handing_off
            && !stack
                .listener_tags()
                .any(|(_, tag)| tag == PLATFORM_LISTENER)
        {
            tcp = None;
        }
    }
    let new_stack = || {
        let mut stack = new_stack(context, config, seed);
        stack.set_supervision(reuse.apps);
        stack
    };
    let owned = OwnedContext::of(context);
    for (port, tag, chain, index) in &wanted {
        if tcp.as_ref().is_some_and(|stack| {
            stack
                .listener_tags()
                .any(|running| running == (*port, *tag))
        }) {
            continue;
        }
        let service = chain.services[*index];
        let listener = match service.config.build(context) {
            Built::Tcp(listener) => listener,
            Built::Node(node) => {
                return Err(PipelineError::WrongShape {
                    service: node.name(),
                    hook: chain.hook,
                });
            }
        };
        // Supervision rebuilds the app from its spec after a failure; an
        // app whose first build took links to other cores (kv on several
        // cores: its shard rings) gets the failed one's
        // (`TcpApp::take_links`): a shard without them would answer for
        // keys that are not its own.
        let rebuild = Some(rebuild_app(Arc::clone(&service.config), owned.clone()));
        let service = listener.name();
        let stack = tcp.get_or_insert_with(new_stack);
        if !stack.listen_supervised(*port, listener, *tag, rebuild) {
            return Err(PipelineError::PortTaken {
                service,
                port: *port,
            });
        }
    }
    // The platform's own TCP apps on this core (the management plane).
    while let Some(PlatformListener { port, listener }) = context.links.take_shared() {
        let service = listener.name();
        let stack = tcp.get_or_insert_with(new_stack);
        if !stack.listen_tagged(port, listener, PLATFORM_LISTENER) {
            return Err(PipelineError::PortTaken { service, port });
        }
    }
    if tcp.is_none() && handing_off {
        tcp = Some(new_stack());
    }
    Ok(tcp)
}

/// A core's TCP stack with no app yet: the routes for the connections
/// apps open, and what the platform shares between the cores' stacks (the
/// flow directory, the rings that pass segments to their connection's
/// core, ringing this core's doorbell, and the RSS of NICs that hash with
/// a key we know).
fn new_stack(context: &BuildContext<'_>, config: TcpConfig, seed: u64) -> Tcp {
    let mut stack =
        Tcp::new(context.local.clone(), config, seed).with_routes(context.routes.clone());
    if let Some(directory) = context.links.take_shared::<Arc<FlowDirectory>>() {
        stack = stack.with_directory(context.core, directory);
    }
    while let Some(steering) = context.links.take_shared::<RssSteering>() {
        stack = stack.with_rss(steering);
    }
    if let Some(strays) = context.links.take_shared::<Strays>() {
        stack = stack.with_strays(strays);
        if let Some(doorbell) = context.doorbell {
            stack.set_doorbell(doorbell);
        }
    }
    stack
}

/// Connects this core's stack to the cores a platform's TCP app is
/// served by alone (`services::tcp::handoff`, the management plane): on
/// the serving core, the rings from the other cores feed the stack; on
/// another core, a `tcp-handoff` node in front of the stack puts the
/// app's segments on the ring to the serving core. Returns where TCP
/// segments enter: the handoff node or the stack.
fn hand_off(
    builder: &mut ExecutorBuilder,
    context: &BuildContext<'_>,
    tcp: Option<NodeId>,
    sender: Option<HandoffSender>,
) -> Result<Option<NodeId>, PipelineError> {
    let Some(tcp) = tcp else {
        return Ok(None);
    };
    while let Some(HandoffReceiver { consumer }) = context.links.take_shared() {
        builder.add_ring_in(consumer, tcp)?;
    }
    let Some(HandoffSender { listen, producer }) = sender else {
        return Ok(Some(tcp));
    };
    let handoff = builder.add_node(Box::new(TcpHandoff::new(listen)));
    let ring = builder.add_ring_out(producer);
    builder.connect(handoff, "pass", Target::Node(tcp))?;
    builder.connect(handoff, "handoff", Target::Ring(ring))?;
    Ok(Some(handoff))
}

/// Wires each port's `port:rx` chain (its `pass` leads to the port's
/// `eth`) and `eth:<ethertype>` chains (one set of nodes per port).
fn wire_layer2(
    builder: &mut ExecutorBuilder,
    ip: &IpStack,
    chains: &[Chain<'_>],
    ports: &[Port],
    context: &BuildContext<'_>,
    reuse: &Reuse<'_>,
) -> Result<(), PipelineError> {
    for (port, (eth, ethertypes)) in ports.iter().zip(&ip.eth) {
        let transmit = Target::Port(port.id);
        ip.stack
            .wire(builder, &port.rx_chain, Target::Node(*eth), transmit)?;
        let port_context = BuildContext {
            interface: Some(port.interface),
            ..*context
        };
        let mut heads = Vec::with_capacity(ethertypes.len());
        for (slot, ethertype) in ethertypes {
            let chain = find(chains, HookPoint::Ethertype(*ethertype));
            let nodes = build_chain(builder, chain, &port_context, reuse)?;
            heads.push((
                *slot,
                ip.stack.wire(builder, &nodes, Target::Discard, transmit)?,
            ));
        }
        connect_slots(
            builder,
            *eth,
            "ethertype",
            services::eth::MAX_ETHERTYPE_HOOKS,
            &heads,
        )?;
    }
    Ok(())
}

/// Wires the per-core chains: `ipv4:proto:1` and `:17` in front of icmp
/// and udp, other protocols, `ipv4:forward`, and every `udp:<port>`.
fn wire_layer3(
    builder: &mut ExecutorBuilder,
    ip: &IpStack,
    chains: &[Chain<'_>],
    context: &BuildContext<'_>,
    reuse: &Reuse<'_>,
) -> Result<(), PipelineError> {
    let routed = ip.stack.ipv4_out.map_or(Target::Discard, Target::Node);
    let chain_head = |builder: &mut ExecutorBuilder, hook, tail| {
        let nodes = build_chain(builder, find(chains, hook), context, reuse)?;
        ip.stack.wire(builder, &nodes, tail, routed)
    };
    let head = chain_head(builder, HookPoint::Ipv4Protocol(1), Target::Node(ip.icmp))?;
    builder.connect(ip.ipv4, "icmp", head)?;
    let head = chain_head(builder, HookPoint::Ipv4Protocol(17), Target::Node(ip.udp))?;
    builder.connect(ip.ipv4, "udp", head)?;
    let head = chain_head(builder, HookPoint::Ipv4Forward, Target::Discard)?;
    builder.connect(ip.ipv4, "forward", head)?;
    let mut heads = Vec::with_capacity(ip.protocols.len());
    for (slot, protocol) in &ip.protocols {
        let hook = HookPoint::Ipv4Protocol(*protocol);
        let tail = match (protocol, ip.tcp) {
            (6, Some(tcp)) => Target::Node(tcp),
            _ => Target::Discard,
        };
        heads.push((*slot, chain_head(builder, hook, tail)?));
    }
    let capacity = services::ipv4::MAX_PROTOCOL_HOOKS;
    connect_slots(builder, ip.ipv4, "proto", capacity, &heads)?;
    let mut heads = Vec::with_capacity(ip.udp_ports.len());
    for (slot, port) in &ip.udp_ports {
        heads.push((
            *slot,
            chain_head(builder, HookPoint::Udp(*port), Target::Discard)?,
        ));
    }
    connect_slots(builder, ip.udp, "app", services::udp::MAX_UDP_APPS, &heads)?;
    Ok(())
}

/// What the IP stack's stages are rebuilt from, after a failure.
struct StageRecipe {
    local: LocalAddresses,
    routes: RoutingTable,
    errors: ErrorLimiter,
    /// By interface, the binding its ARP publishes for `ipv4-out`.
    neighbours: [Option<Arc<Neighbour>>; MAX_INTERFACES],
    macs: Vec<MacAddr>,
}

impl StageRecipe {
    /// `eth` with `ethertypes` bound in this order.
    fn eth(&self, mac: MacAddr, ethertypes: Vec<(usize, u16)>) -> Rebuild {
        Box::new(move || -> Box<dyn Nanoservice> {
            let mut eth = Eth::new(mac);
            for (_, ethertype) in &ethertypes {
                // The first build bound the same ones, in the same order.
                let _ = eth.bind_ethertype(*ethertype);
            }
            Box::new(eth)
        })
    }

    /// `ipv4` with `protocols` bound in this order (fragments in
    /// reassembly are lost with the failed one).
    fn ipv4(
        &self,
        forwarding: bool,
        reassembly: ReassemblyLimits,
        protocols: Vec<(usize, u8)>,
    ) -> Rebuild {
        let (local, errors) = (self.local.clone(), self.errors.clone());
        Box::new(move || -> Box<dyn Nanoservice> {
            let mut ipv4 = Ipv4::new(
                local.clone(),
                forwarding,
                errors.clone(),
                Reassembly::new(reassembly),
            );
            for (_, protocol) in &protocols {
                let _ = ipv4.bind_protocol(*protocol);
            }
            Box::new(ipv4)
        })
    }

    fn ipv4_out(&self) -> Rebuild {
        let (routes, macs) = (self.routes.clone(), self.macs.clone());
        let neighbours = self.neighbours.clone();
        Box::new(move || -> Box<dyn Nanoservice> {
            Box::new(Ipv4Out::new(routes.clone(), macs.clone()).with_neighbours(neighbours.clone()))
        })
    }

    fn icmp(&self) -> Rebuild {
        let local = self.local.clone();
        Box::new(move || -> Box<dyn Nanoservice> { Box::new(Icmp::new(local.clone())) })
    }

    /// `udp` with `ports` bound in this order.
    fn udp(&self, ports: Vec<(usize, u16)>) -> Rebuild {
        let (local, errors) = (self.local.clone(), self.errors.clone());
        Box::new(move || -> Box<dyn Nanoservice> {
            let mut udp = Udp::new(local.clone(), errors.clone());
            for (_, port) in &ports {
                let _ = udp.bind(*port);
            }
            Box::new(udp)
        })
    }
}

/// The `tcp` node's recipe: `[tcp]`, the apps' supervision, and every
/// `tcp:<port>` service of the spec on this core.
fn tcp_recipe(stack: &Tcp, chains: &[Chain<'_>], spec: &Spec, reuse: &Reuse<'_>) -> TcpRecipe {
    let apps = chains
        .iter()
        .filter_map(|chain| match chain.hook {
            HookPoint::Tcp(port) => Some((port, chain)),
            _ => None,
        })
        .flat_map(|(port, chain)| {
            chain.services.iter().filter_map(move |service| {
                let counters = Arc::clone(stack.app(port)?.counters());
                Some(AppRecipe {
                    port,
                    tag: listener_tag(service),
                    config: Arc::clone(&service.config),
                    counters,
                })
            })
        })
        .collect();
    TcpRecipe {
        config: spec.tcp,
        supervision: reuse.apps,
        clock: reuse.apps.clock,
        apps,
    }
}
