//! Hosted integration tests: `warpcore-hosted` on a tap or on a veth (via
//! AF_PACKET or AF_XDP) in network namespaces these tests create, driven by `arping`,
//! `ping`, the `__udp-client` and `__tcp-client` helpers and the
//! `__send-frames` raw sender from another namespace (the same helpers the
//! QEMU appliance tests use); the TCP scenarios are in `tcp`. Every traffic
//! loop is bounded in count and time.

use crate::counters::Counters;
use crate::net::netns::{Netns, ensure_net_tools};
use crate::net::raw_frames::{self, NamedFrame};
use crate::shell::host::ensure_programs;
use crate::shell::host::is_root;
use crate::suites::hosted::process::{Appliance, Attachment, EchoSetup, Link, attach};
use crate::suites::hosted::tcp::bounded;
use crate::suites::runner::{self, Case, Filter};
use crate::suites::traffic::{
    arping_answers, fragmented_traffic, ping_no_loss, udp_closed, udp_dropped, udp_echo,
    unfinished_datagrams_are_bounded,
};
use anyhow::{Context, Result, bail, ensure};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The suite's name in `--only` and in its summary line.
const SUITE: &str = "hosted";

/// One scenario: given the appliance binary, passes or says why not.
type Scenario = fn(&Path) -> Result<()>;

/// Every hosted scenario.
fn cases() -> Vec<Case<Scenario>> {
    vec![
        Case::new(
            "echo-tap",
            "echo over tap",
            (|binary| echo(binary, Link::Tap)) as Scenario,
        ),
        Case::new("echo-af-packet", "echo over af-packet", |binary| {
            echo(binary, Link::AfPacket)
        }),
        Case::new("router-af-packet", "router over af-packet", |binary| {
            router(binary, Link::AfPacket)
        }),
        Case::new("malformed-tap", "malformed frames over tap", |binary| {
            malformed(binary, Link::Tap)
        }),
        Case::new("echo-af-xdp", "echo over af-xdp", |binary| {
            echo(binary, Link::AfXdp)
        }),
        Case::new(
            "router-af-xdp",
            "router over af-xdp (two veths)",
            |binary| router(binary, Link::AfXdp),
        ),
        Case::new(
            "malformed-af-xdp",
            "malformed frames over af-xdp",
            |binary| malformed(binary, Link::AfXdp),
        ),
        Case::new(
            "two-cores-af-xdp",
            "two cores over af-xdp, two veth queues",
            |binary| two_cores(binary, Link::AfXdp),
        ),
        Case::new(
            "fragments-tap",
            "ping -s 65507, 4000-byte UDP echo, 1000 unfinished datagrams over tap",
            fragments,
        ),
        Case::new(
            "example-service-tap",
            "the example port-filter service over tap",
            example_service,
        ),
        Case::new(
            "example-tcp-apps-tap",
            "the example TCP apps (hello, line-echo) over tap, with curl and a client",
            example_tcp_apps,
        ),
        Case::new("two-cores-tap", "two cores over tap", |binary| {
            two_cores(binary, Link::Tap)
        }),
        Case::new(
            "two-cores-af-packet",
            "two cores over af-packet",
            |binary| two_cores(binary, Link::AfPacket),
        ),
    ]
    .into_iter()
    .chain(crate::suites::hosted::tcp::cases())
    .chain(crate::suites::hosted::management::cases())
    .chain(crate::suites::hosted::idle::cases())
    .chain(crate::suites::hosted::supervise::cases())
    .chain(crate::suites::hosted::firewall::cases())
    .chain(crate::suites::hosted::nat::cases())
    .chain(crate::suites::hosted::wasm::cases())
    .chain(crate::suites::hosted::lb::cases())
    .collect()
}

/// The names of the hosted scenarios, for `--list`.
pub fn names() -> Vec<String> {
    runner::names(SUITE, &cases())
}

/// Runs the hosted scenarios `filter` selects; fails listing those that
/// failed.
pub fn run(filter: &Filter) -> Result<()> {
    runner::run(SUITE, cases(), filter, build, |binary, scenario| {
        scenario(binary)
    })
}

/// Checks for root and the network tools and builds `warpcore-hosted`
/// (with warpctl and loadgen, `suites::binaries`); returns its path.
fn build() -> Result<PathBuf> {
    if !is_root() {
        bail!("hosted tests need root (network namespaces, taps, AF_PACKET)");
    }
    ensure_net_tools()?;
    crate::suites::binaries::hosted()
}

/// Drops for `reason` at every node called `node`, summed over cores.
fn drops(counters: &Counters, node: &str, reason: &str) -> u64 {
    counters.sum(None, &[("node", node), ("drop", reason)])
}

