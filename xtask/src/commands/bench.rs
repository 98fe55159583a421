//! `cargo xtask bench`: criterion microbenchmarks, instruction counts, and
//! the systems-under-test harness, written into one report under
//! `perf/reports/<timestamp>/` and summarised in `perf/RESULTS.md`.

use crate::shell::{cargo, run as run_step, workspace_root};
use anyhow::{Context, Result, bail};
use perf::report::{MicroRow, Report, SyntheticRow};
use perf::scenario::{ScenarioFile, System};
use serde_json::Value;
use std::path::{Path, PathBuf};

const USAGE: &str = "\
usage: cargo xtask bench [--quick] [--scenarios FILE] [--systems a,b,..] [--no-micro] [--no-systems]

  --quick          one repetition of short runs (perf/scenarios/quick.toml), short criterion runs
  --scenarios F    scenario file (default perf/scenarios/full.toml, or quick.toml with --quick)
  --systems LIST   only these systems: warpcore-qemu, linux-guest, qemu-ceiling,
                   warpcore-hosted, linux-host
  --no-micro       skip the criterion microbenchmarks and callgrind counts
  --no-systems     skip the systems under test and the in-guest synthetic runs (no root needed)
  --no-synthetic   skip the in-guest synthetic runs
";

/// Measured window of one in-guest synthetic run, and runs per core count
/// (the median by Mpps is reported: single runs swing by 2x on a shared host).
const SYNTHETIC_WINDOW_MS: u64 = 2000;
const SYNTHETIC_QUICK_WINDOW_MS: u64 = 500;
const SYNTHETIC_RUNS: usize = 5;
/// Who turns echoes back into requests in the synthetic runs.
const SYNTHETIC_GENERATORS: [&str; 2] = ["core", "local"];

struct Options {
    quick: bool,
    scenarios: Option<PathBuf>,
    systems: Option<Vec<System>>,
    micro: bool,
    harness: bool,
    synthetic: bool,
}

fn parse(args: &[String]) -> Result<Options> {
    let mut options = Options {
        quick: false,
        scenarios: None,
        systems: None,
        micro: true,
        harness: true,
        synthetic: true,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => options.quick = true,
            "--no-micro" => options.micro = false,
            "--no-systems" => options.harness = false,
            "--no-synthetic" => options.synthetic = false,
            "--scenarios" => {
                let path = PathBuf::from(args.next().context("--scenarios needs a file")?);
                if !path.is_file() {
                    bail!("scenario file `{}` not found", path.display());
                }
                options.scenarios = Some(path);
            }
            "--systems" => {
                let list = args.next().context("--systems needs a list")?;
                let systems = list
                    .split(',')
                    .map(|name| {
                        serde_json::from_value::<System>(Value::String(name.trim().into()))
                            .map_err(|_| anyhow::anyhow!("unknown system `{name}`\n{USAGE}"))
                    })
                    .collect::<Result<Vec<_>>>()?;
                options.systems = Some(systems);
            }
            other => bail!("unknown `bench` option `{other}`\n{USAGE}"),
        }
    }
    Ok(options)
}

