//! The management plane under bad and heavy input, part of the shared
//! management checks: malformed HTTP, a head, a request line and a body
//! over their limits (each a status code, then the connection closed),
//! 1000 connections at once all answered, 50 slowloris connections closed
//! by the idle timeout while whole requests are still served, and the
//! data path (UDP echo) counted meanwhile: every datagram the appliance
//! receives is echoed, and any that does not come back must be one the
//! host's tap queue dropped before the appliance read it.

use crate::net::netns::Netns;
use crate::shell::process::checked_output;
use crate::suites::management_traffic::sample;
use crate::suites::tcp_traffic::tcp_client;
use anyhow::{Context, Result, ensure};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// The management API, for the TCP client.
const TARGET: &str = "10.0.0.2:8080";
/// The UDP echo service.
const ECHO: &str = "10.0.0.2:7";
/// Datagrams per UDP echo round.
const ROUND: usize = 100;
/// Connections open at once.
const CONNECTIONS: usize = 1000;
/// Connections that hang mid-head.
const SLOW_CONNECTIONS: usize = 50;

/// The value of `key=` in a client's summary line.
fn field<'a>(output: &'a str, key: &str) -> Result<&'a str> {
    output
        .split_whitespace()
        .find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
        .with_context(|| format!("no {key}= in `{}`", output.trim()))
}

/// A count in a client's summary line.
pub fn count(output: &str, key: &str) -> Result<usize> {
    field(output, key)?
        .parse()
        .with_context(|| format!("{key}= in `{}`", output.trim()))
}

/// One UDP echo round of [`ROUND`] datagrams: how many came back, in
/// their second or later (every one in its second must be identical; a
/// late one is known by its content), and the client's own time for the
/// round, in seconds.
fn echo_round(client: &Netns) -> Result<(usize, f64)> {
    let me = std::env::current_exe().context("locating the xtask binary")?;
    let mut command = client.command(&me.to_string_lossy());
    command.args(["__udp-client", "echo", ECHO, "1", &ROUND.to_string()]);
    let output = checked_output(&mut command)?;
    let (sent, received) = (count(&output, "sent")?, count(&output, "received")?);
    ensure!(
        sent == ROUND && count(&output, "identical")? == received,
        "UDP echo: `{}`",
        output.trim()
    );
    // An echo that came after its second (the host's load delayed it)
    // still came back.
    let late = count(&output, "late")?;
    let back = received + late;
    if back < ROUND || late > 0 {
        eprintln!("    UDP echo: {back} of {ROUND} back, {late} of them late");
    }
    let seconds = field(&output, "seconds")?
        .parse()
        .context("the UDP client's seconds")?;
    Ok((back, seconds))
}

/// What the UDP echo rounds saw.
#[derive(Debug, Default)]
struct Echoed {
    sent: usize,
    back: usize,
    seconds: f64,
}

/// UDP echo rounds until `stop` (at least `minimum`).
fn echo_until(client: &Netns, stop: &AtomicBool, minimum: usize) -> Result<Echoed> {
    let mut echoed = Echoed::default();
    let mut rounds = 0;
    // Relaxed: the flag only ends a loop; no other memory hangs on it.
    while rounds < minimum || !stop.load(Ordering::Relaxed) {
        let (back, seconds) = echo_round(client)?;
        echoed.sent += ROUND;
        echoed.back += back;
        echoed.seconds += seconds;
        rounds += 1;
    }
    Ok(echoed)
}

/// Frames the client namespace's devices dropped on their way out (for a
/// tap: toward the appliance, its queue full).
fn client_tx_dropped(client: &Netns) -> Result<u64> {
    let text = client.run(&["sh", "-c", "cat /sys/class/net/*/statistics/tx_dropped"])?;
    Ok(text
        .split_whitespace()
        .filter_map(|word| word.parse::<u64>().ok())
        .sum())
}

