//! `SupervisedApp`: one TCP app inside the `tcp` node, each of its calls
//! run under the platform's guard and the per-batch budget, so that an app
//! that panics or overruns fails alone: the stack and the other apps of
//! the core go on, the app's connections are reset, its port refuses
//! connections (RST) while it waits out its backoff, and it is rebuilt
//! from its spec afterwards. See `dataplane/README.md`, "Supervision".

use super::app::{CloseReason, ConnectError, ConnectionId, Stream};
use super::listener::Listener;
use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::net::SocketAddrV4;
use dataplane::supervise::{ServiceState, SupervisionCounters};
use dataplane::{Failure, Guard, SupervisionPolicy};

/// Builds an app afresh from its spec, for a restart.
pub type AppRebuild = Box<dyn FnMut() -> Box<dyn Listener>>;

/// How the apps of one stack are supervised: the platform's guard, the
/// clock the budget and the backoff are read on, the spec's policy, and
/// the core (for logs).
#[derive(Debug, Clone, Copy)]
pub struct AppSupervision {
    /// The platform's guard; `None`: a panic is the platform's panic, and
    /// only the budget is supervised.
    pub guard: Option<Guard>,
    /// The platform clock, in nanoseconds.
    pub clock: fn() -> u64,
    /// Backoff and budget (the spec's `[supervision]`).
    pub policy: SupervisionPolicy,
    /// The core, for logs.
    pub core: usize,
}

fn no_clock() -> u64 {
    0
}

impl Default for AppSupervision {
    fn default() -> Self {
        Self {
            guard: None,
            clock: no_clock,
            policy: SupervisionPolicy::default(),
            core: 0,
        }
    }
}

/// A TCP app under supervision. It is itself a [`Listener`]: while the
/// app is down every call gets the answer of an app that wants nothing
/// (refuse, consume, do nothing), and the `tcp` node resets the app's
/// connections and refuses its port ([`is_down`](Self::is_down),
/// [`take_failure`](Self::take_failure)).
pub struct SupervisedApp {
    name: &'static str,
    port: u16,
    /// The app; `None` while it is down.
    app: Option<Box<dyn Listener>>,
    /// The app that failed, kept until its replacement is built (dropped
    /// then under the guard, or leaked when the guard does not unwind).
    failed: Option<Box<dyn Listener>>,
    rebuild: Option<AppRebuild>,
    settings: AppSupervision,
    counters: Arc<SupervisionCounters>,
    failures_in_row: u32,
    running_since_ns: u64,
    failed_at_ns: u64,
    restart_at_ns: Option<u64>,
    /// A failure the node has not reset the app's connections for yet.
    unreported: bool,
    /// A failure of `next_poll_ns` (a `&self` call), booked on the next
    /// call that can.
    pending: RefCell<Option<Failure>>,
    /// Time spent in the app's calls since the node last asked.
    contained_ns: u64,
}

impl core::fmt::Debug for SupervisedApp {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SupervisedApp")
            .field("name", &self.name)
            .field("port", &self.port)
            .field("state", &self.counters.state())
            .finish_non_exhaustive()
    }
}

impl SupervisedApp {
    /// `app` serving `port`, rebuilt by `rebuild` after a failure (`None`:
    /// it stays down once it failed).
    pub fn new(
        port: u16,
        app: Box<dyn Listener>,
        rebuild: Option<AppRebuild>,
        settings: AppSupervision,
    ) -> Self {
        Self {
            name: app.name(),
            port,
            app: Some(app),
            failed: None,
            rebuild,
            settings,
            counters: Arc::default(),
            failures_in_row: 0,
            running_since_ns: (settings.clock)(),
            failed_at_ns: 0,
            restart_at_ns: None,
            unreported: false,
            pending: RefCell::new(None),
            contained_ns: 0,
        }
    }

    /// True when it has a factory to be rebuilt with.
    pub fn rebuildable(&self) -> bool {
        self.rebuild.is_some()
    }

    /// Counts into `counters` (those of the app it replaces, when the
    /// whole stack was rebuilt: the exported counts go on), running.
    pub fn with_counters(mut self, counters: Arc<SupervisionCounters>) -> Self {
        counters.set_state(ServiceState::Running);
        self.counters = counters;
        self
    }

    /// The port it serves.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its supervision counters (state, failures, restarts, dropped).
    pub fn counters(&self) -> &Arc<SupervisionCounters> {
        &self.counters
    }