/// Runs the benchmarks and writes the report.
pub fn run(args: &[String]) -> Result<()> {
    let options = parse(args)?;
    let root = workspace_root();
    let mut report = Report {
        created: utc_now(),
        command: format!("cargo xtask bench {}", args.join(" "))
            .trim()
            .to_owned(),
        ..Report::default()
    };
    if options.micro {
        report.micro = criterion(options.quick)?;
        report.instructions = crate::callgrind::instructions()?;
    }
    if options.harness && options.synthetic {
        report.synthetic = synthetic(options.quick, &mut report.notes);
    }
    if options.harness {
        if !crate::netns::is_root() {
            bail!(
                "the systems under test need root (network namespaces, taps); run as root or pass --no-systems"
            );
        }
        crate::qemu::ensure_qemu()?;
        crate::netns::ensure_net_tools()?;
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
        report.notes.push(format!(
            "scenarios: {}; accelerator: {}; host: {} CPUs",
            file.strip_prefix(&root).unwrap_or(&file).display(),
            scenarios.first().map_or("-", |s| s.accel.as_str()),
            std::thread::available_parallelism().map_or(0, |n| n.get())
        ));
        let tools = crate::harness::Tools::build()?;
        report.measurements = crate::harness::measure_all(&tools, &scenarios);
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

/// The in-guest synthetic pipeline (`test=synthetic`) with 1 and 2 pipeline
/// cores, fed by a generator core and by local generators on the pipeline
/// cores; failures become notes.
fn synthetic(quick: bool, notes: &mut Vec<String>) -> Vec<SyntheticRow> {
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
    let mut lines: Vec<Vec<crate::kernel_tests::SyntheticLine>> = vec![Vec::new(); cases.len()];
    for _ in 0..SYNTHETIC_RUNS {
        for (&(generator, pipelines), found) in cases.iter().zip(lines.iter_mut()) {
            match crate::kernel_tests::measure_synthetic(pipelines, generator, window_ms) {
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

/// Runs criterion and reads its medians.
fn criterion(quick: bool) -> Result<Vec<MicroRow>> {
    let criterion_dir = workspace_root().join("target/criterion");
    if criterion_dir.exists() {
        std::fs::remove_dir_all(&criterion_dir)
            .with_context(|| format!("removing stale results in {}", criterion_dir.display()))?;
    }
    let mut command = cargo();
    command.args(["bench", "-p", "warpcore-benches", "--", "--noplot"]);
    if quick {
        command.args([
            "--warm-up-time",
            "0.5",
            "--measurement-time",
            "2",
            "--sample-size",
            "20",
        ]);
    }
    run_step("criterion", &mut command)?;
    read_criterion(&criterion_dir)
}

/// Reads every `<group>/<function>/new/` result under `dir`.
fn read_criterion(dir: &Path) -> Result<Vec<MicroRow>> {
    let mut found = Vec::new();
    for benchmark in walk_new_dirs(dir)? {
        let read = |name: &str| -> Result<Value> {
            let path = benchmark.join(name);
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
        };
        let meta = read("benchmark.json")?;
        let estimates = read("estimates.json")?;
        let text = |value: &Value| value.as_str().unwrap_or_default().to_owned();
        let nanoseconds = estimates["median"]["point_estimate"]
            .as_f64()
            .context("estimates.json without a median")?;
        let elements = meta["throughput"]["Elements"].as_u64().unwrap_or(1).max(1);
        found.push(MicroRow {
            group: text(&meta["group_id"]),
            implementation: text(&meta["function_id"]),
            ns_per_item: nanoseconds / elements as f64,
        });
    }
    if found.is_empty() {
        bail!("criterion wrote no results under {}", dir.display());
    }
    Ok(found)
}

fn walk_new_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        if !path.is_dir() {
            continue;
        }
        if path.file_name().is_some_and(|name| name == "new") {
            if path.join("benchmark.json").is_file() {
                out.push(path);
            }
        } else {
            out.extend(walk_new_dirs(&path)?);
        }
    }
    out.sort();
    Ok(out)
}

/// The current UTC time as `2026-11-22T00:21:09Z`.
fn utc_now() -> String {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

const BEGIN: &str = "<!-- latest bench report: begin -->";
const END: &str = "<!-- latest bench report: end -->";

/// Replaces the latest-report section of `perf/RESULTS.md` with `summary`.
fn update_results_md(path: &Path, summary: &str, dir: &Path) -> Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let relative = dir.strip_prefix(workspace_root()).unwrap_or(dir);
    let body = summary
        .replacen(
            "# warpcore benchmark report",
            "## Latest `cargo xtask bench` report",
            1,
        )
        .replace("\n## ", "\n### ");
    let section = format!(
        "{BEGIN}\n{body}\nFull report (JSON, CSV, SVG plots): `{}`.\n{END}",
        relative.display()
    );
    let updated = match (text.find(BEGIN), text.find(END)) {
        (Some(begin), Some(end)) if end > begin => {
            format!("{}{section}{}", &text[..begin], &text[end + END.len()..])
        }
        _ => format!("{text}\n{section}\n"),
    };
    std::fs::write(path, updated).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_criterion_layout() {
        let dir = std::env::temp_dir().join(format!("xtask-bench-{}", std::process::id()));
        let new = dir.join("ring/warpcore/32/new");
        std::fs::create_dir_all(&new).unwrap();
        std::fs::write(
            new.join("benchmark.json"),
            r#"{"group_id":"ring","function_id":"warpcore","throughput":{"Elements":32}}"#,
        )
        .unwrap();
        std::fs::write(
            new.join("estimates.json"),
            r#"{"median":{"point_estimate":64.0}}"#,
        )
        .unwrap();
        let found = read_criterion(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            found,
            [MicroRow {
                group: "ring".into(),
                implementation: "warpcore".into(),
                ns_per_item: 2.0
            }]
        );
        assert!(read_criterion(&dir).is_err());
    }

    #[test]
    fn options_parse_and_refuse_unknown_systems() {
        let args = |text: &str| {
            text.split_whitespace()
                .map(String::from)
                .collect::<Vec<_>>()
        };
        let options = parse(&args(
            "--quick --systems linux-guest,warpcore-qemu --no-micro",
        ))
        .unwrap();
        assert!(options.quick && !options.micro && options.harness);
        assert_eq!(
            options.systems.unwrap(),
            [System::LinuxGuest, System::WarpcoreQemu]
        );
        assert!(parse(&args("--systems bsd")).is_err());
        assert!(parse(&args("--scenarios /nonexistent.toml")).is_err());
        assert!(parse(&args("--fast")).is_err());
    }

    #[test]
    fn utc_dates_are_civil() {
        assert!(utc_now().starts_with("20"));
        assert_eq!(utc_now().len(), 20);
    }

    #[test]
    fn results_md_section_is_replaced_not_appended() {
        let path = std::env::temp_dir().join(format!("xtask-results-{}.md", std::process::id()));
        std::fs::write(&path, "# results\n\nkeep me\n").unwrap();
        let dir = workspace_root().join("perf/reports/x");
        update_results_md(
            &path,
            "# warpcore benchmark report\n\n## udp\nfirst\n",
            &dir,
        )
        .unwrap();
        update_results_md(
            &path,
            "# warpcore benchmark report\n\n## udp\nsecond\n",
            &dir,
        )
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(text.contains("keep me"));
        assert!(
            text.contains("### udp\nsecond") && !text.contains("first"),
            "{text}"
        );
        assert_eq!(text.matches(BEGIN).count(), 1);
        assert!(text.contains("`perf/reports/x`"));
    }
}
