//! What supervision tells readers on other cores about one node: its state
//! and how often it failed and was restarted.

use crate::Counter;
use core::sync::atomic::{AtomicU8, AtomicU64, Ordering};

/// Where a supervised node stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ServiceState {
    /// It runs.
    Running = 0,
    /// It failed and waits out its backoff; its input is dropped and
    /// counted until it is rebuilt.
    Backoff = 1,
    /// It failed and cannot be rebuilt (no factory: an ARP sharing its
    /// cache with other cores, a TCP stack linked to other cores' or
    /// serving the management plane, a TCP app whose first build took
    /// links to other cores, the management plane itself); its input is
    /// dropped and counted (an app's port refuses connections) for as
    /// long as the core runs.
    Failed = 2,
}

impl ServiceState {
    /// The state as `/api/v1/status` names it.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Backoff => "backoff",
            Self::Failed => "failed",
        }
    }

    fn from_u8(value: u8) -> Self {
        match value {
            0 => Self::Running,
            1 => Self::Backoff,
            _ => Self::Failed,
        }
    }
}

/// One node's supervision counters; only its core writes them.
#[derive(Debug, Default)]
pub struct SupervisionCounters {
    /// The [`ServiceState`], as its `u8`.
    state: AtomicU8,
    /// Failures that were panics.
    pub panics: Counter,
    /// Failures that were calls over the time budget.
    pub overruns: Counter,
    /// Times the node was rebuilt after a failure.
    pub restarts: Counter,
    /// Packets dropped because the node failed: its batch, queue and
    /// staged output at the failure, and its input while it was down.
    pub dropped: Counter,
    /// The wait before the pending (or last) restart, in milliseconds.
    backoff_ms: AtomicU64,
}

impl SupervisionCounters {
    /// Where the node stands.
    pub fn state(&self) -> ServiceState {
        // Ordering: a status value; no other memory depends on it.
        ServiceState::from_u8(self.state.load(Ordering::Relaxed))
    }

    /// The wait before the pending (or last) restart, in milliseconds.
    pub fn backoff_ms(&self) -> u64 {
        // Ordering: as for `state`.
        self.backoff_ms.load(Ordering::Relaxed)
    }

    /// All failures, whatever their cause.
    pub fn failures(&self) -> u64 {
        self.panics.get() + self.overruns.get()
    }

    /// Sets the state. Only the owning core (its executor) may call this.
    pub fn set_state(&self, state: ServiceState) {
        // Ordering: single writer, a status value (see `state`).
        self.state.store(state as u8, Ordering::Relaxed);
    }

    /// Sets the pending backoff. Only the owning core may call this.
    pub fn set_backoff_ms(&self, backoff_ms: u64) {
        // Ordering: as for `set_state`.
        self.backoff_ms.store(backoff_ms, Ordering::Relaxed);
    }
}
