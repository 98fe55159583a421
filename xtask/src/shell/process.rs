//! Running child processes with their command line echoed and errors that
//! say which step failed.

use anyhow::{Context, Result, bail};
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

/// `cargo` as the current toolchain knows it.
pub fn cargo() -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.current_dir(workspace_root());
    command
}

/// Runs `command`, echoing it first; fails when it exits non-zero.
pub fn run(step: &str, command: &mut Command) -> Result<()> {
    eprintln!("xtask: [{step}] {}", describe(command));
    let status = command
        .status()
        .with_context(|| format!("{step}: could not start"))?;
    if !status.success() {
        bail!("{step} failed ({status})");
    }
    Ok(())
}

/// True when `program` is on PATH.
pub fn have(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false)
}

/// The command line of `command`, for logs and error messages.
pub fn describe(command: &Command) -> String {
    let mut text = command.get_program().to_string_lossy().into_owned();
    for arg in command.get_args() {
        text.push(' ');
        text.push_str(&arg.to_string_lossy());
    }
    text
}
