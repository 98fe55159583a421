//! The benchmark harness: for each scenario, core count, system under test
//! and repetition, build the network (namespaces, taps, veths), boot or start
//! the system, drive it with loadgen, and tear everything down, also on
//! failure. Results go into a `perf::report::Report`.

use crate::bench::appliances::appliance_run;
use crate::bench::drive::{echo_run, forward_run, loadgen, loadgen_args};
use crate::bench::management::management_load_run;
use crate::bench::systems::{
    echo_spec, echo_spec_on, hosted, linux_guest, multi_queue_tap, spec_on,
};
use crate::bench::tcp::{CLIENT_ADDRESS, HostServers, tcp_run, tcp_spec, wait_for_servers};
use crate::bench::veth::veth_echo;
use crate::net::devices::{Lan, Veth};
use crate::net::netns::Netns;
use crate::qemu::session::QemuSession;
use crate::shell::host::{target_dir, workspace_root};
use crate::shell::process::{ChildGuard, cargo, run as run_step};
use crate::spec_file::{self, example};
use anyhow::{Result, bail, ensure};
use loadgen::run::RunResult;
use perf::results::{Measurement, Outcome};
use perf::scenario::{Backend, GuestNic, Scenario, System, Workload};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Instant;

/// The appliance's MAC in `examples/echo.toml`.
const ECHO_MAC: &str = "02:00:00:00:00:01";
/// A unicast MAC nobody owns: the ceiling run's frames are dropped at the NIC.
const FOREIGN_MAC: &str = "02:00:00:00:00:77";
/// The router's interfaces in `examples/router.toml`.
const ROUTER_MACS: [&str; 2] = ["02:00:00:00:01:01", "02:00:00:00:02:01"];

/// Built programs and images every measurement needs.
pub struct Tools {
    /// loadgen.
    pub loadgen: PathBuf,
    /// warpcore-hosted.
    pub hosted: PathBuf,
    /// The UDP echo server the Linux host runs.
    pub echo_server_host: PathBuf,
    /// The TCP request/response client.
    pub tcp_load: PathBuf,
    /// The Linux peer guest's kernel.
    pub guest_kernel: PathBuf,
    /// The Linux peer guest's initramfs.
    pub guest_initrd: PathBuf,
}

impl Tools {
    /// Builds loadgen, the hosted runtime, the echo server (host and static
    /// builds), tcp-load and the Linux peer guest.
    pub fn build() -> Result<Self> {
        run_step(
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
                "-p",
                "udp-echo-server",
            ]),
        )?;
        let guest = LinuxGuest::build()?;
        let release = target_dir().join("release");
        Ok(Self {
            loadgen: release.join("loadgen"),
            hosted: release.join("warpcore-hosted"),
            echo_server_host: release.join("udp-echo-server"),
            tcp_load: release.join("tcp-load"),
            guest_kernel: guest.kernel,
            guest_initrd: guest.initrd,
        })
    }
}

/// The Linux peer guest alone: what `cargo xtask test`'s
/// `vhost-user/linux-guest` boots, without the rest of [`Tools`] (the
/// harness's loadgen, hosted and perf builds, which that case never runs).
pub struct LinuxGuest {
    /// The guest's kernel.
    pub kernel: PathBuf,
    /// The guest's initramfs, with the static UDP echo server in it.
    pub initrd: PathBuf,
}

impl LinuxGuest {
    /// Builds the static echo server (its own crate: three dependencies,
    /// not perf's) and, from it, the guest
    /// (`scripts/build-linux-guest.sh`, cached under `target/linux-guest`).
    pub fn build() -> Result<Self> {
        let root = workspace_root();
        run_step(
            "build static echo server",
            cargo()
                .args(["build", "--release", "-p", "udp-echo-server"])
                .args(["--target", "x86_64-unknown-linux-gnu"])
                .env("RUSTFLAGS", "-C target-feature=+crt-static"),
        )?;
        let static_echo = target_dir().join("x86_64-unknown-linux-gnu/release/udp-echo-server");
        let guest = target_dir().join("linux-guest");
        run_step(
            "build Linux peer guest",
            std::process::Command::new("bash")
                .arg(root.join("scripts/build-linux-guest.sh"))
                .arg(&guest)
                .arg(&static_echo),
        )?;
        Ok(Self {
            kernel: guest.join("bzImage"),
            initrd: guest.join("initramfs.cpio.gz"),
        })
    }
}