/// The executor counter `name` of `core`.
fn executor(counters: &Counters, core: u32, name: &str) -> u64 {
    counters.sum(Some(core), &[("executor", name)])
}

/// The echo acceptance checks over one link: ARP, ping (small and 1472-byte),
/// UDP echo byte-identical, and port unreachable for a closed port.
///
/// Over AF_XDP the link is named in the spec (`driver = "af-xdp"`,
/// `ifname`) rather than by `--nic`, which the other cases use.
fn echo(binary: &Path, link: Link) -> Result<()> {
    ensure_link_tools(link)?;
    let setup = if link == Link::AfXdp {
        EchoSetup::with_driver_in_spec(binary, link, 1)?
    } else {
        EchoSetup::start(binary, link, 1)?
    };
    let (client, attachment, appliance) =
        (&setup.attachment.client, &setup.attachment, setup.appliance);

    arping_answers(client, &attachment.client_ifname, "10.0.0.2")?;

    ping_no_loss(client, &["-c", "100", "-i", "0.01", "10.0.0.2"])?;
    ping_no_loss(client, &["-c", "5", "-i", "0.2", "-s", "1472", "10.0.0.2"])?;

    udp_echo(client, "10.0.0.2", 1, 50)?;
    udp_closed(client, "10.0.0.2")?;
    if matches!(link, Link::AfPacket | Link::AfXdp) {
        sleeps_after_spinning(&appliance)?;
    }

    let counters = appliance.stop()?;
    ensure!(
        executor(&counters, 0, "rx_packets") >= 100 + 5 + 50 + 3,
        "core 0 counted fewer packets than were answered"
    );
    if let Some(netns) = &setup.appliance_netns
        && link == Link::AfXdp
    {
        af_xdp_checks(&counters, netns, &setup.attachment, 1)?;
    }
    Ok(())
}

/// Polls a sleeping worker may make in [`QUIET_POLLS_WINDOW`] without
/// traffic: a few wake-ups (a deadline, a stray frame) of about 64 polls
/// each. A worker that kept spinning would poll millions of times.
const QUIET_POLL_LIMIT: u64 = 2_000;
/// How long past their timeout the malformed cases wait for the
/// reassembly-timeout counters to move (then the exact check says which
/// did not).
const TIMEOUT_COUNTERS_BOUND: Duration = Duration::from_secs(10);
/// The quiet window of [`sleeps_after_spinning`].
const QUIET_POLLS_WINDOW: Duration = Duration::from_secs(1);

/// An AF_PACKET or AF_XDP worker spins for a while after its last work
/// (`hosted/src/worker.rs`) but then sleeps: once the traffic has stopped
/// its executor barely polls.
fn sleeps_after_spinning(appliance: &Appliance) -> Result<()> {
    let polls = |counters: &Counters| counters.sum(Some(0), &[("executor", "polls")]);
    let before = appliance.counters()?;
    std::thread::sleep(QUIET_POLLS_WINDOW);
    let after = appliance.counters()?;
    let moved = polls(&after).saturating_sub(polls(&before));
    eprintln!("xtask: [hosted]   {QUIET_POLLS_WINDOW:?} without traffic: executor=polls +{moved}");
    ensure!(
        polls(&before) > 0 && moved <= QUIET_POLL_LIMIT,
        "core 0 polled {moved} times in {QUIET_POLLS_WINDOW:?} without traffic \
         (a sleeping worker: at most {QUIET_POLL_LIMIT})"
    );
    Ok(())
}

/// The tools a link's cases need beyond the network tools: for AF_XDP,
/// ethtool (checksum offload off on the client's veth end) and libxdp
/// (the driver loads Debian's `libxdp.so.1`; `xdp-tools` brings it, and
/// `xdp-loader` with it).
fn ensure_link_tools(link: Link) -> Result<()> {
    if link == Link::AfXdp {
        ensure_programs(
            "the AF_XDP cases",
            &[("ethtool", "ethtool"), ("xdp-loader", "xdp-tools")],
        )?;
    }
    Ok(())
}

