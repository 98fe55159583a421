//! What the host offers: the workspace, root, programs on PATH, packages
//! installed on demand, the bare-metal target, and whether this is CI.

use crate::shell::process::run;
use anyhow::{Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root: `WARPCORE_ROOT` if set, else the parent of `xtask/`.
pub fn workspace_root() -> PathBuf {
    match std::env::var_os("WARPCORE_ROOT") {
        Some(root) => root.into(),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("xtask lives in the workspace")
            .into(),
    }
}

/// Cargo's target directory: `CARGO_TARGET_DIR` (relative to the
/// workspace root) if set, else `target/` in the workspace.
pub fn target_dir() -> PathBuf {
    let root = workspace_root();
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    }
}

/// True when the process runs as root (namespaces, taps and package
/// installs need it).
pub fn is_root() -> bool {
    // /proc/self/status has "Uid:\treal\teffective\t...".
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|id| id == "0"))
        })
        .unwrap_or(false)
}

/// True when `program` is on PATH.
pub fn have(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false)
}

/// True under CI (`CI=true`, as `.ci/run` and most CI services set it):
/// there a test that cannot run must fail instead of skipping.
#[cfg(test)]
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| value == "true" || value == "1")
}

/// For a test that cannot run here (`reason` says why), before it returns
/// early: under CI it panics, so the test fails with the reason; elsewhere
/// it says clearly that the test was skipped.
#[cfg(test)]
pub fn skip_outside_ci(test: &str, reason: &str) {
    assert!(
        !in_ci(),
        "{test} cannot run under CI=true: {reason}; CI must run it"
    );
    eprintln!("{test}: SKIPPED (not under CI): {reason}");
}

/// Makes sure each `(program, package)` program is on PATH: as root,
/// installs the missing packages with `apt-get install -y`; otherwise
/// fails naming them. `purpose` says what needs them.
pub fn ensure_programs(purpose: &str, programs: &[(&str, &str)]) -> Result<()> {
    let missing: Vec<&str> = programs
        .iter()
        .filter(|(program, _)| !have(program))
        .map(|(_, package)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !is_root() {
        bail!(
            "{purpose} need {} (missing); install with `sudo apt-get install -y {}` or run as root",
            missing.join(", "),
            missing.join(" ")
        );
    }
    apt_install(&missing)?;
    let still_missing: Vec<&str> = programs
        .iter()
        .filter(|(program, _)| !have(program))
        .map(|(program, _)| *program)
        .collect();
    if !still_missing.is_empty() {
        bail!(
            "installed {} but still cannot find {}",
            missing.join(" "),
            still_missing.join(", ")
        );
    }
    Ok(())
}

/// Debian's own Python, not whatever `python3` on PATH is (a pyenv shim
/// would not see Debian's `python3-*` packages).
pub const DEBIAN_PYTHON: &str = "/usr/bin/python3";

/// Makes sure [`DEBIAN_PYTHON`] can import `module`: as root, installs
/// `package` (and `python3` itself when missing) with `apt-get install -y`;
/// otherwise fails naming it. `purpose` says what needs it.
pub fn ensure_python_module(purpose: &str, module: &str, package: &str) -> Result<()> {
    let imports = || {
        Command::new(DEBIAN_PYTHON)
            .args(["-c", &format!("import {module}")])
            .output()
            .is_ok_and(|output| output.status.success())
    };
    if imports() {
        return Ok(());
    }
    if !is_root() {
        bail!(
            "{purpose} need the Python module {module} for {DEBIAN_PYTHON}; install with \
             `sudo apt-get install -y python3 {package}` or run as root"
        );
    }
    apt_install(&["python3", package])?;
    if !imports() {
        bail!("installed {package} but {DEBIAN_PYTHON} still cannot import {module}");
    }
    Ok(())
}

/// `apt-get update`, then `apt-get install -y` of `packages`.
fn apt_install(packages: &[&str]) -> Result<()> {
    run(
        "apt-get update",
        Command::new("apt-get").args(["update", "-q"]),
    )?;
    run(
        &format!("install {}", packages.join(" ")),
        Command::new("apt-get")
            .args(["install", "-y", "-q"])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

/// Installs the bare-metal target for the pinned toolchain when it is
/// missing (rustup only adds `rust-toolchain.toml` targets when it installs
/// the toolchain itself).
pub fn ensure_bare_metal_target() -> Result<()> {
    const TARGET: &str = "x86_64-unknown-none";
    let listed = Command::new("rustup")
        .current_dir(workspace_root())
        .args(["target", "list", "--installed"])
        .output();
    match listed {
        Ok(output)
            if String::from_utf8_lossy(&output.stdout)
                .lines()
                .any(|line| line == TARGET) =>
        {
            Ok(())
        }
        Ok(_) => run(
            "rustup target",
            Command::new("rustup")
                .current_dir(workspace_root())
                .args(["target", "add", TARGET]),
        ),
        Err(_) => bail!("rustup not found: install rustup, then `rustup target add {TARGET}`"),
    }
}
