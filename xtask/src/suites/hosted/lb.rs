//! warpcore-hosted as an L4 load balancer (examples/lb.toml, with the
//! management API on 10.0.1.1:8080) between two namespaces over
//! af-packet: Python `http.server` backends (HTTP/1.1, keep-alive) on
//! 10.0.2.2-5:8000, each serving a file that names it, behind the VIP
//! 10.0.2.100:80, the first three in the spec. Live, through the
//! controller (`warpctl apply --wait`), while keep-alive connections from
//! the inside stay open:
//! 1. 24 connections ask who they reach, and `curl` from 30 source ports:
//!    every backend gets some of the flows.
//! 2. 10.0.2.5 is added: every open connection is answered again by its
//!    own backend (the flow pins were adopted; Maglev alone would have
//!    sent about a quarter of them to 10.0.2.5, whose kernel would reset
//!    them), and new `curl` flows reach 10.0.2.5 too.
//! 3. 10.0.2.4 is removed: its connections move (their next request goes
//!    to another backend, which resets it: NAT mode keeps no connection
//!    state to hand over), the others are answered by their own backend;
//!    a new connection from a moved flow's port reaches a live backend.
//!
//! The removed server keeps running, so a flow wrongly sent to it would
//! show.

use crate::counters::Counters;
use crate::net::keep_alive;
use crate::net::netns::Netns;
use crate::shell::host::ensure_programs;
use crate::shell::process::ChildGuard;
use crate::suites::hosted::process::Appliance;
use crate::suites::hosted::sides::Sides;
use crate::suites::management_traffic::warpctl_apply;
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
        "examples/lb.toml live: curl and keep-alive connections to the VIP over http.server backends; warpctl apply adds one (no open connection moves) and removes one (only its connections move)",
        lb as Scenario,
    )]
}

/// The backends' addresses: the first three as in examples/lb.toml, the
/// fourth added live.
const BACKENDS: [&str; 4] = ["10.0.2.2", "10.0.2.3", "10.0.2.4", "10.0.2.5"];

/// The management API, on the inside interface.
pub(crate) const API: &str = "http://10.0.1.1:8080";

/// The token whose SHA-256 the management section holds (as in
/// examples/management.toml).
pub(crate) const TOKEN: &str = "warpcore-test-token";

/// The management section added to examples/lb.toml.
pub(crate) const MANAGEMENT: &str = "\n[management]\nlisten = \"10.0.1.1:8080\"\n\
    token_sha256 = \"60a3494746353d4d57e93a6ef2014522edd91b61e08bc5d3d579e98a5acca3e3\"\n";

/// A connected UDP socket to the VIP: prints `refused` when the ICMP
/// port unreachable about its datagram reaches it, `silence` otherwise.
const UDP_CLIENT: &str = r#"
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
s.connect(("10.0.2.100", 80))
s.send(b"anyone?")
try:
    s.recv(100)
    print("answered")
except ConnectionRefusedError:
    print("refused")
except socket.timeout:
    print("silence")
"#;

/// Keep-alive connections held across the spec changes.
pub(crate) const HELD: u16 = 24;

/// The first source port of the held connections.
const HELD_PORT: u16 = 41_000;

/// The keep-alive client ([`keep_alive::client`]): `HELD` connections to the VIP from ports
/// `first..`, each asking `/who` once per round; a round starts when the
/// file `<flag>.<round>` exists (the first at once), bounded waits
/// everywhere. Prints one line per round: `round R PORT=WHO ...`, WHO
/// `reset` for a connection that failed (it stays failed).
const HELD_CLIENT: &str = r#"
flag, first, count, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
conns = {}
for port in range(first, first + count):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("10.0.1.2", port))
    s.settimeout(10)
    s.connect(("10.0.2.100", 80))
    conns[port] = s
for r in range(rounds):
    if r > 0:
        wait_flag(f"{flag}.{r}", 90)
    answers = []
    for port, s in conns.items():
        if s is None:
            answers.append(f"{port}=reset")
            continue
        try:
            answers.append(f"{port}={ask(s, '/who', 'vip')[1].strip()}")
        except OSError:
            s.close()
            conns[port] = None
            answers.append(f"{port}=reset")
    print("round", r, " ".join(answers), flush=True)
for s in conns.values():
    if s is not None:
        s.close()
"#;

/// Requests (flows) per round, each from its own source port.
const FLOWS: u16 = 30;

/// The first source port of each `curl` round.
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

/// Source port → the backend that answered, for one round of `curl`
/// from ports `first..first + FLOWS`, among `live` backends.
fn round(inside: &Netns, first: u16, live: &[&str]) -> Result<BTreeMap<u16, String>> {
    let mut answers = BTreeMap::new();
    for port in first..first + FLOWS {
        let who = curl_from(inside, "http://10.0.2.100/who", Some(port))?;
        ensure!(
            live.contains(&who.as_str()),
            "source port {port}: answered by {who:?}, not one of {live:?}"
        );
        answers.insert(port, who);
    }
    Ok(answers)
}

