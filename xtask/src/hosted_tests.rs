//! Hosted integration tests: `warpcore-hosted` on a tap or on a veth (via
//! AF_PACKET) in network namespaces these tests create, driven by `arping`,
//! `ping`, the `__udp-client` helper and the `__send-frames` raw sender from
//! another namespace (the same helpers the QEMU appliance tests use). Every
//! traffic loop is bounded in count and time; every namespace, device and
//! process is torn down by a guard, also on failure.

use crate::appliance_tests::{check_echo, ping_no_loss, udp_client};
use crate::counters::Counters;
use crate::netns::{self, ChildGuard, Netns, Tap, Veth};
use crate::raw_frames::{self, NamedFrame};
use crate::shell::{self, cargo, workspace_root};
use anyhow::{Context, Result, bail, ensure};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

/// How long the appliance gets to say `ready` (a bound, not a check).
const READY_WAIT: Duration = Duration::from_secs(30);

/// One scenario: given the appliance binary, passes or says why not.
type Scenario = fn(&Path) -> Result<()>;

/// Runs every hosted scenario; fails listing those that failed.
pub fn run_all() -> Result<()> {
    if !netns::is_root() {
        bail!("hosted tests need root (network namespaces, taps, AF_PACKET)");
    }
    netns::ensure_net_tools()?;
    shell::run(
        "build warpcore-hosted",
        cargo().args(["build", "--release", "-p", "warpcore-hosted"]),
    )?;
    let binary = workspace_root().join("target/release/warpcore-hosted");
    let scenarios: [(&str, Scenario); 6] = [
        ("echo over tap", |binary| echo(binary, Link::Tap)),
        ("echo over af-packet", |binary| echo(binary, Link::AfPacket)),
        ("router over af-packet", router),
        ("malformed frames over tap", malformed),
        ("two cores over tap", |binary| two_cores(binary, Link::Tap)),
        ("two cores over af-packet", |binary| {
            two_cores(binary, Link::AfPacket)
        }),
    ];
    let mut failed = Vec::new();
    for (name, scenario) in scenarios {
        eprintln!("hosted: {name} ...");
        match scenario(&binary) {
            Ok(()) => eprintln!("hosted: {name}: ok"),
            Err(error) => {
                eprintln!("hosted: {name}: FAILED: {error:#}");
                failed.push(name);
            }
        }
    }
    let passed = scenarios.len() - failed.len();
    eprintln!("hosted_tests: {passed} passed, {} failed", failed.len());
    if !failed.is_empty() {
        bail!("hosted tests failed: {}", failed.join(", "));
    }
    Ok(())
}

/// Which hosted driver a scenario runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    Tap,
    AfPacket,
}

/// One appliance interface and the client namespace that reaches it. The
/// guards drop in field order: devices, then namespaces.
struct Attachment {
    /// `NAME=DRIVER:IFNAME` for `--nic`.
    nic_argument: String,
    /// The client-side interface, in `client`.
    client_ifname: String,
    _tap: Option<Tap>,
    _veth: Option<Veth>,
    /// Where the client tools run (for a tap, also where the appliance runs).
    client: Netns,
}

/// Connects spec interface `interface` to a client namespace holding
/// `client_address`: a tap whose kernel side is in the client namespace
/// (the appliance must then run there too), or a veth pair with the
/// appliance end in `appliance`.
fn attach(
    link: Link,
    interface: &str,
    client_address: &str,
    appliance: Option<&Netns>,
) -> Result<Attachment> {
    let client = Netns::create("wchc")?;
    match link {
        Link::Tap => {
            let tap = Tap::create("wcht", Some(&client), true)?;
            client.configure(tap.name(), Some(client_address))?;
            Ok(Attachment {
                nic_argument: format!("{interface}=tap:{}", tap.name()),
                client_ifname: tap.name().to_owned(),
                _tap: Some(tap),
                _veth: None,
                client,
            })
        }
        Link::AfPacket => {
            let veth = Veth::create("wchv", appliance, Some(&client))?;
            client.configure(veth.second(), Some(client_address))?;
            Ok(Attachment {
                nic_argument: format!("{interface}=af-packet:{}", veth.first()),
                client_ifname: veth.second().to_owned(),
                _tap: None,
                _veth: Some(veth),
                client,
            })
        }
    }
}

/// A running `warpcore-hosted`, killed on drop if still running.
struct Appliance {
    process: ChildGuard,
    lines: Receiver<String>,
    counters_file: PathBuf,
}

