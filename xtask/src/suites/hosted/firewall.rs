//! warpcore-hosted as a stateful firewall (examples/firewall.toml) between
//! two namespaces over af-packet: ping and curl from the inside pass and
//! their replies come back (conntrack `established`), a rejected TCP port
//! answers with a RST from the firewall, a rejected UDP port with ICMP port
//! unreachable, a dropped port times out, and the outside cannot open
//! anything towards the inside. A Python `http.server` listens on every
//! probed TCP port, so a packet the firewall wrongly let through would be
//! answered by the server instead.

use crate::counters::Counters;
use crate::net::netns::Netns;
use crate::shell::host::ensure_programs;
use crate::shell::process::ChildGuard;
use crate::suites::hosted::process::Appliance;
use crate::suites::hosted::sides::{Sides, curl};
use crate::suites::runner::Case;
use crate::suites::traffic::{ping_no_loss, udp_closed};
use anyhow::{Result, ensure};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

/// One firewall scenario: given the appliance binary, passes or says why.
type Scenario = fn(&Path) -> Result<()>;

/// The hosted firewall scenarios.
pub fn cases() -> Vec<Case<Scenario>> {
    vec![
        Case::new(
            "firewall-af-packet",
            "examples/firewall.toml between two namespaces: allowed, established, rejected (RST, ICMP), dropped",
            (|binary| firewall(binary, 1)) as Scenario,
        ),
        Case::new(
            "firewall-two-cores-af-packet",
            "the same on two cores (fanout sockets): flows on the wrong core handed to their owner, replies pass",
            (|binary| firewall(binary, 2)) as Scenario,
        ),
    ]
}

/// Flows of each kind (ping, curl) the two-core case adds, each its own
/// 5-tuple, so that some land on the core that does not own them.
const MORE_FLOWS: usize = 12;

/// On two cores: more pings (each its own echo identifier) and more
/// connections to the allowed port (each its own source port), all of
/// whose replies must come back.
fn many_flows(inside: &Netns) -> Result<()> {
    for _ in 0..MORE_FLOWS {
        ping_no_loss(inside, &["-c", "2", "-i", "0.2", "10.0.2.2"])?;
        let answer = curl(inside, "http://10.0.2.2:8080/", "10")?;
        ensure!(
            answer.0 == Some(0) && answer.1.starts_with("200"),
            "curl to the allowed port 8080 failed on two cores: {answer:?}"
        );
    }
    Ok(())
}

/// The firewall's event `event`, summed over cores.
fn event(counters: &Counters, event: &str) -> u64 {
    counters.sum(None, &[("node", "firewall"), ("event", event)])
}

/// The firewall's drops for `reason`, summed over cores.
fn drops(counters: &Counters, reason: &str) -> u64 {
    counters.sum(None, &[("node", "firewall"), ("drop", reason)])
}