/// How many flows each backend got.
fn shares(answers: &BTreeMap<u16, String>) -> BTreeMap<&str, u32> {
    let mut shares = BTreeMap::new();
    for who in answers.values() {
        *shares.entry(who.as_str()).or_insert(0u32) += 1;
    }
    shares
}

/// The `lb` node's event `name`, summed over cores.
fn event(counters: &Counters, name: &str) -> u64 {
    counters.sum(None, &[("node", "lb"), ("event", name)])
}

/// examples/lb.toml with the management section and `backends` (as
/// indexes into [`BACKENDS`]).
fn spec_with(backends: &[usize]) -> Result<String> {
    let text =
        std::fs::read_to_string(crate::shell::host::workspace_root().join("examples/lb.toml"))
            .context("reading examples/lb.toml")?;
    let listed = "backends = [\"10.0.2.2:8000\", \"10.0.2.3:8000\", \"10.0.2.4:8000\"]";
    ensure!(
        text.contains(listed),
        "examples/lb.toml no longer lists its backends as `{listed}`"
    );
    let wanted: Vec<String> = backends
        .iter()
        .map(|&index| format!("\"{}:8000\"", BACKENDS[index]))
        .collect();
    let replaced = text.replace(listed, &format!("backends = [{}]", wanted.join(", ")));
    Ok(format!("{replaced}{MANAGEMENT}"))
}

