//! The vhost-user suite: loadgen as the guest's NIC (`--vhost-user`), QEMU
//! booting the appliance with `-netdev vhost-user` on shared memory, and
//! loadgen's accounting checked exactly: every probe echoed once (one and
//! two queue pairs), and every probe lost when the appliance has no echo
//! service (its receive counter shows they arrived). Every run is bounded
//! in count and time; QEMU and loadgen are killed when a case ends.

use crate::bench::vhost::wait_json;
use crate::qemu::command_line::{QemuConfig, vhost_user_nic_args};
use crate::qemu::image::ensure_qemu;
use crate::qemu::session::QemuSession;
use crate::shell::process::ChildGuard;
use crate::spec_file::{self, example};
use crate::suites::runner::{self, Case, Filter};
use anyhow::{Context, Result, bail, ensure};
use loadgen::run::RunResult;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The suite's name in `--only` and in its summary line.
const SUITE: &str = "vhost-user";
/// The appliance's MAC and address in `examples/echo.toml`.
const ECHO_MAC: &str = "02:00:00:00:00:01";
const ECHO_IP: &str = "10.0.0.2";
/// Probes per run.
const PROBES: u64 = 5000;
/// Probes outstanding in the echo runs.
const WINDOW: u64 = 32;
const WINDOW_TEXT: &str = "32";
/// How long the appliance may take to boot.
const BOOT_TIMEOUT: Duration = Duration::from_secs(120);

/// One case: the cores (and queue pairs), the spec text, and what to check.
struct Test {
    cores: u32,
    echo: bool,
    /// Boot the Linux peer guest (its echo server) instead of the appliance.
    linux: bool,
    /// loadgen's TCP client against the appliance's `http` app
    /// (`perf/specs/tcp.toml`) instead of UDP probes.
    tcp: bool,
}

/// HTTP requests of the `tcp-http` case, over its connections.
const REQUESTS: u64 = 2000;
const REQUESTS_TEXT: &str = "2000";

fn cases() -> Vec<Case<Test>> {
    vec![
        Case::new(
            "echo",
            "loadgen --vhost-user as the appliance's NIC: 5000 UDP probes, 5000 echoed, 0 lost, \
             0 duplicated, no ring errors",
            Test {
                cores: 1,
                echo: true,
                linux: false,
                tcp: false,
            },
        ),
        Case::new(
            "multi-queue",
            "two vCPUs, two queue pairs, two flows: 5000 probes, 5000 echoed, 0 lost, 0 duplicated",
            Test {
                cores: 2,
                echo: true,
                linux: false,
                tcp: false,
            },
        ),
        Case::new(
            "drop",
            "the appliance without its echo service: 5000 probes arrive (its receive counter) \
             and exactly 5000 are lost",
            Test {
                cores: 1,
                echo: false,
                linux: false,
                tcp: false,
            },
        ),
        Case::new(
            "linux-guest",
            "the bench harness's Linux peer guest (virtio-net driver, its UDP echo server) on \
             the same backend and QEMU command line: 5000 probes, at least 4968 echoed (one \
             window may be lost while it resolves ARP), none twice",
            Test {
                cores: 1,
                echo: true,
                linux: true,
                tcp: false,
            },
        ),
        Case::new(
            "tcp-http",
            "loadgen's TCP client (smoltcp) as the appliance's NIC: 16 keep-alive connections to \
             its http app, 2000 GET / requests, 2000 whole 200 replies, none failed, no ring errors",
            Test {
                cores: 1,
                echo: true,
                linux: false,
                tcp: true,
            },
        ),
    ]
}

/// The names of the vhost-user tests, for `--list`.
pub fn names() -> Vec<String> {
    runner::names(SUITE, &cases())
}

/// Runs the vhost-user tests `filter` selects; fails if any failed.
pub fn run(filter: &Filter) -> Result<()> {
    runner::run(
        SUITE,
        cases(),
        filter,
        || {
            ensure_qemu()?;
            crate::suites::binaries::loadgen()
        },
        |loadgen, test| run_case(loadgen, test),
    )
}

/// The spec a case boots: echo.toml with one queue pair per core, or
/// without its echo service.
fn spec_for(test: &Test) -> Result<PathBuf> {
    if test.tcp {
        return crate::bench::tcp::tcp_spec(test.cores, None);
    }
    let text = std::fs::read_to_string(example("echo.toml"))?;
    let mut text = spec_file::with_queues(&text, test.cores)?;
    if !test.echo {
        let service = text
            .find("[[service]]")
            .context("echo.toml has no [[service]] table")?;
        text.truncate(service);
    }
    let name = format!(
        "vhost-user-{}-{}",
        test.cores,
        if test.echo { "echo" } else { "drop" }
    );
    spec_file::temporary(&name, &text)
}

