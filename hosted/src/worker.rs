//! One worker thread per core: pinned, with its own pools and NIC queues,
//! polling its executor until told to stop. With `idle = "halt"` (the
//! spec's default) an idle worker sleeps in `poll(2)` on its queues'
//! descriptors and its eventfd (the doorbell other workers ring when they
//! hand it work), for at most as long as its services' next deadline: a
//! frame, a handoff or a timer wakes it at once, and the CPU it is pinned
//! to serves others meanwhile (on a small host, the load generator and the
//! kernel's tap work). With an AF_PACKET or AF_XDP queue it sleeps only
//! after `SPIN_AFTER_WORK_NS` without work, so under load it does not.
//! With `idle = "poll"` it never sleeps.

use crate::cli::HostedDriver;
use crate::counters::CoreReport;
use crate::nics::{self, NicPlan};
use crate::wake::Wake;
use control::reconcile::CoreControl;
use control::spec::IdleMode;
use control::{CoreLinks, Spec};
use dataplane::{HaltPoll, Idle, Mempool, WakeCause};
use rustix::event::{PollFd, PollFlags, Timespec, poll};
use std::os::fd::OwnedFd;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

/// Buffers in each core's executor pool (replies and generated packets).
const EXECUTOR_POOL_BUFFERS: usize = 1024;
/// Empty polls in a row after which the worker sleeps until a frame, a
/// doorbell or its next deadline.
const WAIT_AFTER_EMPTY_POLLS: u32 = 64;
/// How long a worker with an AF_PACKET or AF_XDP queue keeps polling
/// after the last poll that found work before it may sleep. Under load the
/// gaps between bursts are shorter than this, so the worker never sleeps
/// and nobody pays for waking it per burst through the socket (the
/// wake-up runs in the sender's softirq, on the CPU that also feeds the
/// load); once traffic stops it spins this long once, then sleeps, and a
/// truly idle worker (no work since its last wake-up) sleeps after
/// `WAIT_AFTER_EMPTY_POLLS` as before. Tap workers do not spin (their
/// kernel work runs in their own `read`/`write`). For AF_XDP this became
/// worth it once an empty poll stopped making a `recvfrom` that busy-polls
/// nothing (a veth's queue has no NAPI id to busy poll): 64 empty polls
/// then took a few microseconds instead of about 64, and the worker slept
/// between bursts (perf/RESULTS.md, "AF_XDP on a veth: busy polling runs
/// nothing").
const SPIN_AFTER_WORK_NS: u64 = 50_000;

/// Nanoseconds since the runtime started: the executors' clock.
pub fn clock() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// Everything a worker needs.
pub struct WorkerSetup {
    /// This worker's core index.
    pub core: usize,
    /// Workers in all (queues per interface).
    pub cores: usize,
    /// The CPU to pin to, if pinning is possible.
    pub cpu: Option<core_affinity::CoreId>,
    /// The spec.
    pub spec: Arc<Spec>,
    /// How each interface runs.
    pub plans: Arc<Vec<NicPlan>>,
    /// Set by the main thread to stop every worker.
    pub stop: Arc<AtomicBool>,
    /// Where the worker reports that it runs (or why it cannot).
    pub ready: Sender<Result<CoreReport, String>>,
    /// This core's ends of the links between cores (`control::core_links`),
    /// with its doorbell among the shared values when it sleeps.
    pub links: CoreLinks,
    /// The eventfd its doorbell writes, when it sleeps (`idle = "halt"`).
    pub wake: Option<Wake>,
}

