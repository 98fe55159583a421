//! The benchmark harness: for each scenario, core count, system under test
//! and repetition, build the network (namespaces, taps, veths), boot or start
//! the system, drive it with loadgen, and tear everything down, also on
//! failure. Results go into a `perf::report::Report`.

use crate::appliance_tests::{boot, tap_nic_args};
use crate::netns::{ChildGuard, Netns, Tap, Veth};
use crate::qemu::{Accel, QemuConfig, QemuSession};
use crate::shell::{self, cargo, workspace_root};
use anyhow::{Context, Result, bail, ensure};
use loadgen::run::RunResult;
use perf::results::{Measurement, Outcome};
use perf::scenario::{Scenario, System, Workload};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The appliance's MAC and address in `examples/echo.toml`.
const ECHO_MAC: &str = "02:00:00:00:00:01";
const ECHO_ADDRESS: &str = "10.0.0.2";
/// Where loadgen sends from: not an address the namespace's kernel owns.
const LOADGEN_ADDRESS: &str = "10.0.0.100";
/// loadgen's MAC on the wire: not the tap's own, so replies reach the
/// namespace's kernel as "other host" frames that it drops before IP
/// routing, which keeps the host's per-reply work (done in QEMU's thread
/// when QEMU writes to the tap) to the AF_PACKET copy loadgen reads.
const LOADGEN_MAC: &str = "02:00:00:00:00:64";
/// A unicast MAC nobody owns: the ceiling run's frames are dropped at the NIC.
const FOREIGN_MAC: &str = "02:00:00:00:00:77";
/// The router's interfaces in `examples/router.toml`.
const ROUTER_MACS: [&str; 2] = ["02:00:00:00:01:01", "02:00:00:00:02:01"];
const BOOT_TIMEOUT: Duration = Duration::from_secs(120);

/// Built programs and images every measurement needs.
pub struct Tools {
    loadgen: PathBuf,
    hosted: PathBuf,
    echo_server_host: PathBuf,
    guest_kernel: PathBuf,
    guest_initrd: PathBuf,
}

impl Tools {
    /// Builds loadgen, the hosted runtime, the echo server (host and static
    /// builds) and the Linux peer guest.
    pub fn build() -> Result<Self> {
        let root = workspace_root();
        shell::run(
            "build loadgen, hosted, echo server",
            cargo().args([
                "build",
                "--release",
                "-p",
                "loadgen",
                "-p",
                "warpcore-hosted",
                "-p",
                "perf",
            ]),
        )?;
        shell::run(
            "build static echo server",
            cargo()
                .args([
                    "build",
                    "--release",
                    "-p",
                    "perf",
                    "--bin",
                    "udp-echo-server",
                ])
                .args(["--target", "x86_64-unknown-linux-gnu"])
                .env("RUSTFLAGS", "-C target-feature=+crt-static"),
        )?;
        let static_echo = root.join("target/x86_64-unknown-linux-gnu/release/udp-echo-server");
        let guest = root.join("target/linux-guest");
        shell::run(
            "build Linux peer guest",
            std::process::Command::new("bash")
                .arg(root.join("scripts/build-linux-guest.sh"))
                .arg(&guest)
                .arg(&static_echo),
        )?;
        let release = root.join("target/release");
        Ok(Self {
            loadgen: release.join("loadgen"),
            hosted: release.join("warpcore-hosted"),
            echo_server_host: release.join("udp-echo-server"),
            guest_kernel: guest.join("bzImage"),
            guest_initrd: guest.join("initramfs.cpio.gz"),
        })
    }
}

/// Runs every scenario on every system it names; a system that fails is
/// recorded with its reason and the run goes on.
pub fn measure_all(tools: &Tools, scenarios: &[Scenario]) -> Vec<Measurement> {
    let mut measurements = Vec::new();
    for scenario in scenarios {
        for &cores in &scenario.cores {
            for &system in &scenario.systems {
                for repetition in 0..scenario.repetitions {
                    let started = Instant::now();
                    let outcome = match measure(tools, scenario, system, cores) {
                        Ok((pps, run)) => Outcome::Measured { pps, run },
                        Err(error) => Outcome::Failed {
                            reason: format!("{error:#}"),
                        },
                    };
                    let shown = match &outcome {
                        Outcome::Measured { pps, .. } => format!("{pps:.0} pps"),
                        Outcome::Failed { reason } => {
                            format!("FAILED: {}", reason.lines().next().unwrap_or(""))
                        }
                    };
                    eprintln!(
                        "xtask: [bench] {} {}c {} #{repetition}: {shown} ({:.0} s)",
                        scenario.name,
                        cores,
                        system.name(),
                        started.elapsed().as_secs_f64()
                    );
                    measurements.push(Measurement {
                        scenario: scenario.name.clone(),
                        workload: scenario.workload,
                        system,
                        cores,
                        repetition,
                        outcome,
                    });
                }
            }
        }
    }
    measurements
}

