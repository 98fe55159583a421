//! Re-renders a report (CSV, SVG plots, summary) from its `results.json`.
//!
//! usage: perf-report REPORT_DIR
#![deny(unsafe_code)]

use anyhow::{Context, Result};
use perf::report::Report;
use std::path::PathBuf;

fn main() {
    if let Err(error) = run() {
        eprintln!("perf-report: error: {error:#}");
        std::process::exit(2);
    }
}

fn run() -> Result<()> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .context("usage: perf-report REPORT_DIR")?,
    );
    let path = dir.join("results.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let report: Report =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    perf::report::write(&report, &dir)?;
    print!("{}", perf::report::summary_markdown(&report));
    Ok(())
}
