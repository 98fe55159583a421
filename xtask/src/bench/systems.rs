//! Starting the systems under test that need more than a boot: the Linux
//! peer guest under the appliance's QEMU command line, warpcore-hosted on a
//! tap, and the echo spec with one queue pair per core.

use crate::bench::harness::Tools;
use crate::net::netns::Netns;
use crate::qemu::command_line::{Accel, NicModel, QemuConfig, model_nic_args};
use crate::qemu::session::QemuSession;
use crate::shell::process::{ChildGuard, spawn_reading_lines, wait_for_line};
use crate::spec_file::{self, example};
use anyhow::{Context, Result};
use perf::scenario::GuestNic;
use perf::scenario::Scenario;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// How long the Linux peer guest may take to boot.
const BOOT_TIMEOUT: Duration = Duration::from_secs(120);

/// The text of `examples/echo.toml` with one queue pair per core.
pub fn echo_spec_text(cores: u32) -> Result<String> {
    let source = example("echo.toml");
    let text = std::fs::read_to_string(&source).with_context(|| source.display().to_string())?;
    spec_file::with_queues(&text, cores)
}

/// The QEMU NIC model of a scenario's `nic`.
pub fn nic_model(nic: GuestNic) -> NicModel {
    match nic {
        GuestNic::Virtio => NicModel::Virtio,
        GuestNic::Igb => NicModel::Igb,
    }
}

/// Whether the tap needs one queue per core: virtio-net's queue pairs are
/// tap queues; igb spreads one tap queue over its pairs by RSS.
pub fn multi_queue_tap(nic: GuestNic, cores: u32) -> bool {
    nic == GuestNic::Virtio && cores > 1
}

/// `text` (a spec with virtio interfaces) on `nic`.
pub fn spec_on(text: &str, nic: GuestNic) -> String {
    match nic {
        GuestNic::Virtio => text.to_owned(),
        GuestNic::Igb => text.replace("driver = \"virtio\"", "driver = \"igb\""),
    }
}

/// `text` with the top-level `idle = "IDLE"` when `idle` is some.
pub fn with_idle(text: &str, idle: Option<&str>) -> String {
    match idle {
        Some(idle) => format!("idle = \"{idle}\"\n{text}"),
        None => text.to_owned(),
    }
}

/// `examples/echo.toml` with one queue pair per core, and with `idle =
/// "IDLE"` when `idle` is some (`"poll"`: cores that never sleep;
/// `"haltpoll"`: cores that poll a while before they sleep).
pub fn echo_spec(cores: u32, idle: Option<&str>) -> Result<PathBuf> {
    echo_spec_on(cores, idle, GuestNic::Virtio)
}

/// [`echo_spec`] with the interface on `nic`.
pub fn echo_spec_on(cores: u32, idle: Option<&str>, nic: GuestNic) -> Result<PathBuf> {
    let text = with_idle(&spec_on(&echo_spec_text(cores)?, nic), idle);
    let name = format!(
        "bench-echo-{cores}{}{}",
        idle.map(|idle| format!("-{idle}")).unwrap_or_default(),
        if nic == GuestNic::Igb { "-igb" } else { "" }
    );
    spec_file::temporary(&name, &text)
}

/// Boots the Linux peer guest under the appliance's QEMU command line.
pub fn linux_guest(
    tools: &Tools,
    scenario: &Scenario,
    cores: u32,
    netns: &Netns,
    taps: &[&str],
    macs: &[&str],
    settings: &str,
) -> Result<QemuSession> {
    let mut extra_args = Vec::new();
    let model = nic_model(scenario.nic);
    for (index, (tap, mac)) in taps.iter().zip(macs).enumerate() {
        extra_args.extend(model_nic_args(model, index, tap, mac, cores as u16));
    }
    let config = QemuConfig {
        smp: cores,
        accel: Accel::parse(&scenario.accel)?,
        spec: Some(tools.guest_initrd.clone()),
        cmdline: format!("console=ttyS0 quiet {settings}"),
        extra_args,
        ..QemuConfig::default()
    };
    let mut session = QemuSession::start_kernel(&config, &tools.guest_kernel, Some(netns.name()))?;
    session.wait_for("linux-guest ready", 0, BOOT_TIMEOUT)?;
    Ok(session)
}

/// Starts warpcore-hosted on `tap` and waits for its ready line.
pub fn hosted(
    tools: &Tools,
    scenario: &Scenario,
    cores: u32,
    netns: &Netns,
    spec: &Path,
    tap: &str,
) -> Result<ChildGuard> {
    let mut command = netns.command(&tools.hosted.to_string_lossy());
    command
        .arg("--spec")
        .arg(spec)
        .args([
            "--nic",
            &format!("eth0=tap:{tap}"),
            "--cores",
            &cores.to_string(),
        ])
        .args([
            "--duration-secs",
            &(scenario.duration_secs + 60).to_string(),
        ])
        .stderr(Stdio::inherit());
    let (guard, lines) = spawn_reading_lines(&mut command)?;
    wait_for_line(&lines, "warpcore-hosted: ready", Duration::from_secs(30))?;
    Ok(guard)
}
