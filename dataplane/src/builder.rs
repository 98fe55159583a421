//! `ExecutorBuilder`: wires NICs, nanoservices and rings into one core's graph.

use crate::executor::{Fabric, GraphNode, PortState, RingIn, RingOut};
use crate::graph::NodeId;
use crate::idle::Doorbell;
use crate::queue::NodeQueue;
use crate::stats::{CoreCounters, NodeCounters};
use crate::supervise::{Guard, Rebuild, SupervisionPolicy, Supervisor};
use crate::{
    Batch, Consumer, Executor, Mempool, Nanoservice, Nic, Packet, PortId, PortTap, Producer,
    RingId, Target,
};
use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use arrayvec::ArrayVec;

/// Why a graph could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecutorError {
    /// `connect` named an output the service does not have.
    UnknownOutput {
        /// The service's kind.
        service: &'static str,
        /// The output asked for.
        output: alloc::string::String,
    },
    /// An output was left unconnected.
    UnconnectedOutput {
        /// The service's kind.
        service: &'static str,
        /// The output's name.
        output: &'static str,
    },
    /// A `NodeId`, `PortId` or `RingId` from another builder.
    UnknownId,
}

impl core::fmt::Display for ExecutorError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::UnknownOutput { service, output } => {
                write!(f, "service `{service}` has no output `{output}`")
            }
            Self::UnconnectedOutput { service, output } => {
                write!(
                    f,
                    "output `{output}` of service `{service}` is not connected"
                )
            }
            Self::UnknownId => write!(f, "node, port or ring id from another builder"),
        }
    }
}

/// Assembles an [`Executor`]: add NIC queues, nodes and rings, connect every
/// node output to a target, then `build`.
#[derive(Default)]
pub struct ExecutorBuilder {
    services: Vec<Box<dyn Nanoservice>>,
    edges: Vec<Vec<Option<Target>>>,
    ports: Vec<PortState>,
    rings_out: Vec<RingOut>,
    rings_in: Vec<RingIn>,
    pool: Option<Mempool>,
    clock: Option<fn() -> u64>,
    doorbell: Option<Arc<Doorbell>>,
    node_tags: Vec<crate::Tag>,
    port_tags: Vec<crate::Tag>,
    /// The core (for supervision's logs) and its restart policy.
    supervision: (usize, SupervisionPolicy),
    guard: Option<Guard>,
    /// Per node, its factory for restarts, if it has one.
    rebuilds: Vec<Option<Rebuild>>,
}

impl ExecutorBuilder {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// Gives the core its mempool (services allocate from it through
    /// `Outputs::alloc`).
    pub fn pool(&mut self, pool: Mempool) -> &mut Self {
        self.pool = Some(pool);
        self
    }

    /// Sets the platform's monotonic clock in nanoseconds (services read it
    /// through `Outputs::now_ns`). Without one, hosted builds (feature `std`)
    /// use `std::time::Instant` and bare builds a clock stuck at zero.
    pub fn clock(&mut self, clock: fn() -> u64) -> &mut Self {
        self.clock = Some(clock);
        self
    }

    /// Gives the core its doorbell: the producers of its input rings ring
    /// it when the core sleeps (see [`Executor::prepare_sleep`]). Without
    /// one, a core with input rings must not sleep longer than it can
    /// leave them waiting.
    pub fn doorbell(&mut self, doorbell: Arc<Doorbell>) -> &mut Self {
        self.doorbell = Some(doorbell);
        self
    }

    /// Supervises this core's nodes with `policy` (without it, the
    /// defaults); `core` names the core in supervision's logs.
    pub fn supervision(&mut self, core: usize, policy: SupervisionPolicy) -> &mut Self {
        self.supervision = (core, policy);
        self
    }

    /// Runs every node call under the platform's `guard`, which catches a
    /// panic (hosted: `catch_unwind`). Without one, a panicking node is
    /// the platform's panic.
    pub fn guard(&mut self, guard: Guard) -> &mut Self {
        self.guard = Some(guard);
        self
    }

