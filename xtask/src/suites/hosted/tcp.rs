//! The hosted TCP scenarios: `warpcore-hosted` serving examples/tcp.toml
//! on a tap, driven by the `__tcp-client` helper, the SYN flood and the
//! malformed segments from the client namespace (see
//! `suites::tcp_traffic`), with the `tcp` node's counters read from the
//! counters file. Every case is bounded in time.

use crate::net::bridged::{BridgedClient, Direction};
use crate::net::devices::Tap;
use crate::net::netns::Netns;
use crate::shell::host::{DEBIAN_PYTHON, ensure_programs, ensure_python_module, workspace_root};
use crate::suites::hosted::process::{Appliance, EchoSetup, Link};
use crate::suites::proxy_traffic;
use crate::suites::runner::Case;
use crate::suites::tcp_traffic::{
    self, ReadCounters, bulk_under_loss, bulk_under_loss_and_reordering, closed_port, drop_count,
    echo_round_trip, event, half_close, reset_mid_transfer, tcp_echo,
};
use crate::suites::traffic::ping_no_loss;
use anyhow::{Context, Result, ensure};
use std::path::Path;

/// The spec every TCP scenario serves.
const SPEC: &str = "examples/tcp.toml";

/// One TCP scenario: given the appliance binary, passes or says why not.
type Scenario = fn(&Path) -> Result<()>;

/// The hosted TCP scenarios, all over a tap.
pub fn cases() -> Vec<Case<Scenario>> {
    vec![
        Case::new(
            "tcp-echo-tap",
            "tcp-echo: one connection's lines, accepted and closed counted, 10 MB echoed",
            (|binary| on_one_core(binary, echo_round_trip)) as Scenario,
        ),
        Case::new(
            "tcp-loss-tap",
            "tcp-echo: 10 MB under 5 % loss and reordering one way, 2 MB under loss both ways, byte-identical",
            loss,
        ),
        Case::new(
            "tcp-half-close-tap",
            "tcp-echo: send, shut down writing, still the whole echo then EOF",
            |binary| on_one_core(binary, half_close),
        ),
        Case::new(
            "tcp-reset-tap",
            "tcp-echo: the client aborts with RST mid-transfer; counted, then a new echo",
            |binary| on_one_core(binary, reset_mid_transfer),
        ),
        Case::new(
            "tcp-closed-port-tap",
            "a closed TCP port refuses with RST, drop=port-closed counted",
            |binary| on_one_core(binary, closed_port),
        ),
        Case::new(
            "tcp-syn-flood-tap",
            "100 000 SYNs: cookies sent, then ping and a new echo",
            syn_flood,
        ),
        Case::new(
            "tcp-concurrent-tap",
            "1000 connections open at once, each echoing a line",
            concurrent,
        ),
        Case::new(
            "tcp-two-cores-tap",
            "two cores: 16 connections spread over both, none on the wrong core",
            two_cores,
        ),
        Case::new(
            "tcp-http-tap",
            "http: curl GET, POST /echo, /bytes, keep-alive reuse; wrk -c 1000 -d 5s",
            http,
        ),
        Case::new(
            "tcp-kv-tap",
            "kv: memccp/memccat round trip, memcslap, set/get/gets/cas/incr reply by reply, pymemcache",
            kv,
        ),
        Case::new(
            "tcp-proxy-tap",
            "tcp-proxy: curl and wrk through the proxy to python http.server, 4 MiB by sha256, a refused backend",
            |binary| proxy(binary, 1),
        ),
        Case::new(
            "tcp-proxy-two-cores-tap",
            "tcp-proxy on two cores: both dial their clients' backends, stray segments passed, none dropped",
            |binary| proxy(binary, 2),
        ),
        Case::new(
            "tcp-malformed-tap",
            "every malformed TCP segment bumps exactly its drop counter, then an echo",
            malformed,
        ),
    ]
}

/// Starts examples/tcp.toml on a tap with one core, pings it once (ARP
/// both ways) and runs `check` against it; then stops it cleanly.
fn on_one_core(
    binary: &Path,
    check: fn(&crate::net::netns::Netns, &mut ReadCounters) -> Result<()>,
) -> Result<()> {
    let setup = EchoSetup::with_spec(binary, Link::Tap, 1, SPEC)?;
    let client = &setup.attachment.client;
    ping_no_loss(client, &["-c", "1", tcp_traffic::APPLIANCE])?;
    let appliance = &setup.appliance;
    check(client, &mut || appliance.counters())?;
    setup.appliance.stop()?;
    Ok(())
}