/// The appliance's udp-echo received and emitted counters.
fn appliance_echo_counters(client: &Netns) -> Result<(f64, f64)> {
    let scrape = client.run(&[
        "curl",
        "-sS",
        "--max-time",
        "10",
        "http://10.0.0.2:8080/metrics",
    ])?;
    let counter = |direction| {
        sample(
            &scrape,
            "warpcore_node_packets_total",
            &[("node", "udp-echo"), ("direction", direction)],
        )
    };
    Ok((counter("received"), counter("emitted")))
}

/// Sends `request` (escaped for `__tcp-client http`); its status must be
/// `expected` and the connection closed after it.
fn refused(client: &Netns, what: &str, request: &str, expected: u16) -> Result<()> {
    let output = tcp_client(client, &["http", TARGET, request, "--timeout", "20"])?;
    let status = field(&output, "status")?;
    let closed = field(&output, "closed")?;
    ensure!(
        status == expected.to_string() && closed == "true",
        "{what}: status={status} closed={closed}, expected {expected} and the connection closed"
    );
    eprintln!("    {what}: {status}, closed");
    Ok(())
}

/// Malformed and oversized requests, each its status code.
fn bad_input(client: &Netns) -> Result<()> {
    refused(
        client,
        "garbage bytes",
        r"\x00\x01\xfe\xffgarbage\r\n\r\n",
        400,
    )?;
    refused(
        client,
        "a bad request line",
        r"GET /metrics\r\nHost: warpcore\r\n\r\n",
        400,
    )?;
    let pad = "a".repeat(9000);
    refused(
        client,
        "a 9 KiB header section",
        &format!(r"GET /metrics HTTP/1.1\r\nHost: warpcore\r\nX-Pad: {pad}\r\n\r\n"),
        431,
    )?;
    refused(
        client,
        "a 70000-byte body",
        r"PUT /api/v1/spec HTTP/1.1\r\nHost: warpcore\r\nContent-Length: 70000\r\n\r\n",
        413,
    )?;
    let long = "a".repeat(5000);
    refused(
        client,
        "a 5000-byte request target",
        &format!(r"GET /{long} HTTP/1.1\r\nHost: warpcore\r\n\r\n"),
        414,
    )
}

/// [`CONNECTIONS`] connections open at once, each `GET /metrics`, all 200
/// (the server must not close one for idling: `idle_timeout_ms` is longer
/// than opening them all takes).
fn many_connections(client: &Netns, idle_timeout_ms: u64) -> Result<()> {
    let output = tcp_client(
        client,
        &[
            "http-many",
            TARGET,
            &CONNECTIONS.to_string(),
            "/metrics",
            "--timeout",
            "60",
        ],
    )?;
    let open_seconds: f64 = field(&output, "open_seconds")?
        .parse()
        .context("the client's open_seconds")?;
    for key in ["connected", "ok"] {
        let got = count(&output, key)?;
        ensure!(
            got == CONNECTIONS,
            "{CONNECTIONS} connections at once: {key}={got}; opening them took {open_seconds:.2} s \
             (the first waited that long idle), the idle timeout is {idle_timeout_ms} ms"
        );
    }
    Ok(())
}

/// [`SLOW_CONNECTIONS`] half heads closed by the idle timeout within
/// `idle_timeout_ms` and a margin; whole requests served meanwhile and
/// after.
fn slowloris(client: &Netns, idle_timeout_ms: u64) -> Result<()> {
    let margin_ms = 10_000;
    let timeout = ((idle_timeout_ms + margin_ms) / 1000 + 5).to_string();
    let output = tcp_client(
        client,
        &[
            "slowloris",
            TARGET,
            &SLOW_CONNECTIONS.to_string(),
            "/metrics",
            "--timeout",
            &timeout,
        ],
    )?;
    for key in ["connected", "closed"] {
        let got = count(&output, key)?;
        ensure!(
            got == SLOW_CONNECTIONS,
            "slowloris: {key}={got} of {SLOW_CONNECTIONS}"
        );
    }
    let slowest = count(&output, "max_close_ms")? as u64;
    ensure!(
        slowest <= idle_timeout_ms + margin_ms,
        "slowloris: the last connection closed after {slowest} ms, the idle timeout is {idle_timeout_ms} ms"
    );
    // None may close early either: the first half head went out `open_ms`
    // before the close times' start, so it closes `idle_timeout_ms` less
    // that later at the earliest. A tenth early is a clock that runs fast
    // (a TSC calibrated badly at boot made 8 s into 5.75 s).
    let (opening, earliest) = (
        count(&output, "open_ms")? as u64,
        count(&output, "min_close_ms")? as u64,
    );
    ensure!(
        (earliest + opening) * 10 >= idle_timeout_ms * 9,
        "slowloris: a connection closed {earliest} ms after the half heads ({opening} ms to send them), \
         the idle timeout is {idle_timeout_ms} ms: the appliance's clock runs fast?"
    );
    for key in ["during", "after"] {
        let status = field(&output, key)?;
        ensure!(
            status == "200",
            "slowloris: a whole request {key} them answered {status}"
        );
    }
    Ok(())
}