/// After an AF_XDP run: every core's socket ran (copy mode on veth,
/// said by its counter), received what the executor did, lent its own
/// buffers back and forth (most replies went out zero-copy), and the XDP
/// program is gone from the interface.
fn af_xdp_checks(
    counters: &Counters,
    appliance_netns: &Netns,
    attachment: &Attachment,
    cores: u32,
) -> Result<()> {
    for core in 0..cores {
        let nic = |stat: &str| counters.sum(Some(core), &[("stat", stat)]);
        let received = nic("rx_packets");
        ensure!(
            received == executor(counters, core, "rx_packets"),
            "core {core}: the socket counted {received} frames, the executor {}",
            executor(counters, core, "rx_packets")
        );
        ensure!(
            nic("zero_copy") == 0,
            "core {core}: a veth socket claims zero copy"
        );
        let (sent, copied) = (nic("tx_packets"), nic("tx_copied"));
        ensure!(
            sent > 0 && copied < sent,
            "core {core}: {sent} sent, {copied} of them copied: replies should go out in their own buffers"
        );
        for stat in [
            "rx_invalid",
            "kernel_rx_invalid_descs",
            "kernel_tx_invalid_descs",
        ] {
            ensure!(nic(stat) == 0, "core {core}: {stat} = {}", nic(stat));
        }
    }
    xdp_detached(appliance_netns, attachment)
}

/// Fails if the appliance's veth end still has an XDP program.
fn xdp_detached(appliance_netns: &Netns, attachment: &Attachment) -> Result<()> {
    let ifname = attachment
        .appliance_ifname
        .as_deref()
        .context("an AF_XDP attachment has a veth end")?;
    let shown = appliance_netns.ip(&["link", "show", "dev", ifname])?;
    ensure!(
        !shown.contains("prog/xdp"),
        "the XDP program is still attached to {ifname} after the appliance stopped: {shown}"
    );
    Ok(())
}

/// Datagrams bigger than the MTU both ways, then 1000 datagrams whose
/// first fragment alone arrives: reassembly memory stays within its slots
/// (all but those are evicted, counted) and the appliance answers after.
fn fragments(binary: &Path) -> Result<()> {
    let setup = EchoSetup::start(binary, Link::Tap, 1)?;
    let (client, ifname) = (&setup.attachment.client, &setup.attachment.client_ifname);
    ping_no_loss(client, &["-c", "2", "-i", "0.2", "10.0.0.2"])?;
    fragmented_traffic(client, "10.0.0.2")?;
    let appliance = &setup.appliance;
    unfinished_datagrams_are_bounded(client, ifname, || {
        Ok(drops(&appliance.counters()?, "ipv4", "reassembly-evicted"))
    })?;
    setup.appliance.stop()?;
    Ok(())
}

/// examples/port-filter.toml, with the service of examples/port-filter
/// registered from outside the core: port 7 is echoed, datagrams to port 9
/// are dropped by `port-filter` (no ICMP error, since they never reach the
/// UDP stage) and counted.
fn example_service(binary: &Path) -> Result<()> {
    let setup = EchoSetup::with_spec(binary, Link::Tap, 1, "examples/port-filter.toml")?;
    let client = &setup.attachment.client;
    udp_echo(client, "10.0.0.2", 1, 20)?;
    udp_dropped(client, "10.0.0.2", 9, 3)?;
    udp_echo(client, "10.0.0.2", 1, 20)?;
    let counters = setup.appliance.stop()?;
    let blocked = drops(&counters, "port-filter", "blocked");
    ensure!(
        blocked == 3,
        "port-filter/blocked counted {blocked}, expected 3"
    );
    let closed = drops(&counters, "udp", "port-closed");
    ensure!(
        closed == 0,
        "udp/port-closed counted {closed}: the filter let a datagram through"
    );
    Ok(())
}

/// The example TCP apps of examples/tcp-apps: `hello` answers two
/// requests on one kept-alive connection (curl), `line-echo` sends lines
/// back and closes on `quit`.
fn example_tcp_apps(binary: &Path) -> Result<()> {
    ensure_programs(
        "the example TCP apps",
        &[("curl", "curl"), ("nc", "netcat-openbsd")],
    )?;
    let setup = EchoSetup::with_spec(binary, Link::Tap, 1, "examples/tcp-apps.toml")?;
    let client = &setup.attachment.client;
    ping_no_loss(client, &["-c", "1", "10.0.0.2"])?;
    let hello = bounded(
        client,
        30,
        &[
            "curl",
            "-sS",
            "--max-time",
            "20",
            "-w",
            "%{num_connects}",
            "http://10.0.0.2:8080/",
            "http://10.0.0.2:8080/",
        ],
    )?;
    ensure!(
        hello == "hello\n1hello\n0",
        "hello answered `{hello}` (two bodies on one connection expected)"
    );
    let echoed = bounded(
        client,
        30,
        &[
            "sh",
            "-c",
            "printf 'one\\ntwo\\nquit\\nlost\\n' | nc -w 10 10.0.0.2 7007",
        ],
    )?;
    ensure!(echoed == "one\ntwo\n", "line-echo answered `{echoed}`");
    let counters = setup.appliance.stop()?;
    let closed = counters.sum(None, &[("node", "tcp"), ("event", "connections-closed")]);
    ensure!(
        closed == 2,
        "connections-closed counted {closed}, expected 2"
    );
    Ok(())
}

