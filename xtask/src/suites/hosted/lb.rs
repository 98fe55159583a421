//! warpcore-hosted as an L4 load balancer (examples/lb.toml) between two
//! namespaces over af-packet: three Python `http.server` backends
//! (10.0.2.2-4:8000, each serving a file that names it) behind the VIP
//! 10.0.2.100:80; `curl` from the inside with distinct source ports.
//! Every backend gets some of the flows; then the appliance restarts with
//! 10.0.2.4 taken out of the spec and the same source ports are asked
//! again: the flows that went to 10.0.2.4 move, the others' stay (Maglev
//! disruption, end to end). The removed server keeps running, so a flow
//! wrongly sent to it would show.

use crate::counters::Counters;
use crate::net::netns::Netns;
use crate::shell::host::ensure_programs;
use crate::shell::process::ChildGuard;
use crate::suites::hosted::process::{Appliance, Link, attach};
use crate::suites::runner::Case;
use anyhow::{Context, Result, ensure};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// One load balancer scenario: given the appliance binary, passes or says why.
type Scenario = fn(&Path) -> Result<()>;

/// The hosted load balancer scenarios.
pub fn cases() -> Vec<Case<Scenario>> {
    vec![Case::new(
        "lb-af-packet",
        "examples/lb.toml: curl to the VIP spreads over three http.server backends; a backend removed moves only its flows",
        lb as Scenario,
    )]
}

/// The backends' addresses, as in examples/lb.toml.
const BACKENDS: [&str; 3] = ["10.0.2.2", "10.0.2.3", "10.0.2.4"];

/// Requests (flows) per round, each from its own source port.
const FLOWS: u16 = 30;

/// The first source port.
const FIRST_PORT: u16 = 42_000;

