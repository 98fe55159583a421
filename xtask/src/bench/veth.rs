//! UDP echo hosted on a veth pair, one end for loadgen and one for the
//! system under test: warpcore-hosted through AF_XDP or AF_PACKET, and
//! DPDK's `dpdk-testpmd` (5tswap, which echoes like our UDP echo) through
//! its `net_af_xdp` or `net_af_packet` PMD. The `-poll` warpcore systems
//! run the spec with `idle = "poll"`, busy-polling like testpmd. Besides packets per second,
//! the CPU time the system's process used during the run is printed,
//! since testpmd busy-polls and warpcore sleeps when idle: packets per
//! CPU-second is the fair comparison. loadgen is pinned to one CPU and the
//! system's worker (or forwarding lcore) to the other, the same pair for
//! every system, and loadgen's CPU and the softirq time are printed too.

use crate::bench::drive::{loadgen_args, loadgen_pinned};
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
/// The host CPU the system's one worker runs on (warpcore-hosted pins its
/// first core's worker to the first CPU; testpmd's forwarding lcore is put
/// there with `--main-lcore`), and the one loadgen is pinned to: every
/// system meets loadgen on the same pair of CPUs.
const SYSTEM_CPU: u32 = 0;
const LOADGEN_CPU: u32 = 1;
/// How long a system may take to say it runs.
const START_WAIT: Duration = Duration::from_secs(60);

/// User + system CPU seconds from a `/proc/PID/stat` line's fields after
/// the command: `utime stime` (fields 14 and 15) or, with `children`,
/// `cutime cstime` (16 and 17: the children it waited for).
fn stat_cpu_seconds(text: &str, children: bool) -> Result<f64> {
    // Fields after the command (which may hold spaces) end at ')'.
    let rest = text.rsplit_once(')').context("/proc/PID/stat shape")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let range = if children { 13..15 } else { 11..13 };
    let ticks: u64 = fields
        .get(range)
        .context("/proc/PID/stat too short")?
        .iter()
        .map(|field| field.parse::<u64>().unwrap_or(0))
        .sum();
    Ok(ticks as f64 / clock_ticks_per_second())
}

/// CPU time (user + system) of process `pid` and its threads so far, in
/// seconds.
fn process_cpu_seconds(pid: u32) -> Result<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    stat_cpu_seconds(&text, false)
}

/// CPU time of this process's children that have exited and been waited
/// for, in seconds: around one loadgen run, loadgen's own (`ip netns exec`
/// execs it in place).
fn waited_children_cpu_seconds() -> Result<f64> {
    let text = std::fs::read_to_string("/proc/self/stat").context("reading /proc/self/stat")?;
    stat_cpu_seconds(&text, true)
}

/// The whole machine's CPU time so far, from `/proc/stat`, in seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct MachineCpu {
    /// Not idle.
    busy: f64,
    /// Everything.
    total: f64,
    /// In softirqs (the veth's NAPI polls, the receive paths), where the
    /// kernel accounts them apart from the processes.
    softirq: f64,
}

impl MachineCpu {
    fn read() -> Result<Self> {
        let text = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
        Self::parse(&text).context("/proc/stat has no `cpu` line")
    }

    /// The `cpu` line: user nice system idle iowait irq softirq steal, in
    /// ticks.
    fn parse(text: &str) -> Option<Self> {
        let line = text.lines().find(|line| line.starts_with("cpu "))?;
        let values: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .map(|field| field.parse().unwrap_or(0))
            .collect();
        let total: u64 = values.iter().take(8).sum();
        let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
        let hz = clock_ticks_per_second();
        Some(Self {
            busy: total.saturating_sub(idle) as f64 / hz,
            total: total as f64 / hz,
            softirq: values.get(6).copied().unwrap_or(0) as f64 / hz,
        })
    }

