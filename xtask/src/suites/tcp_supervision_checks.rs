//! Supervision of the TCP apps inside the `tcp` node, shared by the
//! hosted and the appliance suites: the test-only `faulty-tcp` (cargo
//! feature `test-services`) serves port 9 on the same core as `http`
//! (port 80) and the management plane (port 8080). Marked requests make
//! it panic (and, hosted, a slow one overrun its per-batch budget); its
//! connection is reset, its port refuses connections while it waits out
//! its backoff, `http` answers value by value meanwhile, the restarts are
//! counted in the counters and in `/metrics`, spaced by the backoff on
//! the platform's clock (log lines, no wall-clock assertion), its state
//! is in `/api/v1/status`, and it answers again once the marks stop.

use crate::counters::Counters;
use crate::net::netns::Netns;
use crate::shell::host::target_dir;
use crate::suites::management_traffic::{TOKEN, curl_in, sample};
use crate::suites::supervision_checks::check_restart_log;
use crate::suites::tcp_traffic::tcp_client;
use anyhow::{Context, Result, bail, ensure};
use std::path::PathBuf;

/// The spec: `http` on 80, `faulty-tcp` on 9, the management plane on
/// 8080, all on one core; restarts from 100 ms doubling to 400 ms; a
/// 500 ms budget per batch (a slow request spins 8e9 times: seconds).
const SPEC: &str = r#"# TCP app supervision's test spec (written by cargo xtask test)
[[interface]]
name = "eth0"
driver = "DRIVER"
mac = "02:00:00:00:00:01"
address = "10.0.0.2/24"

[[service]]
kind = "http"
port = 80
routes = [{ path = "/", body = "hello from warpcore\n", content_type = "text/plain" }]

[[service]]
kind = "faulty-tcp"
port = 9
slow_spins = 8_000_000_000

[supervision]
initial_backoff_ms = 100
max_backoff_ms = 400
batch_budget_us = 500_000

[management]
listen = "10.0.0.2:8080"
token_sha256 = "60a3494746353d4d57e93a6ef2014522edd91b61e08bc5d3d579e98a5acca3e3"
"#;

/// Marked requests in a row, each failing `faulty-tcp` once.
const PANICS: u64 = 4;
/// The backoff before each restart: 100 ms doubling, capped at 400.
const PANIC_BACKOFFS_MS: [u64; PANICS as usize] = [100, 200, 400, 400];
/// What `http` answers on `/`.
const HTTP_BODY: &str = "hello from warpcore\n";

