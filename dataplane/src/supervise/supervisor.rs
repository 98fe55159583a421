//! The executor's supervisor: runs each node call under the platform's
//! guard and the time budget, and keeps every node's backoff.

use super::{ServiceState, SupervisionCounters, SupervisionPolicy};
use crate::Nanoservice;
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// The platform's way to run one node call and catch its failure: hosted,
/// `std::panic::catch_unwind` ([`super::CATCH_UNWIND`]); bare metal, a
/// resume point the panic handler jumps back to. Without a guard a panic
/// is the platform's panic (the process or the appliance ends), and only
/// the time budget is supervised.
#[derive(Debug, Clone, Copy)]
pub struct Guard {
    /// Runs the call; `Err` with the panic's message when it panicked.
    pub run: fn(&mut dyn FnMut()) -> Result<(), String>,
    /// True when a caught panic ran the destructors of the frames it left
    /// (unwinding). False when it jumped over them: the failed service may
    /// then be inconsistent beyond what dropping it tolerates, so it is
    /// leaked, not dropped, when its replacement is built.
    pub unwinds: bool,
}

/// Builds a node afresh from its spec, for a restart.
pub type Rebuild = Box<dyn FnMut() -> Box<dyn Nanoservice>>;

/// Why a node failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// It panicked, with this message.
    Panic(String),
    /// One call took longer than the budget.
    Overrun {
        /// How long it took, in microseconds.
        took_us: u64,
        /// The budget, in microseconds.
        budget_us: u64,
    },
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Panic(message) => write!(f, "panic: {message}"),
            Self::Overrun { took_us, budget_us } => {
                write!(
                    f,
                    "overrun: a call took {took_us} us, budget {budget_us} us"
                )
            }
        }
    }
}

/// One node's place in the supervisor.
struct Slot {
    /// How to rebuild it; `None` for nodes the graph cannot rebuild.
    rebuild: Option<Rebuild>,
    /// Failures since it last ran healthy for `reset_after_ms`.
    failures_in_row: u32,
    /// When it was built or last rebuilt, on the executor's clock.
    running_since_ns: u64,
    /// When it is to be rebuilt, while it waits out its backoff.
    restart_at_ns: Option<u64>,
    /// When it last failed.
    failed_at_ns: u64,
    /// False from its failure until it is rebuilt.
    running: bool,
}

/// Supervision state of one core's nodes.
pub(crate) struct Supervisor {
    /// The core, for logs.
    core: usize,
    policy: SupervisionPolicy,
    guard: Option<Guard>,
    budget_ns: Option<u64>,
    slots: Vec<Slot>,
    /// Nodes not running: 0 on a healthy core, which then checks nothing
    /// per node.
    down: usize,
    /// No guard, no budget and no node down: a call needs no supervision
    /// at all (one test a call instead of three).
    unwatched: bool,
    /// The earliest `restart_at_ns` of any slot.
    next_restart_ns: Option<u64>,
}

impl Supervisor {
    /// Supervision of `rebuilds.len()` nodes, each with its factory (or
    /// none).
    pub(crate) fn new(
        core: usize,
        policy: SupervisionPolicy,
        guard: Option<Guard>,
        rebuilds: Vec<Option<Rebuild>>,
    ) -> Self {
        Self {
            core,
            policy,
            guard,
            budget_ns: policy.budget_ns(),
            slots: rebuilds
                .into_iter()
                .map(|rebuild| Slot {
                    rebuild,
                    failures_in_row: 0,
                    running_since_ns: 0,
                    restart_at_ns: None,
                    failed_at_ns: 0,
                    running: true,
                })
                .collect(),
            down: 0,
            unwatched: guard.is_none() && policy.budget_ns().is_none(),
            next_restart_ns: None,
        }
    }

    /// True when calls need no supervision: no guard, no budget, and every
    /// node running.
    #[inline(always)]
    pub(crate) fn is_unwatched(&self) -> bool {
        self.unwatched
    }

    /// True when `node` runs (a failed one's input is dropped instead).
    #[inline(always)]
    pub(crate) fn is_running(&self, node: usize) -> bool {
        self.down == 0 || self.slots[node].running
    }

    /// The platform's guard, for the core's next graph.
    pub(crate) fn guard(&self) -> Option<Guard> {
        self.guard
    }

    /// True unless the guard jumps over destructors (see [`Guard`]).
    pub(crate) fn drops_failed(&self) -> bool {
        self.guard.is_none_or(|guard| guard.unwinds)
    }

    /// True when the budget is checked (the clock is read around calls).
    #[inline(always)]
    pub(crate) fn budget_ns(&self) -> Option<u64> {
        self.budget_ns
    }

    /// Runs `call` under the guard; `Err` with the panic's message when it
    /// panicked.
    #[inline(always)]
    pub(crate) fn guarded(&self, mut call: impl FnMut()) -> Result<(), Failure> {
        match self.guard {
            None => {
                call();
                Ok(())
            }
            Some(guard) => (guard.run)(&mut call).map_err(Failure::Panic),
        }
    }

    /// The call that started at `started_ns` and ended at `now_ns`, held
    /// against the budget.
    pub(crate) fn check_budget(&self, started_ns: u64, now_ns: u64) -> Result<(), Failure> {
        match self.budget_ns {
            Some(budget) if now_ns.saturating_sub(started_ns) > budget => Err(Failure::Overrun {
                took_us: now_ns.saturating_sub(started_ns) / 1_000,
                budget_us: budget / 1_000,
            }),
            _ => Ok(()),
        }
    }

