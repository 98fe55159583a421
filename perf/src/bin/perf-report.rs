//! Re-renders a report (CSV, SVG plots, summary) from its `results.json`.
//!
//! usage: perf-report REPORT_DIR
#![deny(unsafe_code)]

use anyhow::{Context, Result};
use clap::Parser;
use perf::report::Report;
use std::path::PathBuf;

/// Re-renders a report (CSV, SVG plots, summary) from its `results.json`
/// and prints the summary.
#[derive(Debug, Parser)]
#[command(name = "perf-report")]
struct Arguments {
    /// The report's folder, holding `results.json` (like
    /// `perf/reports/20261122T002109Z`).
    #[arg(value_name = "REPORT_DIR")]
    dir: PathBuf,
}

fn main() {
    let arguments = Arguments::parse();
    if let Err(error) = run(&arguments.dir) {
        eprintln!("perf-report: error: {error:#}");
        std::process::exit(2);
    }
}

fn run(dir: &std::path::Path) -> Result<()> {
    let path = dir.join("results.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let report: Report =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    perf::report::write(&report, dir)?;
    print!("{}", perf::report::summary_markdown(&report));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_exactly_one_folder() {
        let arguments = Arguments::try_parse_from(["perf-report", "perf/reports/x"]).unwrap();
        assert_eq!(arguments.dir, PathBuf::from("perf/reports/x"));
        let missing = Arguments::try_parse_from(["perf-report"]).unwrap_err();
        assert!(missing.to_string().contains("REPORT_DIR"), "{missing}");
        assert!(Arguments::try_parse_from(["perf-report", "a", "b"]).is_err());
    }
}
