//! `Controller`: generations, the plan in flight, its acknowledgements,
//! rollback, and the conditions `/api/v1/status` shows.

use super::channel::{Ack, Boards, Command, CoreEnds};
use crate::spec::Spec;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

/// How long a core may take to acknowledge a command before the change
/// is rolled back: 5 s (a core rebuilds its graph in well under a
/// millisecond; one that takes this long is stuck).
pub const ACK_TIMEOUT_NS: u64 = 5_000_000_000;

/// Why a change cannot start now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy {
    /// The generation still being applied.
    pub generation: u64,
}

/// One of the conditions `/api/v1/status` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// `Ready`, `Reconciling` or `Degraded`.
    pub kind: &'static str,
    /// True or false.
    pub status: bool,
    /// A CamelCase word.
    pub reason: &'static str,
    /// What a person reads.
    pub message: String,
    /// The generation the condition speaks of.
    pub generation: u64,
}

/// What the controller counted (`/metrics`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReconcileCounters {
    /// Changes started.
    pub started: u64,
    /// Changes every core applied.
    pub applied: u64,
    /// Changes rolled back.
    pub rolled_back: u64,
    /// Acknowledgements that reported a failed build.
    pub core_failures: u64,
    /// Changes rolled back because a core did not answer in time.
    pub timeouts: u64,
    /// Changes refused before starting (a restart needed, or one in flight).
    pub refused: u64,
}

/// A change on its way.
struct InFlight {
    generation: u64,
    spec: Arc<Spec>,
    text: String,
    started_ns: u64,
    /// Per core: the ack, once it came.
    acks: Vec<Option<Result<(), String>>>,
    /// Set once the change is being rolled back: why.
    rollback: Option<String>,
}

/// The controller of one instance, owned by the management plane.
pub struct Controller {
    cores: Vec<CoreEnds>,
    boards: Boards,
    generation: u64,
    observed: u64,
    /// The spec every core runs, and its text.
    running: (Arc<Spec>, String),
    in_flight: Option<InFlight>,
    /// The last change that failed: its generation and why.
    degraded: Option<(u64, String)>,
    counters: ReconcileCounters,
}

impl Controller {
    /// The controller of cores running `spec` (generation 1), reached
    /// through `cores` (from [`channels`](super::channels)); `boards` go
    /// to every new graph.
    pub fn new(spec: Arc<Spec>, text: String, cores: Vec<CoreEnds>, boards: Boards) -> Self {
        Self {
            cores,
            boards,
            generation: 1,
            observed: 1,
            running: (spec, text),
            in_flight: None,
            degraded: None,
            counters: ReconcileCounters::default(),
        }
    }

    /// The newest accepted generation.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The newest generation the controller has finished with (applied
    /// or rolled back).
    pub fn observed_generation(&self) -> u64 {
        self.observed
    }

    /// The spec being applied, else the running one.
    pub fn spec(&self) -> &Arc<Spec> {
        self.in_flight
            .as_ref()
            .filter(|change| change.rollback.is_none())
            .map_or(&self.running.0, |change| &change.spec)
    }

    /// The text of [`spec`](Self::spec).
    pub fn spec_text(&self) -> &str {
        self.in_flight
            .as_ref()
            .filter(|change| change.rollback.is_none())
            .map_or(&self.running.1, |change| &change.text)
    }

    /// True while a change is on its way.
    pub fn reconciling(&self) -> bool {
        self.in_flight.is_some()
    }

    /// What was counted.
    pub fn counters(&self) -> ReconcileCounters {
        self.counters
    }

    /// Counts a change refused before it started.
    pub fn refused(&mut self) {
        self.counters.refused += 1;
    }

    /// Starts applying `spec` (whose text is `text`) on every core: a new
    /// generation, returned. `Err` while another change is on its way.
    pub fn start(&mut self, spec: Spec, text: String, now_ns: u64) -> Result<u64, Busy> {
        if let Some(change) = &self.in_flight {
            self.counters.refused += 1;
            return Err(Busy {
                generation: change.generation,
            });
        }
        self.generation += 1;
        self.counters.started += 1;
        let spec = Arc::new(spec);
        self.send(self.generation, &spec, false);
        self.in_flight = Some(InFlight {
            generation: self.generation,
            spec,
            text,
            started_ns: now_ns,
            acks: (0..self.cores.len()).map(|_| None).collect(),
            rollback: None,
        });
        log::info!(
            "generation {}: applying on {} core(s)",
            self.generation,
            self.cores.len()
        );
        Ok(self.generation)
    }

    /// Sends every core the command to build `spec`, ringing those that
    /// sleep.
    fn send(&mut self, generation: u64, spec: &Arc<Spec>, rollback: bool) {
        let links = self.boards.links_for(spec, self.cores.len());
        for (core, (ends, links)) in self.cores.iter_mut().zip(links).enumerate() {
            let command = Command {
                generation,
                rollback,
                spec: Arc::clone(spec),
                links,
                boards: self.boards.clone(),
            };
            if ends.commands.push(command).is_err() {
                // The ring holds a change and its rollback; it is never
                // fuller than that while one change is in flight.
                log::error!("core {core}: the control ring is full");
            }
            ends.commands.notify();
        }
    }