/// Runs every scenario on every system it names; a system that fails is
/// recorded with its reason and the run goes on. A scenario with
/// `interleave` runs its systems' repetitions in turn (A B C A B C …),
/// others one system's repetitions together.
pub fn measure_all(tools: &Tools, scenarios: &[Scenario]) -> Vec<Measurement> {
    let mut measurements = Vec::new();
    // Idle scenarios measure no rate: see `bench::idle`.
    for scenario in scenarios
        .iter()
        .filter(|scenario| scenario.workload != Workload::Idle)
    {
        for &cores in &scenario.cores {
            let runs: Vec<(Backend, System)> = scenario
                .backends
                .iter()
                .flat_map(|&backend| {
                    scenario
                        .systems
                        .iter()
                        .filter(move |system| system.runs_on(backend))
                        .map(move |&system| (backend, system))
                })
                .collect();
            let order: Vec<(usize, u32)> = if scenario.interleave {
                (0..scenario.repetitions)
                    .flat_map(|repetition| (0..runs.len()).map(move |run| (run, repetition)))
                    .collect()
            } else {
                (0..runs.len())
                    .flat_map(|run| {
                        (0..scenario.repetitions).map(move |repetition| (run, repetition))
                    })
                    .collect()
            };
            // Each system's scenario, its offered rate settled before its
            // first repetition.
            let mut settled: Vec<Option<Scenario>> = vec![None; runs.len()];
            for (run, repetition) in order {
                let (backend, system) = runs[run];
                let scenario = settled[run].get_or_insert_with(|| {
                    settle_rate(scenario, &measurements, backend, system, cores)
                });
                measurements.push(measure_repetition(
                    tools, scenario, backend, system, cores, repetition,
                ));
            }
        }
    }
    measurements
}

/// `scenario` with the offered rate of the latency workloads filled in
/// from the peers measured so far.
fn settle_rate(
    scenario: &Scenario,
    measurements: &[Measurement],
    backend: Backend,
    system: System,
    cores: u32,
) -> Scenario {
    let mut scenario = scenario.clone();
    if scenario.workload == Workload::HttpLatency && scenario.rate == 0 {
        scenario.rate = half_peer_peak(measurements, backend, system, cores);
        eprintln!(
            "xtask: [bench] {} on {}: offering {} requests/s (half the Linux peer's http-keepalive peak)",
            scenario.name,
            backend.name(),
            scenario.rate
        );
    }
    if scenario.workload == Workload::UdpLatency && scenario.rate == 0 {
        scenario.rate = half_linux_guest_echo_peak(measurements, backend, cores);
        eprintln!(
            "xtask: [bench] {} on {}: offering {} pps (half the linux-guest udp-echo peak)",
            scenario.name,
            backend.name(),
            scenario.rate
        );
    }
    scenario
}

/// One repetition of `system` in `scenario`, measured or failed.
fn measure_repetition(
    tools: &Tools,
    scenario: &Scenario,
    backend: Backend,
    system: System,
    cores: u32,
    repetition: u32,
) -> Measurement {
    let started = Instant::now();
    let measured = if scenario.workload == Workload::UdpEchoManagementLoad {
        management_load_run(tools, scenario, system, cores)
            .map(|(pps, run, load)| (pps, run, Some(Box::new(load))))
    } else if backend == Backend::VhostUser {
        crate::bench::vhost::measure(tools, scenario, system, cores)
            .map(|(pps, run)| (pps, run, None))
    } else {
        measure(tools, scenario, system, cores).map(|(pps, run)| (pps, run, None))
    };
    let outcome = match measured {
        Ok((pps, run, management)) => Outcome::Measured {
            pps,
            run: run.map(Box::new),
            management,
        },
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
        "xtask: [bench] {} {}c {} on {} #{repetition}: {shown} ({:.0} s)",
        scenario.name,
        cores,
        system.name(),
        backend.name(),
        started.elapsed().as_secs_f64()
    );
    Measurement {
        scenario: scenario.name.clone(),
        workload: scenario.workload,
        system,
        backend,
        cores,
        repetition,
        outcome,
    }
}

/// Half of the Linux guest's best `udp-echo` rate measured so far in this
/// run on `backend` at `cores` cores; 0 when there is none.
fn half_linux_guest_echo_peak(measurements: &[Measurement], backend: Backend, cores: u32) -> u64 {
    let peak = measurements
        .iter()
        .filter(|m| {
            m.workload == Workload::UdpEcho
                && m.system == System::LinuxGuest
                && m.backend == backend
                && m.cores == cores
        })
        .filter_map(|m| match m.outcome {
            Outcome::Measured { pps, .. } => Some(pps),
            Outcome::Failed { .. } => None,
        })
        .fold(0.0, f64::max);
    (peak / 2.0) as u64
}

