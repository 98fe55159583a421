//! `warpcore-hosted`: runs a warpcore spec as a Linux process, one pinned
//! worker thread per core, over tap, AF_PACKET and AF_XDP NICs.
//!
//! Exit status: 0 after a clean stop (SIGINT, SIGTERM or `--duration-secs`),
//! 2 for a bad command line or spec (the message names the field), 1 when
//! the runtime could not start (a NIC would not open, ...).
#![deny(unsafe_code)]

mod cli;
mod counters;
mod logger;
mod modules;
mod nics;
mod signals;
mod supervise;
mod wake;
mod worker;

use counters::CoreReport;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How often the main thread looks at signals, the clock and the counters
/// file.
const TICK: Duration = Duration::from_millis(100);

/// Why the runtime gave up, and with which exit status.
struct Failure {
    status: i32,
    message: String,
}

impl Failure {
    fn usage(message: String) -> Self {
        Self { status: 2, message }
    }

    fn runtime(message: String) -> Self {
        Self { status: 1, message }
    }
}

fn main() {
    logger::init();
    let options = cli::parse(std::env::args_os()).unwrap_or_else(|error| error.exit());
    if let Err(failure) = run(&options) {
        log::error!("error: {}", failure.message);
        std::process::exit(failure.status);
    }
}

fn run(options: &cli::Options) -> Result<(), Failure> {
    let text = std::fs::read_to_string(&options.spec).map_err(|error| {
        Failure::usage(format!(
            "--spec: cannot read `{}`: {error}",
            options.spec.display()
        ))
    })?;
    modules::install(&options.spec);
    let spec = control::Spec::parse(&text, &control::registry())
        .map_err(|error| Failure::usage(format!("{}: {error}", options.spec.display())))?;
    let mut plans = nics::plan(&spec, &options.nics).map_err(Failure::usage)?;
    for plan in &mut plans {
        plan.af_packet_tx = options.af_packet_tx;
    }
    // Handlers first: a SIGINT or SIGTERM from here on ends the run through
    // the normal path, which drops (detaches) the XDP programs.
    signals::install()
        .map_err(|error| Failure::runtime(format!("cannot install signal handlers: {error}")))?;
    nics::attach_programs(&mut plans).map_err(Failure::runtime)?;
    worker::clock();

    let spec = Arc::new(spec);
    let plans = Arc::new(plans);
    let stop = Arc::new(AtomicBool::new(false));
    let cpus = core_affinity::get_core_ids().unwrap_or_default();
    let (ready_sender, ready) = std::sync::mpsc::channel();
    let mut workers = Vec::with_capacity(options.cores);
    let mut links = control::core_links(&spec, options.cores);
    management::attach(
        &spec,
        &text,
        &mut links,
        "hosted",
        worker::clock,
        worker::clock(),
        unix_now_ns(),
        &logger::LOG_RING,
    )
    .map_err(|error| Failure::usage(format!("{}: {error}", options.spec.display())))?;
    // With `idle = "halt"` or `"haltpoll"`, each worker sleeps when idle: its doorbell
    // (an eventfd) goes to its links for the services fed by other cores'
    // rings, and stays here to wake it at the stop.
    let mut wakes = Vec::with_capacity(options.cores);
    if spec.idle.sleeps() {
        for core_links in &mut links {
            let wake = wake::Wake::new().map_err(|error| {
                Failure::runtime(format!("cannot make a worker's eventfd: {error}"))
            })?;
            core_links.insert_shared(wake.doorbell().clone());
            wakes.push(wake);
        }
    }
    // Every core contains a panicking service instead of ending the
    // process (the executor's supervisor restarts it).
    for core_links in &mut links {
        core_links.insert_shared(supervise::GUARD);
    }
    let doorbells: Vec<_> = wakes.iter().map(|wake| wake.doorbell().clone()).collect();
    let mut wakes = wakes.into_iter();
    let mut links = links.into_iter();
    for core in 0..options.cores {
        let setup = worker::WorkerSetup {
            core,
            cores: options.cores,
            cpu: (!cpus.is_empty()).then(|| cpus[core % cpus.len()]),
            spec: spec.clone(),
            plans: plans.clone(),
            stop: stop.clone(),
            ready: ready_sender.clone(),
            links: links.next().unwrap_or_default(),
            wake: wakes.next(),
        };
        let spawned = std::thread::Builder::new()
            .name(format!("core{core}"))
            .spawn(move || worker::run(setup));
        match spawned {
            Ok(handle) => workers.push(handle),
            Err(error) => {
                stop_workers(&stop, &doorbells, workers);
                return Err(Failure::runtime(format!(
                    "cannot start core {core}: {error}"
                )));
            }
        }
    }
    drop(ready_sender);

    let mut reports: Vec<CoreReport> = Vec::with_capacity(options.cores);
    let mut startup_error = None;
    for _ in 0..options.cores {
        match ready.recv() {
            Ok(Ok(report)) => reports.push(report),
            Ok(Err(error)) => {
                startup_error.get_or_insert(error);
            }
            Err(_) => {
                startup_error.get_or_insert("a worker exited during setup".to_owned());
                break;
            }
        }
    }
    if let Some(error) = startup_error {
        stop_workers(&stop, &doorbells, workers);
        return Err(Failure::runtime(error));
    }
    reports.sort_by_key(|report| report.core);
    announce(&spec, &plans, options.cores);

    let started = Instant::now();
    loop {
        std::thread::sleep(TICK);
        if signals::take_dump_request() {
            print_dump(&reports);
        }
        if let Some(path) = &options.counters_file {
            write_counters_file(path, &reports);
        }
        let expired = options
            .duration
            .is_some_and(|duration| started.elapsed() >= duration);
        if signals::stop_requested() || expired {
            break;
        }
    }
    stop_workers(&stop, &doorbells, workers);
    if let Some(path) = &options.counters_file {
        write_counters_file(path, &reports);
    }
    log::info!("stopped");
    print_dump(&reports);
    Ok(())
}