/// The firewall example on `cores` cores.
fn firewall(binary: &Path, cores: usize) -> Result<()> {
    ensure_programs(
        "the firewall test",
        &[("curl", "curl"), ("python3", "python3")],
    )?;
    let sides = Sides::create("wcfa")?;
    let (inside, outside) = (&sides.inside, &sides.outside);
    let mut servers = Vec::new();
    for port in ["8080", "8081", "8082"] {
        servers.push(ChildGuard::spawn(
            outside
                .client
                .command("python3")
                .args(["-m", "http.server", port, "--bind", "10.0.2.2"])
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )?);
    }
    // Each server answers locally before the outside gets its default
    // route: http.server looks its own name up when it starts, and that
    // lookup would wait on DNS through the firewall's default drop.
    for port in ["8080", "8081", "8082"] {
        let url = format!("http://10.0.2.2:{port}/");
        let mut answered = false;
        for _ in 0..40 {
            if curl(&outside.client, &url, "2")?.0 == Some(0) {
                answered = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        ensure!(
            answered,
            "python3 -m http.server {port} did not answer in the outside namespace"
        );
    }
    inside
        .client
        .ip(&["route", "add", "default", "via", "10.0.1.1"])?;
    outside
        .client
        .ip(&["route", "add", "default", "via", "10.0.2.1"])?;
    let appliance = Appliance::start(
        binary,
        &sides.appliance,
        "examples/firewall.toml",
        &sides.nics(),
        cores,
    )?;
    let (inside, outside) = (&inside.client, &outside.client);
    let result = (|| -> Result<()> {
        // New ICMP from the inside (rule-1), replies as established (rule-0).
        ping_no_loss(inside, &["-c", "3", "-i", "0.2", "10.0.2.2"])?;

        // The allowed web port (rule-2), its answers established (rule-0).
        let last = curl(inside, "http://10.0.2.2:8080/", "10")?;
        ensure!(
            last.0 == Some(0) && last.1.starts_with("200"),
            "curl to the allowed port 8080 failed: {last:?}"
        );

        // Rejected with a RST from the firewall (the server there would answer).
        let refused = curl(inside, "http://10.0.2.2:8081/", "10")?;
        ensure!(
            refused.0 == Some(7),
            "curl to the rejected port 8081 should be refused: {refused:?}"
        );
        // Dropped: no answer at all (the server there would answer).
        let dropped = curl(inside, "http://10.0.2.2:8082/", "3")?;
        ensure!(
            dropped.0 == Some(28),
            "curl to the dropped port 8082 should time out: {dropped:?}"
        );
        // Rejected UDP: ICMP port unreachable.
        udp_closed(inside, "10.0.2.2")?;
        // The outside may not open anything towards the inside.
        let ping = outside.output(&["ping", "-n", "-c", "2", "-W", "1", "10.0.1.2"])?;
        ensure!(
            !ping.status.success(),
            "the outside pinged the inside through a default-drop firewall: {}",
            String::from_utf8_lossy(&ping.stdout)
        );
        if cores > 1 {
            many_flows(inside)?;
        }
        Ok(())
    })();
    let counters = appliance.stop()?;
    drop(servers);
    if let Err(error) = result {
        let mut seen = String::new();
        for name in [
            "rule-0",
            "rule-1",
            "rule-2",
            "rule-3",
            "rule-4",
            "default-policy",
            "allowed",
            "resets-sent",
            "flows-created",
            "handed-off",
            "handed-in",
        ] {
            seen.push_str(&format!(" {name}={}", event(&counters, name)));
        }
        for reason in ["malformed", "denied", "rejected", "table-full", "ring-full"] {
            seen.push_str(&format!(" {reason}={}", drops(&counters, reason)));
        }
        return Err(error.context(format!("firewall counters:{seen}")));
    }
    for (name, value, least) in [
        ("rule-0 (established)", event(&counters, "rule-0"), 4),
        ("rule-1 (first inside ping)", event(&counters, "rule-1"), 1),
        ("rule-2 (port 8080)", event(&counters, "rule-2"), 1),
        ("rule-3 (reject 8081)", event(&counters, "rule-3"), 1),
        ("rule-4 (reject udp 9)", event(&counters, "rule-4"), 1),
        ("resets-sent", event(&counters, "resets-sent"), 1),
        ("default-policy", event(&counters, "default-policy"), 3),
        ("drops denied", drops(&counters, "denied"), 3),
        ("drops rejected", drops(&counters, "rejected"), 2),
        ("flows-created", event(&counters, "flows-created"), 2),
    ] {
        ensure!(
            value >= least,
            "firewall {name} counted {value}, expected at least {least}"
        );
    }
    if cores > 1 {
        let per_core = |name| -> Vec<u64> {
            (0..cores as u32)
                .map(|core| counters.sum(Some(core), &[("node", "firewall"), ("event", name)]))
                .collect()
        };
        let (off, into) = (per_core("handed-off"), per_core("handed-in"));
        let created = per_core("flows-created");
        eprintln!(
            "    firewall per core: flows-created={created:?} handed-off={off:?} handed-in={into:?}"
        );
        let (off, into): (u64, u64) = (off.iter().sum(), into.iter().sum());
        ensure!(
            off > 0,
            "no packet reached a core that does not own its flow in {} flows",
            2 * MORE_FLOWS
        );
        ensure!(
            drops(&counters, "ring-full") == 0 && into == off,
            "handed off {off}, handed in {into}, ring-full {}",
            drops(&counters, "ring-full")
        );
    }
    Ok(())
}
