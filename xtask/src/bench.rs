//! `cargo xtask bench`: criterion benchmarks and a summary table.

use anyhow::Result;

/// Runs the microbenchmarks.
pub fn run(_args: &[String]) -> Result<()> {
    Ok(())
}