    fn since(self, before: Self) -> Self {
        Self {
            busy: self.busy - before.busy,
            total: self.total - before.total,
            softirq: self.softirq - before.softirq,
        }
    }
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
        | System::WarpcoreAfPacketPoll
        | System::WarpcoreAfPacketRing => {
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
            if system == System::WarpcoreAfPacketRing {
                // testpmd's transmit path, for comparison with the
                // `sendmmsg` the default picks on a veth.
                command.args(["--af-packet-tx", "ring"]);
            }
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
            // Lcore 1 is the main one (it prints the stats each second and
            // sleeps otherwise, beside loadgen), lcore 0 forwards,
            // busy-polling, on the CPU warpcore's worker gets: with two
            // CPUs that is all there is room for.
            ensure!(
                cores == 1,
                "testpmd runs one forwarding lcore here (a main lcore beside it)"
            );
            let mut command = netns.command("dpdk-testpmd");
            command
                .args([
                    "-l",
                    &format!("{SYSTEM_CPU},{LOADGEN_CPU}"),
                    "--main-lcore",
                    &LOADGEN_CPU.to_string(),
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
    if scenario.window > 0 {
        // Full bursts each way, whatever batching the run starts in.
        args.push("--whole-bursts".into());
    }
    let (process_before, loadgen_before, machine_before) = (
        process_cpu_seconds(pid)?,
        waited_children_cpu_seconds()?,
        MachineCpu::read()?,
    );
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let pin = (cpus > LOADGEN_CPU as usize).then_some(LOADGEN_CPU);
    let run = loadgen_pinned(tools, &client, &args, pin)?;
    let (process_after, loadgen_after, machine_after) = (
        process_cpu_seconds(pid)?,
        waited_children_cpu_seconds()?,
        MachineCpu::read()?,
    );
    ensure!(
        run.summary.received > 0,
        "no replies at all ({} sent)",
        run.summary.sent
    );
    let process = process_after - process_before;
    let loadgen_cpu = loadgen_after - loadgen_before;
    let machine = machine_after.since(machine_before);
    let echoed = run.summary.received as f64;
    let seconds = run.send_seconds.max(1e-9);
    eprintln!(
        "xtask: [bench]   {}: {:.2} CPU-s of its own in a {:.2} s run ({:.0} % of a CPU), {:.0} echoes per CPU-second; \
         loadgen ({} engine) {:.0} % of a CPU; softirqs {:.0} % of a CPU (inside those and others); machine {:.0} % busy of {:.0} CPU-s",
        system.name(),
        process,
        run.send_seconds,
        100.0 * process / seconds,
        echoed / process.max(0.01),
        scenario.loadgen_engine.name(),
        100.0 * loadgen_cpu / seconds,
        100.0 * machine.softirq / seconds,
        100.0 * machine.busy / machine.total.max(1e-9),
        machine.total,
    );
    drop(guard);
    Ok((run.received_pps, Some(run)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_process_and_machine_cpu_time() {
        // A command with spaces and a parenthesis, as /proc shows them.
        let stat = "4242 (a (b) c) S 1 2 3 4 5 6 7 8 9 10 150 50 30 20 20 0 1";
        assert_eq!(stat_cpu_seconds(stat, false).unwrap(), 2.0);
        assert_eq!(stat_cpu_seconds(stat, true).unwrap(), 0.5);
        assert!(stat_cpu_seconds("4242 (x) S 1 2", false).is_err());
        assert!(stat_cpu_seconds("no parenthesis", false).is_err());
        let proc_stat = "cpu  100 0 50 800 50 0 25 0 0 0\ncpu0 50 0 25 400 25 0 12 0 0 0\nintr 1\n";
        let machine = MachineCpu::parse(proc_stat).unwrap();
        assert_eq!(
            machine,
            MachineCpu {
                busy: 1.75,
                total: 10.25,
                softirq: 0.25
            }
        );
        let later = MachineCpu {
            busy: 2.75,
            total: 12.25,
            softirq: 0.75,
        };
        assert_eq!(
            later.since(machine),
            MachineCpu {
                busy: 1.0,
                total: 2.0,
                softirq: 0.5
            }
        );
        assert_eq!(MachineCpu::parse("intr 1\n"), None);
    }
}
