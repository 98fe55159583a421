//! `cargo xtask test`: every check CI runs, in order, fastest first.

use crate::shell::{self, cargo, have};
use anyhow::{Result, bail};

/// Runs formatting, lints, host tests, the Miri check of the unsafe layer and
/// the kernel scenarios in QEMU.
pub fn run(args: &[String]) -> Result<()> {
    if let Some(unknown) = args.first() {
        bail!("`test` takes no arguments, got `{unknown}`");
    }
    shell::run("fmt", cargo().args(["fmt", "--all", "--", "--check"]))?;
    shell::run(
        "clippy",
        cargo().args(["clippy", "--all-targets", "--", "-D", "warnings"]),
    )?;
    shell::run("host tests", cargo().args(["test", "--release"]))?;
    shell::ensure_bare_metal_target()?;
    shell::run(
        "kernel clippy",
        cargo().args([
            "clippy",
            "-p",
            "kernel",
            "--release",
            "--target",
            "x86_64-unknown-none",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    crate::hosted_tests::run_all()?;
    miri()?;
    crate::qemu::ensure_qemu()?;
    crate::kernel_tests::run_all()?;
    crate::appliance_tests::run_all()
}

/// Runs the unsafe layer (rings, return queue, pool, packets) under Miri.
fn miri() -> Result<()> {
    if !have("rustup") {
        bail!("Miri needs rustup to install the nightly `miri` component; install rustup");
    }
    shell::run(
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
    shell::run(
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
