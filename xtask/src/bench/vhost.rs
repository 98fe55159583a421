//! The QEMU systems on the vhost-user backend: loadgen (`--vhost-user`) is
//! the guest's NIC, QEMU boots warpcore or the Linux peer guest with
//! `-netdev vhost-user` and its RAM in a shared memfd (the same command
//! line for both), and loadgen starts sending when the guest says its
//! service runs (`--wait-stdin`). Also the backend's own ceiling (a guest
//! that drops every frame at its NIC) with loadgen's engine and with DPDK
//! testpmd's `net_vhost` PMD as the backend instead.

use crate::bench::drive::loadgen_args;
use crate::bench::harness::Tools;
use crate::bench::schedstat;
use crate::counters::Counters;
use crate::qemu::command_line::{Accel, QemuConfig, vhost_user_nics_args};
use crate::qemu::session::QemuSession;
use crate::shell::host::ensure_programs;
use crate::shell::process::{ChildGuard, spawn_reading_lines};
use crate::spec_file::{self, example};
pub(crate) use crate::suites::echo_load::wait_json;
use anyhow::{Context, Result, bail, ensure};
use loadgen::run::RunResult;
use perf::scenario::{Scenario, System, Workload};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

/// The appliance's MAC in `examples/echo.toml`.
const ECHO_MAC: &str = "02:00:00:00:00:01";
/// A unicast MAC nobody owns: the ceiling runs' frames are dropped by the
/// guest's Ethernet stage, right after its NIC.
const FOREIGN_MAC: &str = "02:00:00:00:00:77";
/// The router's interfaces in `examples/router.toml`.
const ROUTER_MACS: [&str; 2] = ["02:00:00:00:01:01", "02:00:00:00:02:01"];
/// How long a guest may take to boot (TCG, a busy host).
const BOOT_TIMEOUT: Duration = Duration::from_secs(180);

