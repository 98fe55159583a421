//! `cargo xtask bench`: criterion microbenchmarks, instruction counts, and
//! the systems-under-test harness, written into one report under
//! `perf/reports/<timestamp>/` and summarised in `perf/RESULTS.md`.

use crate::bench::callgrind::instructions;
use crate::bench::criterion::criterion;
use crate::bench::harness::{Tools, measure_all};
use crate::bench::idle::measure_idle_all;
use crate::bench::results::{update_results_md, utc_now};
use crate::bench::synthetic::synthetic;
use crate::bench::tcp::ensure_tcp_tools;
use crate::cli::BenchArguments;
use crate::net::netns::ensure_net_tools;
use crate::qemu::image::{ensured_version, qemu_binary};
use crate::shell::host::{is_root, workspace_root};
use anyhow::{Result, bail};
use perf::report::Report;
use perf::scenario::{ScenarioFile, Workload};

/// Runs the benchmarks and writes the report.
pub fn run(options: &BenchArguments) -> Result<()> {
    let root = workspace_root();
    let mut report = Report {
        created: utc_now(),
        command: std::iter::once("cargo xtask".to_owned())
            .chain(std::env::args().skip(1))
            .collect::<Vec<_>>()
            .join(" "),
        ..Report::default()
    };
    if !options.no_micro && !options.synthetic_only {
        report.micro = criterion(options.quick)?;
        report.instructions = instructions()?;
    }
    if !options.no_systems && !options.no_synthetic {
        report.synthetic = synthetic(options, &mut report.notes);
    }
    if options.synthetic_only {
        // A part of the benchmark: its report, but not RESULTS.md's block
        // for the whole run.
        let dir = root
            .join("perf/reports")
            .join(report.created.replace([':', '-'], ""));
        perf::report::write(&report, &dir)?;
        print!("{}", perf::report::summary_markdown(&report));
        eprintln!("xtask: [bench] report in {}", dir.display());
        return Ok(());
    }
    if !options.no_systems {
        if !is_root() {
            bail!(
                "the systems under test need root (network namespaces, taps); run as root or pass --no-systems"
            );
        }
        let qemu_version = ensured_version()?;
        ensure_net_tools()?;
        let file = options.scenarios.clone().unwrap_or_else(|| {
            root.join("perf/scenarios").join(if options.quick {
                "quick.toml"
            } else {
                "full.toml"
            })
        });
        let mut scenarios = ScenarioFile::load(&file)?;
        if let Some(only) = &options.systems {
            for scenario in &mut scenarios {
                scenario.systems.retain(|system| only.contains(system));
            }
            scenarios.retain(|scenario| !scenario.systems.is_empty());
        }
        if let Some(only) = &options.backends {
            for scenario in &mut scenarios {
                scenario.backends.retain(|backend| only.contains(backend));
            }
            scenarios.retain(|scenario| !scenario.backends.is_empty());
        }
        if let Some(only) = &options.only {
            if let Some(unknown) = only
                .iter()
                .find(|name| !scenarios.iter().any(|s| &s.name == *name))
            {
                bail!("no scenario `{unknown}` in {}", file.display());
            }
            scenarios.retain(|scenario| only.contains(&scenario.name));
        }
        if let Some(repetitions) = options.repetitions {
            for scenario in &mut scenarios {
                scenario.repetitions = repetitions;
            }
        }
        if scenarios.iter().any(|scenario| {
            scenario.workload.is_tcp() || scenario.workload == Workload::UdpEchoManagementLoad
        }) {
            ensure_tcp_tools()?;
        }
        report.notes.push(format!(
            "scenarios: {}; QEMU {qemu_version} ({}); accelerator: {}; host: {} CPUs",
            file.strip_prefix(&root).unwrap_or(&file).display(),
            qemu_binary(),
            scenarios.first().map_or("-", |s| s.accel.as_str()),
            std::thread::available_parallelism().map_or(0, |n| n.get())
        ));
        let tools = Tools::build()?;
        report.measurements = measure_all(&tools, &scenarios);
        report.idle = measure_idle_all(&tools, &scenarios);
        report.points = perf::results::aggregate(&report.measurements);
    }
    let stamp = report.created.replace([':', '-'], "");
    let dir = root.join("perf/reports").join(&stamp);
    perf::report::write(&report, &dir)?;
    let summary = perf::report::summary_markdown(&report);
    print!("{summary}");
    update_results_md(&root.join("perf/RESULTS.md"), &summary, &dir)?;
    eprintln!("xtask: [bench] report in {}", dir.display());
    Ok(())
}