/// 10 MB with 5 % loss and reordering toward the appliance, then 2 MB with
/// 5 % loss each way, the client bridged to the tap so that the loss is on
/// the wire. Both directions at once are far slower today (about 200 KB/s,
/// mostly RTOs), hence the smaller size there. The kernels here have no
/// netem, so a userspace relay between the bridge and the tap reorders
/// (see `net::reorder_relay`); the both-ways case runs without it.
fn loss(binary: &Path) -> Result<()> {
    loss_and_reordering(binary)?;
    loss_both_ways(binary)
}

/// Holding back about one data segment in this many toward the appliance.
const HOLD_ONE_IN: u32 = 20;

/// 10 MB through a relayed bridge: 5 % loss and reordering toward the
/// appliance.
fn loss_and_reordering(binary: &Path) -> Result<()> {
    let tap_netns = Netns::create("wcha")?;
    let tap = Tap::create("wcht", Some(&tap_netns), true)?;
    tap_netns.configure(tap.name(), None)?;
    let link = BridgedClient::create_relayed(&tap_netns, tap.name(), "10.0.0.1/24")?;
    let appliance = Appliance::start(
        binary,
        &tap_netns,
        SPEC,
        &[&format!("eth0=tap:{}", tap.name())],
        1,
    )?;
    let timeout = 180;
    // The relay outlives the transfer's timeout by a margin, and stops
    // when the transfer ends.
    let relay = link.reorder(HOLD_ONE_IN, timeout + 60)?;
    ping_no_loss(&link.client, &["-c", "1", tcp_traffic::APPLIANCE])?;
    let mut counters = || appliance.counters();
    bulk_under_loss_and_reordering(&link, relay, &mut counters, 10_000_000, 5, timeout)?;
    appliance.stop()?;
    Ok(())
}

/// 2 MB through a plain bridge with 5 % loss each way.
fn loss_both_ways(binary: &Path) -> Result<()> {
    let tap_netns = Netns::create("wcha")?;
    let tap = Tap::create("wcht", Some(&tap_netns), true)?;
    tap_netns.configure(tap.name(), None)?;
    let link = BridgedClient::create(&tap_netns, tap.name(), "10.0.0.1/24")?;
    let appliance = Appliance::start(
        binary,
        &tap_netns,
        SPEC,
        &[&format!("eth0=tap:{}", tap.name())],
        1,
    )?;
    ping_no_loss(&link.client, &["-c", "1", tcp_traffic::APPLIANCE])?;
    let mut counters = || appliance.counters();
    bulk_under_loss(
        &link,
        &mut counters,
        2_000_000,
        5,
        &[Direction::ToAppliance, Direction::ToClient],
        180,
    )?;
    appliance.stop()?;
    Ok(())
}

/// 100 000 SYNs at 20 000 a second.
fn syn_flood(binary: &Path) -> Result<()> {
    let setup = EchoSetup::with_spec(binary, Link::Tap, 1, SPEC)?;
    let (client, ifname) = (&setup.attachment.client, &setup.attachment.client_ifname);
    let appliance = &setup.appliance;
    tcp_traffic::syn_flood(
        client,
        ifname,
        &mut || appliance.counters(),
        100_000,
        20_000,
    )?;
    setup.appliance.stop()?;
    Ok(())
}

/// 1000 connections open at once, each echoing one line, all accepted.
fn concurrent(binary: &Path) -> Result<()> {
    const CONNECTIONS: usize = 1000;
    let setup = EchoSetup::with_spec(binary, Link::Tap, 1, SPEC)?;
    let client = &setup.attachment.client;
    ping_no_loss(client, &["-c", "1", tcp_traffic::APPLIANCE])?;
    let before = setup.appliance.counters()?;
    tcp_echo(client, CONNECTIONS, 1, 60)?;
    let after = setup.appliance.counters()?;
    eprintln!("    counters: {}", tcp_traffic::moved(&before, &after));
    let accepted =
        event(&after, None, "connections-accepted") - event(&before, None, "connections-accepted");
    ensure!(
        accepted == CONNECTIONS as u64,
        "connections-accepted moved by {accepted}, expected {CONNECTIONS}"
    );
    setup.appliance.stop()?;
    Ok(())
}

