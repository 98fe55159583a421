//! `cargo xtask bench`: runs the criterion microbenchmarks and prints one
//! table with warpcore and its peers side by side.

use crate::shell::{cargo, run as run_step, workspace_root};
use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// One benchmark's result as criterion stored it.
struct Measurement {
    group: String,
    function: String,
    /// Median time of one iteration, in nanoseconds.
    nanoseconds: f64,
    /// Elements one iteration moves.
    elements: u64,
}

impl Measurement {
    fn nanoseconds_per_element(&self) -> f64 {
        self.nanoseconds / self.elements as f64
    }

    fn elements_per_second(&self) -> f64 {
        1e9 / self.nanoseconds_per_element()
    }
}

/// Runs the benches (`--quick`: short warm-up and measurement) and prints
/// the summary.
pub fn run(args: &[String]) -> Result<()> {
    let mut quick = false;
    for arg in args {
        match arg.as_str() {
            "--quick" => quick = true,
            other => bail!("unknown `bench` option `{other}` (try --quick)"),
        }
    }
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
    let measurements = read_criterion(&criterion_dir)?;
    print!("{}", summary_table(&measurements));
    Ok(())
}

/// Reads every `<group>/<function>/new/` result under `dir`.
fn read_criterion(dir: &Path) -> Result<Vec<Measurement>> {
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
        found.push(Measurement {
            group: text(&meta["group_id"]),
            function: text(&meta["function_id"]),
            nanoseconds: estimates["median"]["point_estimate"]
                .as_f64()
                .context("estimates.json without a median")?,
            elements: meta["throughput"]["Elements"].as_u64().unwrap_or(1),
        });
    }
    if found.is_empty() {
        bail!("criterion wrote no results under {}", dir.display());
    }
    Ok(found)
}

fn walk_new_dirs(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
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

/// A markdown table: one row per benchmark, with each peer's speed as a
/// ratio of warpcore's within its group.
fn summary_table(measurements: &[Measurement]) -> String {
    let mut groups: BTreeMap<&str, Vec<&Measurement>> = BTreeMap::new();
    for measurement in measurements {
        groups
            .entry(&measurement.group)
            .or_default()
            .push(measurement);
    }
    let mut table = String::from(
        "\n| benchmark | implementation | ns/item | items/s | warpcore speed-up |\n|---|---|---:|---:|---:|\n",
    );
    for (group, rows) in groups {
        let warpcore = rows.iter().find(|row| row.function == "warpcore");
        for row in rows.iter() {
            let speedup = warpcore.map_or(String::from("-"), |ours| {
                format!(
                    "{:.2}x",
                    row.nanoseconds_per_element() / ours.nanoseconds_per_element()
                )
            });
            let _ = writeln!(
                table,
                "| {group} | {} | {:.2} | {} | {speedup} |",
                row.function,
                row.nanoseconds_per_element(),
                human_rate(row.elements_per_second()),
            );
        }
    }
    table
}

fn human_rate(per_second: f64) -> String {
    if per_second >= 1e9 {
        format!("{:.2} G", per_second / 1e9)
    } else if per_second >= 1e6 {
        format!("{:.2} M", per_second / 1e6)
    } else {
        format!("{:.1} k", per_second / 1e3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_shows_ratios_against_warpcore() {
        let rows = [
            Measurement {
                group: "ring".into(),
                function: "warpcore".into(),
                nanoseconds: 32.0,
                elements: 32,
            },
            Measurement {
                group: "ring".into(),
                function: "peer".into(),
                nanoseconds: 96.0,
                elements: 32,
            },
        ];
        let table = summary_table(&rows);
        assert!(
            table.contains("| ring | warpcore | 1.00 | 1.00 G | 1.00x |"),
            "{table}"
        );
        assert!(
            table.contains("| ring | peer | 3.00 | 333.33 M | 3.00x |"),
            "{table}"
        );
    }

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
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].nanoseconds_per_element(), 2.0);
        assert!(read_criterion(&dir).is_err());
    }
}
