//! UDP echo hosted on a veth pair, one end for loadgen and one for the
//! system under test: warpcore-hosted through AF_XDP or AF_PACKET, and
//! DPDK's `dpdk-testpmd` (5tswap, which echoes like our UDP echo) through
//! its `net_af_xdp` or `net_af_packet` PMD. The `-poll` warpcore systems
//! run the spec with `idle = "poll"`, busy-polling like testpmd. Besides packets per second,
//! the CPU time the system's process used during the run is printed,
//! since testpmd busy-polls and warpcore sleeps when idle: packets per
//! CPU-second is the fair comparison.

use crate::bench::drive::{loadgen, loadgen_args};
use crate::bench::harness::Tools;
use crate::bench::systems::echo_spec;
use crate::net::devices::Veth;
use crate::net::netns::Netns;
use crate::shell::host::ensure_programs;
use crate::shell::process::{ChildGuard, spawn_reading_lines, wait_for_line};
use anyhow::{Context, Result, bail, ensure};
use loadgen::run::RunResult;
use perf::scenario::{Scenario, System};
use std::process::Stdio;
use std::time::Duration;

/// The appliance's MAC in `examples/echo.toml`; testpmd's 5tswap answers
/// whatever MAC the frames carry.
const ECHO_MAC: &str = "02:00:00:00:00:01";
/// How long a system may take to say it runs.
const START_WAIT: Duration = Duration::from_secs(60);

/// CPU time (user + system) of process `pid` and its threads so far, in
/// seconds.
fn process_cpu_seconds(pid: u32) -> Result<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // Fields after the command (which may hold spaces) end at ')'.
    let rest = text.rsplit_once(')').context("/proc/PID/stat shape")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 here.
    let ticks: u64 = fields
        .get(11..13)
        .context("/proc/PID/stat too short")?
        .iter()
        .map(|field| field.parse::<u64>().unwrap_or(0))
        .sum();
    Ok(ticks as f64 / clock_ticks_per_second())
}

/// Busy and total CPU time of the whole machine so far, in seconds.
fn machine_cpu_seconds() -> Result<(f64, f64)> {
    let text = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    let line = text.lines().next().context("/proc/stat is empty")?;
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|field| field.parse().unwrap_or(0))
        .collect();
    let total: u64 = values.iter().take(8).sum();
    let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
    let hz = clock_ticks_per_second();
    Ok(((total - idle) as f64 / hz, total as f64 / hz))
}

fn clock_ticks_per_second() -> f64 {
    // USER_HZ is 100 on every Linux architecture we run on.
    100.0
}