fn run_case(loadgen: &Path, test: &Test) -> Result<()> {
    let guest = if test.linux {
        Some(crate::bench::harness::LinuxGuest::build()?)
    } else {
        None
    };
    let spec = spec_for(test)?;
    let socket = std::env::temp_dir().join(format!("warpcore-vhost-{}.sock", std::process::id()));
    let flows = test.cores.to_string();
    let count = PROBES.to_string();
    let mut arguments = vec![
        "--count",
        &count,
        "--flows",
        &flows,
        "--duration",
        "60",
        "--timeout-ms",
        "2000",
    ];
    if test.tcp {
        // No --count of probes: the client's own count of requests.
        arguments = vec![
            "--workload",
            "http",
            "--connections",
            "16",
            "--count",
            REQUESTS_TEXT,
            "--duration",
            "60",
            "--timeout-ms",
            "2000",
        ];
    } else {
        // Echo runs keep a window of 32 outstanding; a guest that answers
        // nothing would hold that window shut until every timeout, so the
        // drop run is paced instead (a full receive ring delays probes,
        // never loses them).
        arguments.extend(if test.echo {
            ["--window", WINDOW_TEXT]
        } else {
            ["--rate", "20000"]
        });
    }
    let result = drive(
        loadgen,
        &spec,
        &socket,
        test.cores,
        &arguments,
        guest.as_ref(),
    );
    let _ = std::fs::remove_file(&spec);
    let _ = std::fs::remove_file(&socket);
    let (run, received_by_appliance) = result?;
    let summary = &run.summary;
    let device = run
        .vhost_user
        .context("loadgen reported no device counters")?;
    eprintln!(
        "xtask: [{SUITE}] sent {}, received {}, lost {}, duplicates {}, {:.0} pps, p99 {} us; \
         device: {} calls, {} kicks, {} sleeps; appliance received {received_by_appliance}",
        summary.sent,
        summary.received,
        summary.lost,
        summary.duplicates,
        run.received_pps,
        summary.latency_p99_ns.unwrap_or(0) / 1000,
        device.calls,
        device.kicks,
        device.sleeps,
    );
    if test.tcp {
        ensure!(
            summary.sent == REQUESTS && summary.received == REQUESTS && summary.lost == 0,
            "expected {REQUESTS} requests sent and answered, none lost: {summary:?}"
        );
        let client = run
            .tcp_client
            .as_ref()
            .context("loadgen reported no TCP client counters")?;
        ensure!(
            client.failures == 0 && client.malformed_frames == 0,
            "the TCP client counted {} failed requests or handshakes and {} malformed frames: {client:?}",
            client.failures,
            client.malformed_frames
        );
        ensure!(
            device.errors == Default::default(),
            "ring errors: {:?}",
            device.errors
        );
        ensure!(
            received_by_appliance >= REQUESTS,
            "the appliance received {received_by_appliance} frames, fewer than the {REQUESTS} requests"
        );
        return Ok(());
    }
    ensure!(summary.sent == PROBES, "sent {} of {PROBES}", summary.sent);
    ensure!(
        device.errors == Default::default(),
        "ring errors: {:?}",
        device.errors
    );
    ensure!(
        summary.duplicates == 0 && summary.foreign == 0,
        "{summary:?}"
    );
    if test.linux {
        // Measured: the Linux guest loses exactly one window (32) of a
        // 5000-probe run, all else echoed once; unverified cause, most
        // likely the probes that arrive while it resolves 10.0.0.100 by
        // ARP for its first reply. It must echo everything else.
        ensure!(
            summary.received + WINDOW >= PROBES && summary.received + summary.lost == PROBES,
            "expected at least {} of {PROBES} echoed: {summary:?}",
            PROBES - WINDOW
        );
    } else if test.echo {
        ensure!(
            summary.received == PROBES && summary.lost == 0,
            "expected {PROBES} echoed, 0 lost: {summary:?}"
        );
    } else {
        ensure!(
            summary.received == 0 && summary.lost == PROBES,
            "expected 0 echoed, {PROBES} lost: {summary:?}"
        );
        ensure!(
            received_by_appliance >= PROBES,
            "the appliance received {received_by_appliance} frames, fewer than the {PROBES} probes"
        );
    }
    Ok(())
}

/// Starts loadgen on `socket`, boots the appliance with `spec` on it, and
/// waits (bounded) for loadgen's JSON; also the appliance's received-frame
/// counter after the run.
fn drive(
    loadgen: &Path,
    spec: &Path,
    socket: &Path,
    cores: u32,
    arguments: &[&str],
    linux: Option<&crate::bench::harness::LinuxGuest>,
) -> Result<(RunResult, u64)> {
    let mut command = Command::new(loadgen);
    command
        .arg("--vhost-user")
        .arg(socket)
        .args(["--queues", &cores.to_string()])
        .args(["--source-ip", "10.0.0.100", "--destination-ip", ECHO_IP])
        .args([
            "--destination-mac",
            ECHO_MAC,
            "--guest-timeout",
            "120",
            "--json",
        ])
        .args(arguments)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut generator = ChildGuard::spawn(&mut command)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() {
        if Instant::now() > deadline {
            bail!("loadgen did not create {}", socket.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut config = QemuConfig {
        smp: cores,
        spec: Some(spec.to_owned()),
        extra_args: vhost_user_nic_args(
            socket,
            ECHO_MAC,
            cores as u16,
            QemuConfig::default().mem_mib,
        ),
        ..QemuConfig::default()
    };
    if let Some(guest) = linux {
        // The harness's peer guest, as `bench::systems::linux_guest` boots
        // it, on this backend.
        config.spec = Some(guest.initrd.clone());
        config.cmdline = format!("console=ttyS0 quiet wc.mode=echo wc.eth0={ECHO_IP}/24");
        let mut session = QemuSession::start_kernel(&config, &guest.kernel, None)?;
        session.wait_for("linux-guest ready", 0, BOOT_TIMEOUT)?;
        let run = wait_json(generator.child_mut(), 200)
            .map_err(|error| error.context(format!("console:\n{}", session.log())))?;
        return Ok((run, 0));
    }
    let mut appliance = QemuSession::start(&config, None)?;
    for core in 0..cores {
        appliance.wait_for(&format!("core {core} appliance running"), 0, BOOT_TIMEOUT)?;
    }
    let run = wait_json(generator.child_mut(), 200)
        .map_err(|error| error.context(format!("console:\n{}", appliance.log())))?;
    let received = appliance
        .counters()?
        .sum(None, &[("executor", "rx_packets")]);
    Ok((run, received))
}
