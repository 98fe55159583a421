//! TCP checks run from a client namespace against an appliance (QEMU or
//! hosted) serving `examples/tcp.toml` (tcp-echo on port 7 of 10.0.0.2):
//! echo, a stream under random loss (and reordering), half-close, an abort with RST, a
//! closed port, a SYN flood and the malformed segments, each reading the
//! `tcp` node's counters through a closure (a hosted counters file or the
//! kernel's serial dump). Every loop is bounded in count and time.

use crate::counters::Counters;
use crate::net::bridged::{BridgedClient, Direction};
use crate::net::netns::Netns;
use crate::net::nft::NftTable;
use crate::net::raw_frames::{self, NamedFrame};
use crate::net::reorder_relay::ReorderRelay;
use crate::net::syn_flood::{flood_in_netns, syn_frames};
use crate::shell::process::checked_output;
use crate::suites::traffic::ping_no_loss;
use anyhow::{Context, Result, ensure};
use dataplane::MacAddr;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// The appliance's address and MAC in examples/tcp.toml, and the client's
/// address on the link.
pub const APPLIANCE: &str = "10.0.0.2";
const APPLIANCE_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const APPLIANCE_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
/// The tcp-echo port, and a port nothing listens on.
pub const ECHO: &str = "10.0.0.2:7";
const CLOSED: &str = "10.0.0.2:9";
/// How long a counter gets to move after the traffic that moves it (a
/// passive close completes when the peer's last ACK arrives).
const SETTLE: Duration = Duration::from_secs(10);

/// Reads the appliance's latest counters.
pub type ReadCounters<'a> = dyn FnMut() -> Result<Counters> + 'a;

/// The `tcp` node's event `name`, summed over cores (`None`) or of one.
pub fn event(counters: &Counters, core: Option<u32>, name: &str) -> u64 {
    counters.sum(core, &[("node", "tcp"), ("event", name)])
}

/// The `tcp` node's drops for `reason`, summed over cores.
pub fn drop_count(counters: &Counters, reason: &str) -> u64 {
    counters.sum(None, &[("node", "tcp"), ("drop", reason)])
}