impl Appliance {
    /// Starts the appliance inside `netns` and waits (bounded) for `ready`.
    fn start(
        binary: &Path,
        netns: &Netns,
        spec: &str,
        nics: &[&str],
        cores: usize,
    ) -> Result<Self> {
        let counters_file =
            std::env::temp_dir().join(format!("{}.counters", netns::unique_name("wchc")));
        let mut command = netns.command(&binary.to_string_lossy());
        command
            .current_dir(workspace_root())
            .arg("--spec")
            .arg(spec)
            .args(["--cores", &cores.to_string()])
            .arg("--counters-file")
            .arg(&counters_file)
            .stdout(Stdio::piped())
            .stdin(Stdio::null());
        for nic in nics {
            command.args(["--nic", nic]);
        }
        let mut process = ChildGuard::spawn(&mut command)?;
        let stdout = process
            .child_mut()
            .stdout
            .take()
            .context("appliance stdout")?;
        let (sender, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let appliance = Self {
            process,
            lines,
            counters_file,
        };
        loop {
            let line = appliance
                .lines
                .recv_timeout(READY_WAIT)
                .context("warpcore-hosted exited or never said `ready`")?;
            eprintln!("  | {line}");
            if line.starts_with("warpcore-hosted: ready") {
                return Ok(appliance);
            }
        }
    }

    /// The latest counters, keyed `core=C <key>=<name>...` without `value`.
    fn counters(&self) -> Result<Counters> {
        // The file is rewritten every 100 ms; wait for two rewrites so it
        // reflects what happened before this call.
        std::thread::sleep(Duration::from_millis(250));
        let text = std::fs::read_to_string(&self.counters_file)
            .with_context(|| format!("reading {}", self.counters_file.display()))?;
        parse_dump(&text)
    }

    /// Stops the appliance with SIGTERM and checks it exits 0 and prints its
    /// final counters.
    fn stop(mut self) -> Result<Counters> {
        self.process.signal("TERM")?;
        let mut dump = String::new();
        while let Ok(line) = self.lines.recv_timeout(READY_WAIT) {
            dump.push_str(&line);
            dump.push('\n');
            if line == "counters end" {
                break;
            }
        }
        let status = self.process.child_mut().wait()?;
        ensure!(status.success(), "warpcore-hosted exited with {status}");
        let _ = std::fs::remove_file(&self.counters_file);
        parse_dump(&dump)
    }
}

/// Drops for `reason` at every node called `node`, summed over cores.
fn drops(counters: &Counters, node: &str, reason: &str) -> u64 {
    counters.sum(None, &[("node", node), ("drop", reason)])
}

/// The executor counter `name` of `core`.
fn executor(counters: &Counters, core: u32, name: &str) -> u64 {
    counters.sum(Some(core), &[("executor", name)])
}

/// Parses a complete dump (one that reached `counters end`).
fn parse_dump(text: &str) -> Result<Counters> {
    ensure!(
        text.lines().any(|line| line == "counters end"),
        "counters dump incomplete"
    );
    Counters::parse(text)
}

/// Echoes `count` datagrams from each of `flows` sockets off `target:7`;
/// fails unless every one came back byte-identical.
fn udp_echo(client: &Netns, target: &str, flows: u32, count: u32) -> Result<()> {
    let output = udp_client(
        client,
        &[
            "echo",
            &format!("{target}:7"),
            &flows.to_string(),
            &count.to_string(),
        ],
    )?;
    check_echo(&output, (flows * count) as usize)
}

/// Sends to a closed port of `target`; fails unless ICMP port unreachable
/// came back.
fn udp_closed(client: &Netns, target: &str) -> Result<()> {
    let output = udp_client(client, &["closed", &format!("{target}:9")])?;
    ensure!(
        output.contains("udp-closed refused=true"),
        "closed UDP port gave no ICMP port unreachable: {output}"
    );
    Ok(())
}

/// `examples/echo.toml` on one link with `cores` workers, and the client
/// namespace that reaches it. Fields drop in order: the appliance, then the
/// devices and client namespace, then the appliance's own namespace.
struct EchoSetup {
    appliance: Appliance,
    attachment: Attachment,
    _appliance_netns: Option<Netns>,
}

impl EchoSetup {
    fn start(binary: &Path, link: Link, cores: usize) -> Result<Self> {
        // On a tap the appliance runs where the tap is, in the client's
        // namespace; on AF_PACKET it gets its own, holding its veth end.
        let appliance_netns = match link {
            Link::Tap => None,
            Link::AfPacket => Some(Netns::create("wcha")?),
        };
        let attachment = attach(link, "eth0", "10.0.0.1/24", appliance_netns.as_ref())?;
        let run_in = appliance_netns.as_ref().unwrap_or(&attachment.client);
        let appliance = Appliance::start(
            binary,
            run_in,
            "examples/echo.toml",
            &[&attachment.nic_argument],
            cores,
        )?;
        Ok(Self {
            appliance,
            attachment,
            _appliance_netns: appliance_netns,
        })
    }
}

/// The echo acceptance checks over one link: ARP, ping (small and 1472-byte),
/// UDP echo byte-identical, and port unreachable for a closed port.
fn echo(binary: &Path, link: Link) -> Result<()> {
    let setup = EchoSetup::start(binary, link, 1)?;
    let (client, attachment, appliance) =
        (&setup.attachment.client, &setup.attachment, setup.appliance);

    let arping = client.output(&[
        "arping",
        "-c",
        "3",
        "-w",
        "10",
        "-I",
        &attachment.client_ifname,
        "10.0.0.2",
    ])?;
    let arping_text = String::from_utf8_lossy(&arping.stdout);
    eprintln!(
        "  arping: {}",
        arping_text.lines().last().unwrap_or("(no output)")
    );
    ensure!(
        arping_text.contains("Received 3 response"),
        "arping did not get 3 replies: {arping_text}"
    );

    ping_no_loss(client, &["-c", "100", "-i", "0.01", "10.0.0.2"])?;
    ping_no_loss(client, &["-c", "5", "-i", "0.2", "-s", "1472", "10.0.0.2"])?;

    udp_echo(client, "10.0.0.2", 1, 50)?;
    udp_closed(client, "10.0.0.2")?;

    let counters = appliance.stop()?;
    ensure!(
        executor(&counters, 0, "rx_packets") >= 100 + 5 + 50 + 3,
        "core 0 counted fewer packets than were answered"
    );
    Ok(())
}

/// Two client namespaces ping each other through the hosted router; the
/// TTL arrives decremented by one.
fn router(binary: &Path) -> Result<()> {
    let appliance_netns = Netns::create("wcha")?;
    let left = attach(
        Link::AfPacket,
        "eth0",
        "10.0.1.2/24",
        Some(&appliance_netns),
    )?;
    let right = attach(
        Link::AfPacket,
        "eth1",
        "10.0.2.2/24",
        Some(&appliance_netns),
    )?;
    left.client
        .ip(&["route", "add", "default", "via", "10.0.1.1"])?;
    right
        .client
        .ip(&["route", "add", "default", "via", "10.0.2.1"])?;
    let appliance = Appliance::start(
        binary,
        &appliance_netns,
        "examples/router.toml",
        &[&left.nic_argument, &right.nic_argument],
        1,
    )?;
    for (from, to) in [(&left.client, "10.0.2.2"), (&right.client, "10.0.1.2")] {
        let text = ping_no_loss(from, &["-c", "10", "-i", "0.05", to])?;
        // Linux sends with TTL 64; one router hop leaves 63.
        ensure!(
            text.lines()
                .filter(|line| line.contains("bytes from"))
                .all(|line| line.contains("ttl=63")),
            "TTL not decremented exactly once: {text}"
        );
    }
    appliance.stop()?;
    Ok(())
}

/// With two cores, UDP flows from 16 source ports are spread over both
/// cores' queues: each core's receive counter moves.
fn two_cores(binary: &Path, link: Link) -> Result<()> {
    let setup = EchoSetup::start(binary, link, 2)?;
    let (client, appliance) = (&setup.attachment.client, setup.appliance);
    // Resolve ARP first, so the flows below are all UDP.
    ping_no_loss(client, &["-c", "1", "10.0.0.2"])?;
    let before = appliance.counters()?;
    let echo = udp_echo(client, "10.0.0.2", 16, 4);
    let after = appliance.counters()?;
    let moved: Vec<u64> = (0..2)
        .map(|core| executor(&after, core, "rx_packets") - executor(&before, core, "rx_packets"))
        .collect();
    eprintln!(
        "  rx packets during the flows: core0={} core1={}",
        moved[0], moved[1]
    );
    echo.context("UDP echo over two cores lost or changed datagrams")?;
    ensure!(
        moved.iter().all(|count| *count > 0),
        "16 flows did not reach both cores: {moved:?}"
    );
    appliance.stop()?;
    Ok(())
}

/// Every frame of `services::malformed_frames` goes in from the
/// client namespace; each named drop counter moves by exactly the number of
/// frames naming it, and the appliance still answers ping and UDP echo.
fn malformed(binary: &Path) -> Result<()> {
    let attachment = attach(Link::Tap, "eth0", "10.0.0.1/24", None)?;
    let client = &attachment.client;
    // The catalogue has an oversized frame: let the client side send it.
    client.ip(&["link", "set", &attachment.client_ifname, "mtu", "3000"])?;
    let appliance = Appliance::start(
        binary,
        client,
        "examples/echo.toml",
        &[&attachment.nic_argument],
        1,
    )?;
    // Resolve ARP both ways first, so no frame below waits on it.
    ping_no_loss(client, &["-c", "2", "-i", "0.2", "10.0.0.2"])
        .context("the appliance does not answer before the test")?;
    let peer_mac = client.mac_address(&attachment.client_ifname)?;
    let frames = services::malformed_frames(
        dataplane::MacAddr([0x02, 0, 0, 0, 0, 0x01]),
        std::net::Ipv4Addr::new(10, 0, 0, 2),
        dataplane::MacAddr(peer_mac),
        std::net::Ipv4Addr::new(10, 0, 0, 1),
    );
    ensure!(
        frames.len() >= 20,
        "only {} kinds of bad frames",
        frames.len()
    );
    let before = appliance.counters()?;
    // Each case's preceding frames (fragments) go right before it.
    let named: Vec<NamedFrame> = frames
        .iter()
        .flat_map(|frame| {
            let before = frame
                .preceded_by
                .iter()
                .enumerate()
                .map(|(index, bytes)| NamedFrame {
                    name: format!("{}.before{index}", frame.name),
                    bytes: bytes.clone(),
                });
            before.chain(std::iter::once(NamedFrame {
                name: frame.name.to_owned(),
                bytes: frame.bytes.clone(),
            }))
        })
        .collect();
    let sent = raw_frames::send_in_netns(client, &attachment.client_ifname, &named)?;
    ensure!(
        sent.iter()
            .all(|delivery| delivery.refused.is_none() || delivery.len < 14),
        "the kernel refused a frame: {sent:?}"
    );
    let deliveries: Vec<_> = sent
        .into_iter()
        .filter(|delivery| !delivery.name.contains(".before"))
        .collect();
    // Datagrams left to time out in reassembly move their counter later.
    if let Some(wait) = frames
        .iter()
        .map(|frame| frame.after_ns)
        .max()
        .filter(|ns| *ns > 0)
    {
        eprintln!(
            "  waiting {} s for reassembly timeouts",
            wait / 1_000_000_000 + 2
        );
        std::thread::sleep(Duration::from_nanos(wait) + Duration::from_secs(2));
    }
    // Linux refuses to send a frame shorter than an Ethernet header
    // (dev_validate_header), so no Linux link can deliver one: those are
    // left out of the expectations, and nothing else may be refused.
    let mut refused = Vec::new();
    for (index, delivery) in deliveries.iter().enumerate() {
        if let Some(error) = &delivery.refused {
            ensure!(
                delivery.len < 14,
                "the kernel refused to send `{}` ({} bytes): {error}",
                delivery.name,
                delivery.len
            );
            eprintln!(
                "  not sendable on a Linux link: {} ({} bytes)",
                delivery.name, delivery.len
            );
            refused.push(index);
        }
    }
    let frames: Vec<_> = frames
        .into_iter()
        .enumerate()
        .filter(|(index, _)| !refused.contains(index))
        .map(|(_, frame)| frame)
        .collect();
    eprintln!("  sent {} malformed frames", frames.len());
    let after = appliance.counters()?;

    let mut expected: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for frame in &frames {
        *expected.entry(frame.counter).or_default() += 1;
    }
    let mut wrong = Vec::new();
    for ((node, reason), count) in &expected {
        let moved = drops(&after, node, reason) - drops(&before, node, reason);
        eprintln!("  {node}/{reason}: +{moved} (expected +{count})");
        if moved != *count {
            let names: Vec<&str> = frames
                .iter()
                .filter(|frame| frame.counter == (*node, *reason))
                .map(|frame| frame.name)
                .collect();
            wrong.push(format!(
                "{node}/{reason} +{moved}, expected +{count} ({names:?})"
            ));
        }
    }
    ping_no_loss(client, &["-c", "3", "-i", "0.2", "10.0.0.2"])
        .context("the appliance stopped answering ping")?;
    udp_echo(client, "10.0.0.2", 1, 5).context("UDP echo broken after the bad frames")?;
    appliance.stop()?;
    ensure!(wrong.is_empty(), "drop counters off: {}", wrong.join("; "));
    Ok(())
}
