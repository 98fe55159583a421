//! The criterion microbenchmarks (`benches/`): run them and read each
//! benchmark's median per item from criterion's `new/` results.

use crate::shell::host::target_dir;
use crate::shell::process::{cargo, run as run_step};
use anyhow::{Context, Result, bail};
use perf::report::MicroRow;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Runs criterion and reads its medians.
pub fn criterion(quick: bool) -> Result<Vec<MicroRow>> {
    let criterion_dir = target_dir().join("criterion");
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
}
