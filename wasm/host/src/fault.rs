//! Faults and quarantine: a module that faults `quarantine_after` times
//! within `quarantine_window_ms` is quarantined, and rebuilt (fresh
//! instance, memory and map) after the supervision policy's backoff.

use alloc::vec::Vec;
use core::fmt;
use dataplane::SupervisionPolicy;

/// What went wrong in one call of the module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// It ran out of its batch's fuel.
    Fuel,
    /// It ran past its call's deadline (`meter = "epoch"`).
    Deadline,
    /// It trapped (unreachable, out-of-bounds, division by zero, stack
    /// overflow).
    Trap,
    /// It wrote a bad verdict, dirty flag or output into a descriptor.
    BadDescriptor,
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Fuel => "out of fuel",
            Self::Deadline => "past its deadline",
            Self::Trap => "trap",
            Self::BadDescriptor => "bad descriptor",
        })
    }
}

/// One core's fault record of a module, and its quarantine.
#[derive(Debug)]
pub struct Quarantine {
    after: usize,
    window_ns: u64,
    /// When the last faults happened, at most `after` of them, oldest
    /// first.
    recent: Vec<u64>,
    policy: SupervisionPolicy,
    /// Quarantines in a row (reset after the policy's healthy spell).
    in_row: u32,
    /// When the instance was last (re)built.
    running_since_ns: u64,
    /// When the quarantined module is due to be rebuilt.
    restart_at_ns: Option<u64>,
}

impl Quarantine {
    /// A record that quarantines after `after` faults in `window_ms`.
    pub fn new(after: u32, window_ms: u32, policy: SupervisionPolicy) -> Self {
        Self {
            after: after.max(1) as usize,
            window_ns: u64::from(window_ms) * 1_000_000,
            recent: Vec::with_capacity(after.max(1) as usize),
            policy,
            in_row: 0,
            running_since_ns: 0,
            restart_at_ns: None,
        }
    }

    /// Books a fault at `now_ns`; true when it quarantines the module
    /// (the caller then stops calling it until [`due`](Self::due)).
    pub fn fault(&mut self, now_ns: u64) -> bool {
        let since = now_ns.saturating_sub(self.window_ns);
        self.recent.retain(|at| *at >= since);
        if self.recent.len() == self.after {
            self.recent.remove(0);
        }
        self.recent.push(now_ns);
        if self.recent.len() < self.after {
            return false;
        }
        if now_ns.saturating_sub(self.running_since_ns) >= self.policy.reset_after_ns() {
            self.in_row = 0;
        }
        self.in_row = self.in_row.saturating_add(1);
        self.recent.clear();
        self.restart_at_ns = Some(now_ns.saturating_add(self.backoff_ns()));
        true
    }

    /// The wait before the pending (or next) rebuild, in nanoseconds.
    pub fn backoff_ns(&self) -> u64 {
        self.policy.backoff_ns(self.in_row.max(1))
    }

    /// True while quarantined.
    pub fn quarantined(&self) -> bool {
        self.restart_at_ns.is_some()
    }

    /// When the rebuild is due, while quarantined.
    pub fn restart_at_ns(&self) -> Option<u64> {
        self.restart_at_ns
    }

    /// True when the quarantined module is due for its rebuild at `now_ns`.
    pub fn due(&self, now_ns: u64) -> bool {
        self.restart_at_ns.is_some_and(|at| now_ns >= at)
    }

    /// The module was rebuilt at `now_ns`: it runs again.
    pub fn rebuilt(&mut self, now_ns: u64) {
        self.restart_at_ns = None;
        self.running_since_ns = now_ns;
    }

    /// Its rebuild failed at `now_ns`: it stays quarantined, the next try
    /// after a longer backoff.
    pub fn rebuild_failed(&mut self, now_ns: u64) {
        self.in_row = self.in_row.saturating_add(1);
        self.restart_at_ns = Some(now_ns.saturating_add(self.backoff_ns()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn quarantines_after_n_faults_in_the_window_and_backs_off() {
        let mut record = Quarantine::new(3, 1_000, SupervisionPolicy::default());
        record.rebuilt(0);
        assert!(!record.fault(10 * MS));
        assert!(!record.fault(20 * MS));
        assert!(
            !record.fault(1_500 * MS),
            "the first two fell out of the window"
        );
        assert!(!record.fault(1_600 * MS));
        assert!(record.fault(1_700 * MS), "three within a second");
        assert!(record.quarantined());
        assert_eq!(record.restart_at_ns(), Some(1_800 * MS), "100 ms first");
        assert!(!record.due(1_799 * MS) && record.due(1_800 * MS));
        record.rebuilt(1_800 * MS);
        assert!(!record.quarantined());
        for at in [1_900, 1_901] {
            assert!(!record.fault(at * MS));
        }
        assert!(record.fault(1_902 * MS));
        assert_eq!(record.restart_at_ns(), Some(2_102 * MS), "then 200 ms");
        record.rebuild_failed(2_102 * MS);
        assert_eq!(record.restart_at_ns(), Some(2_502 * MS), "then 400 ms");
    }
}
