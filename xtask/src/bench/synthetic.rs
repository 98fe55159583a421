//! The in-guest synthetic pipeline (`test=synthetic`): measured in QEMU
//! with 1 and 2 pipeline cores and both generator modes, in rounds; the
//! report gives each case's median and each generator's 2-core scaling as
//! the median and the minimum over the rounds, with what the host gave the
//! pipeline vCPU threads during the measured windows.

use crate::bench::vcpu_time::{Sample, WindowShare};
use crate::cli::BenchArguments;
use crate::qemu::command_line::Machine;
use crate::qemu::scenario::run_scenario_watched;
use crate::suites::kernel::checks::{SlicesLine, SyntheticLine};
use crate::suites::kernel::scenarios::config;
use anyhow::{Result, ensure};
use perf::report::SyntheticRow;
use std::time::{Duration, Instant};

/// Measured window of one in-guest synthetic run, and rounds by default
/// (single runs swing by 2x on a shared host).
const SYNTHETIC_WINDOW_MS: u64 = 2000;
const SYNTHETIC_QUICK_WINDOW_MS: u64 = 500;
const SYNTHETIC_RUNS: u32 = 5;
/// Slices of the one-boot local run: both pipeline cores, then each alone
/// in turn (`kernel/src/scenarios/synthetic_slices.rs`); a window holds a
/// multiple of four, so that each core runs alone as often as the other.
/// Short, so that a host CPU's slow spell of under a second falls on both
/// kinds of slice (250 ms let one round fall to 1.84x, report
/// 20261207T141043Z; 50 ms held 1.91-1.97x in 20261207T141427Z, and
/// 1.86-1.96x in 20261207T142226Z).
const SLICE_MS: u64 = 50;
const QUICK_SLICE_MS: u64 = 25;
/// Who turns echoes back into requests in the synthetic runs.
const SYNTHETIC_GENERATORS: [&str; 2] = ["core", "local"];
/// The guest's window markers (`kernel/src/scenarios/synthetic.rs`).
const WINDOW_START_LINE: &str = "synthetic window=start";
const WINDOW_END_LINE: &str = "synthetic window=end";

/// Most the guest's measured window may differ from the host's view of it:
/// the guest times it with a TSC calibrated at boot against the PIT, and a
/// host stall across a PIT wrap during that millisecond skews every rate
/// the guest reports (seen: a 1-core guest "measuring" 10.8 Mpps over what
/// was 0.6 s of host time).
const CLOCK_TOLERANCE: f64 = 0.05;

/// How long one measuring boot may take.
const TIMEOUT: Duration = Duration::from_secs(60);

/// One measured run: the guest's result line and, when the host could read
/// QEMU's threads at both window markers, what it gave the vCPUs.
#[derive(Clone, Debug)]
struct Run {
    line: SyntheticLine,
    /// Each pipeline core's packets and cycles per packet, as the guest's
    /// `synthetic core=` lines give them.
    per_core: String,
    host: Option<WindowShare>,
    /// When the host read the guest's window markers.
    window: Option<(Instant, Instant)>,
    /// A sliced run's figures (`synthetic_slice_ms`).
    sliced: Option<SlicesLine>,
}

impl Run {
    /// Share of the window the pipeline vCPU threads (guest cores 1..) ran,
    /// summed: 2.0 means two host CPUs throughout.
    fn pipeline_cpus(&self) -> Option<f64> {
        let host = self.host.as_ref()?;
        let pipelines: Vec<_> = host.vcpus_between(1, self.line.cores).collect();
        (pipelines.len() == self.line.cores as usize)
            .then(|| pipelines.iter().map(|share| share.run).sum())
    }

    /// What the host took from the pipeline vCPU threads in the window:
    /// their waiting for a host CPU (summed shares, 0.01: a hundredth of
    /// one CPU's window), their involuntary switches, and the host's steal
    /// (host CPUs).
    fn pipeline_losses(&self) -> Option<(f64, u64, f64)> {
        let host = self.host.as_ref()?;
        let pipelines: Vec<_> = host.vcpus_between(1, self.line.cores).collect();
        (pipelines.len() == self.line.cores as usize).then(|| {
            (
                pipelines.iter().map(|share| share.wait).sum(),
                pipelines
                    .iter()
                    .map(|share| share.involuntary_switches)
                    .sum(),
                host.host_steal_cpus,
            )
        })
    }
}

