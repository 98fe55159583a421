//! The appliance under QEMU answering real traffic: every test creates its own
//! network namespaces and tap devices (torn down by guards, also on failure),
//! boots the kernel with a spec, and drives it with `arping`, `ping` and the
//! `__udp-client` helper run inside the namespace. Every traffic loop is bounded
//! in count and time. Counters come from the kernel's serial dump
//! (`kernel/src/counters_dump.rs`).

use anyhow::{Context, Result, bail, ensure};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::netns::{self, Netns, Tap, Veth};
use crate::qemu::{self, QemuConfig, QemuSession, exit_status};

/// How long a boot may take until every core runs the appliance.
const BOOT_TIMEOUT: Duration = Duration::from_secs(90);

/// Arguments that give QEMU one virtio-net device on `tap` (index `index`).
pub fn tap_nic_args(index: usize, tap: &str, mac: &str, queues: u16) -> Vec<String> {
    let mut netdev = format!("tap,id=net{index},ifname={tap},script=no,downscript=no,vhost=off");
    let mut device = format!("virtio-net-pci,netdev=net{index},mac={mac},romfile=");
    if queues > 1 {
        netdev.push_str(&format!(",queues={queues}"));
        device.push_str(&format!(",mq=on,vectors={}", 2 * queues + 2));
    }
    vec!["-netdev".into(), netdev, "-device".into(), device]
}

/// The `mac = "..."` values of a spec's interfaces, in order.
pub fn spec_macs(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| {
            let (key, value) = line.split_once('=')?;
            (key.trim() == "mac").then(|| value.trim().trim_matches('"').to_owned())
        })
        .collect()
}

pub(crate) fn example(name: &str) -> PathBuf {
    qemu::workspace_root().join("examples").join(name)
}