    /// Supervises with `settings` from now on (a new spec's policy).
    pub fn set_supervision(&mut self, settings: AppSupervision) {
        self.settings = settings;
    }

    /// True while the app is down (failed, waiting out its backoff or for
    /// good).
    pub fn is_down(&self) -> bool {
        self.app.is_none()
    }

    /// True once after each failure: the node then resets the app's
    /// connections.
    pub fn take_failure(&mut self) -> bool {
        if let Some(failure) = self.pending.get_mut().take() {
            self.fail(&failure, 0);
        }
        core::mem::take(&mut self.unreported)
    }

    /// True when a failure waits for the node to see it.
    pub fn has_failure(&self) -> bool {
        self.unreported || self.pending.borrow().is_some()
    }

    /// Counts `packets` refused because the app is down.
    pub fn count_dropped(&self, packets: u64) {
        self.counters.dropped.add(packets);
    }

    /// When the pending restart is due.
    pub fn restart_at_ns(&self) -> Option<u64> {
        self.restart_at_ns
    }

    /// Time spent in the app's calls since the last ask, and resets it.
    pub fn take_contained_ns(&mut self) -> u64 {
        core::mem::take(&mut self.contained_ns)
    }

    /// Runs `call` on the app under the guard and the budget; `fallback`
    /// when the app is down or the call failed (the failure is booked).
    fn call<R>(&mut self, fallback: R, call: impl FnOnce(&mut dyn Listener) -> R) -> R {
        let Some(app) = self.app.as_deref_mut() else {
            return fallback;
        };
        let settings = self.settings;
        let budget_ns = settings.policy.budget_ns();
        let started_ns = budget_ns.map(|_| (settings.clock)());
        let mut result = None;
        let outcome = match settings.guard {
            None => {
                result = Some(call(app));
                Ok(())
            }
            Some(guard) => {
                let mut call = Some(call);
                (guard.run)(&mut || {
                    if let Some(call) = call.take() {
                        result = Some(call(&mut *app));
                    }
                })
                .map_err(Failure::Panic)
            }
        };
        let outcome = match (outcome, started_ns, budget_ns) {
            (Ok(()), Some(started_ns), Some(budget_ns)) => {
                let took_ns = (settings.clock)().saturating_sub(started_ns);
                self.contained_ns = self.contained_ns.saturating_add(took_ns);
                if took_ns > budget_ns {
                    Err(Failure::Overrun {
                        took_us: took_ns / 1_000,
                        budget_us: budget_ns / 1_000,
                    })
                } else {
                    Ok(())
                }
            }
            (outcome, _, _) => outcome,
        };
        match (outcome, result) {
            (Ok(()), Some(result)) => result,
            (Ok(()), None) => fallback,
            (Err(failure), _) => {
                // The call's segment (or timer, or poll) is lost with it.
                self.fail(&failure, 1);
                fallback
            }
        }
    }

    /// Books a failure: the app goes down and, when it can be rebuilt, its
    /// restart is scheduled after its backoff. Logs it.
    fn fail(&mut self, failure: &Failure, dropped: u64) {
        let now_ns = (self.settings.clock)();
        match failure {
            Failure::Panic(_) => self.counters.panics.increment(),
            Failure::Overrun { .. } => self.counters.overruns.increment(),
        }
        self.counters.dropped.add(dropped);
        if let Some(app) = self.app.take() {
            self.failed = Some(app);
        }
        self.unreported = true;
        let policy = self.settings.policy;
        if now_ns.saturating_sub(self.running_since_ns) >= policy.reset_after_ns() {
            self.failures_in_row = 0;
        }
        self.failures_in_row = self.failures_in_row.saturating_add(1);
        self.failed_at_ns = now_ns;
        let (core, name, port, at_us) = (self.settings.core, self.name, self.port, now_ns / 1_000);
        if self.rebuild.is_none() {
            self.counters.set_state(ServiceState::Failed);
            log::error!(
                "supervision: core={core} node=tcp service={name} port={port} failed ({failure}) dropped={dropped} at_us={at_us}; it cannot be rebuilt: its port refuses connections from now on"
            );
            return;
        }
        let backoff_ns = policy.backoff_ns(self.failures_in_row);
        self.restart_at_ns = Some(now_ns.saturating_add(backoff_ns));
        self.counters.set_state(ServiceState::Backoff);
        self.counters.set_backoff_ms(backoff_ns / 1_000_000);
        log::warn!(
            "supervision: core={core} node=tcp service={name} port={port} failed ({failure}) dropped={dropped} failures_in_row={} restart_in_ms={} at_us={at_us}",
            self.failures_in_row,
            backoff_ns / 1_000_000,
        );
    }