/// Half of the Linux peer's best `http-keepalive` rate measured so far in
/// this run at `cores` cores on `backend`: the Linux guest for the QEMU
/// systems, the Linux host for the hosted ones; 0 when there is none.
fn half_peer_peak(
    measurements: &[Measurement],
    backend: Backend,
    system: System,
    cores: u32,
) -> u64 {
    let peer = match system {
        System::WarpcoreQemu
        | System::WarpcoreQemuPoll
        | System::WarpcoreQemuHaltpoll
        | System::LinuxGuest
        | System::QemuCeiling => System::LinuxGuest,
        System::WarpcoreHosted
        | System::LinuxHost
        | System::WarpcoreAfXdp
        | System::WarpcoreAfPacket
        | System::WarpcoreAfXdpPoll
        | System::WarpcoreAfPacketPoll
        | System::WarpcoreAfPacketRing
        | System::TestpmdAfXdp
        | System::TestpmdAfPacket
        | System::TestpmdVhostCeiling => System::LinuxHost,
    };
    let peak = measurements
        .iter()
        .filter(|m| {
            m.workload == Workload::HttpKeepalive
                && m.system == peer
                && m.cores == cores
                && m.backend == backend
        })
        .filter_map(|m| match m.outcome {
            Outcome::Measured { pps, .. } => Some(pps),
            Outcome::Failed { .. } => None,
        })
        .fold(0.0, f64::max);
    (peak / 2.0) as u64
}

/// Prints how the appliance spent the run: packets per poll, per sleep and
/// per TX doorbell (the guest's share of QEMU's per-packet work).
pub fn print_appliance_effort(appliance: &mut QemuSession) {
    let Ok(counters) = appliance.counters() else {
        return;
    };
    let sum = |labels: &[(&str, &str)]| counters.sum(None, labels);
    let rx = sum(&[("executor", "rx_packets")]);
    let per = |count: u64| rx as f64 / count.max(1) as f64;
    // virtio-net counts its transmit notifications; igb its tail writes,
    // receive refills and transmit bursts together.
    let (doorbells, doorbell) = match sum(&[("stat", "notifications")]) {
        0 => (sum(&[("stat", "doorbells")]), "tail write (rx + tx)"),
        notifications => (notifications, "TX doorbell"),
    };
    eprintln!(
        "xtask: [bench]   appliance: {rx} packets, {:.1} per poll, {:.0} per sleep, {:.0} per {doorbell}, {} woken by packet",
        per(sum(&[("executor", "polls")])),
        per(sum(&[("idle", "sleeps")])),
        per(doorbells),
        sum(&[("idle", "wakeups_by_packet")]),
    );
    // On several cores, each core's share and what woke it: a doorbell
    // wake-up is another core's IPI (a ring it fed while this one slept).
    let cores = counters.cores();
    if cores.len() > 1 {
        for core in cores {
            let of = |labels: &[(&str, &str)]| counters.sum(Some(core), labels);
            eprintln!(
                "xtask: [bench]   core {core}: {} packets, {} polls ({} empty), {} sleeps ({} refused), woken by packet {}, doorbell {}, timer {}, other {}",
                of(&[("executor", "rx_packets")]),
                of(&[("executor", "polls")]),
                of(&[("executor", "idle_polls")]),
                of(&[("idle", "sleeps")]),
                of(&[("idle", "sleeps_refused")]),
                of(&[("idle", "wakeups_by_packet")]),
                of(&[("idle", "wakeups_by_doorbell")]),
                of(&[("idle", "wakeups_by_timer")]),
                of(&[("idle", "wakeups_by_other")]),
            );
        }
    }
}

/// The echo appliance on `cores` cores with one queue pair each (busy
/// polling when `poll`), booted on a tap of its own network. The session
/// comes first, so QEMU is gone before its tap when the pair drops.
fn echo_appliance(cores: u32, idle: Option<&str>, nic: GuestNic) -> Result<(QemuSession, Lan)> {
    let lan = Lan::create(1, multi_queue_tap(nic, cores), None)?;
    let spec = echo_spec_on(cores, idle, nic)?;
    let appliance =
        QemuSession::boot_appliance(&spec, cores, &lan.netns, &lan.tap_names(), cores as u16)?;
    Ok((appliance, lan))
}