/// What boots on the vhost-user devices.
#[derive(Clone, Copy)]
enum Guest<'a> {
    /// The appliance with this spec.
    Appliance(&'a Path),
    /// The Linux peer guest with these `wc.*` kernel-command-line settings.
    Linux(&'a str),
}

/// loadgen serving one or two vhost-user devices, and the guest booted on
/// them; both are killed and the sockets removed when it drops (QEMU
/// first, so it never sees its backend vanish mid-run).
struct Rig {
    guest: QemuSession,
    loadgen: ChildGuard,
    sockets: Vec<PathBuf>,
}

impl Drop for Rig {
    fn drop(&mut self) {
        for socket in &self.sockets {
            let _ = std::fs::remove_file(socket);
        }
    }
}

impl Rig {
    /// Starts loadgen with `args` on `macs.len()` sockets (the second, if
    /// any, receives forwarded probes), boots `guest` with one virtio-net
    /// device per socket and `cores` queue pairs each, and waits until the
    /// guest runs its service. loadgen waits for [`Rig::start`].
    fn boot(
        tools: &Tools,
        scenario: &Scenario,
        cores: u32,
        guest: Guest<'_>,
        macs: &[&str],
        args: &[String],
    ) -> Result<Self> {
        let sockets: Vec<PathBuf> = (0..macs.len())
            .map(|index| {
                std::env::temp_dir().join(format!(
                    "warpcore-bench-vhost-{}-{index}.sock",
                    std::process::id()
                ))
            })
            .collect();
        let mut command = Command::new(&tools.loadgen);
        command.arg("--vhost-user").arg(&sockets[0]);
        if let Some(receive) = sockets.get(1) {
            command.arg("--receive-vhost-user").arg(receive);
        }
        command
            .args(["--queues", &cores.to_string(), "--guest-timeout", "180"])
            .arg("--wait-stdin")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let loadgen = ChildGuard::spawn(&mut command)?;
        wait_for_sockets(&sockets)?;
        let nics: Vec<(&Path, &str)> = sockets
            .iter()
            .map(PathBuf::as_path)
            .zip(macs.iter().copied())
            .collect();
        let mut config = QemuConfig {
            smp: cores,
            accel: Accel::parse(&scenario.accel)?,
            extra_args: vhost_user_nics_args(&nics, cores as u16, QemuConfig::default().mem_mib),
            ..QemuConfig::default()
        };
        let guest = match guest {
            Guest::Appliance(spec) => {
                config.spec = Some(spec.to_owned());
                let mut session = QemuSession::start(&config, None)?;
                for core in 0..cores {
                    session.wait_for(&format!("core {core} appliance running"), 0, BOOT_TIMEOUT)?;
                }
                session
            }
            Guest::Linux(settings) => {
                config.spec = Some(tools.guest_initrd.clone());
                config.cmdline = format!("console=ttyS0 quiet {settings}");
                let mut session = QemuSession::start_kernel(&config, &tools.guest_kernel, None)?;
                session.wait_for("linux-guest ready", 0, BOOT_TIMEOUT)?;
                session
            }
        };
        Ok(Self {
            guest,
            loadgen,
            sockets,
        })
    }

    /// Tells loadgen to start sending.
    fn start(&mut self) -> Result<()> {
        let mut stdin = self
            .loadgen
            .child_mut()
            .stdin
            .take()
            .context("loadgen's stdin was not captured")?;
        stdin.write_all(b"start\n").context("starting loadgen")?;
        Ok(())
    }

    /// Starts loadgen and waits (bounded) for its JSON; prints how the
    /// host scheduled QEMU's and loadgen's threads meanwhile.
    fn run(&mut self, scenario: &Scenario) -> Result<RunResult> {
        let pids = [
            ("qemu", self.guest.pid()),
            ("loadgen", self.loadgen.child_mut().id()),
        ];
        let before: Vec<_> = pids
            .iter()
            .map(|(_, pid)| schedstat::sample(*pid))
            .collect();
        self.start()?;
        // loadgen's own worst case, so that it is not killed before it
        // says what went wrong: the TCP client's establishing, then the
        // warm-up and load, the last reply's timeout and its second of
        // slack; and a minute for the rest (start-up, exit).
        let bound = loadgen::tcp::client::ESTABLISH_TIMEOUT.as_secs()
            + scenario.warmup_secs
            + scenario.duration_secs
            + TCP_REPLY_TIMEOUT_MS.div_ceil(1000)
            + 1
            + 60;
        let result = wait_json(self.loadgen.child_mut(), bound).map_err(|error| {
            let log = self.guest.log();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            error.context(format!(
                "guest console (last lines, newest first):\n{}",
                tail.join("\n")
            ))
        });
        for ((name, pid), before) in pids.iter().zip(before) {
            // A loadgen that exited after its JSON has no threads left.
            if let (Ok(before), Ok(after)) = (before, schedstat::sample(*pid)) {
                eprintln!(
                    "xtask: [bench]   host: {}",
                    schedstat::describe(name, &before, &after)
                );
            }
        }
        result
    }

    /// The appliance's receive counter.
    fn received(&mut self) -> Result<u64> {
        Ok(self.counters()?.sum(None, &[("executor", "rx_packets")]))
    }

    fn counters(&mut self) -> Result<Counters> {
        self.guest.counters()
    }
}

/// Waits until loadgen (or testpmd) created every socket.
fn wait_for_sockets(sockets: &[PathBuf]) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    for socket in sockets {
        while !socket.exists() {
            if Instant::now() > deadline {
                bail!("the backend did not create {}", socket.display());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Ok(())
}

/// loadgen's arguments for `scenario` without the port (the rig adds the
/// sockets): closed loop with the scenario's window when `closed_loop`.
pub fn arguments(scenario: &Scenario, closed_loop: bool, destination_mac: &str) -> Vec<String> {
    let mut args = loadgen_args(scenario, "-", closed_loop);
    // `--interface -`: the rig names the sockets instead.
    args.drain(0..2);
    args.extend(["--destination-mac".into(), destination_mac.into()]);
    args
}

/// Replaces the value of `flag` in `args`.
pub fn set(args: &mut [String], flag: &str, value: &str) -> Result<()> {
    let at = args
        .iter()
        .position(|arg| arg == flag)
        .with_context(|| format!("loadgen args lack {flag}"))?;
    args[at + 1] = value.into();
    Ok(())
}

/// Prints what the device saw: frames each way, full receive rings, and
/// the guest's notifications.
fn print_device(run: &RunResult) {
    if let Some(device) = &run.vhost_user {
        eprintln!(
            "xtask: [bench]   vhost-user: {} frames to the guest, {} from it, {} sends found the receive ring full, {} calls, {} kicks, {} sleeps",
            device.frames_to_guest,
            device.frames_from_guest,
            device.receive_ring_full,
            device.calls,
            device.kicks,
            device.sleeps
        );
    }
    if let Some(client) = &run.tcp_client {
        let busy_ns = client.cpu_ns.saturating_sub(client.spin_ns);
        eprintln!(
            "xtask: [bench]   tcp client: {} replies, {} connects, {} failed, {} smoltcp polls; its thread {} ms on a CPU ({} ms polling before sleeps), {:.2} µs a reply besides",
            client.replies,
            client.connects,
            client.failures,
            client.polls,
            client.cpu_ns / 1_000_000,
            client.spin_ns / 1_000_000,
            busy_ns as f64 / 1000.0 / client.replies.max(1) as f64
        );
    }
    if let Some(device) = &run.vhost_user_receive {
        eprintln!(
            "xtask: [bench]   vhost-user (receiving device): {} frames from the guest, {} to it, {} calls, {} kicks, {} sleeps",
            device.frames_from_guest,
            device.frames_to_guest,
            device.calls,
            device.kicks,
            device.sleeps
        );
    }
}

/// The echo appliance's spec on `cores` cores.
fn echo_spec(cores: u32) -> Result<PathBuf> {
    crate::bench::systems::echo_spec(cores, None)
}

/// One run of `system` on the vhost-user backend.
pub fn measure(
    tools: &Tools,
    scenario: &Scenario,
    system: System,
    cores: u32,
) -> Result<(f64, Option<RunResult>)> {
    match (scenario.workload, system) {
        (
            Workload::UdpEcho | Workload::IcmpEcho | Workload::UdpLatency,
            System::WarpcoreQemu | System::WarpcoreQemuPoll | System::WarpcoreQemuHaltpoll,
        ) => {
            let spec = crate::bench::systems::echo_spec(cores, system.appliance_idle())?;
            let args = echo_arguments(scenario)?;
            let mut rig = Rig::boot(
                tools,
                scenario,
                cores,
                Guest::Appliance(&spec),
                &[ECHO_MAC],
                &args,
            )?;
            let run = rig.run(scenario)?;
            print_device(&run);
            print_effort(&mut rig);
            echoed(run)
        }
        (Workload::UdpEcho | Workload::IcmpEcho | Workload::UdpLatency, System::LinuxGuest) => {
            let args = echo_arguments(scenario)?;
            let mut rig = Rig::boot(
                tools,
                scenario,
                cores,
                Guest::Linux("wc.mode=echo wc.eth0=10.0.0.2/24"),
                &[ECHO_MAC],
                &args,
            )?;
            let run = rig.run(scenario)?;
            print_device(&run);
            echoed(run)
        }
        (Workload::UdpEcho | Workload::Sink, System::QemuCeiling) => {
            let spec = echo_spec(cores)?;
            let args = arguments(scenario, false, FOREIGN_MAC);
            let mut rig = Rig::boot(
                tools,
                scenario,
                cores,
                Guest::Appliance(&spec),
                &[ECHO_MAC],
                &args,
            )?;
            let before = rig.received()?;
            let run = rig.run(scenario)?;
            let after = rig.received()?;
            print_device(&run);
            ensure!(after > before, "the appliance received none of the frames");
            Ok(((after - before) as f64 / run.send_seconds, None))
        }
        (Workload::UdpEcho | Workload::Sink, System::TestpmdVhostCeiling) => {
            testpmd_ceiling(scenario, cores)
        }
        (Workload::L3fwd, System::WarpcoreQemu | System::LinuxGuest) => {
            let mut args = arguments(scenario, true, ROUTER_MACS[0]);
            set(&mut args, "--source-ip", "10.0.1.100")?;
            set(&mut args, "--destination-ip", "10.0.2.100")?;
            let router = Forwarder {
                spec_text: std::fs::read_to_string(example("router.toml"))?,
                linux_settings: "wc.mode=forward wc.eth0=10.0.1.1/24 wc.eth1=10.0.2.1/24".into(),
                name: "router",
            };
            let run = forward(tools, scenario, system, cores, &router, &args, |_| {})?;
            Ok((run.received_pps, Some(run)))
        }
        (
            Workload::HttpKeepalive | Workload::HttpLatency | Workload::KvGet | Workload::KvSet,
            System::WarpcoreQemu | System::WarpcoreQemuPoll | System::WarpcoreQemuHaltpoll,
        ) => {
            let spec = crate::bench::tcp::tcp_spec(cores, system.appliance_idle())?;
            let args = tcp_arguments(scenario)?;
            let rig = Rig::boot(
                tools,
                scenario,
                cores,
                Guest::Appliance(&spec),
                &[ECHO_MAC],
                &args,
            );
            let _ = std::fs::remove_file(&spec);
            let mut rig = rig?;
            let run = rig.run(scenario)?;
            print_device(&run);
            print_effort(&mut rig);
            echoed(run)
        }
        (
            Workload::HttpKeepalive | Workload::HttpLatency | Workload::KvGet | Workload::KvSet,
            System::LinuxGuest,
        ) => {
            let args = tcp_arguments(scenario)?;
            let mut rig = Rig::boot(
                tools,
                scenario,
                cores,
                Guest::Linux(&format!(
                    "wc.mode=tcp wc.eth0={}/24",
                    crate::bench::tcp::SERVER_ADDRESS
                )),
                &[ECHO_MAC],
                &args,
            )?;
            let run = rig.run(scenario)?;
            print_device(&run);
            echoed(run)
        }
        (workload, System::WarpcoreQemu | System::LinuxGuest) if workload.is_appliance() => {
            crate::bench::appliances::appliance_run_vhost_user(tools, scenario, system, cores)
        }
        (workload, system) => bail!(
            "{workload:?} is not measured on {} over vhost-user",
            system.name()
        ),
    }
}

/// A guest that forwards from its first interface (10.0.1.1) to its
/// second (10.0.2.1), as warpcore or as the Linux guest.
pub struct Forwarder {
    /// warpcore's spec (virtio interfaces with the router's MACs).
    pub spec_text: String,
    /// The Linux guest's `wc.*` kernel-command-line settings.
    pub linux_settings: String,
    /// What it is, for messages (`router`, `firewall`...).
    pub name: &'static str,
}

/// Runs `system` as `forwarder` on two vhost-user devices with the
/// router's MACs, loadgen serving both (`args` plus the sockets): probes
/// sent into the first device, counted as they come out of the second.
/// `report` sees the guest after the run, whether it succeeded or not.
pub fn forward(
    tools: &Tools,
    scenario: &Scenario,
    system: System,
    cores: u32,
    forwarder: &Forwarder,
    args: &[String],
    report: impl FnOnce(&mut QemuSession),
) -> Result<RunResult> {
    let spec = if system == System::WarpcoreQemu {
        // The examples name no queues: one pair, as on the tap (more cores
        // need a spec with `queues = 1` lines to raise).
        let text = if cores > 1 {
            spec_file::with_queues(&forwarder.spec_text, cores)?
        } else {
            forwarder.spec_text.clone()
        };
        Some(spec_file::temporary(
            &format!("bench-vhost-{}-{cores}", forwarder.name),
            &text,
        )?)
    } else {
        None
    };
    let guest = match &spec {
        Some(spec) => Guest::Appliance(spec),
        None => Guest::Linux(&forwarder.linux_settings),
    };
    let rig = Rig::boot(tools, scenario, cores, guest, &ROUTER_MACS, args);
    if let Some(spec) = &spec {
        let _ = std::fs::remove_file(spec);
    }
    let mut rig = rig?;
    let run = rig.run(scenario);
    if let Ok(run) = &run {
        print_device(run);
    }
    if system == System::WarpcoreQemu {
        print_effort(&mut rig);
    }
    report(&mut rig.guest);
    let run = run?;
    ensure!(
        run.summary.received > 0,
        "nothing came through the {} ({} sent)",
        forwarder.name,
        run.summary.sent
    );
    Ok(run)
}

/// loadgen's arguments for the echo workloads: closed loop with the
/// scenario's window, or `udp-latency`'s fixed rate, open loop.
fn echo_arguments(scenario: &Scenario) -> Result<Vec<String>> {
    if scenario.workload != Workload::UdpLatency {
        return Ok(arguments(scenario, true, ECHO_MAC));
    }
    ensure!(
        scenario.rate > 0,
        "udp-latency needs a rate: none given and no linux-guest udp-echo peak measured earlier in this run on this backend"
    );
    let mut args = arguments(scenario, false, ECHO_MAC);
    let count = (scenario.rate * scenario.duration_secs).min(scenario.max_probes);
    set(&mut args, "--count", &count.to_string())?;
    args.extend(["--rate".into(), scenario.rate.to_string()]);
    Ok(args)
}

/// How long loadgen's TCP client waits for a reply before it fails the
/// request and reconnects (`--timeout-ms`).
const TCP_REPLY_TIMEOUT_MS: u64 = 2000;

/// loadgen's arguments for the TCP workloads over vhost-user: its smoltcp
/// client (`--workload http|memcache-get|memcache-set`) with the
/// scenario's connections, one request outstanding each; `http-latency`
/// at the scenario's fixed rate with its warm-up. Connection-per-request
/// (`http-close`) is not among them: the client keeps its connections.
fn tcp_arguments(scenario: &Scenario) -> Result<Vec<String>> {
    let protocol = match scenario.workload {
        Workload::HttpKeepalive | Workload::HttpLatency => "http",
        Workload::KvGet => "memcache-get",
        Workload::KvSet => "memcache-set",
        other => bail!("{other:?} is not a TCP workload loadgen's client runs"),
    };
    let mut args: Vec<String> = [
        "--workload",
        protocol,
        "--source-ip",
        "10.0.0.100",
        "--destination-ip",
        crate::bench::tcp::SERVER_ADDRESS,
        "--json",
    ]
    .iter()
    .map(|arg| (*arg).to_owned())
    .collect();
    args.extend(["--timeout-ms".into(), TCP_REPLY_TIMEOUT_MS.to_string()]);
    args.extend([
        "--connections".into(),
        scenario.connections.to_string(),
        "--duration".into(),
        scenario.duration_secs.to_string(),
        "--warmup".into(),
        scenario.warmup_secs.to_string(),
    ]);
    if scenario.workload == Workload::HttpLatency {
        ensure!(
            scenario.rate > 0,
            "http-latency needs a rate: none given and no linux-guest http-keepalive peak measured earlier in this run on this backend"
        );
        args.extend(["--rate".into(), scenario.rate.to_string()]);
    }
    Ok(args)
}

/// Echo workloads: replies per second while loadgen was sending.
fn echoed(run: RunResult) -> Result<(f64, Option<RunResult>)> {
    ensure!(
        run.summary.received > 0,
        "no replies at all ({} sent)",
        run.summary.sent
    );
    Ok((run.received_pps, Some(run)))
}

/// Prints how the appliance spent the run (packets per poll, per sleep,
/// per TX notification).
fn print_effort(rig: &mut Rig) {
    let Ok(counters) = rig.counters() else {
        return;
    };
    let sum = |labels: &[(&str, &str)]| counters.sum(None, labels);
    let rx = sum(&[("executor", "rx_packets")]);
    let per = |count: u64| rx as f64 / count.max(1) as f64;
    eprintln!(
        "xtask: [bench]   appliance: {rx} packets, {:.1} per poll, {:.0} per sleep, {:.0} per TX notification",
        per(sum(&[("executor", "polls")])),
        per(sum(&[("idle", "sleeps")])),
        per(sum(&[("stat", "notifications")])),
    );
}

/// DPDK testpmd as the vhost-user backend (`net_vhost`, `txonly`) of the
/// echo appliance, sending UDP to a MAC the appliance does not own: frames
/// the appliance received per second over `duration_secs` (its counter
/// read before and after), beside testpmd's own Tx-pps.
fn testpmd_ceiling(scenario: &Scenario, cores: u32) -> Result<(f64, Option<RunResult>)> {
    ensure_programs(
        "the testpmd vhost-user peer",
        &[("dpdk-testpmd", "dpdk-dev")],
    )?;
    ensure!(
        cores == 1,
        "testpmd runs one forwarding lcore here (a main lcore beside it)"
    );
    let socket = std::env::temp_dir().join(format!(
        "warpcore-bench-testpmd-{}.sock",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&socket);
    let mut command = Command::new("dpdk-testpmd");
    command
        .args(["-l", "0,1", "--no-huge", "-m", "512", "--no-pci"])
        .args([
            "--file-prefix",
            &format!("wcbenchvhost{}", std::process::id()),
        ])
        .args([
            "--vdev",
            &format!("net_vhost0,iface={},queues={cores}", socket.display()),
            "--",
            "--forward-mode=txonly",
            &format!("--eth-peer=0,{FOREIGN_MAC}"),
            "--tx-ip=10.0.0.100,10.0.0.2",
            "--tx-udp=40000,7",
            &format!("--txpkts={}", scenario.payload + 42),
            "--total-num-mbufs=32768",
            "--nb-cores=1",
            "--stats-period=1",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::null());
    let (testpmd, lines) = spawn_reading_lines(&mut command)?;
    let result = testpmd_run(scenario, cores, &socket, &lines);
    drop(testpmd);
    let _ = std::fs::remove_file(&socket);
    result
}

fn testpmd_run(
    scenario: &Scenario,
    cores: u32,
    socket: &Path,
    lines: &Receiver<String>,
) -> Result<(f64, Option<RunResult>)> {
    wait_for_sockets(&[socket.to_owned()])?;
    let spec = echo_spec(cores)?;
    let config = QemuConfig {
        smp: cores,
        accel: Accel::parse(&scenario.accel)?,
        spec: Some(spec),
        extra_args: vhost_user_nics_args(
            &[(socket, ECHO_MAC)],
            cores as u16,
            QemuConfig::default().mem_mib,
        ),
        ..QemuConfig::default()
    };
    let mut guest = QemuSession::start(&config, None)?;
    for core in 0..cores {
        guest.wait_for(&format!("core {core} appliance running"), 0, BOOT_TIMEOUT)?;
    }
    let received = |guest: &mut QemuSession| -> Result<u64> {
        Ok(guest.counters()?.sum(None, &[("executor", "rx_packets")]))
    };
    // Let testpmd see the link come up and start sending.
    std::thread::sleep(Duration::from_secs(1));
    while lines.try_recv().is_ok() {}
    let before = received(&mut guest)?;
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(scenario.duration_secs));
    let after = received(&mut guest)?;
    let seconds = started.elapsed().as_secs_f64();
    let mut tx_pps: Vec<u64> = Vec::new();
    while let Ok(line) = lines.try_recv() {
        if let Some(value) = line
            .split("Tx-pps:")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|value| value.parse().ok())
        {
            tx_pps.push(value);
        }
    }
    tx_pps.sort_unstable();
    let median = tx_pps.get(tx_pps.len() / 2).copied().unwrap_or(0);
    let pps = after.saturating_sub(before) as f64 / seconds;
    eprintln!(
        "xtask: [bench]   testpmd: median Tx-pps {median} over {} stats lines; the appliance received {} frames in {seconds:.1} s",
        tx_pps.len(),
        after.saturating_sub(before)
    );
    ensure!(
        after > before,
        "the appliance received none of testpmd's frames"
    );
    Ok((pps, None))
}
