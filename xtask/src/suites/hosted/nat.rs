//! warpcore-hosted as a NAT gateway (examples/nat.toml, with a table of
//! 64 flows per core so that a flood overflows it) between two namespaces
//! over af-packet. The outside namespace has no route to the inside: only
//! translation gets anything back. Checked: curl and nc from the inside
//! reach outside servers that see the NAT address 10.0.2.1 as the peer
//! (Python `http.server` logs and `nc -v`), ping through the NAT, a UDP
//! datagram to a closed outside port comes back as ICMP port unreachable
//! translated to the inside host (its connected socket is refused), the
//! forwarded port 10.0.2.1:8080 reaches the inside server (which sees the
//! outside client), hairpin from the inside, and hostile traffic: packets
//! from the outside that fit no mapping are dropped and counted, a flood
//! of new flows beyond the table is counted, and the appliance still
//! answers and exits cleanly.

use crate::counters::Counters;
use crate::net::netns::{Netns, unique_name};
use crate::shell::host::{ensure_programs, workspace_root};
use crate::shell::process::ChildGuard;
use crate::suites::hosted::process::Appliance;
use crate::suites::hosted::sides::Sides;
use crate::suites::runner::Case;
use crate::suites::traffic::{ping_no_loss, udp_closed};
use anyhow::{Context, Result, ensure};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// One NAT scenario: given the appliance binary, passes or says why.
type Scenario = fn(&Path) -> Result<()>;

/// The hosted NAT scenarios.
pub fn cases() -> Vec<Case<Scenario>> {
    vec![
        Case::new(
            "nat-af-packet",
            "examples/nat.toml between two namespaces: masquerade (curl, nc, ping), ICMP errors translated, port forwarding, hairpin, no mapping and a flood counted",
            (|binary| nat(binary, 1)) as Scenario,
        ),
        Case::new(
            "nat-two-cores-af-packet",
            "the same on two cores (fanout sockets): replies land on the core that chose the port, or are handed to it",
            (|binary| nat(binary, 2)) as Scenario,
        ),
        Case::new(
            "nat-firewall-af-packet",
            "examples/nat-firewall.toml: the NAT's filter judges the inside view (source before masquerade, destination after forwarding): allowed, dropped by inside source, forwarded by inside destination, rejected with RST",
            nat_firewall as Scenario,
        ),
    ]
}

/// Flows per core in the test's table.
const CAPACITY: usize = 64;

/// New flows the flood opens (each its own source port).
const FLOOD: usize = 400;

/// Flows of each kind (ping, curl) the two-core case adds.
const MORE_FLOWS: usize = 12;

pub use crate::suites::hosted::sides::curl;