    /// Gives `node` a factory that builds it afresh from its spec: after a
    /// failure it is rebuilt with it once its backoff is over. A node
    /// without one stays failed.
    pub fn rebuild(&mut self, node: NodeId, rebuild: Rebuild) -> Result<&mut Self, ExecutorError> {
        self.check_node(node)?;
        self.rebuilds[node.0] = Some(rebuild);
        Ok(self)
    }

    /// Node `node`'s service as a `T`, if it is one.
    pub fn node_as<T: Nanoservice>(&self, node: NodeId) -> Option<&T> {
        let service: &dyn core::any::Any = &**self.services.get(node.0)?;
        service.downcast_ref::<T>()
    }

    /// Adds a NIC queue pair.
    pub fn add_port(&mut self, nic: Box<dyn Nic>) -> PortId {
        self.ports.push(PortState {
            nic,
            staging: Batch::new(),
            rx_node: None,
            tap: None,
        });
        self.port_tags.push(0);
        PortId(self.ports.len() - 1)
    }

    /// Adds a node running `service`.
    pub fn add_node(&mut self, service: Box<dyn Nanoservice>) -> NodeId {
        self.edges.push(alloc::vec![None; service.outputs().len()]);
        self.services.push(service);
        self.node_tags.push(0);
        self.rebuilds.push(None);
        NodeId(self.services.len() - 1)
    }

    /// Tags `node` with what it stands for, so that the next graph of the
    /// core can take it over ([`Executor::into_parts`]).
    pub fn tag_node(&mut self, node: NodeId, tag: crate::Tag) -> Result<&mut Self, ExecutorError> {
        *self
            .node_tags
            .get_mut(node.0)
            .ok_or(ExecutorError::UnknownId)? = tag;
        Ok(self)
    }

    /// Tags `port` (the platform's index of its interface, say).
    pub fn tag_port(&mut self, port: PortId, tag: crate::Tag) -> Result<&mut Self, ExecutorError> {
        *self
            .port_tags
            .get_mut(port.0)
            .ok_or(ExecutorError::UnknownId)? = tag;
        Ok(self)
    }

    /// Adds a ring to another core; emit to `Target::Ring(id)` to use it.
    pub fn add_ring_out(&mut self, producer: Producer<Packet>) -> RingId {
        self.rings_out.push(RingOut {
            producer,
            staging: ArrayVec::new(),
        });
        RingId(self.rings_out.len() - 1)
    }

    /// Adds a ring from another core whose packets enter `node`.
    pub fn add_ring_in(
        &mut self,
        consumer: Consumer<Packet>,
        node: NodeId,
    ) -> Result<&mut Self, ExecutorError> {
        self.check_node(node)?;
        self.rings_in.push(RingIn { consumer, node });
        Ok(self)
    }

    /// Packets received on `port` enter `node`.
    pub fn route_rx(&mut self, port: PortId, node: NodeId) -> Result<&mut Self, ExecutorError> {
        self.check_node(node)?;
        self.ports
            .get_mut(port.0)
            .ok_or(ExecutorError::UnknownId)?
            .rx_node = Some(node);
        Ok(self)
    }

    /// Puts a packet-capture tap on `port` (see [`crate::capture`]): it
    /// sees every burst the port receives and sends.
    pub fn tap_port(&mut self, port: PortId, tap: PortTap) -> Result<&mut Self, ExecutorError> {
        self.ports
            .get_mut(port.0)
            .ok_or(ExecutorError::UnknownId)?
            .tap = Some(tap);
        Ok(self)
    }

    /// Connects output `output` of `node` to `target`.
    pub fn connect(
        &mut self,
        node: NodeId,
        output: &str,
        target: Target,
    ) -> Result<&mut Self, ExecutorError> {
        self.check_node(node)?;
        match target {
            Target::Node(id) => self.check_node(id)?,
            Target::Port(id) if id.0 >= self.ports.len() => return Err(ExecutorError::UnknownId),
            Target::Ring(id) if id.0 >= self.rings_out.len() => {
                return Err(ExecutorError::UnknownId);
            }
            _ => {}
        }
        let service = &self.services[node.0];
        let index = service
            .outputs()
            .iter()
            .position(|name| *name == output)
            .ok_or_else(|| ExecutorError::UnknownOutput {
                service: service.name(),
                output: output.into(),
            })?;
        self.edges[node.0][index] = Some(target);
        Ok(self)
    }