/// Runs a worker to completion: sets up, reports, polls until `stop`.
pub fn run(setup: WorkerSetup) {
    let WorkerSetup {
        core,
        cores,
        cpu,
        spec,
        plans,
        stop,
        ready,
        links,
        wake,
    } = setup;
    if let Some(cpu) = cpu
        && !core_affinity::set_for_current(cpu)
    {
        log::warn!("core {core}: could not pin to CPU {}", cpu.id);
    }
    // The control rings of the reconcile controller, when the spec has a
    // management plane to apply new specs through.
    let mut control = links.take_shared::<CoreControl>();
    let (mut executor, wait_fds, counters) = match start(core, cores, &spec, &plans, links) {
        Ok((executor, report, wait_fds)) => {
            let counters = Arc::clone(&report.counters);
            if ready.send(Ok(report)).is_err() {
                return;
            }
            (executor, wait_fds, counters)
        }
        Err(error) => {
            let _ = ready.send(Err(format!("core {core}: {error}")));
            return;
        }
    };
    // A worker without its eventfd never sleeps: nothing would wake it
    // for a handoff or to stop.
    let wake = wake.filter(|_| spec.idle.sleeps());
    // `idle = "haltpoll"`: the adaptive window the worker keeps polling
    // for once it may sleep, and when the current one opened.
    let mut window = match spec.idle {
        IdleMode::HaltPoll { max_window_us } => {
            Some(HaltPoll::new(u64::from(max_window_us) * 1000))
        }
        IdleMode::Halt | IdleMode::Poll => None,
    };
    let mut window_opened_ns: Option<u64> = None;
    if let (Some(control), Some(doorbell)) = (&control, executor.doorbell()) {
        control.set_doorbell(Arc::clone(doorbell));
    }
    let mut empty_polls: u32 = 0;
    let mut last_work_ns: u64 = 0;
    let spin_after_work_ns = if plans
        .iter()
        .any(|plan| matches!(plan.driver, HostedDriver::AfPacket | HostedDriver::AfXdp))
    {
        SPIN_AFTER_WORK_NS
    } else {
        0
    };
    // Ordering: Relaxed; the flag carries no data, and the main thread joins
    // the worker afterwards, which synchronises everything else. The main
    // thread rings every doorbell after setting it.
    while !stop.load(Ordering::Relaxed) {
        // A batch boundary: a new spec's graph takes over here.
        if let Some(control) = &mut control
            && control.pending()
        {
            executor = control.apply(executor);
            *counters.lock().unwrap_or_else(PoisonError::into_inner) =
                Arc::clone(executor.counters());
        }
        if executor.poll_once() > 0 {
            empty_polls = 0;
            if window_opened_ns.take().is_some() {
                executor.counters().idle.poll_windows_caught.increment();
            }
            if wake.is_some() && spin_after_work_ns > 0 {
                last_work_ns = clock();
            }
            continue;
        }
        empty_polls += 1;
        let Some(wake) = &wake else {
            continue;
        };
        if empty_polls >= WAIT_AFTER_EMPTY_POLLS
            && clock().saturating_sub(last_work_ns) >= spin_after_work_ns
        {
            let opened = match &window {
                Some(window) => {
                    let now = clock();
                    let opened = *window_opened_ns.get_or_insert(now);
                    if window.keep_polling(now.saturating_sub(opened)) {
                        continue;
                    }
                    executor.counters().idle.poll_windows_timed_out.increment();
                    window_opened_ns = None;
                    Some(opened)
                }
                None => None,
            };
            empty_polls = 0;
            if let Idle::Sleep { deadline_ns } = executor.prepare_sleep() {
                let woken_by = sleep(&wait_fds, wake, deadline_ns);
                executor.finish_sleep(woken_by);
                if let (Some(window), Some(opened)) = (&mut window, opened) {
                    window.after_sleep(clock().saturating_sub(opened));
                    executor
                        .counters()
                        .idle
                        .poll_window_ns
                        .set(window.window_ns());
                }
            }
        }
    }
}

/// Sleeps until one of `fds` (the NIC queues) or `wake`'s eventfd is
/// readable, or the clock reaches `deadline_ns`; says which came first.
/// Level-triggered: a frame or a ring that came before the call ends it at
/// once.
fn sleep(fds: &[OwnedFd], wake: &Wake, deadline_ns: Option<u64>) -> WakeCause {
    let wake_fd = wake.fd();
    let mut polled: Vec<PollFd<'_>> = fds
        .iter()
        .map(|fd| PollFd::new(fd, PollFlags::IN))
        .chain(std::iter::once(PollFd::new(&wake_fd, PollFlags::IN)))
        .collect();
    let timeout = deadline_ns.map(|deadline| {
        let left = deadline.saturating_sub(clock());
        Timespec {
            tv_sec: (left / 1_000_000_000) as i64,
            tv_nsec: (left % 1_000_000_000) as i64,
        }
    });
    // A failure (EINTR) only ends the sleep early; the loop polls anyway.
    let ready = poll(&mut polled, timeout.as_ref()).unwrap_or(usize::MAX);
    let (doorbell, queues) = polled.split_last().expect("the eventfd is polled");
    let rung = !doorbell.revents().is_empty();
    if rung {
        wake.clear();
    }
    if queues.iter().any(|fd| !fd.revents().is_empty()) {
        WakeCause::Packet
    } else if rung {
        WakeCause::Doorbell
    } else if ready == 0 {
        WakeCause::Timer
    } else {
        WakeCause::Other
    }
}

/// Opens this core's queues and pool and builds its executor.
fn start(
    core: usize,
    cores: usize,
    spec: &Spec,
    plans: &[NicPlan],
    links: CoreLinks,
) -> Result<(dataplane::Executor, CoreReport, Vec<OwnedFd>), String> {
    let mut ports = Vec::with_capacity(plans.len());
    let mut nics = Vec::with_capacity(plans.len());
    let mut wait_fds = Vec::with_capacity(plans.len());
    for plan in plans {
        let opened = nics::open(plan, core, cores)?;
        nics.push((opened.name, opened.stats));
        wait_fds.push(opened.wait_fd);
        ports.push((plan.interface, opened.nic));
    }
    let pool = Mempool::with_heap(
        EXECUTOR_POOL_BUFFERS,
        dataplane::mem::mempool::DEFAULT_HEADROOM,
    )
    .map_err(|error| format!("executor pool: {error}"))?;
    let executor = control::build_core(spec, core, ports, pool, clock, links)
        .map_err(|error| format!("pipeline: {error}"))?;
    let report = CoreReport {
        core,
        counters: Arc::new(Mutex::new(executor.counters().clone())),
        nics,
    };
    Ok((executor, report, wait_fds))
}
