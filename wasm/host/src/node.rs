//! `WasmNode`: the nanoservice of one `wasm` service on one core (or one
//! port of it): batches through its instance, verdicts to outputs, faults
//! by `on_fault`, quarantine and rebuild.

use crate::config::OnFault;
use crate::descriptor::SlotVerdict;
use crate::fault::{FaultKind, Quarantine};
use crate::instance::{HookView, Instance, Outcome};
use crate::module::LoadedModule;
use alloc::sync::Arc;
use dataplane::supervise::ServiceState;
use dataplane::{
    BURST_SIZE, Batch, Nanoservice, Outputs, SupervisionPolicy, Verdict, drop_reasons,
};

drop_reasons! {
    /// Why a Wasm service drops a packet.
    WasmDrop {
        /// The module's verdict was `drop`.
        ByModule = "dropped-by-module",
        /// A fault (or quarantine) with `on_fault = "drop"`.
        FaultDropped = "fault-dropped",
    }
}

/// The host's events of every Wasm service, before its module's counters.
pub const HOST_EVENTS: &[&str] = &[
    "fault-passed",
    "fuel-exhausted",
    "trap",
    "bad-descriptor",
    "quarantined",
    "restarts",
    "map-full",
    "map-too-long",
    "log-suppressed",
    "deadline-exceeded",
];

/// Indexes into [`HOST_EVENTS`].
mod event {
    pub(super) const FAULT_PASSED: usize = 0;
    pub(super) const FUEL: usize = 1;
    pub(super) const TRAP: usize = 2;
    pub(super) const BAD_DESCRIPTOR: usize = 3;
    pub(super) const QUARANTINED: usize = 4;
    pub(super) const RESTARTS: usize = 5;
    pub(super) const MAP_FULL: usize = 6;
    pub(super) const MAP_TOO_LONG: usize = 7;
    pub(super) const LOG_SUPPRESSED: usize = 8;
    pub(super) const DEADLINE: usize = 9;
}

/// Output indexes: `pass`, `out`, then the redirects.
const PASS: u8 = 0;
const OUT: u8 = 1;

/// One core's Wasm service.
pub struct WasmNode {
    loaded: Arc<LoadedModule>,
    /// `None` while quarantined.
    instance: Option<Instance>,
    quarantine: Quarantine,
    view: HookView,
    on_fault: OnFault,
    core: usize,
    outcomes: [Outcome; BURST_SIZE],
}

impl core::fmt::Debug for WasmNode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("WasmNode")
            .field("service", &self.loaded.name)
            .field("core", &self.core)
            .field("quarantined", &self.quarantine.quarantined())
            .finish_non_exhaustive()
    }
}

impl WasmNode {
    /// The node of `loaded` on `core`, seeing packets as `view` says. A
    /// module that will not instantiate starts quarantined.
    pub fn new(
        loaded: Arc<LoadedModule>,
        core: usize,
        view: HookView,
        on_fault: OnFault,
        quarantine: Quarantine,
    ) -> Self {
        let mut node = Self {
            instance: None,
            quarantine,
            view,
            on_fault,
            core,
            outcomes: [Outcome::Fault; BURST_SIZE],
            loaded,
        };
        match Instance::new(&node.loaded, core, 0) {
            Ok(instance) => {
                node.instance = Some(instance);
                node.quarantine.rebuilt(0);
            }
            Err(why) => {
                log::error!(
                    "wasm {} core {core}: instance refused, quarantined: {why}",
                    node.loaded.name
                );
                node.quarantine.fault(0);
                node.quarantine.rebuild_failed(0);
            }
        }
        node
    }

    /// True while quarantined.
    pub fn quarantined(&self) -> bool {
        self.instance.is_none()
    }

    /// Entries in the module's map on this core.
    pub fn map_len(&self) -> usize {
        self.instance.as_ref().map_or(0, Instance::map_len)
    }

    /// Rebuilds a quarantined module whose backoff is over.
    fn restart_if_due(&mut self, out: &mut Outputs<'_>) {
        let now_ns = out.now_ns();
        if self.instance.is_some() || !self.quarantine.due(now_ns) {
            return;
        }
        let name = self.loaded.name;
        let core = self.core;
        match Instance::new(&self.loaded, core, now_ns) {
            Ok(instance) => {
                self.instance = Some(instance);
                self.quarantine.rebuilt(now_ns);
                out.count(event::RESTARTS, 1);
                let supervision = out.supervision();
                supervision.restarts.increment();
                supervision.set_state(ServiceState::Running);
                log::info!("wasm {name} core {core}: rebuilt after quarantine");
            }
            Err(why) => {
                self.quarantine.rebuild_failed(now_ns);
                out.supervision()
                    .set_backoff_ms(self.quarantine.backoff_ns() / 1_000_000);
                log::error!("wasm {name} core {core}: rebuild refused, still quarantined: {why}");
            }
        }
    }

