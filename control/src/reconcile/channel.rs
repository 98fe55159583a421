//! The control rings between the controller and each core: commands one
//! way, acknowledgements the other, and what a core does with a command.

use crate::pipeline::{core_links, rebuild_core};
use crate::spec::Spec;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use dataplane::{
    CaptureBoard, Consumer, CountersBoard, Doorbell, Executor, ExecutorBuilder, ExecutorParts,
    Producer, SpscRing,
};
use services::registry::CoreLinks;

/// Commands a control ring holds: one in flight, one rollback behind it.
const RING_CAPACITY: usize = 4;

/// The platform's boards that every core's graph is put up on (the
/// management plane's counters and capture), given again with each new
/// graph.
#[derive(Clone, Default)]
pub struct Boards {
    /// The counters board (`/metrics`).
    pub counters: Option<Arc<CountersBoard>>,
    /// The capture board (`/api/v1/capture`).
    pub capture: Option<Arc<CaptureBoard>>,
}

impl Boards {
    /// Adds the boards to a core's links.
    pub fn insert_into(&self, links: &mut CoreLinks) {
        if let Some(board) = &self.counters {
            links.insert_shared(Arc::clone(board));
        }
        if let Some(board) = &self.capture {
            links.insert_shared(Arc::clone(board));
        }
    }

    /// One core's links for `spec` on `cores` cores, with the boards.
    pub fn links_for(&self, spec: &Spec, cores: usize) -> Vec<CoreLinks> {
        let mut links = core_links(spec, cores);
        for core_links in &mut links {
            self.insert_into(core_links);
        }
        links
    }
}

/// What a core is told: build `spec`'s graph.
pub struct Command {
    /// The generation it belongs to.
    pub generation: u64,
    /// True when it takes the generation back (the previous spec).
    pub rollback: bool,
    /// The spec to build.
    pub spec: Arc<Spec>,
    /// This core's links for it (from [`Boards::links_for`]).
    pub links: CoreLinks,
    /// The boards again, for a fallback build if this one fails.
    pub boards: Boards,
}

/// What a core answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    /// The command's generation.
    pub generation: u64,
    /// The command's `rollback`.
    pub rollback: bool,
    /// The core.
    pub core: usize,
    /// `Err`: why the graph could not be built (the core runs its
    /// previous spec's again).
    pub result: Result<(), String>,
}

/// A core's ends of its control rings, taken by the platform from the
/// core's links (`CoreLinks::take_shared`) before the first build.
pub struct CoreControl {
    core: usize,
    commands: Consumer<Command>,
    acks: Producer<Ack>,
    /// The spec the core's graph is built from.
    spec: Arc<Spec>,
}

impl CoreControl {
    /// True when a command waits: one relaxed look at the ring, cheap
    /// enough for every poll.
    #[inline]
    pub fn pending(&self) -> bool {
        !self.commands.is_empty()
    }

    /// Has the controller's commands wake this core when it sleeps.
    pub fn set_doorbell(&self, doorbell: Arc<Doorbell>) {
        self.commands.set_doorbell(doorbell);
    }

    /// The spec the core runs.
    pub fn spec(&self) -> &Arc<Spec> {
        &self.spec
    }

    /// Carries out the commands waiting, if any: the graph is taken apart
    /// (call between polls) and the new one built from it; when that
    /// fails, the previous spec's graph is built again from the same
    /// parts, and the ack says why. Returns the graph to poll from now on.
    pub fn apply(&mut self, mut executor: Executor) -> Executor {
        while let Some(command) = self.commands.pop() {
            let (next, result) = self.build(
                executor,
                command.spec.clone(),
                command.links,
                &command.boards,
            );
            executor = next;
            if result.is_ok() {
                self.spec = command.spec;
            }
            let ack = Ack {
                generation: command.generation,
                rollback: command.rollback,
                core: self.core,
                result,
            };
            if self.acks.push(ack).is_err() {
                log::error!(
                    "core {}: the ack ring is full: generation {} goes unacknowledged",
                    self.core,
                    command.generation
                );
            }
        }
        executor
    }

    /// Builds `spec`'s graph from `executor`'s parts; on failure, the
    /// running spec's again.
    fn build(
        &self,
        executor: Executor,
        spec: Arc<Spec>,
        links: CoreLinks,
        boards: &Boards,
    ) -> (Executor, Result<(), String>) {
        let failure = match rebuild_core(&spec, self.core, executor.into_parts(), links) {
            Ok(executor) => {
                log::info!("core {}: new graph built", self.core);
                return (executor, Ok(()));
            }
            Err(failure) => failure,
        };
        let reason = format!("core {}: {}", self.core, failure.error);
        log::warn!("{reason}; building the previous spec's graph again");
        let mut links = CoreLinks::new();
        boards.insert_into(&mut links);
        match rebuild_core(&self.spec, self.core, *failure.parts, links) {
            Ok(executor) => (executor, Err(reason)),
            Err(again) => {
                log::error!(
                    "core {}: the previous spec's graph failed too ({}): the core drops what it receives",
                    self.core,
                    again.error
                );
                (bare(*again.parts), Err(reason))
            }
        }
    }
}

/// A graph of the ports alone, receiving nothing: the last resort of a
/// core that could build no graph, so that it still answers commands.
fn bare(parts: ExecutorParts) -> Executor {
    let mut builder = ExecutorBuilder::new();
    for (tag, nic) in parts.ports {
        let port = builder.add_port(nic);
        // Cannot fail: the port was just added.
        let _ = builder.tag_port(port, tag);
    }
    if let Some(pool) = parts.pool {
        builder.pool(pool);
    }
    builder.clock(parts.clock);
    if let Some(doorbell) = parts.doorbell {
        builder.doorbell(doorbell);
    }
    match builder.build() {
        Ok(executor) => executor,
        // A graph without nodes has no output to leave unconnected.
        Err(error) => unreachable!("a graph of ports alone: {error}"),
    }
}

/// The controller's ends of one core's rings.
pub struct CoreEnds {
    pub(super) commands: Producer<Command>,
    pub(super) acks: Consumer<Ack>,
}

/// Makes the control rings of `cores` cores running `spec`: the
/// controller's ends, and each core's [`CoreControl`] (element `core`
/// goes to core `core`).
pub fn channels(spec: &Arc<Spec>, cores: usize) -> (Vec<CoreEnds>, Vec<CoreControl>) {
    let mut controller = Vec::with_capacity(cores);
    let mut controls = Vec::with_capacity(cores);
    for core in 0..cores {
        let (commands, command_consumer) = match SpscRing::with_capacity(RING_CAPACITY) {
            Ok(ends) => ends,
            Err(error) => unreachable!("a ring of {RING_CAPACITY}: {error:?}"),
        };
        let (ack_producer, acks) = match SpscRing::with_capacity(RING_CAPACITY) {
            Ok(ends) => ends,
            Err(error) => unreachable!("a ring of {RING_CAPACITY}: {error:?}"),
        };
        controller.push(CoreEnds { commands, acks });
        controls.push(CoreControl {
            core,
            commands: command_consumer,
            acks: ack_producer,
            spec: Arc::clone(spec),
        });
    }
    (controller, controls)
}
