//! One worker thread per core: pinned, with its own pools and NIC queues,
//! polling its executor until told to stop, backing off when idle.

use crate::counters::CoreReport;
use crate::nics::{self, NicPlan};
use dataplane::Mempool;
use dataplane::spec::Spec;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

/// Buffers in each core's executor pool (replies and generated packets).
const EXECUTOR_POOL_BUFFERS: usize = 1024;
/// Empty polls in a row after which the worker yields its CPU between polls.
const YIELD_AFTER_EMPTY_POLLS: u32 = 256;
/// Empty polls in a row after which it sleeps between polls.
const SLEEP_AFTER_EMPTY_POLLS: u32 = 4096;
/// How long an idle worker sleeps: bounds the wake-up latency of an idle
/// core while leaving the CPU to others.
const IDLE_SLEEP: Duration = Duration::from_micros(200);

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
    } = setup;
    if let Some(cpu) = cpu
        && !core_affinity::set_for_current(cpu)
    {
        eprintln!(
            "warpcore-hosted: core {core}: could not pin to CPU {}",
            cpu.id
        );
    }
    let mut executor = match start(core, cores, &spec, &plans) {
        Ok((executor, report)) => {
            if ready.send(Ok(report)).is_err() {
                return;
            }
            executor
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
        empty_polls = empty_polls.saturating_add(1);
        if empty_polls >= SLEEP_AFTER_EMPTY_POLLS {
            std::thread::sleep(IDLE_SLEEP);
        } else if empty_polls >= YIELD_AFTER_EMPTY_POLLS {
            std::thread::yield_now();
        }
    }
}

/// Opens this core's queues and pool and builds its executor.
fn start(
    core: usize,
    cores: usize,
    spec: &Spec,
    plans: &[NicPlan],
) -> Result<(dataplane::Executor, CoreReport), String> {
    let mut ports = Vec::with_capacity(plans.len());
    let mut nics = Vec::with_capacity(plans.len());
    for plan in plans {
        let opened = nics::open(plan, core, cores)?;
        nics.push((opened.name, opened.stats));
        ports.push((plan.interface, opened.nic));
    }
    let pool = Mempool::with_heap(
        EXECUTOR_POOL_BUFFERS,
        dataplane::mem::mempool::DEFAULT_HEADROOM,
    )
    .map_err(|error| format!("executor pool: {error}"))?;
    let executor = services::build_core(spec, core, ports, pool, clock)
        .map_err(|error| format!("pipeline: {error}"))?;
    let report = CoreReport {
        core,
        counters: executor.counters().clone(),
        nics,
    };
    Ok((executor, report))
}