    fn check_node(&self, node: NodeId) -> Result<(), ExecutorError> {
        if node.0 < self.services.len() {
            Ok(())
        } else {
            Err(ExecutorError::UnknownId)
        }
    }

    /// Checks that every output is connected, as [`build`](Self::build)
    /// will.
    pub fn check(&self) -> Result<(), ExecutorError> {
        for (service, node_edges) in self.services.iter().zip(&self.edges) {
            for (target, output) in node_edges.iter().zip(service.outputs()) {
                if target.is_none() {
                    return Err(ExecutorError::UnconnectedOutput {
                        service: service.name(),
                        output,
                    });
                }
            }
        }
        Ok(())
    }

    /// Gives back what was added, when the graph will not be built after
    /// all (a core that could not build a new spec's graph rebuilds its
    /// previous one from them). `counters` stands for the parts' counters.
    pub fn into_parts(self, counters: Arc<CoreCounters>) -> crate::ExecutorParts {
        crate::ExecutorParts {
            ports: self
                .port_tags
                .into_iter()
                .zip(self.ports)
                .map(|(tag, port)| (tag, port.nic))
                .collect(),
            nodes: self.node_tags.into_iter().zip(self.services).collect(),
            pool: self.pool,
            clock: self.clock.unwrap_or(default_clock),
            doorbell: self.doorbell,
            guard: self.guard,
            rings_in: self
                .rings_in
                .into_iter()
                .map(|ring| ring.consumer)
                .collect(),
            rings_out: self
                .rings_out
                .into_iter()
                .map(|ring| ring.producer)
                .collect(),
            counters,
        }
    }

    /// Checks that every output is connected and makes the executor.
    pub fn build(self) -> Result<Executor, ExecutorError> {
        let mut edges = Vec::with_capacity(self.edges.len());
        for (service, node_edges) in self.services.iter().zip(self.edges) {
            let mut resolved = Vec::with_capacity(node_edges.len());
            for (target, output) in node_edges.into_iter().zip(service.outputs()) {
                resolved.push(target.ok_or(ExecutorError::UnconnectedOutput {
                    service: service.name(),
                    output,
                })?);
            }
            edges.push(resolved);
        }
        let nodes = self
            .services
            .iter()
            .map(|service| NodeCounters {
                name: service.name(),
                drop_reasons: service.drop_reasons(),
                event_names: service.events(),
                ..NodeCounters::default()
            })
            .collect();
        let parts = self
            .services
            .iter()
            .flat_map(|service| service.supervised_parts())
            .collect();
        let queues = (0..self.services.len()).map(|_| NodeQueue::new()).collect();
        let graph_nodes = self
            .services
            .into_iter()
            .zip(edges)
            .map(|(service, edges)| GraphNode {
                staging: edges.iter().map(|_| Batch::new()).collect(),
                service,
                edges,
            })
            .collect();
        if let Some(doorbell) = &self.doorbell {
            for ring in &self.rings_in {
                ring.consumer.set_doorbell(Arc::clone(doorbell));
            }
        }
        Ok(Executor {
            nodes: graph_nodes,
            fabric: Fabric {
                queues,
                ports: self.ports,
                rings_out: self.rings_out,
                handoff: crate::graph::Handoff::new(),
                queued: false,
                pool: self.pool,
                now_ns: 0,
            },
            rings_in: self.rings_in,
            counters: Arc::new(CoreCounters {
                nodes,
                parts,
                ..CoreCounters::default()
            }),
            scratch: Batch::new(),
            clock: self.clock.unwrap_or(default_clock),
            last_tick_ns: None,
            doorbell: self.doorbell,
            node_tags: self.node_tags,
            port_tags: self.port_tags,
            supervisor: Supervisor::new(
                self.supervision.0,
                self.supervision.1,
                self.guard,
                self.rebuilds,
            ),
        })
    }
}

/// Nanoseconds since the first call, from the OS clock.
#[cfg(any(test, feature = "std"))]
fn default_clock() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_nanos() as u64
}

/// Without an OS or a platform clock, time stands still.
#[cfg(not(any(test, feature = "std")))]
fn default_clock() -> u64 {
    0
}
