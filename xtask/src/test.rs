//! `cargo xtask test`: every check CI runs, in order, fastest first.

use crate::shell::{cargo, have, run};
use anyhow::{Result, bail};

/// Runs formatting, lints, host tests, the Miri check of the unsafe layer and
/// (when built) the kernel scenarios.
pub fn run(args: &[String]) -> Result<()> {
    if let Some(unknown) = args.first() {
        bail!("`test` takes no arguments, got `{unknown}`");
    }
    run("fmt", cargo().args(["fmt", "--all", "--", "--check"]))?;
    run(
        "clippy",
        cargo().args(["clippy", "--all-targets", "--", "-D", "warnings"]),
    )?;
    run("host tests", cargo().args(["test", "--release"]))?;
    miri()?;
    Ok(())
}

/// Runs the unsafe layer (rings, return queue, pool, packets) under Miri.
fn miri() -> Result<()> {
    if !have("rustup") {
        bail!("Miri needs rustup to install the nightly `miri` component; install rustup");
    }
    run(
        "miri setup",
        std::process::Command::new("rustup").args([
            "component",
            "add",
            "miri",
            "rust-src",
            "--toolchain",
            "nightly",
        ]),
    )?;
    run(
        "miri",
        std::process::Command::new("rustup")
            .current_dir(crate::shell::workspace_root())
            .args([
                "run",
                "nightly",
                "cargo",
                "miri",
                "test",
                "-p",
                "dataplane",
                "--lib",
                "mem::",
            ])
            .env("MIRIFLAGS", "-Zmiri-ignore-leaks -Zmiri-strict-provenance"),
    )
}