    /// When the controller next wants [`step`](Self::step): soon while a
    /// change is on its way.
    pub fn next_step_ns(&self, now_ns: u64) -> Option<u64> {
        self.in_flight.as_ref().map(|_| now_ns + 1_000_000)
    }

    /// Takes in the acknowledgements that came, and moves the change on:
    /// observed when every core applied it; rolled back (every core told
    /// to build the running spec again) when one failed or `now_ns` is
    /// past its bound; finished, `Degraded`, when the rollback is
    /// acknowledged. Returns true when the change finished in this step.
    pub fn step(&mut self, now_ns: u64) -> bool {
        let Some(change) = &mut self.in_flight else {
            return false;
        };
        for ends in &mut self.cores {
            while let Some(Ack {
                generation,
                core,
                rollback,
                result,
            }) = ends.acks.pop()
            {
                // An ack of the change itself that comes during its
                // rollback is of no interest any more.
                if generation != change.generation
                    || rollback != change.rollback.is_some()
                    || core >= change.acks.len()
                {
                    continue;
                }
                if let Err(reason) = &result {
                    self.counters.core_failures += 1;
                    log::warn!("generation {generation}: {reason}");
                }
                change.acks[core] = Some(result);
            }
        }
        let all_in = change.acks.iter().all(Option::is_some);
        let failure = change.acks.iter().find_map(|ack| match ack {
            Some(Err(reason)) => Some(reason.clone()),
            _ => None,
        });
        let late = now_ns.saturating_sub(change.started_ns) > ACK_TIMEOUT_NS;
        match (&change.rollback, all_in, failure) {
            (None, true, None) => {
                let change = self.in_flight.take().expect("a change is in flight");
                log::info!("generation {}: applied on every core", change.generation);
                self.running = (change.spec, change.text);
                self.observed = change.generation;
                self.degraded = None;
                self.counters.applied += 1;
                true
            }
            (None, _, Some(reason)) => {
                self.roll_back(reason, now_ns);
                false
            }
            (None, false, None) if late => {
                let silent: Vec<usize> = change
                    .acks
                    .iter()
                    .enumerate()
                    .filter(|(_, ack)| ack.is_none())
                    .map(|(core, _)| core)
                    .collect();
                self.counters.timeouts += 1;
                let reason = format!(
                    "core(s) {silent:?} did not acknowledge within {} s",
                    ACK_TIMEOUT_NS / 1_000_000_000
                );
                self.roll_back(reason, now_ns);
                false
            }
            (Some(_), _, _) if all_in || late => {
                let change = self.in_flight.take().expect("a change is in flight");
                let reason = change.rollback.unwrap_or_default();
                let message = if all_in {
                    format!(
                        "generation {} was rolled back to the previous spec: {reason}",
                        change.generation
                    )
                } else {
                    format!(
                        "generation {} was rolled back, but not every core acknowledged the rollback in time: {reason}",
                        change.generation
                    )
                };
                log::warn!("{message}");
                self.observed = change.generation;
                self.degraded = Some((change.generation, message));
                self.counters.rolled_back += 1;
                true
            }
            _ => false,
        }
    }

    /// Tells every core to build the running spec again.
    fn roll_back(&mut self, reason: String, now_ns: u64) {
        let Some(change) = &mut self.in_flight else {
            return;
        };
        log::warn!("generation {}: rolling back: {reason}", change.generation);
        let generation = change.generation;
        change.rollback = Some(reason);
        change.started_ns = now_ns;
        change.acks.iter_mut().for_each(|ack| *ack = None);
        let running = Arc::clone(&self.running.0);
        self.send(generation, &running, true);
    }

    /// The conditions, `Ready`, `Reconciling` and `Degraded`.
    pub fn conditions(&self) -> [Condition; 3] {
        let reconciling = match &self.in_flight {
            Some(change) => Condition {
                kind: "Reconciling",
                status: true,
                reason: if change.rollback.is_some() {
                    "RollingBack"
                } else {
                    "Applying"
                },
                message: format!(
                    "generation {}: {} of {} core(s) acknowledged",
                    change.generation,
                    change.acks.iter().filter(|ack| ack.is_some()).count(),
                    change.acks.len()
                ),
                generation: change.generation,
            },
            None => Condition {
                kind: "Reconciling",
                status: false,
                reason: "Idle",
                message: String::from("no change on its way"),
                generation: self.observed,
            },
        };
        let degraded = match &self.degraded {
            Some((generation, message)) => Condition {
                kind: "Degraded",
                status: true,
                reason: "RolledBack",
                message: message.clone(),
                generation: *generation,
            },
            None => Condition {
                kind: "Degraded",
                status: false,
                reason: "AsSpecified",
                message: String::from("every core runs the spec it was given"),
                generation: self.observed,
            },
        };
        let ready = Condition {
            kind: "Ready",
            status: self.in_flight.is_none(),
            reason: if self.in_flight.is_none() {
                "Running"
            } else {
                "Reconciling"
            },
            message: String::from(if self.in_flight.is_none() {
                "the running spec is applied on every core"
            } else {
                "cores are switching to a new graph"
            }),
            generation: self.observed,
        };
        [ready, reconciling, degraded]
    }
}