/// A Python `http.server` on `address:port` in `netns`, its request log
/// (which names each peer) in `log`; waits (bounded) until it answers.
pub fn http_server(netns: &Netns, address: &str, port: &str, log: &Path) -> Result<ChildGuard> {
    let file = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let server = ChildGuard::spawn(
        netns
            .command("python3")
            .args(["-m", "http.server", port, "--bind", address])
            .stdout(Stdio::null())
            .stderr(file),
    )?;
    let url = format!("http://{address}:{port}/");
    for _ in 0..40 {
        if curl(netns, &url, "2")?.0 == Some(0) {
            return Ok(server);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    anyhow::bail!("python3 -m http.server {port} did not answer in its namespace")
}

/// The peers the server's log names, in order (its own readiness
/// checks included).
pub fn peers(log: &Path) -> Result<Vec<String>> {
    let text =
        std::fs::read_to_string(log).with_context(|| format!("reading {}", log.display()))?;
    Ok(text
        .lines()
        .filter(|line| line.contains("\"GET "))
        .filter_map(|line| line.split_whitespace().next().map(str::to_owned))
        .collect())
}

/// A TCP line through `nc` from `client` to a `nc -l -v` on the outside:
/// what the listener printed about its peer, and what it received.
fn nc_through(client: &Netns, server: &Netns, port: &str) -> Result<(String, String)> {
    let listener = server
        .command("timeout")
        .args(["10", "nc", "-l", "-n", "-v", "10.0.2.2", port])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting nc -l")?;
    std::thread::sleep(Duration::from_millis(300));
    let mut sent = None;
    for _ in 0..10 {
        let output = client.output(&[
            "sh",
            "-c",
            &format!("echo through-the-nat | timeout 5 nc -n -N -w 3 10.0.2.2 {port}"),
        ])?;
        if output.status.success() {
            sent = Some(());
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let output = listener.wait_with_output().context("waiting for nc -l")?;
    ensure!(
        sent.is_some(),
        "nc from the inside could not connect through the NAT"
    );
    Ok((
        String::from_utf8_lossy(&output.stderr).into_owned(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    ))
}

fn event(counters: &Counters, name: &str) -> u64 {
    counters.sum(None, &[("node", "nat"), ("event", name)])
}

fn drops(counters: &Counters, reason: &str) -> u64 {
    counters.sum(None, &[("node", "nat"), ("drop", reason)])
}

/// `examples/nat.toml` with a small table, written beside the temp files.
fn small_table_spec() -> Result<PathBuf> {
    let text = std::fs::read_to_string(workspace_root().join("examples/nat.toml"))?;
    let capacity = format!("capacity = {CAPACITY} ");
    ensure!(
        text.contains("capacity = 65536 "),
        "examples/nat.toml changed its capacity line"
    );
    let path = std::env::temp_dir().join(format!("{}.toml", unique_name("wcns")));
    std::fs::write(&path, text.replace("capacity = 65536 ", &capacity))?;
    Ok(path)
}

/// The NAT example on `cores` cores.
fn nat(binary: &Path, cores: usize) -> Result<()> {
    ensure_programs(
        "the NAT test",
        &[
            ("curl", "curl"),
            ("python3", "python3"),
            ("nc", "netcat-openbsd"),
        ],
    )?;
    let spec = small_table_spec()?;
    let result = run(binary, cores, &spec);
    let _ = std::fs::remove_file(&spec);
    result
}

fn run(binary: &Path, cores: usize, spec: &Path) -> Result<()> {
    let sides = Sides::create("wcna")?;
    let (inside, outside) = (&sides.inside, &sides.outside);
    let logs = std::env::temp_dir().join(unique_name("wcnl"));
    std::fs::create_dir_all(&logs)?;
    let (outside_log, inside_log) = (logs.join("outside.log"), logs.join("inside.log"));
    // Servers first, answering locally: the outside one on 8081, the
    // inside one (the forwarded port's target) on 8000.
    let servers = [
        http_server(&outside.client, "10.0.2.2", "8081", &outside_log)?,
        http_server(&inside.client, "10.0.1.2", "8000", &inside_log)?,
    ];
    // The inside routes through the NAT; the outside knows only its own
    // subnet, where 10.0.2.1 is.
    inside
        .client
        .ip(&["route", "add", "default", "via", "10.0.1.1"])?;
    let appliance = Appliance::start(
        binary,
        &sides.appliance,
        &spec.to_string_lossy(),
        &sides.nics(),
        cores,
    )?;
    let (inside_ns, outside_ns) = (&inside.client, &outside.client);
    let result = (|| -> Result<()> {
        ping_no_loss(inside_ns, &["-c", "3", "-i", "0.2", "10.0.2.2"])?;

        let answer = curl(inside_ns, "http://10.0.2.2:8081/", "10")?;
        ensure!(
            answer.0 == Some(0) && answer.1.starts_with("200"),
            "curl through the NAT failed: {answer:?}"
        );
        let seen = peers(&outside_log)?;
        let last = seen.last().cloned().unwrap_or_default();
        ensure!(
            last == "10.0.2.1",
            "the outside server saw {last:?}, not the NAT address 10.0.2.1 ({seen:?})"
        );
        ensure!(
            !seen.iter().any(|peer| peer == "10.0.1.2"),
            "the inside address reached the outside: {seen:?}"
        );

        let (said, received) = nc_through(inside_ns, outside_ns, "9000")?;
        eprintln!("    nc -l -v on the outside: {}", said.trim());
        ensure!(
            said.contains("10.0.2.1"),
            "nc -l saw another peer than 10.0.2.1: {said}"
        );
        ensure!(
            received.contains("through-the-nat"),
            "nc -l received {received:?}"
        );

        // A closed outside port: the outside kernel's port unreachable to
        // 10.0.2.1 comes back translated, and the inside socket is refused.
        udp_closed(inside_ns, "10.0.2.2")?;

        // Port forwarding: the outside reaches the inside server, which
        // sees the outside client.
        let forwarded = curl(outside_ns, "http://10.0.2.1:8080/", "10")?;
        ensure!(
            forwarded.0 == Some(0) && forwarded.1.starts_with("200"),
            "curl to the forwarded port failed: {forwarded:?}"
        );
        let inside_peers = peers(&inside_log)?;
        ensure!(
            inside_peers.last().map(String::as_str) == Some("10.0.2.2"),
            "the inside server saw {inside_peers:?}, not the outside client 10.0.2.2 last"
        );
        // Hairpin: the inside uses the outside address too, and the server
        // (the same host) sees the NAT address.
        let hairpin = curl(inside_ns, "http://10.0.2.1:8080/", "10")?;
        ensure!(
            hairpin.0 == Some(0) && hairpin.1.starts_with("200"),
            "hairpin curl failed: {hairpin:?}"
        );
        let inside_peers = peers(&inside_log)?;
        ensure!(
            inside_peers.last().map(String::as_str) == Some("10.0.2.1"),
            "hairpin: the inside server saw {inside_peers:?}, not 10.0.2.1 last"
        );

        if cores > 1 {
            for _ in 0..MORE_FLOWS {
                ping_no_loss(inside_ns, &["-c", "2", "-i", "0.2", "10.0.2.2"])?;
                let answer = curl(inside_ns, "http://10.0.2.2:8081/", "10")?;
                ensure!(
                    answer.0 == Some(0) && answer.1.starts_with("200"),
                    "curl through the NAT on two cores failed: {answer:?}"
                );
            }
        }

        // Hostile: an unmapped masquerade port, and the inside addressed
        // directly (with a route the outside would need for it).
        let before = appliance.counters()?;
        let unmapped = curl(outside_ns, "http://10.0.2.1:25000/", "2")?;
        ensure!(
            unmapped.0 == Some(28),
            "an unmapped port answered: {unmapped:?}"
        );
        outside_ns.ip(&["route", "add", "10.0.1.0/24", "via", "10.0.2.1"])?;
        let direct = outside_ns.output(&["ping", "-n", "-c", "2", "-W", "1", "10.0.1.2"])?;
        ensure!(
            !direct.status.success(),
            "the outside pinged an inside host through the NAT"
        );
        let after = appliance.counters()?;
        let no_mapping = drops(&after, "no-mapping") - drops(&before, "no-mapping");
        ensure!(
            no_mapping >= 3,
            "no-mapping counted {no_mapping}, expected at least 3 (SYN, its retries, 2 pings)"
        );

        // A flood of new flows from the inside, each its own port, far
        // beyond the table: counted, and the appliance goes on.
        let flood = format!(
            "import socket\nfor _ in range({FLOOD}):\n    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n    s.sendto(b'x', ('10.0.2.2', 9999))\n    s.close()\n"
        );
        inside_ns.run(&["timeout", "30", "python3", "-c", &flood])?;
        ping_no_loss(inside_ns, &["-c", "2", "-i", "0.2", "10.0.1.1"])?;
        Ok(())
    })();
    let counters = appliance.stop()?;
    drop(servers);
    let _ = std::fs::remove_dir_all(&logs);
    let summary = || {
        let mut seen = String::new();
        for name in [
            "translated",
            "masqueraded-flows",
            "forwarded-flows",
            "hairpin-flows",
            "errors-translated",
            "flows-created",
            "flows-evicted",
            "handed-off",
            "handed-in",
        ] {
            seen.push_str(&format!(" {name}={}", event(&counters, name)));
        }
        for reason in [
            "no-mapping",
            "invalid",
            "table-full",
            "ports-exhausted",
            "ring-full",
            "malformed",
        ] {
            seen.push_str(&format!(" {reason}={}", drops(&counters, reason)));
        }
        seen
    };
    eprintln!("    nat counters:{}", summary());
    if let Err(error) = result {
        return Err(error.context(format!("nat counters:{}", summary())));
    }
    for (name, value, least) in [
        (
            "masqueraded-flows",
            event(&counters, "masqueraded-flows"),
            4,
        ),
        ("forwarded-flows", event(&counters, "forwarded-flows"), 1),
        ("hairpin-flows", event(&counters, "hairpin-flows"), 1),
        (
            "errors-translated",
            event(&counters, "errors-translated"),
            1,
        ),
        (
            "drops table-full (the flood)",
            drops(&counters, "table-full"),
            1,
        ),
    ] {
        ensure!(
            value >= least,
            "nat {name} counted {value}, expected at least {least}"
        );
    }
    ensure!(
        drops(&counters, "malformed") == 0,
        "nat dropped well-formed packets as malformed"
    );
    if cores > 1 {
        let per_core = |name| -> Vec<u64> {
            (0..cores as u32)
                .map(|core| counters.sum(Some(core), &[("node", "nat"), ("event", name)]))
                .collect()
        };
        let (off, into) = (per_core("handed-off"), per_core("handed-in"));
        eprintln!(
            "    nat per core: masqueraded-flows={:?} handed-off={off:?} handed-in={into:?}",
            per_core("masqueraded-flows")
        );
        let (off, into): (u64, u64) = (off.iter().sum(), into.iter().sum());
        ensure!(
            off > 0,
            "no packet reached a core that does not own its flow"
        );
        ensure!(
            drops(&counters, "ring-full") == 0 && into == off,
            "handed off {off}, handed in {into}, ring-full {}",
            drops(&counters, "ring-full")
        );
    }
    Ok(())
}

/// examples/nat-firewall.toml: the firewall's rules name the inside
/// addresses, yet the outside sees only 10.0.2.1 and the forwarded port.
fn nat_firewall(binary: &Path) -> Result<()> {
    ensure_programs(
        "the NAT firewall test",
        &[("curl", "curl"), ("python3", "python3")],
    )?;
    let sides = Sides::create("wcnf")?;
    let (inside, outside) = (&sides.inside.client, &sides.outside.client);
    let logs = std::env::temp_dir().join(unique_name("wcnf"));
    std::fs::create_dir_all(&logs)?;
    let servers = [
        http_server(outside, "10.0.2.2", "8081", &logs.join("8081.log"))?,
        http_server(outside, "10.0.2.2", "8082", &logs.join("8082.log"))?,
        http_server(inside, "10.0.1.2", "8000", &logs.join("8000.log"))?,
    ];
    // A second inside host, which rule-1 does not name.
    inside.ip(&[
        "addr",
        "add",
        "10.0.1.3/24",
        "dev",
        &sides.inside.client_ifname,
    ])?;
    inside.ip(&["route", "add", "default", "via", "10.0.1.1"])?;
    let appliance = Appliance::start(
        binary,
        &sides.appliance,
        "examples/nat-firewall.toml",
        &sides.nics(),
        1,
    )?;
    let result = (|| -> Result<()> {
        // rule-1 names 10.0.1.2, before masquerade; the server sees the NAT.
        let allowed = curl(inside, "http://10.0.2.2:8081/", "10")?;
        ensure!(
            allowed.0 == Some(0) && allowed.1.starts_with("200"),
            "curl from 10.0.1.2 to the allowed 8081 failed: {allowed:?}"
        );
        let seen = peers(&logs.join("8081.log"))?;
        ensure!(
            seen.last().map(String::as_str) == Some("10.0.2.1"),
            "the outside server saw {seen:?}, not the NAT address last"
        );
        // The same from 10.0.1.3: no rule, the default drops it.
        let output = inside.output(&[
            "timeout",
            "-k",
            "5",
            "20",
            "curl",
            "-sS",
            "-o",
            "/dev/null",
            "--max-time",
            "3",
            "--interface",
            "10.0.1.3",
            "http://10.0.2.2:8081/",
        ])?;
        ensure!(
            output.status.code() == Some(28),
            "curl from 10.0.1.3 should time out (dropped): {:?} {}",
            output.status.code(),
            String::from_utf8_lossy(&output.stderr)
        );
        // rule-2 names the inside server: the forwarded port reaches it.
        let forwarded = curl(outside, "http://10.0.2.1:8080/", "10")?;
        ensure!(
            forwarded.0 == Some(0) && forwarded.1.starts_with("200"),
            "curl to the forwarded port failed: {forwarded:?}"
        );
        // rule-3: a RST from the firewall (the server there would answer).
        let refused = curl(inside, "http://10.0.2.2:8082/", "10")?;
        ensure!(
            refused.0 == Some(7),
            "curl to the rejected 8082 should be refused: {refused:?}"
        );
        Ok(())
    })();
    let counters = appliance.stop()?;
    drop(servers);
    let _ = std::fs::remove_dir_all(&logs);
    result?;
    let (allowed, default, denied, rejected) = (
        event(&counters, "filter-allowed"),
        event(&counters, "filter-default-policy"),
        drops(&counters, "denied"),
        drops(&counters, "rejected"),
    );
    eprintln!(
        "    nat filter: filter-allowed={allowed} filter-default-policy={default} denied={denied} rejected={rejected} masqueraded-flows={} forwarded-flows={}",
        event(&counters, "masqueraded-flows"),
        event(&counters, "forwarded-flows")
    );
    ensure!(
        allowed > 0 && denied >= 1 && rejected >= 1 && default >= denied,
        "filter counters: allowed {allowed}, default {default}, denied {denied}, rejected {rejected}"
    );
    Ok(())
}
