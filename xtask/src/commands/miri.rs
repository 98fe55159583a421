//! The Miri step of `cargo xtask test`: the unsafe layer under Miri on a
//! pinned nightly, leaks failing every run but the one about a leak on
//! purpose.

use crate::shell::host::{have, target_dir, workspace_root};
use crate::shell::process::{describe, run as run_step};
use anyhow::{Context, Result, bail};
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

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

/// The unsafe layer under Miri: dataplane's rings, pool and packets (and
/// the capture's safe lock-free ring); the af-packet frame hand-off
/// and the af-xdp rings against their fake kernels; the virtio-net virtqueue and queue against the
/// simulated device. Leaks fail a run,
/// except in the tests named with `-Zmiri-ignore-leaks`, each for a reason.
///
/// In two lanes that run side by side, each lane's runs one after another:
/// the interpreter uses one core, the CI machine has two, and the lanes
/// take about as long (measured on the CI machine: `mem::` 39 s; the
/// others 45 s together).
const MIRI_LANES: [&[MiriRun]; 2] = {
    let (memory, others) = MIRI_RUNS.split_at(2);
    [memory, others]
};

/// Every run, in the order the lanes take them.
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
    // The capture's record ring has no unsafe code, but it is a lock-free
    // ring between cores: Miri's data-race checker looks at its orderings.
    MiriRun {
        package: "dataplane",
        filter: "capture::",
        skip: &[],
        flags: "-Zmiri-strict-provenance",
    },
    MiriRun {
        package: "af-packet-nic",
        filter: "frames::",
        skip: &[],
        flags: "-Zmiri-strict-provenance",
    },
    MiriRun {
        package: "af-xdp-nic",
        filter: "ring::",
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
        Command::new("rustup")
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
    run_step(
        "miri toolchain",
        Command::new("rustup").args(["toolchain", "install", MIRI_NIGHTLY, "--profile", "minimal"]),
    )?;
    Ok(MIRI_NIGHTLY)
}

/// Runs [`MIRI_RUNS`] on the pinned nightly.
pub fn run() -> Result<()> {
    if !have("rustup") {
        bail!("Miri needs rustup to install the nightly `miri` component; install rustup");
    }
    let toolchain = miri_toolchain()?;
    run_step(
        "miri setup",
        Command::new("rustup").args([
            "component",
            "add",
            "miri",
            "rust-src",
            "--toolchain",
            toolchain,
        ]),
    )?;
    // Build the first run's crate alone first: the lanes then start on a
    // built sysroot and dataplane, without racing for cargo's lock.
    run_step(
        "miri build",
        miri_command(toolchain, &MIRI_RUNS[0]).arg("--list"),
    )?;
    let lanes: Vec<Result<()>> = std::thread::scope(|scope| {
        let handles: Vec<_> = MIRI_LANES
            .iter()
            .enumerate()
            .map(|(number, lane)| scope.spawn(move || run_lane(toolchain, number, lane)))
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|_| bail!("a Miri lane's thread panicked"))
            })
            .collect()
    });
    let failures: Vec<String> = lanes
        .into_iter()
        .filter_map(|lane| lane.err().map(|error| format!("{error:#}")))
        .collect();
    if !failures.is_empty() {
        bail!("miri failed:\n{}", failures.join("\n"));
    }
    Ok(())
}

/// `cargo miri test` for one run, on `toolchain`.
fn miri_command(toolchain: &str, miri: &MiriRun) -> Command {
    let mut command = Command::new("rustup");
    command
        .current_dir(workspace_root())
        .args([
            "run",
            toolchain,
            "cargo",
            "miri",
            "test",
            "-p",
            miri.package,
            "--lib",
            "--",
        ])
        .env("MIRIFLAGS", miri.flags);
    if !miri.filter.is_empty() {
        command.arg(miri.filter);
    }
    for test in miri.skip {
        command.args(["--skip", test]);
    }
    command
}

/// Where lane `number` writes its runs' output: the lanes run side by
/// side, so each streams to a file of its own, which is there as the runs
/// go (and after a run CI killed), not only when the lanes end.
fn lane_log(number: usize) -> PathBuf {
    target_dir().join(format!("miri-lane-{number}.log"))
}

/// Runs a lane's runs one after another, their output streamed to
/// [`lane_log`]; fails at the first run that fails, with its command line
/// and the lane's log. A lane that passes prints its runs' `test result`
/// lines.
fn run_lane(toolchain: &str, number: usize, lane: &[MiriRun]) -> Result<()> {
    let path = lane_log(number);
    if let Some(folder) = path.parent() {
        std::fs::create_dir_all(folder)
            .with_context(|| format!("could not create {}", folder.display()))?;
    }
    let mut log =
        File::create(&path).with_context(|| format!("could not create {}", path.display()))?;
    eprintln!("xtask: [miri] lane {number}: output in {}", path.display());
    for miri in lane {
        let mut command = miri_command(toolchain, miri);
        let line = describe(&command);
        eprintln!("xtask: [miri] lane {number}: {line}");
        writeln!(log, "xtask: [miri] {line}")
            .with_context(|| format!("could not write {}", path.display()))?;
        let stdout = log
            .try_clone()
            .with_context(|| format!("could not share {}", path.display()))?;
        let stderr = log
            .try_clone()
            .with_context(|| format!("could not share {}", path.display()))?;
        let status = command
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .status()
            .with_context(|| format!("could not start `{line}`"))?;
        if !status.success() {
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|error| format!("(could not read {}: {error})", path.display()));
            bail!(
                "`{line}` failed ({status}); lane {number}'s log, {}:\n{text}",
                path.display()
            );
        }
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("could not read {}", path.display()))?;
    for result in text.lines().filter(|line| line.starts_with("test result:")) {
        eprintln!("xtask: [miri] lane {number}: {result}");
    }
    Ok(())
}
