//! Driving a system under test with loadgen from the namespace's side of its
//! taps: echo workloads count replies, l3fwd counts what comes out of the
//! router's second interface.

use crate::bench::harness::Tools;
use crate::net::netns::Netns;
use anyhow::{Context, Result, bail, ensure};
use loadgen::run::RunResult;
use perf::scenario::{LoadgenEngine, Scenario, Workload};

/// The appliance's address in `examples/echo.toml`.
const ECHO_ADDRESS: &str = "10.0.0.2";
/// Where loadgen sends from: not an address the namespace's kernel owns.
const LOADGEN_ADDRESS: &str = "10.0.0.100";
/// loadgen's MAC on the wire: not the tap's own, so replies reach the
/// namespace's kernel as "other host" frames that it drops before IP
/// routing, which keeps the host's per-reply work (done in QEMU's thread
/// when QEMU writes to the tap) to the AF_PACKET copy loadgen reads.
const LOADGEN_MAC: &str = "02:00:00:00:00:64";

/// loadgen's arguments for `scenario` on `interface`.
pub fn loadgen_args(scenario: &Scenario, interface: &str, closed_loop: bool) -> Vec<String> {
    let workload = match scenario.workload {
        Workload::IcmpEcho => "icmp",
        _ => "udp",
    };
    let mut args: Vec<String> = [
        "--interface",
        interface,
        "--workload",
        workload,
        "--source-mac",
        LOADGEN_MAC,
        "--source-ip",
        LOADGEN_ADDRESS,
        "--destination-ip",
        ECHO_ADDRESS,
        "--flows",
        &scenario.flows.to_string(),
        "--size",
        &scenario.payload.to_string(),
        "--duration",
        &scenario.duration_secs.to_string(),
        "--count",
        &scenario.max_probes.to_string(),
        "--timeout-ms",
        "1000",
        "--json",
    ]
    .iter()
    .map(|arg| arg.to_string())
    .collect();
    if scenario.loadgen_engine != LoadgenEngine::Sockets {
        args.extend(["--engine".into(), scenario.loadgen_engine.name().into()]);
    }
    if closed_loop && scenario.window > 0 {
        args.extend(["--window".into(), scenario.window.to_string()]);
    }
    args
}

/// Runs loadgen in `netns` and parses its JSON.
pub fn loadgen(tools: &Tools, netns: &Netns, args: &[String]) -> Result<RunResult> {
    loadgen_pinned(tools, netns, args, None)
}

/// [`loadgen`], pinned to host CPU `cpu` when one is given (`taskset`, so
/// every system under test meets loadgen on the same CPU).
pub fn loadgen_pinned(
    tools: &Tools,
    netns: &Netns,
    args: &[String],
    cpu: Option<u32>,
) -> Result<RunResult> {
    let program = tools.loadgen.to_string_lossy();
    let mut command = match cpu {
        Some(cpu) => {
            let mut command = netns.command("taskset");
            command.args(["-c", &cpu.to_string(), &program]);
            command
        }
        None => netns.command(&program),
    };
    command.args(args);
    let output = command.output().context("running loadgen")?;
    if !output.status.success() {
        bail!(
            "loadgen failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    serde_json::from_slice(&output.stdout).context("parsing loadgen's JSON")
}

/// Echo workloads: replies per second while loadgen was sending.
pub fn echo_run(
    tools: &Tools,
    scenario: &Scenario,
    netns: &Netns,
    interface: &str,
) -> Result<(f64, Option<RunResult>)> {
    let run = loadgen(tools, netns, &loadgen_args(scenario, interface, true))?;
    ensure!(
        run.summary.received > 0,
        "no replies at all ({} sent)",
        run.summary.sent
    );
    Ok((run.received_pps, Some(run)))
}

/// l3fwd: probes sent into the router's first interface and counted as they
/// come out of its second.
pub fn forward_run(
    tools: &Tools,
    scenario: &Scenario,
    netns: &Netns,
    taps: [&str; 2],
) -> Result<(f64, Option<RunResult>)> {
    let mut args = loadgen_args(scenario, taps[0], true);
    for (flag, value) in [
        ("--source-ip", "10.0.1.100"),
        ("--destination-ip", "10.0.2.100"),
    ] {
        let at = args
            .iter()
            .position(|arg| arg == flag)
            .context("loadgen args")?;
        args[at + 1] = value.into();
    }
    args.extend(["--gateway", "10.0.1.1", "--receive-interface", taps[1]].map(String::from));
    let run = loadgen(tools, netns, &args)?;
    ensure!(
        run.summary.received > 0,
        "nothing was forwarded ({} sent)",
        run.summary.sent
    );
    Ok((run.received_pps, Some(run)))
}
