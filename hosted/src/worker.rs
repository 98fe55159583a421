//! One worker thread per core: pinned, with its own pools and NIC queues,
//! polling its executor until told to stop. An idle worker sleeps in
//! `poll(2)` on its queues' descriptors, so a frame wakes it at once and
//! the CPU it is pinned to serves others meanwhile (on a small host, the
//! load generator and the kernel's tap work).

use crate::counters::CoreReport;
use crate::nics::{self, NicPlan};
use control::{CoreLinks, Spec};
use dataplane::Mempool;
use rustix::event::{PollFd, PollFlags, Timespec, poll};
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::time::Instant;

/// Buffers in each core's executor pool (replies and generated packets).
const EXECUTOR_POOL_BUFFERS: usize = 1024;
/// Empty polls in a row after which the worker sleeps until a frame comes.
const WAIT_AFTER_EMPTY_POLLS: u32 = 64;
/// Longest sleep: the executor's timers (ARP retries and expiry) and
/// packets from other cores' rings, which no descriptor signals, wait at
/// most this long.
const WAIT_TIMEOUT: Timespec = Timespec {
    tv_sec: 0,
    tv_nsec: 1_000_000,
};

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
    /// This core's ends of the links between cores (`control::core_links`).
    pub links: CoreLinks,
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
    } = setup;
    if let Some(cpu) = cpu
        && !core_affinity::set_for_current(cpu)
    {
        log::warn!("core {core}: could not pin to CPU {}", cpu.id);
    }
    let (mut executor, wait_fds) = match start(core, cores, &spec, &plans, links) {
        Ok((executor, report, wait_fds)) => {
            if ready.send(Ok(report)).is_err() {
                return;
            }
            (executor, wait_fds)
        }
        Err(error) => {
            let _ = ready.send(Err(format!("core {core}: {error}")));
            return;
        }
    };
    let mut empty_polls: u32 = 0;
    // Ordering: Relaxed; the flag carries no data, and the main thread joins
    // the worker afterwards, which synchronises everything else.
    while !stop.load(Ordering::Relaxed) {
        if executor.poll_once() > 0 {
            empty_polls = 0;
            continue;
        }
        empty_polls += 1;
        if empty_polls >= WAIT_AFTER_EMPTY_POLLS {
            empty_polls = 0;
            if executor.enable_wakeup() {
                wait_for_frames(&wait_fds);
            }
            executor.disable_wakeup();
        }
    }
}

/// Sleeps until one of `fds` is readable or `WAIT_TIMEOUT` passed.
/// Level-triggered: a frame that arrived before the call ends it at once.
fn wait_for_frames(fds: &[OwnedFd]) {
    let mut polled: Vec<PollFd<'_>> = fds
        .iter()
        .map(|fd| PollFd::new(fd, PollFlags::IN))
        .collect();
    // A failure (EINTR) only ends the wait early; the loop polls anyway.
    let _ = poll(&mut polled, Some(&WAIT_TIMEOUT));
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
        counters: executor.counters().clone(),
        nics,
    };
    Ok((executor, report, wait_fds))
}
