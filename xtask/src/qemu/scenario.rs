//! A timed, unattended boot: the kernel runs a scenario, QEMU exits through
//! isa-debug-exit (or is killed at the timeout), and the serial log and exit
//! status come back for checking.

use crate::qemu::command_line::{QemuConfig, qemu_command};
use crate::qemu::console;
use crate::qemu::image::{ensure_qemu_binary, image_for};
use anyhow::Result;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The line prefix the kernel prints once every core is up.
pub const READY_PREFIX: &str = "warpcore ready ";

/// QEMU exit statuses produced by the kernel through isa-debug-exit: `(code << 1) | 1`
/// with the codes of `kernel/src/exit.rs`. Status 0 is a triple fault under `-no-reboot`.
pub mod exit_status {
    /// A scenario passed.
    pub const SUCCESS: i32 = (0x10 << 1) | 1;
    /// A scenario's check failed.
    pub const FAILURE: i32 = (0x11 << 1) | 1;
    /// The kernel panicked.
    pub const PANIC: i32 = (0x12 << 1) | 1;
    /// A CPU exception was reported.
    pub const EXCEPTION: i32 = (0x13 << 1) | 1;
    /// Triple fault (QEMU exits 0 under `-no-reboot`): never a success.
    pub const TRIPLE_FAULT: i32 = 0;
}

/// What a scenario run produced.
#[derive(Clone, Debug)]
pub struct ScenarioOutcome {
    /// QEMU's exit status; `None` if it was killed on timeout or by a signal.
    pub exit_code: Option<i32>,
    /// Everything the guest wrote to the serial port.
    pub serial_log: String,
    /// Whether the harness killed QEMU at the timeout.
    pub timed_out: bool,
    /// Wall time from spawning QEMU to the kernel's ready line, if it printed one.
    pub ready_after: Option<Duration>,
    /// Wall time from spawning QEMU to its exit (or the kill).
    pub elapsed: Duration,
}

impl ScenarioOutcome {
    /// Whether the kernel reported success through isa-debug-exit.
    pub fn succeeded(&self) -> bool {
        self.exit_code == Some(exit_status::SUCCESS)
    }

    /// The kernel's `warpcore ready ...` line, if any.
    pub fn ready_line(&self) -> Option<&str> {
        self.serial_log
            .lines()
            .map(str::trim_end)
            .find(|line| line.starts_with(READY_PREFIX))
    }

    /// The value of `key=` in the ready line, e.g. `cores` or `boot_ms`.
    pub fn ready_field(&self, key: &str) -> Option<&str> {
        self.ready_line()?
            .split_whitespace()
            .find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
    }

    /// Describes the exit status for humans.
    pub fn describe_exit(&self) -> String {
        match self.exit_code {
            _ if self.timed_out => format!("timed out after {:.1?}", self.elapsed),
            Some(exit_status::SUCCESS) => "success (33)".into(),
            Some(exit_status::FAILURE) => "scenario failure (35)".into(),
            Some(exit_status::PANIC) => "kernel panic (37)".into(),
            Some(exit_status::EXCEPTION) => "CPU exception (39)".into(),
            Some(exit_status::TRIPLE_FAULT) => "triple fault or QEMU exit 0 (never success)".into(),
            Some(other) => format!("QEMU exit status {other}"),
            None => "killed by a signal".into(),
        }
    }
}

/// Boots the kernel with `config`, captures the serial log, and kills QEMU after
/// `timeout`. Never fails because of what the kernel did; check the outcome.
pub fn run_scenario(config: &QemuConfig, timeout: Duration) -> Result<ScenarioOutcome> {
    run_scenario_watched(config, timeout, &mut |_, _| {})
}

/// How often the harness wakes while QEMU runs and prints nothing, to check
/// the timeout. Rarely: on this 2-CPU host a wake-up can preempt a busy
/// vCPU thread (from 20 ms to 200 ms the synthetic benchmark's two
/// pipeline vCPUs went from about 270 to about 220 preemptions in a 2 s
/// window). QEMU's exit ends the wait at once (its console pipes close).
const IDLE_WAKE_INTERVAL: Duration = Duration::from_millis(200);

/// As [`run_scenario`], calling `watch` with QEMU's process id and each
/// console line as it arrives, and with `None` at least every
/// [`IDLE_WAKE_INTERVAL`] while QEMU runs.
pub fn run_scenario_watched(
    config: &QemuConfig,
    timeout: Duration,
    watch: &mut dyn FnMut(u32, Option<&str>),
) -> Result<ScenarioOutcome> {
    ensure_qemu_binary(config.binary())?;
    let kernel = image_for(config)?;
    let mut command = qemu_command(config, &kernel, false);
    command.stdin(Stdio::null());
    let started = Instant::now();
    let (mut child, console) = console::spawn(&mut command)?;
    let pid = child.id();
    let mut serial_log = String::new();
    let mut ready_after = None;
    let deadline = started + timeout;
    let (exit_code, timed_out) = loop {
        match console.lines.recv_timeout(IDLE_WAKE_INTERVAL) {
            Ok((line, at)) => {
                if ready_after.is_none() && line.trim_start().starts_with(READY_PREFIX) {
                    ready_after = Some(at - started);
                }
                watch(pid, Some(line.trim_end()));
                serial_log.push_str(&line);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => watch(pid, None),
            // Both pipes closed: QEMU is gone or about to be.
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = wait_until(&mut child, deadline)?;
                break (status.and_then(|status| status.code()), status.is_none());
            }
        }
        if let Some(status) = child.try_wait()? {
            // Drain what the readers still hold before reporting.
            for (line, at) in console.lines.iter() {
                if ready_after.is_none() && line.trim_start().starts_with(READY_PREFIX) {
                    ready_after = Some(at - started);
                }
                serial_log.push_str(&line);
            }
            break (status.code(), false);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break (None, true);
        }
    };
    let elapsed = started.elapsed();
    serial_log.push_str(&console.finish());
    Ok(ScenarioOutcome {
        exit_code,
        serial_log,
        timed_out,
        ready_after,
        elapsed,
    })
}

/// Waits for `child` until `deadline`, killing it then; `None` means it was killed.
fn wait_until(child: &mut Child, deadline: Instant) -> Result<Option<std::process::ExitStatus>> {
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
