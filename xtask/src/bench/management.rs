//! `udp-echo-management-load`: does the data path keep its rate while the
//! management plane is hammered? `examples/management.toml` (UDP echo and
//! the management API on the same core) is measured twice back to back on
//! one instance: loadgen's UDP echo alone, then again while wrk keeps
//! `connections` connections busy with `GET /metrics` and `GET
//! /api/v1/status` (with the token) in a closed loop. The report gives
//! both rates, their ratio and what wrk got.

use crate::bench::drive::echo_run;
use crate::bench::harness::Tools;
use crate::bench::systems::hosted;
use crate::bench::tcp::{CLIENT_ADDRESS, SERVER_ADDRESS, parse_wrk};
use crate::net::devices::Lan;
use crate::net::netns::Netns;
use crate::qemu::session::QemuSession;
use crate::shell::host::target_dir;
use crate::shell::process::ChildGuard;
use crate::spec_file::{self, example};
use anyhow::{Context, Result, bail, ensure};
use loadgen::run::RunResult;
use perf::results::ManagementLoad;
use perf::scenario::{Scenario, System};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The management API's port in `examples/management.toml`.
const MANAGEMENT_PORT: u16 = 8080;
/// The token whose SHA-256 `examples/management.toml` holds.
const TOKEN: &str = "warpcore-test-token";
/// How long the management API may take to listen.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(30);
/// wrk runs this long before loadgen starts (its connections open), and
/// about as long after.
const HAMMER_LEAD: Duration = Duration::from_secs(1);

/// wrk's script: every request alternates between the scrape and the
/// status, the token on each.
fn wrk_script() -> String {
    format!(
        "-- The management hammer of `cargo xtask bench`: /metrics and\n\
         -- /api/v1/status in turn, with the token.\n\
         local paths = {{\"/metrics\", \"/api/v1/status\"}}\n\
         local turn = 0\n\
         request = function()\n\
         \x20 turn = turn + 1\n\
         \x20 return wrk.format(\"GET\", paths[turn % 2 + 1], {{[\"Authorization\"] = \"Bearer {TOKEN}\"}})\n\
         end\n"
    )
}

/// `examples/management.toml` with one queue pair per core.
fn management_spec(cores: u32) -> Result<PathBuf> {
    let source = example("management.toml");
    let text = std::fs::read_to_string(&source).with_context(|| source.display().to_string())?;
    let address = "address = \"10.0.0.2/24\"";
    ensure!(
        text.matches(address).count() == 1,
        "{}: no single `{address}` line to put the queues after",
        source.display()
    );
    let text = text.replace(address, &format!("{address}\nqueues = {cores}"));
    spec_file::temporary(&format!("bench-management-{cores}"), &text)
}

/// Waits until the management API accepts connections from `client`.
fn wait_for_management(client: &Netns) -> Result<()> {
    let deadline = Instant::now() + LISTEN_TIMEOUT;
    let probe = format!("exec 3<>/dev/tcp/{SERVER_ADDRESS}/{MANAGEMENT_PORT}");
    loop {
        let output = client
            .command("bash")
            .args(["-c", &probe])
            .stderr(Stdio::null())
            .output()?;
        if output.status.success() {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "the management API does not listen on {SERVER_ADDRESS}:{MANAGEMENT_PORT} after {LISTEN_TIMEOUT:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// One `udp-echo-management-load` run of `system` on `cores` cores: the
/// echo rate under the load, loadgen's figures, and the load beside it.
pub fn management_load_run(
    tools: &Tools,
    scenario: &Scenario,
    system: System,
    cores: u32,
) -> Result<(f64, Option<RunResult>, ManagementLoad)> {
    let lan = Lan::create(1, cores > 1, Some(CLIENT_ADDRESS))?;
    let spec = management_spec(cores)?;
    // The system stays up for both runs; dropped (stopped) on return.
    let _system: Box<dyn std::any::Any> = match system {
        System::WarpcoreHosted => Box::new(hosted(
            tools,
            scenario,
            cores,
            &lan.netns,
            &spec,
            lan.tap(),
        )?),
        System::WarpcoreQemu => Box::new(QemuSession::boot_appliance(
            &spec,
            cores,
            &lan.netns,
            &lan.tap_names(),
            cores as u16,
        )?),
        other => bail!(
            "udp-echo-management-load measures warpcore's management plane; {} has none",
            other.name()
        ),
    };
    wait_for_management(&lan.netns)?;
    let (alone_pps, _) = echo_run(tools, scenario, &lan.netns, lan.tap())?;

    let script = target_dir().join("bench-management-hammer.lua");
    std::fs::write(&script, wrk_script()).context("writing wrk's script")?;
    let hammer_seconds = scenario.duration_secs + 2 * HAMMER_LEAD.as_secs();
    let mut command = lan.netns.command("wrk");
    command
        .args([
            "-t1",
            &format!("-c{}", scenario.connections),
            &format!("-d{hammer_seconds}s"),
            "--latency",
            "-s",
        ])
        .arg(&script)
        .arg(format!("http://{SERVER_ADDRESS}:{MANAGEMENT_PORT}/"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut wrk = ChildGuard::spawn(&mut command)?;
    std::thread::sleep(HAMMER_LEAD);
    let under_load = echo_run(tools, scenario, &lan.netns, lan.tap());
    // wrk ends by itself after its -d; it is killed (the guard) past that.
    let deadline = Instant::now() + Duration::from_secs(hammer_seconds + 15);
    while Instant::now() < deadline && matches!(wrk.child_mut().try_wait(), Ok(None)) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let (under_pps, run) = under_load?;
    let mut stdout = String::new();
    if let Some(mut pipe) = wrk.child_mut().stdout.take() {
        std::io::Read::read_to_string(&mut pipe, &mut stdout).context("reading wrk's output")?;
    }
    let hammer = parse_wrk(&stdout, hammer_seconds as f64)
        .with_context(|| format!("reading wrk's output:\n{stdout}"))?;
    ensure!(
        hammer.summary.received > 0,
        "the management plane answered no request under the hammer"
    );
    let _ = std::fs::remove_file(&script);
    eprintln!(
        "xtask: [bench]   management hammer: {:.0} requests/s over {} connections ({} errors); echo {alone_pps:.0} pps alone, {under_pps:.0} under load",
        hammer.received_pps, scenario.connections, hammer.summary.lost
    );
    Ok((
        under_pps,
        run,
        ManagementLoad {
            alone_pps,
            requests_per_second: hammer.received_pps,
            request_errors: hammer.summary.lost,
            connections: scenario.connections,
        },
    ))
}