/// The Unix time now in nanoseconds (captured frames are stamped with
/// it); `None` for a clock set before 1970.
fn unix_now_ns() -> Option<u64> {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|since| u64::try_from(since.as_nanos()).ok())
}

/// Tells every worker to stop, wakes those that sleep, and waits for them.
fn stop_workers(
    stop: &AtomicBool,
    doorbells: &[Arc<dataplane::Doorbell>],
    workers: Vec<std::thread::JoinHandle<()>>,
) {
    // Ordering: Relaxed; `join` below is the synchronisation that matters.
    // A worker that read the flag before this store and sleeps now finds
    // its eventfd written below.
    stop.store(true, Ordering::Relaxed);
    for doorbell in doorbells {
        doorbell.ring_now();
    }
    for worker in workers {
        if worker.join().is_err() {
            log::error!("a worker panicked");
        }
    }
}

/// Says what runs where (through the logger, so the lines are in the log
/// ring too), ending with the `ready` line tests wait for.
fn announce(spec: &control::Spec, plans: &[nics::NicPlan], cores: usize) {
    for plan in plans {
        let interface = &spec.interfaces[plan.interface];
        log::info!(
            "{} {} mac {} on {}:{} ({} queue{})",
            interface.name,
            interface.address,
            interface.mac,
            plan.driver.name(),
            plan.ifname,
            cores,
            if cores == 1 { "" } else { "s" }
        );
    }
    log::info!("ready cores={cores}");
}

fn print_dump(reports: &[CoreReport]) {
    let text = counters::dump(reports);
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

/// Replaces `path` with a fresh dump (write, then rename, so a reader never
/// sees half a file).
fn write_counters_file(path: &Path, reports: &[CoreReport]) {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let written = std::fs::write(&partial, counters::dump(reports))
        .and_then(|()| std::fs::rename(&partial, path));
    if let Err(error) = written {
        log::warn!("cannot write counters to {}: {error}", path.display());
    }
}