/// Prints where a lost datagram may have gone: the client side's link
/// counters and the appliance's nonzero drop counters.
fn where_lost(client: &Netns) {
    if let Ok(links) = client.ip(&["-s", "link"]) {
        eprintln!("    client links:\n{links}");
    }
    let scrape = client.run(&[
        "curl",
        "-sS",
        "--max-time",
        "10",
        "http://10.0.0.2:8080/metrics",
    ]);
    if let Ok(scrape) = scrape {
        for line in scrape.lines().filter(|line| {
            !line.starts_with('#')
                && (line.contains("drop") || line.contains("udp-echo"))
                && !line.ends_with(" 0")
        }) {
            eprintln!("    {line}");
        }
    }
}

/// The robustness checks against the management plane at 10.0.0.2:8080
/// (whose spec sets `idle_timeout_ms`), with UDP echo on 10.0.0.2:7
/// counted all the while.
pub fn robustness_checks(client: &Netns, idle_timeout_ms: u64) -> Result<()> {
    let started = Instant::now();
    let quiet = echo_until(client, &AtomicBool::new(true), 3)?;
    ensure!(
        quiet.back == quiet.sent,
        "UDP echo before the management plane was hammered: {} of {} back",
        quiet.back,
        quiet.sent
    );
    let dropped_before = client_tx_dropped(client)?;
    let stop = AtomicBool::new(false);
    let (hammer, echoed) = std::thread::scope(|scope| {
        let echo = scope.spawn(|| echo_until(client, &stop, 1));
        let hammer = (|| -> Result<()> {
            bad_input(client)?;
            many_connections(client, idle_timeout_ms)?;
            slowloris(client, idle_timeout_ms)
        })();
        stop.store(true, Ordering::Relaxed);
        let echoed = echo
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the UDP echo thread panicked")));
        (hammer, echoed)
    });
    hammer?;
    let echoed = echoed.context("UDP echo while the management plane was hammered")?;
    let tap_dropped = client_tx_dropped(client)? - dropped_before;
    let (received, emitted) = appliance_echo_counters(client)?;
    if echoed.back < echoed.sent {
        // A datagram the host dropped before the appliance read it (its
        // tap queue full under the connection burst) is reported, not
        // failed; one the appliance received and did not echo fails.
        if tap_dropped == 0 || received != emitted {
            where_lost(client);
            anyhow::bail!(
                "UDP echo while the management plane was hammered: {} of {} back, host tap drops +{tap_dropped}, appliance udp-echo received {received} emitted {emitted}",
                echoed.back,
                echoed.sent
            );
        }
        eprintln!(
            "    data path: {} of {} datagrams lost before the appliance: the host's tap queue dropped {tap_dropped} frames under the connection burst; udp-echo emitted every one it received ({received})",
            echoed.sent - echoed.back,
            echoed.sent
        );
    }
    eprintln!(
        "    data path: {} datagrams echoed quiet at {:.0}/s; {} of {} echoed under management load at {:.0}/s (client time {:.2} s); host tap drops +{tap_dropped}",
        quiet.sent,
        quiet.back as f64 / quiet.seconds.max(1e-9),
        echoed.back,
        echoed.sent,
        echoed.back as f64 / echoed.seconds.max(1e-9),
        echoed.seconds,
    );
    eprintln!(
        "    robustness checks: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