/// `warpctl apply -f <spec> --wait` from `client`; fails with what
/// warpctl said.
pub(crate) fn apply(client: &Netns, warpctl: &str, spec: &str) -> Result<()> {
    let output = warpctl_apply(client, warpctl, (API, TOKEN), spec)?;
    ensure!(
        output.status.success(),
        "warpctl apply --wait failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

/// A `python3 -m http.server` (HTTP/1.1, keep-alive) in `netns` on
/// `address:port`, serving `directory`, whose file `who` says `who`; its
/// log (one line a request) to `log`.
pub(crate) fn who_server(
    netns: &Netns,
    (address, port): (&str, &str),
    directory: &Path,
    who: &str,
    log: impl Into<Stdio>,
) -> Result<ChildGuard> {
    std::fs::create_dir_all(directory)?;
    std::fs::write(directory.join("who"), who)?;
    ChildGuard::spawn(
        netns
            .command("python3")
            .args([
                "-m",
                "http.server",
                port,
                "--protocol",
                "HTTP/1.1",
                "--bind",
                address,
                "--directory",
            ])
            .arg(directory)
            .stdout(Stdio::null())
            .stderr(log),
    )
}

/// The held connections' client, reading its rounds.
pub(crate) struct Held {
    child: crate::suites::echo_load::Reaped,
    lines: std::io::BufReader<std::process::ChildStdout>,
    flag: PathBuf,
}

impl Held {
    /// Opens the connections from `inside` (10.0.1.2) to the VIP
    /// 10.0.2.100:80, for `rounds` rounds.
    pub(crate) fn start(inside: &Netns, rounds: usize) -> Result<Self> {
        let flag = std::env::temp_dir().join(format!("wc-lb-held-{}", std::process::id()));
        let mut child = crate::suites::echo_load::Reaped(
            inside
                .command("timeout")
                .args(["-k", "5", "240", "python3", "-c"])
                .arg(keep_alive::client(HELD_CLIENT))
                .arg(&flag)
                .args([HELD_PORT.to_string(), HELD.to_string(), rounds.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .context("starting the keep-alive client")?,
        );
        let stdout = child.0.stdout.take().context("the client's stdout")?;
        Ok(Self {
            child,
            lines: std::io::BufReader::new(stdout),
            flag,
        })
    }

    /// Starts round `round` (after the first) and reads its answers.
    pub(crate) fn round(&mut self, round: usize) -> Result<BTreeMap<u16, String>> {
        use std::io::{BufRead, Read};
        if round > 0 {
            std::fs::write(format!("{}.{round}", self.flag.display()), b"")?;
        }
        let mut line = String::new();
        if self.lines.read_line(&mut line)? == 0 {
            let mut said = String::new();
            if let Some(stderr) = self.child.0.stderr.as_mut() {
                let _ = stderr.read_to_string(&mut said);
            }
            anyhow::bail!("the keep-alive client ended before round {round}: {said}");
        }
        let mut answers = BTreeMap::new();
        for pair in line.split_whitespace().skip(2) {
            let (port, who) = pair.split_once('=').context("a round's answer")?;
            answers.insert(port.parse()?, who.to_owned());
        }
        ensure!(
            answers.len() == usize::from(HELD),
            "round {round}: `{}`",
            line.trim()
        );
        Ok(answers)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        for round in 1..4 {
            let _ = std::fs::remove_file(format!("{}.{round}", self.flag.display()));
        }
    }
}

fn lb(binary: &Path) -> Result<()> {
    ensure_programs(
        "the load balancer test",
        &[("curl", "curl"), ("python3", "python3")],
    )?;
    let warpctl = crate::suites::management_traffic::build_warpctl()?;
    let sides = Sides::create("wcla")?;
    let outside = &sides.outside;
    // The other backends are more addresses of the outside namespace.
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
        servers.push(who_server(
            &outside.client,
            (address, "8000"),
            &root.join(address),
            address,
            Stdio::null(),
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
    let spec_file = std::env::temp_dir().join(format!("wc-lb-{}.toml", std::process::id()));
    std::fs::write(&spec_file, spec_with(&[0, 1, 2])?)?;
    let result = (|| -> Result<()> {
        let client = &sides.inside.client;
        client.ip(&["route", "add", "default", "via", "10.0.1.1"])?;
        let appliance = Appliance::start(
            binary,
            &sides.appliance,
            &spec_file.to_string_lossy(),
            &sides.nics(),
            1,
        )?;
        let mut held = Held::start(client, 3)?;
        let first = held.round(0)?;
        let three = &BACKENDS[..3];
        let before = round(client, FIRST_PORT, three)?;
        let counters = appliance.counters()?;
        let first_shares = shares(&first);
        let mut all = first.clone();
        all.extend(before.clone());
        let all_shares = shares(&all);
        eprintln!(
            "    lb: {HELD} keep-alive connections {first_shares:?}; {FLOWS} curl flows {:?}",
            shares(&before)
        );
        for (index, address) in three.iter().enumerate() {
            let flows = event(&counters, &format!("backend-{index}-flows"));
            let answered = all_shares.get(address).copied().unwrap_or(0);
            ensure!(
                answered > 0,
                "backend {address} got none of the flows: {all_shares:?}"
            );
            ensure!(
                flows == u64::from(answered),
                "backend-{index}-flows counted {flows}, {address} answered {answered}"
            );
        }
        ensure!(
            first.values().all(|who| three.contains(&who.as_str())),
            "a keep-alive connection was answered by {first:?}"
        );
        ensure!(
            event(&counters, "replies") > 0,
            "no reply was rewritten back to the VIP"
        );

        // UDP to the VIP: the backends serve no UDP on 8000, so the
        // backend's kernel answers port unreachable; translated back, it
        // reaches the client's connected socket (Linux matches the error
        // to the socket by the quote: untranslated, it quotes the
        // backend and the socket never hears of it).
        let refused = client.output(&["timeout", "-k", "5", "20", "python3", "-c", UDP_CLIENT])?;
        let said = String::from_utf8_lossy(&refused.stdout);
        ensure!(
            refused.status.success() && said.trim() == "refused",
            "UDP to the VIP: `{said}` {}",
            String::from_utf8_lossy(&refused.stderr)
        );
        let translated = event(&appliance.counters()?, "errors-translated");
        ensure!(translated >= 1, "errors-translated {translated}");
        eprintln!(
            "    lb: UDP to the VIP: the backend's port unreachable, translated ({translated}), refused the client's socket"
        );

        // 10.0.2.5 joins: no open connection moves.
        apply(client, &warpctl, &spec_with(&[0, 1, 2, 3])?)?;
        let second = held.round(1)?;
        for (port, old) in &first {
            ensure!(
                &second[port] == old,
                "after adding 10.0.2.5, the connection from port {port} to {old} got {}",
                second[port]
            );
        }
        let added = round(client, FIRST_PORT + FLOWS, &BACKENDS)?;
        let added_shares = shares(&added);
        ensure!(
            added_shares.contains_key(BACKENDS[3]),
            "no new flow reached the added 10.0.2.5: {added_shares:?}"
        );
        eprintln!(
            "    lb: 10.0.2.5 added by warpctl apply --wait: all {HELD} connections answered by their backend; new flows {added_shares:?}"
        );

        // 10.0.2.4 leaves: only its connections move.
        apply(client, &warpctl, &spec_with(&[0, 1, 3])?)?;
        let third = held.round(2)?;
        let (mut moved, mut kept) = (Vec::new(), 0);
        for (port, old) in &first {
            let new = &third[port];
            if old == BACKENDS[2] {
                ensure!(
                    new != BACKENDS[2],
                    "port {port} still reached the removed backend"
                );
                moved.push(*port);
            } else {
                ensure!(
                    new == old,
                    "port {port} moved from {old} to {new} though {old} stayed"
                );
                kept += 1;
            }
        }
        drop(held);
        let live = [BACKENDS[0], BACKENDS[1], BACKENDS[3]];
        for port in &moved {
            let who = curl_from(client, "http://10.0.2.100/who", Some(*port))?;
            ensure!(
                live.contains(&who.as_str()),
                "a new connection from port {port} reached {who}"
            );
        }
        let counters = appliance.stop()?;
        eprintln!(
            "    lb: 10.0.2.4 removed: its {} connections moved (reset, then new connections reached live backends), the other {kept} were answered by their own; flows-evicted {}",
            moved.len(),
            event(&counters, "flows-evicted")
        );
        Ok(())
    })();
    drop(servers);
    let _ = std::fs::remove_file(&spec_file);
    let _ = std::fs::remove_dir_all(&root);
    result
}
