//! Supervision checks, shared by the suites that boot a spec with the
//! test-only `faulty-echo` (cargo feature `test-services`): marked
//! datagrams make it panic (and, hosted, one makes it overrun its
//! per-batch budget); `udp-echo` on the same core keeps answering; the
//! restarts are counted, and spaced by the backoff, which the restart log
//! lines show on the executor's own clock (no wall-clock assertion); and
//! `faulty-echo` answers again once the marked datagrams stop.

use crate::counters::Counters;
use crate::net::netns::Netns;
use crate::shell::host::target_dir;
use crate::suites::traffic::{udp_client, udp_echo};
use anyhow::{Context, Result, bail, ensure};
use std::path::PathBuf;

/// The spec: `udp-echo` on port 7 and `faulty-echo` on port 9 of one
/// core, restarts from 100 ms doubling to 400 ms, a 500 ms budget per
/// batch (a slow datagram spins 8e9 times: seconds, on any host).
const SPEC: &str = r#"# supervision's test spec (written by cargo xtask test)
[[interface]]
name = "eth0"
driver = "DRIVER"
mac = "02:00:00:00:00:01"
address = "10.0.0.2/24"

[[service]]
kind = "udp-echo"
port = 7

[[service]]
kind = "faulty-echo"
port = 9
slow_spins = 8_000_000_000

[supervision]
initial_backoff_ms = 100
max_backoff_ms = 400
batch_budget_us = 500_000
"#;

/// Marked datagrams in a row, each failing `faulty-echo` once.
const PANICS: u32 = 4;
/// The backoff before each restart: 100 ms doubling, capped at 400.
const PANIC_BACKOFFS_MS: [u64; PANICS as usize] = [100, 200, 400, 400];

/// Writes the spec for `driver` (`tap`, `virtio`) into the target
/// directory, without the budget unless `budget` (under TCG a preempted
/// vCPU would count against whatever service ran); returns its path.
pub fn write_spec(driver: &str, budget: bool) -> Result<PathBuf> {
    let path = target_dir().join(format!("supervise-test-{driver}.toml"));
    std::fs::create_dir_all(target_dir()).context("creating the target directory")?;
    let mut text = SPEC.replace("DRIVER", driver);
    if !budget {
        text = text.replace("batch_budget_us = 500_000\n", "");
    }
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Sends `count` datagrams of `payload` to port `port`; returns how many
/// came back.
fn send(client: &Netns, port: u16, payload: &str, count: u32) -> Result<u32> {
    let output = udp_client(
        client,
        &[
            "send",
            &format!("10.0.0.2:{port}"),
            payload,
            &count.to_string(),
        ],
    )?;
    let received = output
        .split_whitespace()
        .find_map(|field| field.strip_prefix("received="))
        .and_then(|value| value.parse().ok())
        .with_context(|| format!("no received= in `{}`", output.trim()))?;
    Ok(received)
}

/// Waits, bounded (20 datagrams of a second at most), for `faulty-echo`
/// to answer again.
fn answers_again(client: &Netns) -> Result<()> {
    for _ in 0..20 {
        if send(client, 9, "are you back?", 1)? == 1 {
            return Ok(());
        }
    }
    bail!("faulty-echo did not answer again within 20 tries")
}

/// The traffic: `faulty-echo` answers; then [`PANICS`] times a marked
/// datagram (no echo), `udp-echo` answering meanwhile, and `faulty-echo`
/// back after its backoff; then, with `slow`, one datagram over the
/// budget the same way; then 5 plain datagrams all answered.
pub fn drive(client: &Netns, slow: bool) -> Result<()> {
    ensure!(
        send(client, 9, "hello", 3)? == 3,
        "faulty-echo did not answer before any failure"
    );
    for round in 0..PANICS {
        ensure!(
            send(client, 9, &format!("PANIC round {round}"), 1)? == 0,
            "a marked datagram came back: faulty-echo did not panic"
        );
        udp_echo(client, "10.0.0.2", 1, 5)?;
        answers_again(client)?;
    }
    if slow {
        // Its echo may come back or not (the service handed it on before
        // its call ended, or the client gave up first): the overrun shows
        // in the counters and the log, not here.
        send(client, 9, "SLOW", 1)?;
        // The core is busy with the slow call for seconds: wait for it to
        // end (and the service to come back) before asking udp-echo.
        answers_again(client)?;
        udp_echo(client, "10.0.0.2", 1, 5)?;
    }
    ensure!(
        send(client, 9, "hello again", 5)? == 5,
        "faulty-echo lost datagrams after the marked ones stopped"
    );
    Ok(())
}

/// A restart as its log line tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Restart {
    restarts: u64,
    failed_at_us: u64,
    backoff_ms: u64,
    at_us: u64,
}