    /// Books a fault of `kind` at `now_ns`; quarantines the module when
    /// it is one too many.
    fn fault(&mut self, kind: FaultKind, out: &mut Outputs<'_>) {
        let name = self.loaded.name;
        let core = self.core;
        let now_ns = out.now_ns();
        if !self.quarantine.fault(now_ns) {
            log::warn!("wasm {name} core {core}: fault: {kind}");
            return;
        }
        self.instance = None;
        out.count(event::QUARANTINED, 1);
        let backoff_ms = self.quarantine.backoff_ns() / 1_000_000;
        let supervision = out.supervision();
        supervision.set_state(ServiceState::Backoff);
        supervision.set_backoff_ms(backoff_ms);
        log::error!(
            "wasm {name} core {core}: quarantined after a {kind}: too many faults in its window; rebuilt in {backoff_ms} ms"
        );
    }
}

impl Nanoservice for WasmNode {
    fn name(&self) -> &'static str {
        self.loaded.name
    }

    fn outputs(&self) -> &'static [&'static str] {
        self.loaded.outputs
    }

    fn drop_reasons(&self) -> &'static [&'static str] {
        WasmDrop::NAMES
    }

    fn events(&self) -> &'static [&'static str] {
        self.loaded.events
    }

    fn process(&mut self, batch: &mut Batch, out: &mut Outputs<'_>) {
        if batch.is_empty() {
            return;
        }
        self.restart_if_due(out);
        let outcomes = &mut self.outcomes;
        match &mut self.instance {
            Some(instance) => {
                let report = instance.run(batch, &self.view, out.now_ns(), outcomes);
                let (map_full, map_too_long, log_suppressed) =
                    instance.take_counters(|event, delta| out.count(event, delta));
                for (event, n) in [
                    (event::MAP_FULL, map_full),
                    (event::MAP_TOO_LONG, map_too_long),
                    (event::LOG_SUPPRESSED, log_suppressed),
                    (event::BAD_DESCRIPTOR, u64::from(report.bad_descriptors)),
                ] {
                    if n != 0 {
                        out.count(event, n);
                    }
                }
                if let Some(kind) = report.fault {
                    out.count(
                        match kind {
                            FaultKind::Fuel => event::FUEL,
                            FaultKind::Deadline => event::DEADLINE,
                            FaultKind::Trap | FaultKind::BadDescriptor => event::TRAP,
                        },
                        1,
                    );
                    self.fault(kind, out);
                } else if report.bad_descriptors > 0 {
                    self.fault(FaultKind::BadDescriptor, out);
                }
            }
            None => outcomes[..batch.len()].fill(Outcome::Fault),
        }
        let on_fault = match self.on_fault {
            OnFault::Drop => Verdict::drop(WasmDrop::FaultDropped),
            OnFault::Pass => Verdict::Emit(PASS),
        };
        let mut passed_on_fault = 0;
        let mut index = 0;
        let outcomes = &self.outcomes;
        let redirects = &self.loaded.redirects;
        out.dispatch(batch, |_, _| {
            let outcome = outcomes[index];
            index += 1;
            match outcome {
                Outcome::Judged(SlotVerdict::Pass) => Verdict::Emit(PASS),
                Outcome::Judged(SlotVerdict::Drop) => Verdict::drop(WasmDrop::ByModule),
                Outcome::Judged(SlotVerdict::Tx) => Verdict::Emit(OUT),
                Outcome::Judged(SlotVerdict::Redirect(output)) => {
                    Verdict::Emit(redirects[usize::from(output)])
                }
                Outcome::Fault => {
                    passed_on_fault += 1;
                    on_fault
                }
            }
        });
        if self.on_fault == OnFault::Pass && passed_on_fault > 0 {
            out.count(event::FAULT_PASSED, passed_on_fault);
        }
    }

    fn tick(&mut self, out: &mut Outputs<'_>) {
        self.restart_if_due(out);
    }

    fn next_deadline_ns(&self) -> Option<u64> {
        self.quarantine.restart_at_ns()
    }
}

/// The supervision policy quarantined modules back off by: the spec's
/// defaults (100 ms doubling to 30 s, reset after 60 s healthy).
pub(crate) fn policy() -> SupervisionPolicy {
    SupervisionPolicy::default()
}