    /// Rebuilds the app when its backoff is over at `now_ns`, under the
    /// guard (a factory that panics is one more failure). True when it
    /// runs again.
    pub fn restart_if_due(&mut self, now_ns: u64) -> bool {
        if self.restart_at_ns.is_none_or(|at| at > now_ns) {
            return false;
        }
        self.restart_at_ns = None;
        let Some(mut rebuild) = self.rebuild.take() else {
            return false;
        };
        let mut failed = self.failed.take();
        let unwinds = self.settings.guard.is_none_or(|guard| guard.unwinds);
        let mut built = None;
        let mut work = || {
            // Built first: a factory that fails leaves the links to other
            // cores in the failed app for the next attempt.
            let mut fresh = rebuild();
            if let Some(links) = failed.as_mut().and_then(|failed| failed.take_links()) {
                fresh.adopt_links(links);
            }
            built = Some(fresh);
            if unwinds {
                drop(failed.take());
            } else {
                // The guard jumped over its destructors: it may be
                // inconsistent beyond what dropping it tolerates.
                core::mem::forget(failed.take());
            }
        };
        let outcome = match self.settings.guard {
            None => {
                work();
                Ok(())
            }
            Some(guard) => (guard.run)(&mut work).map_err(Failure::Panic),
        };
        self.rebuild = Some(rebuild);
        // A factory that failed left the failed app (and its links) for
        // the next attempt.
        if self.failed.is_none() {
            self.failed = failed;
        }
        match (outcome, built) {
            (Ok(()), Some(app)) => {
                self.app = Some(app);
                self.running_since_ns = now_ns;
                self.counters.restarts.increment();
                self.counters.set_state(ServiceState::Running);
                // The failure's time and the backoff on the restart's own
                // line, as the executor logs its nodes' restarts.
                log::info!(
                    "supervision: core={} node=tcp service={} port={} restarted restarts={} failures_in_row={} failed_at_us={} backoff_ms={} at_us={}",
                    self.settings.core,
                    self.name,
                    self.port,
                    self.counters.restarts.get(),
                    self.failures_in_row,
                    self.failed_at_ns / 1_000,
                    self.counters.backoff_ms(),
                    now_ns / 1_000,
                );
                true
            }
            (Err(failure), _) => {
                self.fail(&failure, 0);
                false
            }
            (Ok(()), None) => false,
        }
    }
}