/// Starts the system under test on `ifname` in `netns`; returns its guard
/// once it runs.
fn start(
    tools: &Tools,
    scenario: &Scenario,
    system: System,
    cores: u32,
    netns: &Netns,
    ifname: &str,
) -> Result<ChildGuard> {
    match system {
        System::WarpcoreAfXdp
        | System::WarpcoreAfPacket
        | System::WarpcoreAfXdpPoll
        | System::WarpcoreAfPacketPoll => {
            let driver = match system {
                System::WarpcoreAfXdp | System::WarpcoreAfXdpPoll => "af-xdp",
                _ => "af-packet",
            };
            if driver == "af-xdp" {
                // The driver loads Debian's libxdp.so.1 at run time.
                ensure_programs("warpcore's AF_XDP NIC", &[("xdp-loader", "xdp-tools")])?;
            }
            let poll = matches!(
                system,
                System::WarpcoreAfXdpPoll | System::WarpcoreAfPacketPoll
            );
            let spec = echo_spec(cores, poll.then_some("poll"))?;
            let mut command = netns.command(&tools.hosted.to_string_lossy());
            command
                .arg("--spec")
                .arg(&spec)
                .args([
                    "--nic",
                    &format!("eth0={driver}:{ifname}"),
                    "--cores",
                    &cores.to_string(),
                    "--duration-secs",
                    &(scenario.duration_secs + 60).to_string(),
                ])
                .stderr(Stdio::inherit());
            let (guard, lines) = spawn_reading_lines(&mut command)?;
            wait_for_line(&lines, "warpcore-hosted: ready", START_WAIT)?;
            Ok(guard)
        }
        System::TestpmdAfXdp | System::TestpmdAfPacket => {
            ensure_programs("the testpmd peer", &[("dpdk-testpmd", "dpdk-dev")])?;
            let vdev = if system == System::TestpmdAfXdp {
                format!("net_af_xdp0,iface={ifname},start_queue=0,queue_count={cores}")
            } else {
                format!("net_af_packet0,iface={ifname},qpairs={cores}")
            };
            // Lcore 0 is the main one (it prints the stats each second and
            // sleeps otherwise), lcore 1 forwards, busy-polling: with two
            // CPUs that is all there is room for.
            ensure!(
                cores == 1,
                "testpmd runs one forwarding lcore here (a main lcore beside it)"
            );
            let mut command = netns.command("dpdk-testpmd");
            command
                .args([
                    "-l",
                    "0,1",
                    "--no-huge",
                    "-m",
                    "512",
                    "--no-pci",
                    "--file-prefix",
                    &format!("wcbench{}", std::process::id()),
                    "--vdev",
                    &vdev,
                    "--",
                    "--forward-mode=5tswap",
                    "--total-num-mbufs=32768",
                    &format!("--nb-cores={cores}"),
                    &format!("--rxq={cores}"),
                    &format!("--txq={cores}"),
                    "--stats-period=1",
                ])
                .stdin(Stdio::null())
                .stderr(Stdio::null());
            let (guard, lines) = spawn_reading_lines(&mut command)?;
            wait_for_line(&lines, "Port statistics", START_WAIT)
                .context("dpdk-testpmd did not start forwarding")?;
            Ok(guard)
        }
        other => bail!("{} does not run on a veth", other.name()),
    }
}

/// One UDP echo run of `system` on a veth pair: replies per second, and
/// loadgen's figures; prints the CPU the system used.
pub fn veth_echo(
    tools: &Tools,
    scenario: &Scenario,
    system: System,
    cores: u32,
) -> Result<(f64, Option<RunResult>)> {
    let client = Netns::create("wcbc")?;
    let server = Netns::create("wcbs")?;
    let veth = Veth::with_queues("wcbv", Some(&client), Some(&server), cores)?;
    client.configure(veth.first(), None)?;
    server.configure(veth.second(), None)?;
    let mut guard = start(tools, scenario, system, cores, &server, veth.second())?;
    let pid = guard.child_mut().id();
    let mut args = loadgen_args(scenario, veth.first(), true);
    args.extend(["--destination-mac".into(), ECHO_MAC.into()]);
    let (process_before, (busy_before, total_before)) =
        (process_cpu_seconds(pid)?, machine_cpu_seconds()?);
    let run = loadgen(tools, &client, &args)?;
    let (process_after, (busy_after, total_after)) =
        (process_cpu_seconds(pid)?, machine_cpu_seconds()?);
    ensure!(
        run.summary.received > 0,
        "no replies at all ({} sent)",
        run.summary.sent
    );
    let process = process_after - process_before;
    let machine_busy = busy_after - busy_before;
    let machine_total = total_after - total_before;
    let echoed = run.summary.received as f64;
    eprintln!(
        "xtask: [bench]   {}: {:.2} CPU-s of its own in a {:.2} s run ({:.0} % of a CPU), {:.0} echoes per CPU-second; machine {:.0} % busy of {:.0} CPU-s",
        system.name(),
        process,
        run.send_seconds,
        100.0 * process / run.send_seconds.max(1e-9),
        echoed / process.max(0.01),
        100.0 * machine_busy / machine_total.max(1e-9),
        machine_total,
    );
    drop(guard);
    Ok((run.received_pps, Some(run)))
}