/// With two cores and a multi-queue tap, 16 connections (distinct source
/// ports) land on both cores, as the UDP two-cores case checks for flows:
/// each core accepts some, and no segment reaches a core that does not own
/// its connection (`drop=wrong-core` stays 0).
fn two_cores(binary: &Path) -> Result<()> {
    let setup = EchoSetup::with_spec(binary, Link::Tap, 2, SPEC)?;
    let client = &setup.attachment.client;
    ping_no_loss(client, &["-c", "1", tcp_traffic::APPLIANCE])?;
    let before = setup.appliance.counters()?;
    let echo = tcp_echo(client, 16, 10, 30);
    let after = setup.appliance.counters()?;
    let accepted: Vec<u64> = (0..2)
        .map(|core| {
            event(&after, Some(core), "connections-accepted")
                - event(&before, Some(core), "connections-accepted")
        })
        .collect();
    // A stray segment is passed to its core now rather than dropped: both
    // counters say it strayed.
    let wrong_core = drop_count(&after, "wrong-core") + event(&after, None, "segments-handed-off")
        - event(&before, None, "segments-handed-off");
    eprintln!(
        "    connections accepted: core0={} core1={}; wrong-core (dropped or handed off)={wrong_core}",
        accepted[0], accepted[1]
    );
    echo?;
    ensure!(
        accepted.iter().all(|count| *count > 0),
        "16 connections did not reach both cores: {accepted:?}"
    );
    ensure!(
        wrong_core == 0,
        "{wrong_core} segments reached a core that does not own their connection"
    );
    setup.appliance.stop()?;
    Ok(())
}

/// examples/tcp-proxy.toml on a tap with `cores` cores, the backend and
/// the clients in the tap's namespace (`suites::proxy_traffic`).
fn proxy(binary: &Path, cores: u32) -> Result<()> {
    let setup = EchoSetup::with_spec(binary, Link::Tap, cores as usize, proxy_traffic::SPEC)?;
    let client = &setup.attachment.client;
    ping_no_loss(client, &["-c", "1", tcp_traffic::APPLIANCE])?;
    let appliance = &setup.appliance;
    proxy_traffic::proxy_checks(
        client,
        &mut || appliance.counters(),
        cores,
        proxy_traffic::Steering::Host,
    )?;
    setup.appliance.stop()?;
    Ok(())
}

/// The malformed segments of `services::malformed_segments`.
fn malformed(binary: &Path) -> Result<()> {
    let setup = EchoSetup::with_spec(binary, Link::Tap, 1, SPEC)?;
    let (client, ifname) = (&setup.attachment.client, &setup.attachment.client_ifname);
    let appliance = &setup.appliance;
    tcp_traffic::malformed_segments(client, ifname, &mut || appliance.counters())?;
    setup.appliance.stop()?;
    Ok(())
}

/// Runs `args` in `netns` under `timeout -k 5 SECONDS`, so a hung client
/// ends; returns its stdout, failing on a non-zero exit.
pub(super) fn bounded(netns: &Netns, seconds: u32, args: &[&str]) -> Result<String> {
    let seconds = seconds.to_string();
    let mut full = vec!["timeout", "-k", "5", seconds.as_str()];
    full.extend_from_slice(args);
    netns.run(&full)
}

/// curl against examples/tcp.toml's `http` on port 80: GET / answers the
/// route's body, POST /echo sends the body back, /bytes?n=1048576 streams
/// exactly that many bytes, two GETs in one curl share one connection
/// (keep-alive), and `wrk -c 1000 -d 5s` finishes without socket errors or
/// non-2xx answers.
fn http(binary: &Path) -> Result<()> {
    ensure_programs("HTTP tests", &[("curl", "curl"), ("wrk", "wrk")])?;
    let setup = EchoSetup::with_spec(binary, Link::Tap, 1, SPEC)?;
    let client = &setup.attachment.client;
    ping_no_loss(client, &["-c", "1", tcp_traffic::APPLIANCE])?;
    let curl = |args: &[&str]| -> Result<String> {
        let mut full = vec!["curl", "-sS", "--max-time", "20"];
        full.extend_from_slice(args);
        bounded(client, 30, &full)
    };
    let root = curl(&["http://10.0.0.2/"])?;
    ensure!(root == "hello from warpcore\n", "GET / answered `{root}`");
    let body = "warpcore echoes this body";
    let echoed = curl(&["--data-binary", body, "http://10.0.0.2/echo"])?;
    ensure!(echoed == body, "POST /echo answered `{echoed}`");
    let size = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{size_download}",
        "http://10.0.0.2/bytes?n=1048576",
    ])?;
    ensure!(size == "1048576", "/bytes?n=1048576 sent {size} bytes");
    let before = setup.appliance.counters()?;
    let connects = curl(&[
        "-o",
        "/dev/null",
        "-o",
        "/dev/null",
        "-w",
        "%{num_connects} ",
        "http://10.0.0.2/",
        "http://10.0.0.2/",
    ])?;
    let after = setup.appliance.counters()?;
    let accepted =
        event(&after, None, "connections-accepted") - event(&before, None, "connections-accepted");
    ensure!(
        connects.trim() == "1 0" && accepted == 1,
        "two GETs in one curl did not share a connection: num_connects `{connects}`, \
         connections-accepted +{accepted}"
    );
    eprintln!("    curl: GET, POST /echo, 1 MiB /bytes, keep-alive reuse ok");
    let before = setup.appliance.counters()?;
    let wrk = bounded(
        client,
        40,
        &[
            "wrk",
            "-t",
            "2",
            "-c",
            "1000",
            "-d",
            "5s",
            "http://10.0.0.2/",
        ],
    )?;
    let after = setup.appliance.counters()?;
    eprintln!("    wrk: {}", wrk.trim().replace('\n', "\n    wrk: "));
    eprintln!("    counters: {}", tcp_traffic::moved(&before, &after));
    let requests: u64 = wrk
        .lines()
        .find_map(|line| line.trim().split_once(" requests in "))
        .and_then(|(count, _)| count.trim().parse().ok())
        .context("wrk printed no request count")?;
    ensure!(
        requests > 0 && !wrk.contains("Socket errors") && !wrk.contains("Non-2xx"),
        "wrk saw errors: {wrk}"
    );
    setup.appliance.stop()?;
    Ok(())
}