/// `curl` from `client` to `url` from source port `port`, bounded: what it
/// printed, or why not.
fn curl_from(client: &Netns, url: &str, port: Option<u16>) -> Result<String> {
    let port_text = port.map(|port| port.to_string());
    let mut args = vec![
        "timeout",
        "-k",
        "5",
        "20",
        "curl",
        "-sS",
        "--max-time",
        "10",
    ];
    if let Some(port) = &port_text {
        args.extend(["--local-port", port.as_str()]);
    }
    args.push(url);
    let output = client.output(&args)?;
    ensure!(
        output.status.success(),
        "curl {url} (source port {port:?}) failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Source port → the backend that answered, for one round.
fn round(inside: &Netns) -> Result<BTreeMap<u16, String>> {
    let mut answers = BTreeMap::new();
    for port in FIRST_PORT..FIRST_PORT + FLOWS {
        let who = curl_from(inside, "http://10.0.2.100/who", Some(port))?;
        ensure!(
            BACKENDS.contains(&who.as_str()),
            "source port {port}: unexpected answer {who:?}"
        );
        answers.insert(port, who);
    }
    Ok(answers)
}

/// The `lb` node's event `name`, summed over cores.
fn event(counters: &Counters, name: &str) -> u64 {
    counters.sum(None, &[("node", "lb"), ("event", name)])
}

/// One round through an appliance running `spec`, from a fresh inside
/// namespace at 10.0.1.2 (the last round's left its source ports in
/// TIME-WAIT: curl could not bind them again).
fn run_round(
    binary: &Path,
    netns: &Netns,
    spec: &str,
    outside_nic: &str,
) -> Result<(BTreeMap<u16, String>, Counters)> {
    let inside = attach(Link::AfPacket, "eth0", "10.0.1.2/24", Some(netns))?;
    inside
        .client
        .ip(&["route", "add", "default", "via", "10.0.1.1"])?;
    let appliance = Appliance::start(
        binary,
        netns,
        spec,
        &[inside.nic_argument.as_str(), outside_nic],
        1,
    )?;
    let result = round(&inside.client);
    let counters = appliance.stop()?;
    Ok((result?, counters))
}

/// The spec without the last backend, written next to the counters.
fn spec_without_last() -> Result<PathBuf> {
    let text =
        std::fs::read_to_string(crate::shell::host::workspace_root().join("examples/lb.toml"))
            .context("reading examples/lb.toml")?;
    let removed = text.replace(", \"10.0.2.4:8000\"]", "]");
    ensure!(
        removed != text,
        "examples/lb.toml no longer lists 10.0.2.4:8000 last"
    );
    let path = std::env::temp_dir().join(format!("wc-lb-{}.toml", std::process::id()));
    std::fs::write(&path, removed)?;
    Ok(path)
}

fn lb(binary: &Path) -> Result<()> {
    ensure_programs(
        "the load balancer test",
        &[("curl", "curl"), ("python3", "python3")],
    )?;
    let appliance_netns = Netns::create("wcla")?;
    let outside = attach(
        Link::AfPacket,
        "eth1",
        "10.0.2.2/24",
        Some(&appliance_netns),
    )?;
    // The other two backends are more addresses of the outside namespace.
    for address in &BACKENDS[1..] {
        outside.client.ip(&[
            "addr",
            "add",
            &format!("{address}/24"),
            "dev",
            &outside.client_ifname,
        ])?;
    }
    let root = std::env::temp_dir().join(format!("wc-lb-www-{}", std::process::id()));
    let mut servers = Vec::new();
    for address in BACKENDS {
        let directory = root.join(address);
        std::fs::create_dir_all(&directory)?;
        std::fs::write(directory.join("who"), address)?;
        servers.push(ChildGuard::spawn(
            outside
                .client
                .command("python3")
                .args([
                    "-m",
                    "http.server",
                    "8000",
                    "--bind",
                    address,
                    "--directory",
                ])
                .arg(&directory)
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )?);
    }
    // Each server answers locally first (see firewall.rs: http.server
    // looks its own name up as it starts).
    for address in BACKENDS {
        let url = format!("http://{address}:8000/who");
        let mut answered = false;
        for _ in 0..40 {
            if curl_from(&outside.client, &url, None).is_ok_and(|who| who == address) {
                answered = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        ensure!(answered, "http.server on {address}:8000 did not answer");
    }
    outside
        .client
        .ip(&["route", "add", "default", "via", "10.0.2.1"])?;
    let outside_nic = outside.nic_argument.as_str();
    let removed_spec = spec_without_last()?;
    let result = (|| -> Result<()> {
        let (before, counters) =
            run_round(binary, &appliance_netns, "examples/lb.toml", outside_nic)?;
        let mut shares = BTreeMap::new();
        for who in before.values() {
            *shares.entry(who.as_str()).or_insert(0u32) += 1;
        }
        eprintln!("    lb: {FLOWS} flows over 3 backends: {shares:?}");
        for (index, address) in BACKENDS.iter().enumerate() {
            let flows = event(&counters, &format!("backend-{index}-flows"));
            let answered = shares.get(address).copied().unwrap_or(0);
            ensure!(
                answered > 0,
                "backend {address} got none of {FLOWS} flows: {shares:?}"
            );
            ensure!(
                flows == u64::from(answered),
                "backend-{index}-flows counted {flows}, {address} answered {answered}"
            );
        }
        ensure!(
            event(&counters, "replies") > 0,
            "no reply was rewritten back to the VIP"
        );
        let spec = removed_spec.to_string_lossy().into_owned();
        let (after, _) = run_round(binary, &appliance_netns, &spec, outside_nic)?;
        let (mut moved, mut kept) = (0, 0);
        for (port, old) in &before {
            let new = &after[port];
            if old == BACKENDS[2] {
                ensure!(
                    new != BACKENDS[2],
                    "port {port} still reached the removed backend"
                );
                moved += 1;
            } else {
                ensure!(
                    new == old,
                    "port {port} moved from {old} to {new} though {old} stayed"
                );
                kept += 1;
            }
        }
        eprintln!(
            "    lb: 10.0.2.4 removed: its {moved} flows moved, the other {kept} kept their backend"
        );
        Ok(())
    })();
    drop(servers);
    let _ = std::fs::remove_file(&removed_spec);
    let _ = std::fs::remove_dir_all(&root);
    result
}