/// The in-guest synthetic pipeline (`test=synthetic`) with 1 and 2 pipeline
/// cores, fed by a generator core and by local generators on the pipeline
/// cores; failures become notes.
pub fn synthetic(options: &BenchArguments, notes: &mut Vec<String>) -> Vec<SyntheticRow> {
    let window_ms = if options.quick {
        SYNTHETIC_QUICK_WINDOW_MS
    } else {
        SYNTHETIC_WINDOW_MS
    };
    let rounds = options.synthetic_runs.unwrap_or(SYNTHETIC_RUNS) as usize;
    let generators: Vec<&str> = SYNTHETIC_GENERATORS
        .into_iter()
        .filter(|generator| {
            options
                .synthetic_generators
                .as_ref()
                .is_none_or(|only| only.iter().any(|name| name == generator))
        })
        .collect();
    let cases: Vec<(&str, u32)> = generators
        .iter()
        .flat_map(|&generator| [(generator, 1), (generator, 2)])
        .collect();
    // Interleaved (every case once per round) so that a busy spell on the
    // host hits every case alike, and a round's 2-core run is compared with
    // its 1-core run.
    let mut runs: Vec<Vec<Option<Run>>> = vec![Vec::new(); cases.len()];
    // Local generators only: two 1-core guests at once, per round.
    let mut side_by_side: Vec<Option<SideBySide>> = Vec::new();
    // Local generators only: each round's one-boot sliced scaling.
    let mut sliced_ratios: Vec<Option<f64>> = Vec::new();
    for round in 0..rounds {
        for (&(generator, pipelines), found) in cases.iter().zip(runs.iter_mut()) {
            let measured = measure(pipelines, generator, window_ms, None).or_else(|error| {
                let reason = format!("{error:#}").lines().next().unwrap_or_default().to_owned();
                eprintln!("xtask: [bench] synthetic round {} generator={generator} {pipelines} pipeline core(s) refused, measuring again: {reason}", round + 1);
                notes.push(format!(
                    "synthetic round {} generator={generator} with {pipelines} pipeline core(s) measured twice, the first refused: {reason}",
                    round + 1
                ));
                measure(pipelines, generator, window_ms, None)
            });
            match measured {
                Ok(run) => {
                    eprintln!(
                        "xtask: [bench] synthetic round {} generator={generator} {pipelines} pipeline core(s): {:.3} Mpps, {:.1} cycles/packet ({}), {}% busy; host: {}",
                        round + 1,
                        run.line.mpps,
                        run.line.cycles_per_packet,
                        run.per_core,
                        run.line.busy_percent,
                        run.host
                            .as_ref()
                            .map_or_else(|| "not read".to_owned(), WindowShare::describe)
                    );
                    found.push(Some(run));
                }
                Err(error) => {
                    notes.push(format!(
                        "synthetic generator={generator} with {pipelines} pipeline core(s) failed: {}",
                        format!("{error:#}").lines().next().unwrap_or_default()
                    ));
                    found.push(None);
                }
            }
        }
        if generators.contains(&"local") {
            let pair = measure_side_by_side("local", window_ms);
            match &pair {
                Ok(pair) => {
                    let host = |share: &Option<WindowShare>| {
                        share
                            .as_ref()
                            .map_or_else(|| "not read".to_owned(), WindowShare::describe)
                    };
                    eprintln!(
                        "xtask: [bench] synthetic round {} two 1-core guests side by side: {:.3} + {:.3} Mpps, windows {:.0}% overlapped; host, first: {}; second: {}",
                        round + 1,
                        pair.mpps[0],
                        pair.mpps[1],
                        pair.overlap * 100.0,
                        host(&pair.hosts[0]),
                        host(&pair.hosts[1])
                    )
                }
                Err(error) => notes.push(format!(
                    "synthetic: two 1-core guests side by side failed: {}",
                    format!("{error:#}").lines().next().unwrap_or_default()
                )),
            }
            side_by_side.push(pair.ok());
            let slice_ms = if options.quick {
                QUICK_SLICE_MS
            } else {
                SLICE_MS
            };
            let sliced = measure(2, "local", window_ms, Some(slice_ms)).and_then(|run| {
                run.sliced
                    .filter(|line| line.one_core_mpps > 0.0)
                    .map(|line| (line, run.host))
                    .ok_or_else(|| anyhow::anyhow!("no slices line"))
            });
            match &sliced {
                Ok((line, host)) => eprintln!(
                    "xtask: [bench] synthetic round {} one boot in {slice_ms} ms slices ({} slices): both pipeline cores {:.3} Mpps, one alone (each in turn) {:.3}: {:.2}x; host: {}",
                    round + 1,
                    line.slices,
                    line.all_cores_mpps,
                    line.one_core_mpps,
                    line.all_cores_mpps / line.one_core_mpps,
                    host.as_ref()
                        .map_or_else(|| "not read".to_owned(), WindowShare::describe)
                ),
                Err(error) => notes.push(format!(
                    "synthetic: the sliced run failed: {}",
                    format!("{error:#}").lines().next().unwrap_or_default()
                )),
            }
            sliced_ratios.push(
                sliced
                    .ok()
                    .map(|(line, _)| line.all_cores_mpps / line.one_core_mpps),
            );
        }
    }
    let mut rows = Vec::new();
    for found in &runs {
        let mut lines: Vec<&SyntheticLine> = found.iter().flatten().map(|run| &run.line).collect();
        lines.sort_by(|a, b| a.mpps.total_cmp(&b.mpps));
        if let Some(median) = lines.get(lines.len() / 2) {
            rows.push(SyntheticRow {
                generator: median.generator.clone(),
                cores: median.cores,
                mpps: median.mpps,
                cycles_per_packet: median.cycles_per_packet,
            });
        }
    }
    for &generator in &generators {
        let case = |cores| {
            cases
                .iter()
                .position(|&case| case == (generator, cores))
                .map(|index| &runs[index])
        };
        if let (Some(one), Some(two)) = (case(1), case(2)) {
            notes.push(scaling_note(generator, one, two));
            if generator == "local" {
                notes.push(side_by_side_note(one, two, &side_by_side));
                let ratios: Vec<f64> = sliced_ratios.iter().flatten().copied().collect();
                notes.push(format!(
                    "synthetic generator=local, one boot in slices (both pipeline cores, then each alone in turn; packets per second of each kind of slice's wall time): 2 cores over 1 median {}, min {} (rounds: {})",
                    format_ratio(median(&ratios)),
                    format_ratio(minimum(&ratios)),
                    list(&ratios, "x")
                ));
            }
        }
    }
    notes.push(format!(
        "synthetic: the echo pipeline fed through rings (no NIC), {rounds} rounds of {window_ms} ms windows; \
         generator=core: a generator core turns echoes into requests, a third vCPU competing for this host's {} CPUs; \
         generator=local: each pipeline core turns its own echoes around. Command: `cargo xtask bench --synthetic-only`",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    ));
    rows
}