/// Writes `text` to a spec file unique to this process and test.
fn temporary_spec(name: &str, text: &str) -> Result<PathBuf> {
    let path = std::env::temp_dir().join(format!("warpcore-{}-{name}.toml", std::process::id()));
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// A namespace with one tap at `address` (CIDR) for the appliance's interface.
pub(crate) struct Lan {
    pub(crate) tap: Tap,
    pub(crate) netns: Netns,
}

impl Lan {
    pub(crate) fn create(address: &str, multi_queue: bool) -> Result<Self> {
        let netns = Netns::create("wca")?;
        let tap = Tap::create("wct", Some(&netns), multi_queue)?;
        netns.configure(tap.name(), Some(address))?;
        Ok(Self { tap, netns })
    }
}

/// Boots `spec` with `smp` cores and one NIC per entry of `taps` (all in
/// `netns`), and waits until every core runs the appliance.
pub(crate) fn boot(
    spec: &Path,
    smp: u32,
    netns: &Netns,
    taps: &[&str],
    queues: u16,
) -> Result<QemuSession> {
    let text = std::fs::read_to_string(spec).with_context(|| spec.display().to_string())?;
    let macs = spec_macs(&text);
    ensure!(
        macs.len() == taps.len(),
        "{} names {} MACs for {} taps",
        spec.display(),
        macs.len(),
        taps.len()
    );
    let mut extra_args = Vec::new();
    for (index, (tap, mac)) in taps.iter().zip(&macs).enumerate() {
        extra_args.extend(tap_nic_args(index, tap, mac, queues));
    }
    let config = QemuConfig {
        smp,
        spec: Some(spec.to_owned()),
        extra_args,
        ..QemuConfig::default()
    };
    let mut session = QemuSession::start(&config, Some(netns.name()))?;
    for core in 0..smp {
        session.wait_for(&format!("core {core} appliance running"), 0, BOOT_TIMEOUT)?;
    }
    Ok(session)
}

/// Pings until one reply comes back (the appliance may still be settling),
/// bounded to `attempts` one-second tries.
pub(crate) fn wait_reachable(netns: &Netns, address: &str, attempts: u32) -> Result<()> {
    for _ in 0..attempts {
        let output = netns.output(&["ping", "-c", "1", "-W", "1", address])?;
        if output.status.success() {
            return Ok(());
        }
    }
    bail!("{address} never answered a ping from {}", netns.name())
}

/// Runs `ping ARGS` in `netns` and requires a reply to every one of its `-c`
/// requests; returns ping's output.
///
/// Without a deadline ping stops waiting about 10 ms (or two round trips)
/// after its last request, so a guest that stalls briefly near the end
/// "loses" the tail although every reply arrives. With `-w` ping waits, and
/// may send extra probes meanwhile; so the check is that icmp_seq 1..=count
/// were all answered, not the loss percentage.
pub(crate) fn ping_no_loss(netns: &Netns, args: &[&str]) -> Result<String> {
    let count: u32 = args
        .windows(2)
        .find(|pair| pair[0] == "-c")
        .and_then(|pair| pair[1].parse().ok())
        .context("ping_no_loss needs -c COUNT")?;
    let mut full = vec!["ping", "-n", "-w", "30"];
    full.extend_from_slice(args);
    let output = netns.output(&full)?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let unanswered: Vec<u32> = (1..=count)
        .filter(|seq| !text.contains(&format!(" icmp_seq={seq} ")))
        .collect();
    ensure!(
        unanswered.is_empty(),
        "`{}` got no reply to icmp_seq {unanswered:?}:\n{text}",
        full.join(" ")
    );
    eprintln!(
        "xtask: [ping] {}: all {count} answered ({})",
        full.join(" "),
        text.lines()
            .find(|line| line.contains("packet loss"))
            .unwrap_or("")
    );
    Ok(text)
}

/// Runs the UDP client inside `netns` with `args`; returns its stdout.
pub(crate) fn udp_client(netns: &Netns, args: &[&str]) -> Result<String> {
    let me = std::env::current_exe().context("locating the xtask binary")?;
    let mut command = netns.command(&me.to_string_lossy());
    command.arg("__udp-client").args(args);
    let output = netns::checked_output(&mut command)?;
    eprintln!(
        "xtask: [appliance] udp client {}: {}",
        args.join(" "),
        output.trim()
    );
    Ok(output)
}

/// Checks an `udp-echo sent=N received=N identical=N` line: everything back, identical.
pub(crate) fn check_echo(output: &str, expected: usize) -> Result<()> {
    let want = format!("udp-echo sent={expected} received={expected} identical={expected}");
    ensure!(
        output.contains(&want),
        "expected `{want}`, got `{}`",
        output.trim()
    );
    Ok(())
}

/// An invalid spec is refused with an error naming the field, and a failure exit.
fn invalid_spec_is_refused() -> Result<()> {
    let text =
        std::fs::read_to_string(example("echo.toml"))?.replace("10.0.0.2/24", "10.0.0.300/24");
    let spec = temporary_spec("invalid", &text)?;
    let config = QemuConfig {
        spec: Some(spec.clone()),
        ..QemuConfig::default()
    };
    let outcome = qemu::run_scenario(&config, Duration::from_secs(60));
    let _ = std::fs::remove_file(&spec);
    let outcome = outcome?;
    ensure!(
        outcome.exit_code == Some(exit_status::FAILURE),
        "expected the failure exit, got {}:\n{}",
        outcome.describe_exit(),
        outcome.serial_log
    );
    let line = outcome
        .serial_log
        .lines()
        .find(|line| line.contains("refusing to start"))
        .context("no `refusing to start` line")?;
    ensure!(
        line.contains("spec error") && line.contains("address"),
        "the refusal does not name the field: {line}"
    );
    eprintln!("xtask: [appliance] {line}");
    Ok(())
}

/// examples/echo.toml: ARP, ping (small and 1472-byte), UDP echo, closed port.
fn echo_answers() -> Result<()> {
    let lan = Lan::create("10.0.0.1/24", false)?;
    let mut session = boot(&example("echo.toml"), 1, &lan.netns, &[lan.tap.name()], 1)?;
    let result = (|| -> Result<()> {
        wait_reachable(&lan.netns, "10.0.0.2", 20)?;
        let arping = lan.netns.output(&[
            "arping",
            "-c",
            "3",
            "-w",
            "10",
            "-I",
            lan.tap.name(),
            "10.0.0.2",
        ])?;
        let text = String::from_utf8_lossy(&arping.stdout);
        ensure!(
            text.contains("Received 3 response"),
            "arping did not get 3 replies:\n{text}"
        );
        eprintln!("xtask: [appliance] arping -c 3: Received 3 responses");
        ping_no_loss(&lan.netns, &["-c", "100", "-i", "0.01", "10.0.0.2"])?;
        ping_no_loss(&lan.netns, &["-c", "5", "-s", "1472", "10.0.0.2"])?;
        let output = udp_client(&lan.netns, &["echo", "10.0.0.2:7", "1", "200"])?;
        check_echo(&output, 200)?;
        let output = udp_client(&lan.netns, &["closed", "10.0.0.2:9999"])?;
        ensure!(
            output.contains("udp-closed refused=true"),
            "no ICMP port unreachable for a closed port: {output}"
        );
        Ok(())
    })();
    result.map_err(|error| error.context(format!("console:\n{}", session.log())))?;
    drop(session.counters()?);
    Ok(())
}

/// examples/router.toml: two namespaces ping each other through the appliance,
/// with the TTL decremented once.
fn router_forwards() -> Result<()> {
    let host = Netns::create("wcq")?;
    let left = Netns::create("wcl")?;
    let right = Netns::create("wcr")?;
    let mut taps = Vec::new();
    let mut links = Vec::new();
    for (side, address, gateway) in [
        (&left, "10.0.1.2/24", "10.0.1.1"),
        (&right, "10.0.2.2/24", "10.0.2.1"),
    ] {
        let tap = Tap::create("wct", Some(&host), false)?;
        let bridge = netns::unique_name("wcb");
        host.ip(&["link", "add", &bridge, "type", "bridge"])?;
        host.ip(&["link", "set", &bridge, "up"])?;
        let veth = Veth::create("wcv", Some(&host), Some(side))?;
        host.ip(&["link", "set", tap.name(), "master", &bridge])?;
        host.ip(&["link", "set", veth.first(), "master", &bridge])?;
        host.configure(tap.name(), None)?;
        side.configure(veth.second(), Some(address))?;
        side.ip(&["route", "add", "default", "via", gateway])?;
        taps.push(tap);
        links.push(veth);
    }
    let tap_names: Vec<&str> = taps.iter().map(Tap::name).collect();
    let mut session = boot(&example("router.toml"), 1, &host, &tap_names, 1)?;
    let result = (|| -> Result<()> {
        wait_reachable(&left, "10.0.1.1", 20)?;
        wait_reachable(&left, "10.0.2.2", 20)?;
        for (from, to) in [(&left, "10.0.2.2"), (&right, "10.0.1.2")] {
            let text = ping_no_loss(from, &["-c", "5", to])?;
            ensure!(
                text.contains("ttl=63"),
                "replies from {to} should carry TTL 63 (64, forwarded once):\n{text}"
            );
        }
        Ok(())
    })();
    result.map_err(|error| error.context(format!("console:\n{}", session.log())))?;
    drop(session.counters()?);
    Ok(())
}

/// Two cores, two queue pairs: several UDP flows land on both cores.
fn multi_queue_spreads_flows() -> Result<()> {
    let text = std::fs::read_to_string(example("echo.toml"))?.replace("queues = 1", "queues = 2");
    ensure!(
        text.contains("queues = 2"),
        "examples/echo.toml has no `queues = 1` line"
    );
    let spec = temporary_spec("mq", &text)?;
    let lan = Lan::create("10.0.0.1/24", true)?;
    let booted = boot(&spec, 2, &lan.netns, &[lan.tap.name()], 2);
    let _ = std::fs::remove_file(&spec);
    let mut session = booted?;
    let result = (|| -> Result<()> {
        wait_reachable(&lan.netns, "10.0.0.2", 20)?;
        ensure!(
            session.log().contains("2 of 2 queue pairs"),
            "the device did not get 2 queue pairs"
        );
        let output = udp_client(&lan.netns, &["echo", "10.0.0.2:7", "16", "10"])?;
        check_echo(&output, 160)?;
        let counters = session.counters()?;
        for core in 0..2 {
            let received = counters.sum(Some(core), &[("executor", "rx_packets")]);
            eprintln!("xtask: [appliance] core {core} rx_packets={received}");
            ensure!(received > 0, "core {core} processed no packets");
        }
        Ok(())
    })();
    result.map_err(|error| error.context(format!("console:\n{}", session.log())))
}

/// One appliance test.
type Test = fn() -> Result<()>;

/// Runs every appliance test; fails if any failed.
pub fn run_all() -> Result<()> {
    if !netns::is_root() {
        bail!("the appliance tests create network namespaces and taps: run as root");
    }
    netns::ensure_net_tools()?;
    let tests: [(&str, Test); 5] = [
        ("invalid spec is refused", invalid_spec_is_refused),
        (
            "echo: arping, ping, ping -s 1472, udp echo, closed port",
            echo_answers,
        ),
        (
            "router: two namespaces ping through, ttl decremented",
            router_forwards,
        ),
        (
            "multi-queue: two cores both process flows",
            multi_queue_spreads_flows,
        ),
        (
            "malformed: every bad frame bumps exactly its drop counter, then ping and udp echo",
            crate::appliance_malformed::malformed_frames_are_counted,
        ),
    ];
    let mut failed = 0;
    for (name, test) in tests {
        eprintln!("xtask: [appliance] {name} ...");
        match test() {
            Ok(()) => eprintln!("xtask: [appliance] {name}: ok"),
            Err(error) => {
                failed += 1;
                eprintln!("xtask: [appliance] {name}: FAILED: {error:#}");
            }
        }
    }
    eprintln!(
        "appliance: {} passed, {failed} failed",
        tests.len() - failed
    );
    if failed > 0 {
        bail!("{failed} appliance test(s) failed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nic_args_and_spec_macs() {
        let args = tap_nic_args(1, "wct0", "02:00:00:00:00:01", 2);
        assert_eq!(
            args[1],
            "tap,id=net1,ifname=wct0,script=no,downscript=no,vhost=off,queues=2"
        );
        assert_eq!(
            args[3],
            "virtio-net-pci,netdev=net1,mac=02:00:00:00:00:01,romfile=,mq=on,vectors=6"
        );
        assert!(!tap_nic_args(0, "t", "m", 1)[3].contains("mq"));
        let macs =
            spec_macs("[[interface]]\nmac = \"02:00:00:00:01:01\"\n[[interface]]\n mac=\"aa\"\n");
        assert_eq!(macs, ["02:00:00:00:01:01", "aa"]);
    }
}