/// Two client namespaces ping each other through the hosted router; the
/// TTL arrives decremented by one.
fn router(binary: &Path, link: Link) -> Result<()> {
    ensure_link_tools(link)?;
    let appliance_netns = Netns::create("wcha")?;
    let left = attach(link, "eth0", "10.0.1.2/24", Some(&appliance_netns))?;
    let right = attach(link, "eth1", "10.0.2.2/24", Some(&appliance_netns))?;
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
    let counters = appliance.stop()?;
    if link == Link::AfXdp {
        for attachment in [&left, &right] {
            xdp_detached(&appliance_netns, attachment)?;
        }
        // A forwarded frame leaves through the other interface's socket,
        // whose UMEM is another pool: it goes out copied. 10 pings each
        // way, request and reply each forwarded once: 40 at least (ARP
        // replies, built in the executor's pool, are copied too).
        let copied = counters.sum(None, &[("stat", "tx_copied")]);
        ensure!(
            copied >= 40,
            "only {copied} frames copied between the two UMEMs, 40 forwarded at least"
        );
    }
    Ok(())
}

/// With two cores, UDP flows from 16 source ports are spread over both
/// cores' queues: each core's receive counter moves.
fn two_cores(binary: &Path, link: Link) -> Result<()> {
    ensure_link_tools(link)?;
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
    let counters = appliance.stop()?;
    if let Some(netns) = &setup.appliance_netns
        && link == Link::AfXdp
    {
        af_xdp_checks(&counters, netns, &setup.attachment, 2)?;
    }
    Ok(())
}

/// Every frame of `services::malformed_frames` goes in from the
/// client namespace; each named drop counter moves by exactly the number of
/// frames naming it, and the appliance still answers ping and UDP echo.
fn malformed(binary: &Path, link: Link) -> Result<()> {
    ensure_link_tools(link)?;
    let appliance_netns = if link.is_veth() {
        Some(Netns::create("wcha")?)
    } else {
        None
    };
    let attachment = attach(link, "eth0", "10.0.0.1/24", appliance_netns.as_ref())?;
    let client = &attachment.client;
    // The catalogue has an oversized frame: let the client side send it,
    // and a veth's other end take it (a veth drops what exceeds the
    // receiving end's MTU; the appliance's own limit is 1514 bytes).
    client.ip(&["link", "set", &attachment.client_ifname, "mtu", "3000"])?;
    if let (Some(netns), Some(ifname)) = (&appliance_netns, &attachment.appliance_ifname) {
        netns.ip(&["link", "set", ifname, "mtu", "3000"])?;
    }
    let appliance = Appliance::start(
        binary,
        appliance_netns.as_ref().unwrap_or(client),
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
    let named: Vec<NamedFrame> = frames.iter().flat_map(raw_frames::case_frames).collect();
    let sent = raw_frames::send_in_netns(client, &attachment.client_ifname, &named)?;
    ensure!(
        sent.iter()
            .all(|delivery| delivery.refused.is_none() || delivery.len < 14),
        "the kernel refused a frame: {sent:?}"
    );
    let deliveries: Vec<_> = sent
        .into_iter()
        .filter(|delivery| !delivery.name.contains(raw_frames::PRECEDING))
        .collect();
    // Datagrams left to time out in reassembly move their counter later:
    // after their timeout, when the worker's timer fires, which a busy host
    // delays, so wait for the counters (bounded) rather than a fixed time.
    if let Some(wait) = frames
        .iter()
        .map(|frame| frame.after_ns)
        .max()
        .filter(|ns| *ns > 0)
    {
        eprintln!(
            "  waiting {} s for reassembly timeouts",
            wait / 1_000_000_000
        );
        std::thread::sleep(Duration::from_nanos(wait));
        let mut due: BTreeMap<(&str, &str), u64> = BTreeMap::new();
        for frame in frames.iter().filter(|frame| frame.after_ns > 0) {
            *due.entry(frame.counter).or_default() += 1;
        }
        let deadline = std::time::Instant::now() + TIMEOUT_COUNTERS_BOUND;
        loop {
            let now = appliance.counters()?;
            let moved = |((node, reason), count): (&(&str, &str), &u64)| {
                drops(&now, node, reason) - drops(&before, node, reason) >= *count
            };
            if due.iter().all(moved) || std::time::Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
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