/// One generator's 2-core scaling over the rounds: each round's 2-core Mpps
/// over the same round's 1-core Mpps, median and minimum; and the same
/// per host CPU the pipeline vCPU threads got, which is what TCG's guest
/// cannot see.
fn scaling_note(generator: &str, one: &[Option<Run>], two: &[Option<Run>]) -> String {
    let pairs: Vec<(&Run, &Run)> = one
        .iter()
        .zip(two)
        .filter_map(|(one, two)| Some((one.as_ref()?, two.as_ref()?)))
        .filter(|(one, _)| one.line.mpps > 0.0)
        .collect();
    let ratios: Vec<f64> = pairs
        .iter()
        .map(|(one, two)| two.line.mpps / one.line.mpps)
        .collect();
    let per_cpu: Vec<f64> = pairs
        .iter()
        .filter_map(|(one, two)| {
            let (cpus_one, cpus_two) = (one.pipeline_cpus()?, two.pipeline_cpus()?);
            // Each run's Mpps per host CPU its pipeline vCPUs ran, times the
            // pipeline cores: the scaling had every vCPU had a host CPU.
            (cpus_one > 0.0 && cpus_two > 0.0).then(|| {
                (two.line.mpps / cpus_two * f64::from(two.line.cores))
                    / (one.line.mpps / cpus_one * f64::from(one.line.cores))
            })
        })
        .collect();
    let two_core_cpus: Vec<f64> = pairs
        .iter()
        .filter_map(|(_, two)| two.pipeline_cpus())
        .collect();
    format!(
        "synthetic scaling generator={generator}, 2 pipeline cores over 1, {} rounds: median {}, min {} (rounds: {}); \
         the 2-core runs' pipeline vCPU threads got {} host CPUs (median; rounds: {}); \
         had each pipeline vCPU had a whole host CPU, 2 cores would scale median {}, min {} (rounds: {}); \
         what the host took from the pipeline vCPU threads, 1-core run / 2-core run (waiting for a host CPU, preemptions; steal): {}",
        ratios.len(),
        format_ratio(median(&ratios)),
        format_ratio(minimum(&ratios)),
        list(&ratios, "x"),
        median(&two_core_cpus).map_or_else(|| "n/a".to_owned(), |cpus| format!("{cpus:.2}")),
        list(&two_core_cpus, ""),
        format_ratio(median(&per_cpu)),
        format_ratio(minimum(&per_cpu)),
        list(&per_cpu, "x"),
        losses(&pairs),
    )
}

