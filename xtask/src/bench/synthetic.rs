//! The in-guest synthetic pipeline (`test=synthetic`): measured in QEMU
//! with 1 and 2 pipeline cores and both generator modes, medians reported.

use crate::qemu::command_line::Machine;
use crate::qemu::scenario::run_scenario;
use crate::suites::kernel::checks::SyntheticLine;
use crate::suites::kernel::scenarios::config;
use anyhow::{Result, ensure};
use perf::report::SyntheticRow;
use std::time::Duration;

/// Measured window of one in-guest synthetic run, and runs per core count
/// (the median by Mpps is reported: single runs swing by 2x on a shared host).
const SYNTHETIC_WINDOW_MS: u64 = 2000;
const SYNTHETIC_QUICK_WINDOW_MS: u64 = 500;
const SYNTHETIC_RUNS: usize = 5;
/// Who turns echoes back into requests in the synthetic runs.
const SYNTHETIC_GENERATORS: [&str; 2] = ["core", "local"];

/// How long one measuring boot may take.
const TIMEOUT: Duration = Duration::from_secs(60);

/// The in-guest synthetic pipeline (`test=synthetic`) with 1 and 2 pipeline
/// cores, fed by a generator core and by local generators on the pipeline
/// cores; failures become notes.
pub fn synthetic(quick: bool, notes: &mut Vec<String>) -> Vec<SyntheticRow> {
    let window_ms = if quick {
        SYNTHETIC_QUICK_WINDOW_MS
    } else {
        SYNTHETIC_WINDOW_MS
    };
    let cases: Vec<(&str, u32)> = SYNTHETIC_GENERATORS
        .iter()
        .flat_map(|&generator| [(generator, 1), (generator, 2)])
        .collect();
    // Interleaved (every case once per round) so that a busy spell on the
    // host hits every case alike.
    let mut lines: Vec<Vec<SyntheticLine>> = vec![Vec::new(); cases.len()];
    for _ in 0..SYNTHETIC_RUNS {
        for (&(generator, pipelines), found) in cases.iter().zip(lines.iter_mut()) {
            match measure(pipelines, generator, window_ms) {
                Ok(line) => {
                    eprintln!(
                        "xtask: [bench] synthetic generator={generator} {pipelines} pipeline core(s): {:.3} Mpps, {:.1} cycles/packet, {}% busy",
                        line.mpps, line.cycles_per_packet, line.busy_percent
                    );
                    found.push(line);
                }
                Err(error) => notes.push(format!(
                    "synthetic generator={generator} with {pipelines} pipeline core(s) failed: {}",
                    format!("{error:#}").lines().next().unwrap_or_default()
                )),
            }
        }
    }
    let mut rows = Vec::new();
    for found in &mut lines {
        found.sort_by(|a, b| a.mpps.total_cmp(&b.mpps));
        if let Some(median) = found.get(found.len() / 2) {
            rows.push(SyntheticRow {
                generator: median.generator.clone(),
                cores: median.cores,
                mpps: median.mpps,
                cycles_per_packet: median.cycles_per_packet,
            });
        }
    }
    let scaling = |generator: &str| {
        let mpps = |cores| {
            rows.iter()
                .find(|row| row.generator == generator && row.cores == cores)
                .map(|row| row.mpps)
        };
        match (mpps(1), mpps(2)) {
            (Some(one), Some(two)) if one > 0.0 => format!("{:.2}x", two / one),
            _ => "n/a".into(),
        }
    };
    notes.push(format!(
        "synthetic: the echo pipeline fed through rings (no NIC), medians of {SYNTHETIC_RUNS} runs; \
         generator=core (a generator core turns echoes into requests): 2 pipeline cores give {} the Mpps of 1; \
         generator=local (each pipeline core turns its own echoes around): {}. \
         The core generator is a third vCPU competing for this host's {} CPUs",
        scaling("core"),
        scaling("local"),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    ));
    rows
}

/// Measures the in-guest synthetic pipeline with `pipelines` pipeline cores
/// (plus the generator core) over a `window_ms` window.
fn measure(pipelines: u32, generator: &str, window_ms: u64) -> Result<SyntheticLine> {
    let config = config(
        pipelines + 1,
        Machine::Q35,
        &format!("test=synthetic synthetic_generator={generator} synthetic_ms={window_ms}"),
    );
    let outcome = run_scenario(&config, TIMEOUT)?;
    let line = SyntheticLine::find(&outcome.serial_log)
        .map_err(|error| anyhow::anyhow!("{error:#}\n{}", outcome.serial_log))?;
    ensure!(
        outcome.succeeded(),
        "synthetic run failed ({}): {:?}",
        outcome.describe_exit(),
        line
    );
    Ok(line)
}
