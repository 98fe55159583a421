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
    // The fuzz targets are their own workspace: build them (with libFuzzer,
    // without sanitizers) so they cannot rot; `cargo +nightly fuzz run`
    // runs them.
    shell::run(
        "fuzz targets",
        cargo().args([
            "build",
            "--manifest-path",
            "fuzz/Cargo.toml",
            "--bins",
            "--target-dir",
            "target/fuzz-check",
        ]),
    )?;
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

/// The nightly Miri runs on, pinned by date: Miri's checks change from one
/// nightly to the next, and a check that starts failing should be a commit.
const MIRI_NIGHTLY: &str = "nightly-2026-05-20";
/// That nightly's rustc commit: a plain `nightly` toolchain that is this
/// build is used as is (machines without network to install the dated one).
const MIRI_RUSTC_COMMIT: &str = "e50aa6fba";

/// One `cargo miri test` run: a package, a test filter, its flags.
struct MiriRun {
    package: &'static str,
    filter: &'static str,
    /// Tests of the filter left to a later run (`--skip`).
    skip: &'static [&'static str],
    flags: &'static str,
}

/// The unsafe layer under Miri: dataplane's rings, return queue, pool and
/// packets; the af-packet frame hand-off against its fake kernel; the
/// virtio-net virtqueue and queue against the simulated device. Leaks fail
/// a run, except in the tests named with `-Zmiri-ignore-leaks`, each for a
/// reason.
const MIRI_RUNS: &[MiriRun] = &[
    MiriRun {
        package: "dataplane",
        filter: "mem::",
        skip: &["pool_dropped_with_packets_out_stays_valid"],
        flags: "-Zmiri-strict-provenance",
    },
    // A pool dropped while packets are out is leaked on purpose (they
    // still point at it); this test checks exactly that case.
    MiriRun {
        package: "dataplane",
        filter: "mem::mempool::tests::pool_dropped_with_packets_out_stays_valid",
        skip: &[],
        flags: "-Zmiri-strict-provenance -Zmiri-ignore-leaks",
    },
    MiriRun {
        package: "af-packet-nic",
        filter: "frames::",
        skip: &[],
        flags: "-Zmiri-strict-provenance",
    },
    // The simulated device finds buffers by physical address, an integer,
    // as a DMA engine does: permissive provenance.
    MiriRun {
        package: "virtio-net",
        filter: "",
        skip: &[],
        flags: "-Zmiri-permissive-provenance",
    },
];

/// The toolchain to run Miri with: the pinned nightly, installed if need be.
fn miri_toolchain() -> Result<&'static str> {
    let is_pinned_build = |toolchain: &str| {
        std::process::Command::new("rustup")
            .args(["run", toolchain, "rustc", "--version"])
            .output()
            .is_ok_and(|output| {
                output.status.success()
                    && String::from_utf8_lossy(&output.stdout).contains(MIRI_RUSTC_COMMIT)
            })
    };
    if is_pinned_build(MIRI_NIGHTLY) {
        return Ok(MIRI_NIGHTLY);
    }
    if is_pinned_build("nightly") {
        return Ok("nightly");
    }
    shell::run(
        "miri toolchain",
        std::process::Command::new("rustup").args([
            "toolchain",
            "install",
            MIRI_NIGHTLY,
            "--profile",
            "minimal",
        ]),
    )?;
    Ok(MIRI_NIGHTLY)
}

/// Runs the unsafe layer under Miri on the pinned nightly (`MIRI_RUNS`).
fn miri() -> Result<()> {
    if !have("rustup") {
        bail!("Miri needs rustup to install the nightly `miri` component; install rustup");
    }
    let toolchain = miri_toolchain()?;
    shell::run(
        "miri setup",
        std::process::Command::new("rustup").args([
            "component",
            "add",
            "miri",
            "rust-src",
            "--toolchain",
            toolchain,
        ]),
    )?;
    for run in MIRI_RUNS {
        let mut command = std::process::Command::new("rustup");
        command
            .current_dir(crate::shell::workspace_root())
            .args([
                "run",
                toolchain,
                "cargo",
                "miri",
                "test",
                "-p",
                run.package,
                "--lib",
                "--",
            ])
            .env("MIRIFLAGS", run.flags);
        if !run.filter.is_empty() {
            command.arg(run.filter);
        }
        for test in run.skip {
            command.args(["--skip", test]);
        }
        shell::run("miri", &mut command)?;
    }
    Ok(())
}
