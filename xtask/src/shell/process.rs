//! Running child processes with their command line echoed and errors that
//! say which step failed; a guard that kills a spawned process on drop.

use crate::shell::host::workspace_root;
use anyhow::{Context, Result, bail};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

/// `cargo` as the current toolchain knows it, in the workspace root.
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

/// Runs `command` to completion and returns its stdout; fails with the
/// command line and its stderr when it exits non-zero.
pub fn checked_output(command: &mut Command) -> Result<String> {
    let line = describe(command);
    let output = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("could not start `{line}`"))?;
    if !output.status.success() {
        bail!(
            "`{line}` failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim(),
            String::from_utf8_lossy(&output.stdout).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The command line of `command`, for logs and error messages: the
/// environment variables set on it first, as a shell line would give them
/// (`MIRIFLAGS='-Zmiri-strict-provenance' rustup run ...`), so that the
/// line reruns the same command.
pub fn describe(command: &Command) -> String {
    let mut text = String::new();
    for (key, value) in command.get_envs() {
        if let Some(value) = value {
            let value = value.to_string_lossy();
            text.push_str(&key.to_string_lossy());
            text.push('=');
            if value.is_empty() || value.contains(char::is_whitespace) {
                text.push_str(&format!("'{value}'"));
            } else {
                text.push_str(&value);
            }
            text.push(' ');
        }
    }
    text.push_str(&command.get_program().to_string_lossy());
    for arg in command.get_args() {
        text.push(' ');
        text.push_str(&arg.to_string_lossy());
    }
    text
}

/// A spawned process killed (SIGKILL) and reaped on drop, unless it already
/// exited.
#[derive(Debug)]
pub struct ChildGuard {
    child: Child,
}

impl ChildGuard {
    /// Spawns `command` under the guard.
    pub fn spawn(command: &mut Command) -> Result<Self> {
        let line = describe(command);
        let child = command
            .spawn()
            .with_context(|| format!("could not start `{line}`"))?;
        Ok(Self { child })
    }

    /// The child, for its pipes and `wait`.
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Sends `signal` (like `"INT"`, `"TERM"`, `"USR1"`) with `kill(1)`.
    pub fn signal(&self, signal: &str) -> Result<()> {
        checked_output(
            Command::new("kill").args([format!("-{signal}"), self.child.id().to_string()]),
        )
        .map(drop)
    }
}

/// Spawns `command` with its stdout piped, under a guard; its stdout lines
/// arrive on the returned channel. The reader keeps reading after the
/// receiver is gone, so the process never blocks on a full pipe.
pub fn spawn_reading_lines(command: &mut Command) -> Result<(ChildGuard, Receiver<String>)> {
    command.stdout(Stdio::piped());
    let mut guard = ChildGuard::spawn(command)?;
    let stdout = guard
        .child
        .stdout
        .take()
        .context("stdout was not captured")?;
    let (sender, lines) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });
    Ok((guard, lines))
}

/// Waits for a line of `lines` that starts with `prefix`, echoing each one
/// indented; fails when the process ends or `timeout` passes between lines.
pub fn wait_for_line(lines: &Receiver<String>, prefix: &str, timeout: Duration) -> Result<()> {
    loop {
        let line = lines
            .recv_timeout(timeout)
            .with_context(|| format!("the process exited or never said `{prefix}`"))?;
        eprintln!("  | {line}");
        if line.starts_with(prefix) {
            return Ok(());
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_puts_the_environment_before_the_command_line() {
        let mut command = Command::new("cargo");
        command
            .args(["miri", "test"])
            .env("MIRIFLAGS", "-Zmiri-strict-provenance -Zmiri-ignore-leaks");
        assert_eq!(
            describe(&command),
            "MIRIFLAGS='-Zmiri-strict-provenance -Zmiri-ignore-leaks' cargo miri test"
        );
        command.env("MIRIFLAGS", "-Zmiri-strict-provenance");
        assert_eq!(
            describe(&command),
            "MIRIFLAGS=-Zmiri-strict-provenance cargo miri test"
        );
        assert_eq!(describe(Command::new("true").arg("x")), "true x");
    }
}