/// One run: packets per second, and loadgen's figures when replies came back.
fn measure(
    tools: &Tools,
    scenario: &Scenario,
    system: System,
    cores: u32,
) -> Result<(f64, Option<RunResult>)> {
    match (scenario.workload, system) {
        (
            Workload::UdpEcho | Workload::IcmpEcho,
            System::WarpcoreQemu | System::WarpcoreQemuPoll | System::WarpcoreQemuHaltpoll,
        ) => {
            let (mut appliance, lan) =
                echo_appliance(cores, system.appliance_idle(), scenario.nic)?;
            let result = echo_run(tools, scenario, &lan.netns, lan.tap());
            if result.is_ok() {
                print_appliance_effort(&mut appliance);
            }
            result
        }
        (Workload::UdpEcho | Workload::IcmpEcho, System::LinuxGuest) => {
            let lan = Lan::create(1, multi_queue_tap(scenario.nic, cores), None)?;
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
            let (mut appliance, lan) = echo_appliance(cores, None, scenario.nic)?;
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
            let lan = Lan::create(1, cores > 1, None)?;
            let spec = echo_spec(cores, None)?;
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
            let net = Lan::create(2, multi_queue_tap(scenario.nic, cores), None)?;
            let text = std::fs::read_to_string(example("router.toml"))?;
            let spec = spec_file::temporary(
                &format!("bench-router-{cores}"),
                &spec_on(&text, scenario.nic),
            )?;
            let taps = net.tap_names();
            let router = QemuSession::boot_appliance(&spec, cores, &net.netns, &taps, cores as u16);
            let _ = std::fs::remove_file(&spec);
            let _router = router?;
            forward_run(tools, scenario, &net.netns, [taps[0], taps[1]])
        }
        (Workload::L3fwd, System::LinuxGuest) => {
            let net = Lan::create(2, multi_queue_tap(scenario.nic, cores), None)?;
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
        (
            workload,
            System::WarpcoreQemu | System::WarpcoreQemuPoll | System::WarpcoreQemuHaltpoll,
        ) if workload.is_tcp() => {
            let lan = Lan::create(1, cores > 1, Some(CLIENT_ADDRESS))?;
            let spec = tcp_spec(cores, system.appliance_idle())?;
            let mut appliance = QemuSession::boot_appliance(
                &spec,
                cores,
                &lan.netns,
                &lan.tap_names(),
                cores as u16,
            )?;
            wait_for_servers(&lan.netns)?;
            let result = tcp_run(tools, scenario, &lan.netns);
            if result.is_ok() {
                print_appliance_effort(&mut appliance);
            }
            result
        }
        (workload, System::LinuxGuest) if workload.is_tcp() => {
            let lan = Lan::create(1, cores > 1, Some(CLIENT_ADDRESS))?;
            let _guest = linux_guest(
                tools,
                scenario,
                cores,
                &lan.netns,
                &lan.tap_names(),
                &[ECHO_MAC],
                "wc.mode=tcp wc.eth0=10.0.0.2/24",
            )?;
            wait_for_servers(&lan.netns)?;
            tcp_run(tools, scenario, &lan.netns)
        }
        (workload, System::WarpcoreHosted) if workload.is_tcp() => {
            let lan = Lan::create(1, cores > 1, Some(CLIENT_ADDRESS))?;
            let spec = tcp_spec(cores, None)?;
            let _hosted = hosted(tools, scenario, cores, &lan.netns, &spec, lan.tap())?;
            wait_for_servers(&lan.netns)?;
            tcp_run(tools, scenario, &lan.netns)
        }
        (workload, System::LinuxHost) if workload.is_tcp() => {
            let client = Netns::create("wcbc")?;
            let server = Netns::create("wcbs")?;
            let veth = Veth::create("wcbv", Some(&client), Some(&server))?;
            client.configure(veth.first(), Some(CLIENT_ADDRESS))?;
            server.configure(veth.second(), Some("10.0.0.2/24"))?;
            server.configure("lo", None)?;
            let _servers = HostServers::start(&server, &client, cores)?;
            tcp_run(tools, scenario, &client)
        }
        (
            Workload::UdpEcho,
            System::WarpcoreAfXdp
            | System::WarpcoreAfPacket
            | System::WarpcoreAfXdpPoll
            | System::WarpcoreAfPacketPoll
            | System::WarpcoreAfPacketRing
            | System::TestpmdAfXdp
            | System::TestpmdAfPacket,
        ) => veth_echo(tools, scenario, system, cores),
        (workload, System::WarpcoreQemu | System::LinuxGuest) if workload.is_appliance() => {
            appliance_run(tools, scenario, system, cores)
        }
        (workload, system) => bail!("{workload:?} is not measured on {}", system.name()),
    }
}