/// The restarts of `service` in `lines` (the platform's log output), in
/// order.
fn restarts(lines: &[String], service: &str) -> Result<Vec<Restart>> {
    let mut found = Vec::new();
    let named = format!("service={service} ");
    for line in lines {
        if !line.contains("supervision: ")
            || !line.contains(&named)
            || !line.contains(" restarted ")
        {
            continue;
        }
        let field = |name: &str| -> Result<u64> {
            line.split_whitespace()
                .find_map(|field| field.strip_prefix(name)?.strip_prefix('='))
                .and_then(|value| value.parse().ok())
                .with_context(|| format!("no {name}= in `{line}`"))
        };
        found.push(Restart {
            restarts: field("restarts")?,
            failed_at_us: field("failed_at_us")?,
            backoff_ms: field("backoff_ms")?,
            at_us: field("at_us")?,
        });
    }
    Ok(found)
}

/// Checks the restart log lines: one per failure, numbered in order,
/// each after its failure by at least its backoff (100, 200, 400, 400 ms,
/// then 400 for the overrun), each failure after the previous restart.
pub fn check_log(lines: &[String], slow: bool) -> Result<()> {
    let mut expected: Vec<u64> = PANIC_BACKOFFS_MS.to_vec();
    if slow {
        expected.push(400);
    }
    check_restart_log(lines, "faulty-echo", &expected)
}

/// Checks the restart log lines of `service`: one per failure, with the
/// backoffs `expected` in order, numbered in order, each after its
/// failure by at least its backoff, each failure after the previous
/// restart (all on the platform's clock, from the lines themselves).
pub fn check_restart_log(lines: &[String], service: &str, expected: &[u64]) -> Result<()> {
    let restarts = restarts(lines, service)?;
    let backoffs: Vec<u64> = restarts.iter().map(|restart| restart.backoff_ms).collect();
    ensure!(
        backoffs == expected,
        "restart backoffs {backoffs:?}, expected {expected:?}: {restarts:?}"
    );
    let mut previous_at_us = 0;
    for (index, restart) in restarts.iter().enumerate() {
        ensure!(
            restart.restarts == index as u64 + 1,
            "restart {} numbered {}",
            index + 1,
            restart.restarts
        );
        ensure!(
            restart.at_us >= restart.failed_at_us + restart.backoff_ms * 1_000,
            "restart {} came before its backoff was over: {restart:?}",
            index + 1
        );
        ensure!(
            restart.failed_at_us >= previous_at_us,
            "failure {} logged before the previous restart: {restart:?}",
            index + 1
        );
        previous_at_us = restart.at_us;
    }
    eprintln!(
        "xtask: [supervision] {service} restarts after {backoffs:?} ms, spacing checked on the platform clock"
    );
    Ok(())
}

/// Checks the counters: `faulty-echo` panicked [`PANICS`] times (and
/// overran once, with `slow`), was restarted as often, and had its
/// in-flight datagrams dropped and counted; `udp-echo` never failed.
pub fn check_counters(counters: &Counters, slow: bool) -> Result<()> {
    let faulty = |what| counters.sum(None, &[("node", "faulty-echo"), ("supervision", what)]);
    let overruns = u64::from(slow);
    let failures = u64::from(PANICS) + overruns;
    ensure!(
        (faulty("panics"), faulty("overruns"), faulty("restarts"))
            == (u64::from(PANICS), overruns, failures),
        "faulty-echo: panics={} overruns={} restarts={}, expected {PANICS}, {overruns}, {failures}",
        faulty("panics"),
        faulty("overruns"),
        faulty("restarts")
    );
    ensure!(
        faulty("dropped") >= u64::from(PANICS),
        "faulty-echo: {} in-flight datagrams dropped, expected at least {PANICS}",
        faulty("dropped")
    );
    let echo_failures = counters.sum(None, &[("node", "udp-echo"), ("supervision", "panics")])
        + counters.sum(None, &[("node", "udp-echo"), ("supervision", "overruns")]);
    ensure!(echo_failures == 0, "udp-echo failed {echo_failures} times");
    Ok(())
}