/// Prints how the appliance spent the run: packets per poll, per halt and
/// per TX doorbell (the guest's share of QEMU's per-packet work).
fn print_appliance_effort(appliance: &mut QemuSession) {
    let Ok(counters) = appliance.counters() else {
        return;
    };
    let sum = |labels: &[(&str, &str)]| counters.sum(None, labels);
    let rx = sum(&[("executor", "rx_packets")]);
    let per = |count: u64| rx as f64 / count.max(1) as f64;
    eprintln!(
        "xtask: [bench]   appliance: {rx} packets, {:.1} per poll, {:.0} per halt, {:.0} per TX doorbell, {} woken by packet",
        per(sum(&[("executor", "polls")])),
        per(sum(&[("idle", "halts")])),
        per(sum(&[("stat", "notifications")])),
        sum(&[("idle", "wakeups_by_packet")]),
    );
}

/// One run: packets per second, and loadgen's figures when replies came back.
fn measure(
    tools: &Tools,
    scenario: &Scenario,
    system: System,
    cores: u32,
) -> Result<(f64, Option<RunResult>)> {
    match (scenario.workload, system) {
        (Workload::UdpEcho | Workload::IcmpEcho, System::WarpcoreQemu) => {
            let lan = Lan::with_taps(1, cores > 1)?;
            let spec = echo_spec(cores)?;
            let mut appliance = boot(&spec, cores, &lan.netns, &lan.tap_names(), cores as u16)?;
            let result = echo_run(tools, scenario, &lan.netns, lan.tap());
            if result.is_ok() {
                print_appliance_effort(&mut appliance);
            }
            result
        }
        (Workload::UdpEcho | Workload::IcmpEcho, System::LinuxGuest) => {
            let lan = Lan::with_taps(1, cores > 1)?;
            let _guest = linux_guest(
                tools,
                scenario,
                cores,
                &lan.netns,
                &lan.tap_names(),
                &[ECHO_MAC],
                "wc.mode=echo wc.eth0=10.0.0.2/24",
            )?;
            echo_run(tools, scenario, &lan.netns, lan.tap())
        }
        (Workload::UdpEcho | Workload::Sink, System::QemuCeiling) => {
            let lan = Lan::with_taps(1, cores > 1)?;
            let spec = echo_spec(cores)?;
            let mut appliance = boot(&spec, cores, &lan.netns, &lan.tap_names(), cores as u16)?;
            let rx = |session: &mut QemuSession| -> Result<u64> {
                Ok(session.counters()?.sum(None, &[("executor", "rx_packets")]))
            };
            let before = rx(&mut appliance)?;
            let mut args = loadgen_args(scenario, lan.tap(), false);
            args.extend(["--destination-mac".into(), FOREIGN_MAC.into()]);
            let run = loadgen(tools, &lan.netns, &args)?;
            let after = rx(&mut appliance)?;
            ensure!(after > before, "the appliance received none of the frames");
            Ok(((after - before) as f64 / run.send_seconds, None))
        }
        (Workload::UdpEcho | Workload::IcmpEcho, System::WarpcoreHosted) => {
            let lan = Lan::with_taps(1, cores > 1)?;
            let spec = echo_spec(cores)?;
            let _hosted = hosted(tools, scenario, cores, &lan.netns, &spec, lan.tap())?;
            echo_run(tools, scenario, &lan.netns, lan.tap())
        }
        (Workload::UdpEcho | Workload::IcmpEcho, System::LinuxHost) => {
            let client = Netns::create("wcbc")?;
            let server = Netns::create("wcbs")?;
            let veth = Veth::create("wcbv", Some(&client), Some(&server))?;
            client.configure(veth.first(), None)?;
            server.configure(veth.second(), Some("10.0.0.2/24"))?;
            let mut command = server.command(&tools.echo_server_host.to_string_lossy());
            command.args(["--port", "7"]).stdout(Stdio::null());
            let _server = ChildGuard::spawn(&mut command)?;
            echo_run(tools, scenario, &client, veth.first())
        }
        (Workload::L3fwd, System::WarpcoreQemu) => {
            let net = Lan::with_taps(2, cores > 1)?;
            let spec = workspace_root().join("examples/router.toml");
            let taps = net.tap_names();
            let _router = boot(&spec, cores, &net.netns, &taps, cores as u16)?;
            forward_run(tools, scenario, &net.netns, [taps[0], taps[1]])
        }
        (Workload::L3fwd, System::LinuxGuest) => {
            let net = Lan::with_taps(2, cores > 1)?;
            let taps = net.tap_names();
            let _guest = linux_guest(
                tools,
                scenario,
                cores,
                &net.netns,
                &taps,
                &ROUTER_MACS,
                "wc.mode=forward wc.eth0=10.0.1.1/24 wc.eth1=10.0.2.1/24",
            )?;
            forward_run(tools, scenario, &net.netns, [taps[0], taps[1]])
        }
        (workload, system) => bail!("{workload:?} is not measured on {}", system.name()),
    }
}