/// The script the kv case runs with Debian's Python and pymemcache.
const PYMEMCACHE_CHECK: &str = "scripts/pymemcache-check.py";

/// The memcached tools, the client's `kv` mode and pymemcache against
/// examples/tcp.toml's `kv` on port 11211: a 5000-byte file through memccp
/// and back through memccat unchanged, memcslap's 10 000 sets from 10
/// threads, every reply of a set/get/gets/cas/incr/decr/append/delete
/// exchange exact, and [`PYMEMCACHE_CHECK`] over 200 keys.
fn kv(binary: &Path) -> Result<()> {
    ensure_python_module("key-value tests", "pymemcache", "python3-pymemcache")?;
    ensure_programs(
        "key-value tests",
        &[
            ("memccp", "libmemcached-tools"),
            ("memccat", "libmemcached-tools"),
            ("memcslap", "libmemcached-tools"),
        ],
    )?;
    let setup = EchoSetup::with_spec(binary, Link::Tap, 1, SPEC)?;
    let client = &setup.attachment.client;
    ping_no_loss(client, &["-c", "1", tcp_traffic::APPLIANCE])?;
    let servers = "--servers=10.0.0.2:11211";
    let directory = std::env::temp_dir().join(crate::net::netns::unique_name("wckv"));
    std::fs::create_dir_all(&directory)?;
    let file = directory.join("wc-file");
    let contents: Vec<u8> = (0..5000u64).map(crate::net::tcp_client::pattern).collect();
    std::fs::write(&file, &contents)?;
    let copied = bounded(client, 20, &["memccp", servers, &file.to_string_lossy()]);
    let read = copied.and_then(|_| {
        let mut command = client.command("timeout");
        command.args(["-k", "5", "20", "memccat", servers, "wc-file"]);
        let output = command.output().context("running memccat")?;
        ensure!(output.status.success(), "memccat failed: {output:?}");
        Ok(output.stdout)
    });
    let _ = std::fs::remove_dir_all(&directory);
    let mut read = read?;
    // memccat ends the value with a newline of its own.
    if read.last() == Some(&b'\n') && read.len() == contents.len() + 1 {
        read.pop();
    }
    ensure!(
        read == contents,
        "memccat returned {} bytes, not the 5000 memccp stored",
        read.len()
    );
    let slap = bounded(
        client,
        60,
        &[
            "memcslap",
            servers,
            "--concurrency=10",
            "--execute-number=1000",
        ],
    )?;
    ensure!(
        slap.contains("Time total"),
        "memcslap did not finish: {slap}"
    );
    eprintln!(
        "    memcslap: {}",
        slap.lines()
            .filter(|line| line.starts_with("Time"))
            .collect::<Vec<_>>()
            .join("; ")
    );
    let output = tcp_traffic::tcp_client(client, &["kv", "10.0.0.2:11211"])?;
    ensure!(
        output.contains("checks=14 passed=14"),
        "kv exchange replies differ: {}",
        output.trim()
    );
    let script = workspace_root().join(PYMEMCACHE_CHECK);
    let python = bounded(
        client,
        60,
        &[
            DEBIAN_PYTHON,
            &script.to_string_lossy(),
            "10.0.0.2:11211",
            "200",
        ],
    )
    .context("the pymemcache check failed (its reason is in the error above)")?;
    eprintln!("    {}", python.trim());
    ensure!(
        python.contains("pymemcache checks=") && !python.contains("mismatch"),
        "pymemcache: {}",
        python.trim()
    );
    setup.appliance.stop()?;
    Ok(())
}