/// Each round's host losses for the scaling note: `0.1%, 5 / 1.5%, 900;
/// steal 0.00`, the waiting as a share of one host CPU's window.
fn losses(pairs: &[(&Run, &Run)]) -> String {
    let describe = |run: &Run| {
        run.pipeline_losses().map_or_else(
            || ("n/a".to_owned(), 0.0),
            |(wait, preempted, steal)| (format!("{:.1}%, {preempted}", wait * 100.0), steal),
        )
    };
    pairs
        .iter()
        .map(|(one, two)| {
            let ((one, steal_one), (two, steal_two)) = (describe(one), describe(two));
            format!("{one} / {two}; steal {:.2}", steal_one.max(steal_two))
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Two 1-core guests measured at once: what this host gives two busy
/// pipeline vCPU threads that share no guest memory.
#[derive(Clone, Debug)]
struct SideBySide {
    /// Each guest's Mpps.
    mpps: [f64; 2],
    /// Share of the longer measured window the two windows overlapped.
    overlap: f64,
    /// What the host gave each guest's vCPU threads in its window.
    hosts: [Option<WindowShare>; 2],
}

/// Boots two 1-core guests at once and measures both.
fn measure_side_by_side(generator: &str, window_ms: u64) -> Result<SideBySide> {
    let (first, second) = std::thread::scope(|scope| {
        let other = scope.spawn(|| measure(1, generator, window_ms, None));
        let first = measure(1, generator, window_ms, None);
        let second = other
            .join()
            .map_err(|_| anyhow::anyhow!("the second guest's thread panicked"))?;
        anyhow::Ok((first?, second?))
    })?;
    let overlap = match (first.window, second.window) {
        (Some((start_a, end_a)), Some((start_b, end_b))) => {
            let shared = end_a
                .min(end_b)
                .saturating_duration_since(start_a.max(start_b));
            let longest = (end_a - start_a).max(end_b - start_b);
            shared.as_secs_f64() / longest.as_secs_f64().max(1e-9)
        }
        _ => 0.0,
    };
    Ok(SideBySide {
        mpps: [first.line.mpps, second.line.mpps],
        overlap,
        hosts: [first.host, second.host],
    })
}

/// The host's own 2-CPU scaling for this workload (two 1-core guests side
/// by side over one alone, same round) beside the 2-core guest's scaling:
/// where the 2-core guest reaches what two separate guests reach, the loss
/// is the host's, not the guest's.
fn side_by_side_note(
    one: &[Option<Run>],
    two: &[Option<Run>],
    pairs: &[Option<SideBySide>],
) -> String {
    let mut host_scaling = Vec::new();
    let mut guest_share = Vec::new();
    let mut overlaps = Vec::new();
    for ((one, two), pair) in one.iter().zip(two).zip(pairs) {
        let Some(pair) = pair else { continue };
        let together = pair.mpps[0] + pair.mpps[1];
        overlaps.push(pair.overlap);
        if let Some(one) = one.as_ref().filter(|one| one.line.mpps > 0.0) {
            host_scaling.push(together / one.line.mpps);
        }
        if let Some(two) = two
            && together > 0.0
        {
            guest_share.push(two.line.mpps / together);
        }
    }
    format!(
        "synthetic generator=local, two 1-core guests side by side (nothing shared in the guest): together median {}, min {} of one 1-core guest alone (rounds: {}); \
         the 2-core guest reached median {:.2} of the pair's Mpps (rounds: {}); windows overlapped median {:.0}%",
        format_ratio(median(&host_scaling)),
        format_ratio(minimum(&host_scaling)),
        list(&host_scaling, "x"),
        median(&guest_share).unwrap_or(f64::NAN),
        list(&guest_share, ""),
        median(&overlaps).unwrap_or(0.0) * 100.0,
    )
}

fn format_ratio(ratio: Option<f64>) -> String {
    ratio.map_or_else(|| "n/a".to_owned(), |ratio| format!("{ratio:.2}x"))
}

/// The median (the upper one of an even count).
fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied()
}

fn minimum(values: &[f64]) -> Option<f64> {
    values.iter().copied().min_by(f64::total_cmp)
}

/// Measures the in-guest synthetic pipeline with `pipelines` pipeline cores
/// (plus core 0) over a `window_ms` window, in slices of `slice_ms` when
/// given, reading QEMU's threads when the guest opens and closes the window.
fn measure(pipelines: u32, generator: &str, window_ms: u64, slice_ms: Option<u64>) -> Result<Run> {
    let slices = slice_ms
        .map(|ms| format!(" synthetic_slice_ms={ms}"))
        .unwrap_or_default();
    let mut config = config(
        pipelines + 1,
        Machine::Q35,
        &format!("test=synthetic synthetic_generator={generator} synthetic_ms={window_ms}{slices}"),
    );
    // Names the vCPU threads `CPU <n>/TCG` for `Sample::read`.
    config
        .extra_args
        .extend(["-name", "warpcore-synthetic,debug-threads=on"].map(String::from));
    let (mut start, mut end) = (None, None);
    let mut read_error = None;
    let outcome = run_scenario_watched(&config, TIMEOUT, &mut |pid, line| {
        let slot = match line {
            Some(WINDOW_START_LINE) => &mut start,
            Some(WINDOW_END_LINE) => &mut end,
            _ => return,
        };
        match Sample::read(pid) {
            Ok(sample) => *slot = Some(sample),
            Err(error) => read_error = Some(error),
        }
    })?;
    let line = SyntheticLine::find(&outcome.serial_log)
        .map_err(|error| anyhow::anyhow!("{error:#}\n{}", outcome.serial_log))?;
    let sliced = match slice_ms {
        Some(_) => Some(SlicesLine::find(&outcome.serial_log)?),
        None => None,
    };
    ensure!(
        outcome.succeeded(),
        "synthetic run failed ({}): {:?}",
        outcome.describe_exit(),
        line
    );
    if let Some(error) = read_error {
        eprintln!("xtask: [bench] synthetic: could not read QEMU's threads: {error:#}");
    }
    let (host, window) = match (start, end) {
        (Some(start), Some(end)) => (Some(start.window_to(&end)), Some((start.at, end.at))),
        _ => (None, None),
    };
    if let Some(host) = &host {
        let guest_seconds = line.packets as f64 / (line.mpps.max(1e-9) * 1e6);
        ensure!(
            (host.seconds / guest_seconds - 1.0).abs() <= CLOCK_TOLERANCE,
            "the guest's clock disagrees with the host's: its {guest_seconds:.2} s window took {:.2} s of host time",
            host.seconds
        );
    }
    let per_core = outcome
        .serial_log
        .lines()
        .filter_map(|line| line.trim_end().strip_prefix("synthetic core="))
        .map(|fields| {
            let field = |name: &str| {
                fields
                    .split_whitespace()
                    .find_map(|word| word.strip_prefix(name)?.strip_prefix('='))
                    .unwrap_or("?")
            };
            let core = fields.split_whitespace().next().unwrap_or("?");
            format!(
                "core {core}: {} packets at {} cycles, {} ticks",
                field("packets"),
                field("cycles_per_packet"),
                field("window_timer_interrupts")
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    Ok(Run {
        line,
        per_core,
        host,
        window,
        sliced,
    })
}

/// `values` with two decimals and `unit` each, space-separated (a summary
/// line's per-round figures).
fn list(values: &[f64], unit: &str) -> String {
    values
        .iter()
        .map(|value| format!("{value:.2}{unit}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_minimum_of_rounds() {
        assert_eq!(median(&[2.0, 1.5, 1.9, 2.1, 1.7]), Some(1.9));
        assert_eq!(minimum(&[2.0, 1.5, 1.9]), Some(1.5));
        assert_eq!(median(&[]), None);
        assert_eq!(format_ratio(minimum(&[])), "n/a");
        assert_eq!(format_ratio(Some(1.954)), "1.95x");
    }
}