/// A namespace with taps that QEMU or the hosted runtime uses and loadgen
/// drives from the namespace's side. Taps go before the namespace on drop.
struct Lan {
    taps: Vec<Tap>,
    netns: Netns,
}

impl Lan {
    fn with_taps(count: usize, multi_queue: bool) -> Result<Self> {
        let netns = Netns::create("wcb")?;
        let mut taps = Vec::with_capacity(count);
        for _ in 0..count {
            let tap = Tap::create("wcbt", Some(&netns), multi_queue)?;
            netns.configure(tap.name(), None)?;
            taps.push(tap);
        }
        Ok(Self { taps, netns })
    }

    fn tap(&self) -> &str {
        self.taps[0].name()
    }

    fn tap_names(&self) -> Vec<&str> {
        self.taps.iter().map(Tap::name).collect()
    }
}

/// `examples/echo.toml` with one queue pair per core.
fn echo_spec(cores: u32) -> Result<PathBuf> {
    let source = workspace_root().join("examples/echo.toml");
    let text = std::fs::read_to_string(&source).with_context(|| source.display().to_string())?;
    ensure!(
        text.contains("queues = 1"),
        "{} no longer says `queues = 1`",
        source.display()
    );
    let path = std::env::temp_dir().join(format!(
        "warpcore-bench-{}-echo-{cores}.toml",
        std::process::id()
    ));
    std::fs::write(
        &path,
        text.replace("queues = 1", &format!("queues = {cores}")),
    )?;
    Ok(path)
}

/// Boots the Linux peer guest under the appliance's QEMU command line.
fn linux_guest(
    tools: &Tools,
    scenario: &Scenario,
    cores: u32,
    netns: &Netns,
    taps: &[&str],
    macs: &[&str],
    settings: &str,
) -> Result<QemuSession> {
    let mut extra_args = Vec::new();
    for (index, (tap, mac)) in taps.iter().zip(macs).enumerate() {
        extra_args.extend(tap_nic_args(index, tap, mac, cores as u16));
    }
    let config = QemuConfig {
        smp: cores,
        accel: scenario.accel.parse::<Accel>()?,
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
fn hosted(
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
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut guard = ChildGuard::spawn(&mut command)?;
    let stdout = guard
        .child_mut()
        .stdout
        .take()
        .context("hosted stdout was not captured")?;
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("ready") {
                let _ = sender.send(());
            }
        }
    });
    receiver
        .recv_timeout(Duration::from_secs(30))
        .context("warpcore-hosted printed no ready line within 30 s")?;
    Ok(guard)
}

/// loadgen's arguments for `scenario` on `interface`.
fn loadgen_args(scenario: &Scenario, interface: &str, closed_loop: bool) -> Vec<String> {
    let workload = match scenario.workload {
        Workload::IcmpEcho => "icmp",
        Workload::UdpEcho | Workload::L3fwd | Workload::Sink => "udp",
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
    if closed_loop && scenario.window > 0 {
        args.extend(["--window".into(), scenario.window.to_string()]);
    }
    args
}

/// Runs loadgen in `netns` and parses its JSON.
fn loadgen(tools: &Tools, netns: &Netns, args: &[String]) -> Result<RunResult> {
    let mut command = netns.command(&tools.loadgen.to_string_lossy());
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
fn echo_run(
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
fn forward_run(
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