/// Reads counters until `done` holds for them or [`SETTLE`] passes;
/// returns the last reading either way.
fn settle(counters: &mut ReadCounters, done: impl Fn(&Counters) -> bool) -> Result<Counters> {
    let deadline = Instant::now() + SETTLE;
    loop {
        let now = counters()?;
        if done(&now) || Instant::now() >= deadline {
            return Ok(now);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Every `tcp` event and drop that moved between `before` and `after`, as
/// `name +N` words, for the log.
pub fn moved(before: &Counters, after: &Counters) -> String {
    let mut deltas: BTreeMap<String, u64> = BTreeMap::new();
    for line in after.lines.iter().filter(|line| {
        line.labels
            .first()
            .is_some_and(|(key, value)| key == "node" && value == "tcp")
    }) {
        if let Some((key, name)) = line.labels.get(1)
            && (key == "event" || key == "drop")
        {
            *deltas.entry(format!("{key}={name}")).or_default() += line.value;
        }
    }
    for line in &before.lines {
        if let (Some((_, node)), Some((key, name))) = (line.labels.first(), line.labels.get(1))
            && node == "tcp"
            && let Some(delta) = deltas.get_mut(&format!("{key}={name}"))
        {
            *delta = delta.saturating_sub(line.value);
        }
    }
    deltas
        .iter()
        .filter(|(_, delta)| **delta > 0)
        .map(|(name, delta)| format!("{name} +{delta}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs the TCP client inside `netns` with `args`; returns its stdout.
pub fn tcp_client(netns: &Netns, args: &[&str]) -> Result<String> {
    let me = std::env::current_exe().context("locating the xtask binary")?;
    let mut command = netns.command(&me.to_string_lossy());
    // Its notes on what failed (a few, bounded) go straight to the log.
    command
        .arg("__tcp-client")
        .args(args)
        .stderr(std::process::Stdio::inherit());
    let output = checked_output(&mut command)?;
    // A long argument (a request of kilobytes) is shown by its start.
    let shown: Vec<String> = args
        .iter()
        .map(|arg| match arg.char_indices().nth(60) {
            Some((cut, _)) => format!("{}...({} bytes)", &arg[..cut], arg.len()),
            None => (*arg).to_string(),
        })
        .collect();
    eprintln!("    tcp client {}: {}", shown.join(" "), output.trim());
    Ok(output)
}

/// The value of `key=` in the client's summary line.
fn field<'a>(output: &'a str, key: &str) -> Result<&'a str> {
    output
        .split_whitespace()
        .find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
        .with_context(|| format!("no {key}= in `{}`", output.trim()))
}

/// `connections` connections open at once to tcp-echo each echo `lines`
/// lines byte-identical and end with a clean EOF.
pub fn tcp_echo(client: &Netns, connections: usize, lines: usize, timeout: u64) -> Result<()> {
    let output = tcp_client(
        client,
        &[
            "echo",
            ECHO,
            &connections.to_string(),
            &lines.to_string(),
            "--timeout",
            &timeout.to_string(),
        ],
    )?;
    let want = [
        ("connected", connections),
        ("identical", connections * lines),
        ("eof", connections),
    ];
    for (key, count) in want {
        let got: usize = field(&output, key)?.parse()?;
        ensure!(
            got == count,
            "{key}={got}, expected {count}: `{}`",
            output.trim()
        );
    }
    Ok(())
}

/// `bytes` through tcp-echo come back byte-identical then EOF within
/// `timeout` seconds; returns how long it took, in seconds.
pub fn tcp_bulk(client: &Netns, bytes: u64, read_after_close: bool, timeout: u64) -> Result<f64> {
    let bytes_text = bytes.to_string();
    let timeout_text = timeout.to_string();
    let mut args = vec![
        "bulk",
        ECHO,
        &bytes_text,
        "--timeout",
        timeout_text.as_str(),
    ];
    if read_after_close {
        args.push("--read-after-close");
    }
    let output = tcp_client(client, &args)?;
    ensure!(
        field(&output, "sent")? == bytes_text
            && field(&output, "received")? == bytes_text
            && field(&output, "identical")? == "true"
            && field(&output, "eof")? == "true",
        "{bytes} bytes did not come back whole, identical and then EOF: `{}`",
        output.trim()
    );
    Ok(field(&output, "seconds")?.parse()?)
}

/// One connection echoes five lines; connections-accepted and
/// connections-closed each move by one (the appliance closes passively once
/// the client half-closes), and 10 MB then echo back byte-identical.
pub fn echo_round_trip(client: &Netns, counters: &mut ReadCounters) -> Result<()> {
    let before = counters()?;
    tcp_echo(client, 1, 5, 30)?;
    let after = settle(counters, |now| {
        event(now, None, "connections-closed") > event(&before, None, "connections-closed")
    })?;
    eprintln!("    counters: {}", moved(&before, &after));
    for name in ["connections-accepted", "connections-closed"] {
        let delta = event(&after, None, name) - event(&before, None, name);
        ensure!(delta == 1, "{name} moved by {delta}, expected 1");
    }
    let bytes = 10_000_000;
    let seconds = tcp_bulk(client, bytes, false, 120)?;
    eprintln!(
        "    10 MB echoed in {seconds:.1} s ({:.1} MB/s)",
        bytes as f64 / seconds.max(0.001) / 1e6
    );
    Ok(())
}

/// `bytes` through tcp-echo from `link`'s client under `percent` % random
/// TCP loss on `directions`, within `timeout` seconds: byte-identical and
/// then EOF. Logs the rate, the dropped segments and the recovery counters.
pub fn bulk_under_loss(
    link: &BridgedClient,
    counters: &mut ReadCounters,
    bytes: u64,
    percent: u8,
    directions: &[Direction],
    timeout: u64,
) -> Result<()> {
    let before = counters()?;
    let loss = link.tcp_loss(percent, directions)?;
    let result = tcp_bulk(&link.client, bytes, false, timeout);
    let dropped = loss.dropped();
    drop(loss);
    let after = counters()?;
    eprintln!("    segments dropped {directions:?}: {dropped:?}");
    eprintln!("    counters: {}", moved(&before, &after));
    let seconds = result?;
    eprintln!(
        "    {bytes} bytes under {percent} % loss {directions:?} in {seconds:.1} s ({:.0} KB/s)",
        bytes as f64 / seconds.max(0.001) / 1e3
    );
    Ok(())
}

/// `bytes` through tcp-echo from `link`'s client under `percent` % random
/// TCP loss toward the appliance, with `relay` (already running on `link`)
/// reordering that way too, within `timeout` seconds: byte-identical and
/// then EOF. Logs the relay's counts, the dropped segments and the
/// counters; the relay must have held frames back and `out-of-order` must
/// have moved.
pub fn bulk_under_loss_and_reordering(
    link: &BridgedClient,
    relay: ReorderRelay,
    counters: &mut ReadCounters,
    bytes: u64,
    percent: u8,
    timeout: u64,
) -> Result<()> {
    let before = counters()?;
    let loss = link.tcp_loss(percent, &[Direction::ToAppliance])?;
    let result = tcp_bulk(&link.client, bytes, false, timeout);
    let dropped = loss.dropped();
    drop(loss);
    let relayed = relay.finish();
    let after = counters()?;
    eprintln!("    segments dropped toward the appliance: {dropped:?}");
    eprintln!("    relay: {relayed:?}");
    eprintln!("    counters: {}", moved(&before, &after));
    let seconds = result?;
    let relayed = relayed?;
    eprintln!(
        "    {bytes} bytes under {percent} % loss and reordering toward the appliance in \
         {seconds:.1} s ({:.0} KB/s)",
        bytes as f64 / seconds.max(0.001) / 1e3
    );
    let out_of_order = event(&after, None, "out-of-order") - event(&before, None, "out-of-order");
    ensure!(
        relayed.held > 0,
        "the relay held no segment back: {relayed:?}"
    );
    ensure!(out_of_order > 0, "event=out-of-order did not move");
    Ok(())
}

/// The client sends 100 000 bytes and half-closes before reading anything;
/// the whole echo still comes back, then EOF.
pub fn half_close(client: &Netns, counters: &mut ReadCounters) -> Result<()> {
    let before = counters()?;
    tcp_bulk(client, 100_000, true, 30)?;
    let after = settle(counters, |now| {
        event(now, None, "connections-closed") > event(&before, None, "connections-closed")
    })?;
    eprintln!("    counters: {}", moved(&before, &after));
    let closed =
        event(&after, None, "connections-closed") - event(&before, None, "connections-closed");
    ensure!(
        closed == 1,
        "connections-closed moved by {closed}, expected 1"
    );
    Ok(())
}

/// The client aborts (SO_LINGER 0) while data is in flight both ways: the
/// appliance counts the connection reset or aborted, and serves a new
/// connection afterwards.
pub fn reset_mid_transfer(client: &Netns, counters: &mut ReadCounters) -> Result<()> {
    let ended = |now: &Counters| {
        event(now, None, "connections-reset") + event(now, None, "connections-aborted")
    };
    let before = counters()?;
    tcp_client(client, &["reset", ECHO, "--timeout", "30"])?;
    let after = settle(counters, |now| ended(now) > ended(&before))?;
    eprintln!("    counters: {}", moved(&before, &after));
    ensure!(
        ended(&after) > ended(&before),
        "neither connections-reset nor connections-aborted moved after the client's RST"
    );
    tcp_echo(client, 1, 3, 30).context("no echo after the reset")
}

/// A connection to a port nothing listens on is refused with RST;
/// `drop=port-closed` and `resets-sent` move.
pub fn closed_port(client: &Netns, counters: &mut ReadCounters) -> Result<()> {
    let before = counters()?;
    let output = tcp_client(client, &["refused", CLOSED])?;
    ensure!(
        field(&output, "refused")? == "true",
        "the closed port was not refused: `{}`",
        output.trim()
    );
    let after = settle(counters, |now| {
        drop_count(now, "port-closed") > drop_count(&before, "port-closed")
    })?;
    eprintln!("    counters: {}", moved(&before, &after));
    let closed = drop_count(&after, "port-closed") - drop_count(&before, "port-closed");
    let resets = event(&after, None, "resets-sent") - event(&before, None, "resets-sent");
    ensure!(
        closed >= 1 && resets >= 1,
        "drop=port-closed +{closed}, resets-sent +{resets}: expected both to move"
    );
    Ok(())
}

/// `count` SYNs from scattered source ports at tcp-echo, at most `rate` a
/// second, while the client's kernel is kept from answering the SYN-ACKs
/// with RST (as a spoofing attacker's would not): the SYN queue fills and
/// the appliance answers with cookies (`syn-cookies-sent` > 0); afterwards
/// it still answers ping and echoes over a new connection.
pub fn syn_flood(
    client: &Netns,
    ifname: &str,
    counters: &mut ReadCounters,
    count: usize,
    rate: u32,
) -> Result<()> {
    // Resolve ARP both ways first, so no SYN-ACK waits on it.
    ping_no_loss(client, &["-c", "2", "-i", "0.2", APPLIANCE])?;
    let peer_mac = MacAddr(client.mac_address(ifname)?);
    let frames = syn_frames(APPLIANCE_MAC, APPLIANCE_IP, peer_mac, CLIENT_IP, 7, count);
    let before = counters()?;
    // A drop on the output hook is what a spoofing attacker's silence
    // looks like to the appliance: the kernel does not retry an RST.
    let quiet = NftTable::drop_outgoing(client, "tcp flags rst")?;
    let flood = flood_in_netns(client, ifname, &frames, rate);
    let rsts = quiet.dropped();
    drop(quiet);
    let flood = flood?;
    let after = counters()?;
    eprintln!(
        "    flood: {} SYNs in {:.1} s; client RSTs held back: {rsts:?}",
        flood.sent, flood.seconds
    );
    eprintln!("    counters: {}", moved(&before, &after));
    let cookies =
        event(&after, None, "syn-cookies-sent") - event(&before, None, "syn-cookies-sent");
    ensure!(cookies > 0, "{count} SYNs sent no SYN cookie");
    ping_no_loss(client, &["-c", "3", "-i", "0.2", APPLIANCE])
        .context("no ping answered after the flood")?;
    let echoed = counters()?;
    tcp_echo(client, 1, 3, 30).context("no echo after the flood")?;
    eprintln!(
        "    after the flood, one echo: {}",
        moved(&echoed, &counters()?)
    );
    Ok(())
}

/// Every segment of `services::malformed_segments` goes to tcp-echo from the
/// client namespace; each named drop counter moves by exactly the number of
/// segments naming it, none is answered (`resets-sent` stays), and the
/// appliance still echoes over a new connection.
pub fn malformed_segments(client: &Netns, ifname: &str, counters: &mut ReadCounters) -> Result<()> {
    // Resolve ARP both ways first, so no frame below waits on it.
    ping_no_loss(client, &["-c", "2", "-i", "0.2", APPLIANCE])?;
    let peer_mac = MacAddr(client.mac_address(ifname)?);
    let segments =
        services::malformed_segments(APPLIANCE_MAC, APPLIANCE_IP, peer_mac, CLIENT_IP, 7);
    ensure!(
        segments.len() >= 12,
        "only {} malformed segments",
        segments.len()
    );
    let before = counters()?;
    let named: Vec<NamedFrame> = segments.iter().flat_map(raw_frames::case_frames).collect();
    let sent = raw_frames::send_in_netns(client, ifname, &named)?;
    ensure!(
        sent.iter().all(|delivery| delivery.refused.is_none()),
        "the kernel refused a segment: {sent:?}"
    );
    let mut expected: BTreeMap<&str, u64> = BTreeMap::new();
    for segment in &segments {
        ensure!(
            segment.counter.0 == "tcp",
            "{} counts at {}",
            segment.name,
            segment.counter.0
        );
        *expected.entry(segment.counter.1).or_default() += 1;
    }
    let after = settle(counters, |now| {
        expected
            .iter()
            .all(|(reason, count)| drop_count(now, reason) - drop_count(&before, reason) >= *count)
    })?;
    let mut wrong = Vec::new();
    for (reason, count) in &expected {
        let moved = drop_count(&after, reason) - drop_count(&before, reason);
        eprintln!("    tcp/{reason}: +{moved} (expected +{count})");
        if moved != *count {
            let names: Vec<&str> = segments
                .iter()
                .filter(|segment| segment.counter.1 == *reason)
                .map(|segment| segment.name)
                .collect();
            wrong.push(format!(
                "tcp/{reason} +{moved}, expected +{count} ({names:?})"
            ));
        }
    }
    let resets = event(&after, None, "resets-sent") - event(&before, None, "resets-sent");
    eprintln!("    counters: {}", moved(&before, &after));
    tcp_echo(client, 1, 3, 30).context("no echo after the malformed segments")?;
    ensure!(wrong.is_empty(), "drop counters off: {}", wrong.join("; "));
    ensure!(
        resets == 0,
        "{resets} malformed segments were answered with RST"
    );
    Ok(())
}