impl Listener for SupervisedApp {
    fn name(&self) -> &'static str {
        self.name
    }

    fn accept(&mut self, slot: u32, peer: SocketAddrV4, io: &mut Stream<'_>) -> bool {
        self.call(false, |app| app.accept(slot, peer, io))
    }

    fn data(&mut self, slot: u32, data: &[u8], io: &mut Stream<'_>) -> usize {
        // Down: consumed and thrown away (the connection is reset at the
        // end of the node's call).
        self.call(data.len(), |app| app.data(slot, data, io))
    }

    fn writable(&mut self, slot: u32, io: &mut Stream<'_>) {
        self.call((), |app| app.writable(slot, io));
    }

    fn read_closed(&mut self, slot: u32, io: &mut Stream<'_>) {
        self.call((), |app| app.read_closed(slot, io));
    }

    fn timeout(&mut self, slot: u32, io: &mut Stream<'_>) {
        self.call((), |app| app.timeout(slot, io));
    }

    fn resume(&mut self, slot: u32, io: &mut Stream<'_>) {
        self.call((), |app| app.resume(slot, io));
    }

    fn poll(&mut self, ready: &mut Vec<ConnectionId>) {
        self.call((), |app| app.poll(ready));
    }

    fn next_poll_ns(&self) -> Option<u64> {
        let app = self.app.as_deref()?;
        if self.pending.borrow().is_some() {
            return Some(0);
        }
        let Some(guard) = self.settings.guard else {
            return app.next_poll_ns();
        };
        let mut next = None;
        match (guard.run)(&mut || next = app.next_poll_ns()) {
            Ok(()) => next,
            Err(message) => {
                // Booked on the next call that can; poll now to get there.
                *self.pending.borrow_mut() = Some(Failure::Panic(message));
                Some(0)
            }
        }
    }

    fn closed(&mut self, slot: u32, reason: CloseReason) {
        self.call((), |app| app.closed(slot, reason));
    }

    fn sessions(&self) -> usize {
        self.app.as_ref().map_or(0, |app| app.sessions())
    }

    fn connected(&mut self, slot: u32, token: u64, io: &mut Stream<'_>) -> bool {
        self.call(false, |app| app.connected(slot, token, io))
    }

    fn connect_failed(&mut self, token: u64, error: ConnectError) {
        self.call((), |app| app.connect_failed(token, error));
    }

    /// The running app's links, or the failed one's while it waits out
    /// its backoff (the `tcp` node's own rebuild takes them either way).
    fn take_links(&mut self) -> Option<alloc::boxed::Box<dyn core::any::Any>> {
        match (&mut self.app, &mut self.failed) {
            (Some(app), _) => app.take_links(),
            (None, Some(failed)) => failed.take_links(),
            (None, None) => None,
        }
    }

    fn adopt_links(&mut self, links: alloc::boxed::Box<dyn core::any::Any>) {
        if let Some(app) = &mut self.app {
            app.adopt_links(links);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faulty_tcp::FaultyTcpKind;
    use crate::registry::TcpServiceKind;
    use crate::tcp::listener::Hosted;
    use crate::tcp::{StreamHarness, TcpEcho};
    use core::sync::atomic::{AtomicU64, Ordering};
    use dataplane::supervise::CATCH_UNWIND;

    /// The test's clock, in nanoseconds (one per test thread would be
    /// neater; each test sets it before it reads it).
    static NOW_NS: AtomicU64 = AtomicU64::new(0);

    fn clock() -> u64 {
        NOW_NS.load(Ordering::Relaxed)
    }

    fn faulty() -> Box<dyn Listener> {
        let config = toml::from_str("port = 9").unwrap();
        Box::new(Hosted::new(
            FaultyTcpKind::NAME,
            crate::faulty_tcp::FaultyTcp::new(&config),
        ))
    }

    fn supervised(rebuild: bool) -> SupervisedApp {
        let settings = AppSupervision {
            guard: Some(CATCH_UNWIND),
            clock,
            policy: SupervisionPolicy::default(),
            core: 0,
        };
        let rebuild: Option<AppRebuild> = rebuild.then(|| Box::new(faulty) as AppRebuild);
        SupervisedApp::new(9, faulty(), rebuild, settings)
    }

    #[test]
    fn a_panic_takes_the_app_down_until_its_backoff_is_over() {
        NOW_NS.store(1_000_000_000, Ordering::Relaxed);
        let mut app = supervised(true);
        let mut stream = StreamHarness::new(64);
        let peer = SocketAddrV4::new(core::net::Ipv4Addr::LOCALHOST, 1);
        assert!(app.accept(0, peer, &mut stream.stream()));
        assert_eq!(app.data(0, b"hello\n", &mut stream.stream()), 6);
        assert_eq!(stream.take_sent(), b"hello\n");
        // The marked request: caught, the app down, its bytes consumed.
        assert_eq!(app.data(0, b"PANIC\n", &mut stream.stream()), 6);
        assert!(app.is_down());
        assert_eq!(app.counters().state(), ServiceState::Backoff);
        assert_eq!(app.counters().panics.get(), 1);
        assert_eq!(app.counters().dropped.get(), 1);
        assert_eq!(app.sessions(), 0);
        assert!(app.take_failure(), "the node hears of the failure once");
        assert!(!app.take_failure());
        // While down: connections refused, nothing called.
        assert!(!app.accept(1, peer, &mut stream.stream()));
        assert_eq!(app.restart_at_ns(), Some(1_100_000_000));
        assert!(!app.restart_if_due(1_099_999_999));
        assert!(app.restart_if_due(1_100_000_000));
        assert_eq!(app.counters().state(), ServiceState::Running);
        assert_eq!(app.counters().restarts.get(), 1);
        // Fresh: no session of the old app.
        assert_eq!(app.sessions(), 0);
        assert!(app.accept(2, peer, &mut stream.stream()));
        assert_eq!(app.data(2, b"back\n", &mut stream.stream()), 5);
        assert_eq!(stream.take_sent(), b"back\n");
        // A second failure in a row waits twice as long.
        NOW_NS.store(1_200_000_000, Ordering::Relaxed);
        app.data(2, b"PANIC", &mut stream.stream());
        assert_eq!(app.restart_at_ns(), Some(1_400_000_000));
        assert_eq!(app.counters().backoff_ms(), 200);
        // Sixty healthy seconds after its restart, the next failure waits
        // 100 ms again.
        assert!(app.restart_if_due(1_400_000_000));
        NOW_NS.store(61_400_000_000, Ordering::Relaxed);
        assert!(app.accept(3, peer, &mut stream.stream()));
        app.data(3, b"PANIC", &mut stream.stream());
        assert_eq!(app.counters().backoff_ms(), 100);
        assert_eq!(app.restart_at_ns(), Some(61_500_000_000));
    }

    /// An app holding a link to another core (a number here), which it
    /// writes back on data; it panics on `PANIC`.
    struct Linked {
        link: Option<u8>,
    }

    impl crate::tcp::TcpApp for Linked {
        type Session = ();

        fn accept(&mut self, _peer: SocketAddrV4, _io: &mut Stream<'_>) -> Option<()> {
            Some(())
        }

        fn data(&mut self, _session: &mut (), data: &[u8], io: &mut Stream<'_>) -> usize {
            assert!(data != b"PANIC", "marked");
            io.write(&[self.link.unwrap_or(b'-')]);
            data.len()
        }

        fn take_links(&mut self) -> Option<Box<dyn core::any::Any>> {
            Some(Box::new(self.link.take()?))
        }

        fn adopt_links(&mut self, links: Box<dyn core::any::Any>) {
            if let Ok(link) = links.downcast::<u8>() {
                self.link = Some(*link);
            }
        }
    }

    #[test]
    fn a_rebuilt_app_takes_the_failed_ones_links() {
        NOW_NS.store(1_000_000_000, Ordering::Relaxed);
        let settings = AppSupervision {
            guard: Some(CATCH_UNWIND),
            clock,
            policy: SupervisionPolicy::default(),
            core: 0,
        };
        // The factory builds it from its spec: without the link.
        let rebuild: AppRebuild =
            Box::new(|| Box::new(Hosted::new("linked", Linked { link: None })));
        let first = Box::new(Hosted::new("linked", Linked { link: Some(b'7') }));
        let mut app = SupervisedApp::new(9, first, Some(rebuild), settings);
        let mut stream = StreamHarness::new(64);
        let peer = SocketAddrV4::new(core::net::Ipv4Addr::LOCALHOST, 1);
        assert!(app.accept(0, peer, &mut stream.stream()));
        app.data(0, b"x", &mut stream.stream());
        assert_eq!(stream.take_sent(), b"7");
        app.data(0, b"PANIC", &mut stream.stream());
        assert!(app.is_down());
        // Whatever the shared test clock says by now: after the backoff.
        assert!(app.restart_if_due(u64::MAX));
        assert!(app.accept(1, peer, &mut stream.stream()));
        app.data(1, b"x", &mut stream.stream());
        assert_eq!(stream.take_sent(), b"7", "the failed app's link");
    }

    #[test]
    fn an_app_without_a_factory_stays_failed() {
        let mut app = supervised(false);
        let mut stream = StreamHarness::new(64);
        let peer = SocketAddrV4::new(core::net::Ipv4Addr::LOCALHOST, 1);
        assert!(app.accept(0, peer, &mut stream.stream()));
        app.data(0, b"PANIC", &mut stream.stream());
        assert_eq!(app.counters().state(), ServiceState::Failed);
        assert_eq!(app.restart_at_ns(), None);
        assert!(!app.restart_if_due(u64::MAX));
        assert!(app.is_down());
    }

    #[test]
    fn an_unsupervised_app_runs_as_before() {
        let mut app = SupervisedApp::new(
            7,
            Box::new(Hosted::new("tcp-echo", TcpEcho)),
            None,
            AppSupervision::default(),
        );
        let mut stream = StreamHarness::new(64);
        let peer = SocketAddrV4::new(core::net::Ipv4Addr::LOCALHOST, 1);
        assert!(app.accept(0, peer, &mut stream.stream()));
        assert_eq!(app.data(0, b"x", &mut stream.stream()), 1);
        assert_eq!(app.name(), "tcp-echo");
        assert_eq!(app.take_contained_ns(), 0);
    }
}
