//! How the host scheduled a process's threads over a run, from
//! `/proc/PID/task/TID/schedstat` (nanoseconds on a CPU, nanoseconds
//! runnable but waiting for one): the vhost-user rig prints it for QEMU
//! and loadgen after each run, so that a latency tail can be told apart
//! from the guest (a vCPU thread that waited for a CPU) and the cost of
//! busy polling read in host CPU time.

use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Each thread's `(run_ns, wait_ns)` at one instant.
pub struct Sample {
    at: Instant,
    threads: BTreeMap<u32, (u64, u64)>,
}

/// Reads every thread of `pid`.
pub fn sample(pid: u32) -> Result<Sample> {
    let at = Instant::now();
    let mut threads = BTreeMap::new();
    let tasks = format!("/proc/{pid}/task");
    for entry in std::fs::read_dir(&tasks).with_context(|| format!("reading {tasks}"))? {
        let entry = entry?;
        let Some(tid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse().ok())
        else {
            continue;
        };
        // A thread that ended since the listing has no file: skipped.
        let Ok(text) = std::fs::read_to_string(entry.path().join("schedstat")) else {
            continue;
        };
        let mut fields = text.split_whitespace().map(str::parse::<u64>);
        if let (Some(Ok(run)), Some(Ok(wait))) = (fields.next(), fields.next()) {
            threads.insert(tid, (run, wait));
        }
    }
    Ok(Sample { at, threads })
}

/// What moved between two samples of one process: its busiest thread's
/// run and wait time and the whole process's run time, in milliseconds and
/// as a share of the wall time between them, like `qemu: 4980 ms on a CPU
/// (99.6 %), busiest thread 4990 ms + 312 ms waiting (6.2 %)`.
pub fn describe(name: &str, before: &Sample, after: &Sample) -> String {
    let wall = after
        .at
        .duration_since(before.at)
        .max(Duration::from_millis(1));
    let share = |ns: u64| 100.0 * ns as f64 / wall.as_nanos() as f64;
    let moved: Vec<(u64, u64)> = after
        .threads
        .iter()
        .map(|(tid, &(run, wait))| {
            let (run0, wait0) = before.threads.get(tid).copied().unwrap_or((0, 0));
            (run.saturating_sub(run0), wait.saturating_sub(wait0))
        })
        .collect();
    let total: u64 = moved.iter().map(|(run, _)| run).sum();
    let (busiest_run, busiest_wait) = moved.iter().copied().max().unwrap_or((0, 0));
    format!(
        "{name}: {} ms on a CPU ({:.1} % of {} ms), busiest thread {} ms + {} ms runnable but waiting ({:.1} %)",
        total / 1_000_000,
        share(total),
        wall.as_millis(),
        busiest_run / 1_000_000,
        busiest_wait / 1_000_000,
        share(busiest_wait),
    )
}