/// Writes the spec for `driver` (`tap`, `virtio`) into the target
/// directory, without the budget unless `budget`; returns its path.
pub fn write_spec(driver: &str, budget: bool) -> Result<PathBuf> {
    let path = target_dir().join(format!("tcp-supervise-test-{driver}.toml"));
    std::fs::create_dir_all(target_dir()).context("creating the target directory")?;
    let mut text = SPEC.replace("DRIVER", driver);
    if !budget {
        text = text.replace("batch_budget_us = 500_000\n", "");
    }
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// One exchange with `faulty-tcp`, as the client's summary line says it.
#[derive(Debug, PartialEq, Eq)]
struct Said {
    connected: bool,
    reply: String,
    end: String,
}

/// Sends `text` to port 9 on one connection and reads the reply line.
fn say(client: &Netns, text: &str) -> Result<Said> {
    let output = tcp_client(client, &["say", "10.0.0.2:9", text, "--timeout", "20"])?;
    let field = |key: &str| -> Result<String> {
        output
            .split_whitespace()
            .find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
            .map(str::to_owned)
            .with_context(|| format!("no {key}= in `{}`", output.trim()))
    };
    Ok(Said {
        connected: field("connect")? == "ok",
        reply: field("reply")?,
        end: field("end")?,
    })
}

/// `http` answers `/` with its body, and the management plane (also on
/// this core) its scrape: the other apps of the core keep serving.
fn others_answer(client: &Netns) -> Result<()> {
    let body = curl_in(client, &["http://10.0.0.2/"])?;
    ensure!(
        body == HTTP_BODY,
        "http answered {body:?}, expected {HTTP_BODY:?}"
    );
    let scrape = curl_in(client, &["http://10.0.0.2:8080/metrics"])?;
    ensure!(
        scrape.contains("warpcore_service_restarts_total"),
        "the management plane's scrape has no warpcore_service_restarts_total"
    );
    Ok(())
}

/// Waits, bounded (60 tries, 100 ms apart at most), for `faulty-tcp` to
/// answer again; returns how many connections its port refused (RST)
/// meanwhile.
fn answers_again(client: &Netns) -> Result<u64> {
    let mut refused = 0;
    for _ in 0..60 {
        let said = say(client, "are you back?")?;
        if said.reply == "are_you_back?" && said.end == "line" {
            return Ok(refused);
        }
        if !said.connected {
            refused += 1;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    bail!("faulty-tcp did not answer again within 60 tries")
}

/// What the traffic saw.
#[derive(Debug, Default)]
pub struct Seen {
    /// Connections to port 9 refused while `faulty-tcp` was down.
    pub refused: u64,
}

/// The traffic: `faulty-tcp` and `http` answer; then [`PANICS`] times a
/// marked request (its connection reset, no echo), `http` and the
/// management plane answering meanwhile, and `faulty-tcp` back after its
/// backoff; then, with `slow`, one request over the budget the same way;
/// then 5 plain requests all answered.
pub fn drive(client: &Netns, slow: bool) -> Result<Seen> {
    let mut seen = Seen::default();
    ensure!(
        say(client, "hello")?
            == Said {
                connected: true,
                reply: "hello".into(),
                end: "line".into()
            },
        "faulty-tcp did not answer before any failure"
    );
    others_answer(client)?;
    for round in 0..PANICS {
        let said = say(client, &format!("PANIC round {round}"))?;
        ensure!(
            said.connected && said.reply == "none" && said.end == "reset",
            "a marked request was not answered with a reset: {said:?}"
        );
        others_answer(client)?;
        seen.refused += answers_again(client)?;
    }
    if slow {
        // Its echo may have been queued before the call ended: whether it
        // left before the reset is not checked; the overrun shows in the
        // counters and the log.
        say(client, "SLOW")?;
        seen.refused += answers_again(client)?;
        others_answer(client)?;
    }
    for index in 0..5 {
        let text = format!("hello again {index}");
        let said = say(client, &text)?;
        ensure!(
            said.reply == text.replace(' ', "_") && said.end == "line",
            "faulty-tcp did not answer after the marked requests stopped: {said:?}"
        );
    }
    eprintln!(
        "xtask: [tcp supervision] {PANICS} marked requests reset, http answered every round, \
         {} connection(s) refused while faulty-tcp was down",
        seen.refused
    );
    Ok(seen)
}

/// The restart log lines of `faulty-tcp`: one per failure, spaced by the
/// backoff on the platform's clock.
pub fn check_log(lines: &[String], slow: bool) -> Result<()> {
    let mut expected: Vec<u64> = PANIC_BACKOFFS_MS.to_vec();
    if slow {
        expected.push(400);
    }
    check_restart_log(lines, "faulty-tcp", &expected)
}

/// `/metrics` and `/api/v1/status` tell the same story: the restarts and
/// failures of `faulty-tcp`, running again, `http` never failed.
pub fn check_management(client: &Netns, slow: bool) -> Result<()> {
    let failures = PANICS + u64::from(slow);
    let scrape = curl_in(client, &["http://10.0.0.2:8080/metrics"])?;
    let value = |family: &str, labels: &[(&str, &str)]| sample(&scrape, family, labels) as u64;
    let faulty = [("service", "faulty-tcp")];
    let seen = (
        value("warpcore_service_restarts_total", &faulty),
        value(
            "warpcore_service_failures_total",
            &[("service", "faulty-tcp"), ("cause", "panic")],
        ),
        value(
            "warpcore_service_failures_total",
            &[("service", "faulty-tcp"), ("cause", "overrun")],
        ),
        value("warpcore_service_up", &faulty),
    );
    ensure!(
        seen == (failures, PANICS, u64::from(slow), 1),
        "/metrics for faulty-tcp: restarts, panics, overruns, up = {seen:?}, expected ({failures}, {PANICS}, {}, 1)",
        u64::from(slow)
    );
    let http = (
        value("warpcore_service_restarts_total", &[("service", "http")]),
        value("warpcore_service_up", &[("service", "http")]),
        value("warpcore_service_up", &[("service", "tcp")]),
    );
    ensure!(
        http == (0, 1, 1),
        "/metrics: http restarts, http up, tcp up = {http:?}, expected (0, 1, 1)"
    );
    let bearer = format!("Authorization: Bearer {TOKEN}");
    let status = curl_in(
        client,
        &["-H", &bearer, "http://10.0.0.2:8080/api/v1/status"],
    )?;
    let entry = format!(
        "{{\"service\":\"faulty-tcp\",\"state\":\"running\",\"restarts\":{failures},\"failures\":{failures},"
    );
    ensure!(
        status.contains(&entry),
        "/api/v1/status lacks `{entry}`: {status}"
    );
    ensure!(
        status
            .contains("{\"service\":\"http\",\"state\":\"running\",\"restarts\":0,\"failures\":0,"),
        "/api/v1/status does not show http running, never failed: {status}"
    );
    eprintln!(
        "xtask: [tcp supervision] /metrics: faulty-tcp restarts={failures} up=1, http restarts=0; /api/v1/status: faulty-tcp running restarts={failures}"
    );
    Ok(())
}

/// The counters: `faulty-tcp` panicked [`PANICS`] times (and overran once,
/// with `slow`), was restarted as often; its connections were reset
/// (`connections-reset-app-failed`), every refused connection counted as
/// `drop=app-down`; the `tcp` node itself never failed.
pub fn check_counters(counters: &Counters, slow: bool, seen: &Seen) -> Result<()> {
    let app = |what| {
        counters.sum(
            None,
            &[
                ("node", "tcp"),
                ("app", "faulty-tcp"),
                ("supervision", what),
            ],
        )
    };
    let overruns = u64::from(slow);
    let failures = PANICS + overruns;
    ensure!(
        (app("panics"), app("overruns"), app("restarts")) == (PANICS, overruns, failures),
        "faulty-tcp: panics={} overruns={} restarts={}, expected {PANICS}, {overruns}, {failures}",
        app("panics"),
        app("overruns"),
        app("restarts")
    );
    let reset = counters.sum(
        None,
        &[("node", "tcp"), ("event", "connections-reset-app-failed")],
    );
    ensure!(
        reset >= PANICS,
        "connections-reset-app-failed={reset}, expected at least {PANICS}"
    );
    let refused = counters.sum(None, &[("node", "tcp"), ("drop", "app-down")]);
    // Every refusal the client saw is counted (a stray segment of a reset
    // connection would count too, hence at least).
    ensure!(
        refused >= seen.refused,
        "drop=app-down={refused}, but the client saw {} refused connection(s)",
        seen.refused
    );
    ensure!(
        app("dropped") >= failures + refused,
        "faulty-tcp dropped={}, expected at least {failures} calls + {refused} refused",
        app("dropped")
    );
    let stack = counters.sum(None, &[("node", "tcp"), ("supervision", "panics")])
        + counters.sum(None, &[("node", "tcp"), ("supervision", "overruns")]);
    let apps = app("panics") + app("overruns");
    ensure!(
        stack == apps,
        "the tcp node itself failed: {stack} failure lines for tcp, {apps} of which faulty-tcp's"
    );
    let http = counters.sum(None, &[("app", "http"), ("supervision", "panics")]);
    ensure!(http == 0, "http failed {http} times");
    Ok(())
}