    /// The earliest pending restart, for a core about to sleep.
    pub(crate) fn next_restart_ns(&self) -> Option<u64> {
        self.next_restart_ns
    }

    /// Books `node`'s failure at `now_ns`: the node stops, and is to be
    /// rebuilt after its backoff if it can be. `dropped` packets were in
    /// flight. Logs it and updates its counters.
    pub(crate) fn fail(
        &mut self,
        node: usize,
        name: &str,
        failure: &Failure,
        now_ns: u64,
        dropped: u64,
        counters: &SupervisionCounters,
    ) {
        match failure {
            Failure::Panic(_) => counters.panics.increment(),
            Failure::Overrun { .. } => counters.overruns.increment(),
        }
        counters.dropped.add(dropped);
        let policy = self.policy;
        let slot = &mut self.slots[node];
        if slot.running {
            slot.running = false;
            self.down += 1;
            self.unwatched = false;
        }
        if now_ns.saturating_sub(slot.running_since_ns) >= policy.reset_after_ns() {
            slot.failures_in_row = 0;
        }
        slot.failures_in_row = slot.failures_in_row.saturating_add(1);
        slot.failed_at_ns = now_ns;
        let core = self.core;
        let at_us = now_ns / 1_000;
        if slot.rebuild.is_none() {
            counters.set_state(ServiceState::Failed);
            log::error!(
                "supervision: core={core} node={node} service={name} failed ({failure}) dropped={dropped} at_us={at_us}; it cannot be rebuilt: its input is dropped from now on"
            );
            return;
        }
        let backoff_ns = policy.backoff_ns(slot.failures_in_row);
        let restart_at = now_ns.saturating_add(backoff_ns);
        slot.restart_at_ns = Some(restart_at);
        self.next_restart_ns = Some(
            self.next_restart_ns
                .map_or(restart_at, |t| t.min(restart_at)),
        );
        counters.set_state(ServiceState::Backoff);
        counters.set_backoff_ms(backoff_ns / 1_000_000);
        log::warn!(
            "supervision: core={core} node={node} service={name} failed ({failure}) dropped={dropped} failures_in_row={} restart_in_ms={} at_us={at_us}",
            slot.failures_in_row,
            backoff_ns / 1_000_000,
        );
    }

    /// A node whose restart is due at `now_ns`, with its factory lent out
    /// (give it back with [`restarted`](Self::restarted) or
    /// [`fail`](Self::fail) after [`return_rebuild`](Self::return_rebuild)).
    #[inline]
    pub(crate) fn take_due(&mut self, now_ns: u64) -> Option<(usize, Rebuild)> {
        if self.next_restart_ns.is_none_or(|next| next > now_ns) {
            return None;
        }
        let node = self
            .slots
            .iter()
            .position(|slot| slot.restart_at_ns.is_some_and(|at| at <= now_ns));
        let Some(node) = node else {
            self.next_restart_ns = self.earliest_restart();
            return None;
        };
        let slot = &mut self.slots[node];
        slot.restart_at_ns = None;
        let rebuild = slot.rebuild.take();
        self.next_restart_ns = self.earliest_restart();
        rebuild.map(|rebuild| (node, rebuild))
    }

    /// `node`'s factory, lent out for a restart now (give it back with
    /// [`return_rebuild`](Self::return_rebuild)); a pending restart of it
    /// is this one.
    pub(crate) fn take_rebuild(&mut self, node: usize) -> Option<Rebuild> {
        let slot = self.slots.get_mut(node)?;
        let rebuild = slot.rebuild.take()?;
        slot.restart_at_ns = None;
        self.next_restart_ns = self.earliest_restart();
        Some(rebuild)
    }

    /// Gives `node`'s factory back after a restart attempt.
    pub(crate) fn return_rebuild(&mut self, node: usize, rebuild: Rebuild) {
        self.slots[node].rebuild = Some(rebuild);
    }

    /// Books `node`'s rebuild at `now_ns`: it runs again.
    pub(crate) fn restarted(
        &mut self,
        node: usize,
        name: &str,
        now_ns: u64,
        counters: &SupervisionCounters,
    ) {
        let slot = &mut self.slots[node];
        if !slot.running {
            slot.running = true;
            self.down -= 1;
            self.unwatched = self.down == 0 && self.guard.is_none() && self.budget_ns.is_none();
        }
        slot.running_since_ns = now_ns;
        counters.restarts.increment();
        counters.set_state(ServiceState::Running);
        // The failure's time and the backoff on the same line, so that a
        // reader of the logs checks the spacing from one line.
        log::info!(
            "supervision: core={} node={node} service={name} restarted restarts={} failures_in_row={} failed_at_us={} backoff_ms={} at_us={}",
            self.core,
            counters.restarts.get(),
            slot.failures_in_row,
            slot.failed_at_ns / 1_000,
            counters.backoff_ms(),
            now_ns / 1_000,
        );
    }

    fn earliest_restart(&self) -> Option<u64> {
        self.slots
            .iter()
            .filter_map(|slot| slot.restart_at_ns)
            .min()
    }
}
