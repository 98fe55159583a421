//! `cargo xtask test`: every check CI runs, in order, fastest first; with
//! `--only`, the steps and suite cases it names, and with `--list`, the
//! names to choose from.

use crate::cli::TestArguments;
use crate::commands::{miri, wasm_examples};
use crate::shell::host::{ensure_bare_metal_target, target_dir};
use crate::shell::process::{cargo, run as run_step};
use crate::suites::runner::Filter;
use crate::suites::{appliance, hosted, image, kernel, vhost_user};
use anyhow::{Result, bail};
use std::time::{Duration, Instant};

/// A step of the run: a cargo check or one of the suites.
enum Step {
    /// Runs on its own; its name is the step's. It sees the filter (the
    /// `wasm-examples` step runs the tests that `host` runs when `host` is
    /// not selected).
    Check(&'static str, fn(&Filter) -> Result<()>),
    /// A suite: the full names of its cases, and what runs the selected ones.
    Suite(Vec<String>, fn(&Filter) -> Result<()>),
}

/// Every step, in the order they run.
fn steps() -> Result<Vec<Step>> {
    Ok(vec![
        Step::Check("fmt", |_| fmt()),
        Step::Check("clippy", |_| clippy()),
        Step::Check(HOST_STEP, |_| host_tests()),
        Step::Check("wasm-examples", |filter| {
            wasm_examples::test(!filter.selects(HOST_STEP))
        }),
        Step::Check("fuzz-build", |_| fuzz_build()),
        Step::Check("clippy-kernel", |_| kernel_clippy()),
        Step::Suite(hosted::scenarios::names(), hosted::scenarios::run),
        Step::Check("miri", |_| miri::run()),
        Step::Suite(image::names(), image::run),
        Step::Suite(kernel::scenarios::names()?, kernel::scenarios::run),
        Step::Suite(
            kernel::scenarios::names_on_qemu_7_2()?,
            kernel::scenarios::run_on_qemu_7_2,
        ),
        Step::Suite(appliance::tests::names(), appliance::tests::run),
        Step::Suite(vhost_user::names(), vhost_user::run),
    ])
}

/// Runs (or with `--list` names) the steps and cases `arguments` select.
pub fn run(arguments: &TestArguments) -> Result<()> {
    let filter = Filter::new(arguments.only.clone());
    let steps = steps()?;
    let selected: Vec<&str> = steps
        .iter()
        .flat_map(|step| match step {
            Step::Check(name, _) => vec![*name],
            Step::Suite(names, _) => names.iter().map(String::as_str).collect(),
        })
        .filter(|name| filter.selects(name))
        .collect();
    if arguments.list {
        for name in &selected {
            println!("{name}");
        }
        return Ok(());
    }
    if selected.is_empty() {
        bail!(
            "--only {} selects nothing; `cargo xtask test --list` names the steps and cases",
            arguments.only.join(" --only ")
        );
    }
    let started = Instant::now();
    let mut took = Vec::new();
    for step in &steps {
        let step_started = Instant::now();
        let name = match step {
            Step::Check(name, check) if filter.selects(name) => {
                check(&filter)?;
                (*name).to_owned()
            }
            Step::Check(..) => continue,
            Step::Suite(names, suite) => {
                if !names.iter().any(|name| filter.selects(name)) {
                    continue;
                }
                suite(&filter)?;
                suite_name(names)
            }
        };
        took.push((name, step_started.elapsed()));
    }
    eprintln!("{}", timing_table(&took, started.elapsed()));
    Ok(())
}

/// The suite's name: what its cases' names start with before the `/`.
fn suite_name(names: &[String]) -> String {
    names
        .first()
        .and_then(|name| name.split_once('/'))
        .map_or_else(|| "suite".to_owned(), |(suite, _)| suite.to_owned())
}

/// How long each step took, longest first, and the whole run: CI must stay
/// well under its budget, and this says where the time goes.
fn timing_table(took: &[(String, Duration)], total: Duration) -> String {
    let mut sorted = took.to_vec();
    sorted.sort_by_key(|(_, elapsed)| std::cmp::Reverse(*elapsed));
    let mut table = format!("xtask: test took {:.1} min:", total.as_secs_f64() / 60.0);
    for (name, elapsed) in sorted {
        table.push_str(&format!("\n  {:>7.1} s  {name}", elapsed.as_secs_f64()));
    }
    table
}

fn fmt() -> Result<()> {
    run_step("fmt", cargo().args(["fmt", "--all", "--", "--check"]))
}

fn clippy() -> Result<()> {
    run_step(
        "clippy",
        cargo().args(["clippy", "--all-targets", "--", "-D", "warnings"]),
    )
}

/// The host tests' step name.
const HOST_STEP: &str = "host";

/// The host tests of every crate but the kernel: the default members and
/// `warpcore-wasm-examples-test` (not a default member: it needs the Wasm
/// example modules, built first). One `cargo test` for both, so that they
/// share one feature resolution and therefore their dependencies' builds
/// (alone, `-p warpcore-wasm-examples-test` rebuilt 25 of them: 51 s).
fn host_tests() -> Result<()> {
    let modules = wasm_examples::build()?;
    run_step(
        "host tests",
        cargo()
            .args(["test", "--profile", "test-release"])
            .args(["--workspace", "--exclude", "kernel"])
            .env(wasm_examples::MODULES_VARIABLE, modules),
    )
}

/// Lints the kernel for the bare-metal target twice: as the release image is
/// built, and with every feature (the scenarios and the example services).
fn kernel_clippy() -> Result<()> {
    ensure_bare_metal_target()?;
    for features in [None, Some("--all-features")] {
        let mut command = cargo();
        command.args([
            "clippy",
            "-p",
            "kernel",
            "--release",
            "--target",
            "x86_64-unknown-none",
        ]);
        command.args(features);
        command.args(["--", "-D", "warnings"]);
        run_step(
            &format!("kernel clippy {}", features.unwrap_or("(release)")),
            &mut command,
        )?;
    }
    Ok(())
}

/// Builds the fuzz targets, their own workspace (with libFuzzer, without
/// sanitizers), so that they cannot rot; `cargo +nightly fuzz run` runs them.
fn fuzz_build() -> Result<()> {
    let target = target_dir().join("fuzz-check");
    run_step(
        "fuzz targets",
        cargo()
            .args([
                "build",
                "--manifest-path",
                "fuzz/Cargo.toml",
                "--bins",
                "--target-dir",
            ])
            .arg(target),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timing_table_puts_the_longest_step_first() {
        let took = [
            ("fmt".to_owned(), Duration::from_millis(1500)),
            ("hosted".to_owned(), Duration::from_secs(300)),
        ];
        let table = timing_table(&took, Duration::from_secs(330));
        assert_eq!(
            table,
            "xtask: test took 5.5 min:\n    300.0 s  hosted\n      1.5 s  fmt"
        );
        assert_eq!(suite_name(&["appliance/echo".to_owned()]), "appliance");
    }
}
