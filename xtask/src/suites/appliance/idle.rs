//! The appliance idle: two cores that sleep with no periodic tick (counted
//! in the serial dump's `interrupts=` and `idle=` lines and in `/metrics`),
//! a TCP app timer that still fires on an idle core (the management plane's
//! idle timeout closes a silent connection), kv requests handed across
//! cores that wake the sleeping shard through its doorbell, and the
//! `idle = "poll"` and `idle = "haltpoll"` modes.

use crate::net::devices::Lan;
use crate::qemu::session::QemuSession;
use crate::shell::host::ensure_programs;
use crate::spec_file::{self, example};
use crate::suites::idle_checks::{
    delta, idle_moves, kv_wakes_the_other_core, polling_cores_never_sleep, quiet_window,
};
use crate::suites::management_robustness::count;
use crate::suites::tcp_traffic::tcp_client;
use crate::suites::traffic::{udp_echo, wait_reachable};
use anyhow::{Result, ensure};

/// The management plane's idle timeout in the test spec.
const IDLE_TIMEOUT_MS: u64 = 1000;
/// Silent management connections: the management plane serves on core 0
/// only, and RSS sends about half of them to core 1, which hands their
/// segments over to core 0: every one is accepted there.
const SILENT_CONNECTIONS: usize = 16;

/// examples/tcp.toml on two queue pairs with the management plane on
/// 10.0.0.2:8080 and a short idle timeout.
fn spec_text() -> Result<String> {
    let text = std::fs::read_to_string(example("tcp.toml"))?;
    Ok(format!(
        "{}\n[management]\nlisten = \"10.0.0.2:8080\"\nidle_timeout_ms = {IDLE_TIMEOUT_MS}\n",
        spec_file::with_queues(&text, 2)?
    ))
}

/// Two cores, idle: few timer interrupts in a quiet window; the management
/// idle timeout closes a silent connection; kv requests cross cores.
pub fn idle_cores_sleep() -> Result<()> {
    ensure_programs("the idle test", &[("curl", "curl")])?;
    let spec = spec_file::temporary("idle", &spec_text()?)?;
    let lan = Lan::create(1, true, Some("10.0.0.1/24"))?;
    let booted = QemuSession::boot_appliance(&spec, 2, &lan.netns, &lan.tap_names(), 2);
    let _ = std::fs::remove_file(&spec);
    let mut session = booted?;
    let result = (|| -> Result<()> {
        ensure!(
            session.log().contains("idle = halt"),
            "the cores do not say they halt when idle"
        );
        wait_reachable(&lan.netns, "10.0.0.2", 20)?;
        udp_echo(&lan.netns, "10.0.0.2", 16, 5)?;
        let session = std::cell::RefCell::new(&mut session);
        let mut read = || session.borrow_mut().counters();
        quiet_window(&mut read, 2, ("interrupts", "timer"), "appliance")?;
        app_timer_on_an_idle_core(&mut read, &lan)?;
        kv_wakes_the_other_core(&lan.netns, &mut read, "appliance")?;
        metrics_count_the_wakeups(&lan)
    })();
    result.map_err(|error| error.context(format!("console:\n{}", session.log())))
}

/// Management connections that send half a request and then nothing are
/// closed by their idle timeout (a `Stream::set_timeout` timer in the TCP
/// wheel) while their core sleeps: the core wakes for it on its one-shot
/// timer.
fn app_timer_on_an_idle_core(
    read: &mut crate::suites::tcp_traffic::ReadCounters,
    lan: &Lan,
) -> Result<()> {
    let before = read()?;
    let output = tcp_client(
        &lan.netns,
        &[
            "slowloris",
            "10.0.0.2:8080",
            &SILENT_CONNECTIONS.to_string(),
            "/metrics",
            "--timeout",
            "30",
        ],
    )?;
    let after = read()?;
    let connected = count(&output, "connected")?;
    ensure!(
        connected == SILENT_CONNECTIONS && count(&output, "closed")? == connected,
        "silent management connections were not all accepted and closed: {output}"
    );
    let woken = delta(&before, &after, 0, &[("idle", "wakeups_by_timer")]);
    eprintln!(
        "xtask: [appliance] idle timeout of {IDLE_TIMEOUT_MS} ms: {}",
        idle_moves(&before, &after, 2)
    );
    ensure!(
        woken >= 1,
        "core 0 (the management plane's) closed the silent connection without a timer wake-up"
    );
    Ok(())
}

/// `/metrics` carries the sleeps and wake-ups by cause; one connection
/// scrapes it, whichever core RSS sends it to.
fn metrics_count_the_wakeups(lan: &Lan) -> Result<()> {
    let scrape = lan.netns.run(&[
        "timeout",
        "-k",
        "5",
        "20",
        "curl",
        "-sS",
        "--max-time",
        "10",
        "http://10.0.0.2:8080/metrics",
    ])?;
    for series in [
        "warpcore_sleeps_total{core=\"1\"}",
        "warpcore_wakeups_total{core=\"0\",cause=\"timer\"}",
        "warpcore_wakeups_total{core=\"1\",cause=\"doorbell\"}",
    ] {
        ensure!(
            scrape.lines().any(|line| line.starts_with(series)),
            "/metrics has no {series}"
        );
    }
    Ok(())
}

/// examples/echo.toml with `idle = "poll"` on one core: it says so, and
/// polls without sleeping.
pub fn polling_core_never_sleeps() -> Result<()> {
    let text = std::fs::read_to_string(example("echo.toml"))?;
    let spec = spec_file::temporary("idle-poll", &format!("idle = \"poll\"\n{text}"))?;
    let lan = Lan::create(1, false, Some("10.0.0.1/24"))?;
    let booted = QemuSession::boot_appliance(&spec, 1, &lan.netns, &lan.tap_names(), 1);
    let _ = std::fs::remove_file(&spec);
    let mut session = booted?;
    let result = (|| -> Result<()> {
        ensure!(
            session.log().contains("idle = poll"),
            "the core does not say it polls when idle"
        );
        wait_reachable(&lan.netns, "10.0.0.2", 20)?;
        udp_echo(&lan.netns, "10.0.0.2", 1, 20)?;
        let session = std::cell::RefCell::new(&mut session);
        polling_cores_never_sleep(&mut || session.borrow_mut().counters(), 1, "appliance")
    })();
    result.map_err(|error| error.context(format!("console:\n{}", session.log())))
}

/// The largest polling window in the haltpoll case's spec: longer than
/// the default 200 µs so that the gap between one echo's reply and the
/// next request (the client's round trip through the host and QEMU's
/// main loop, 100–400 µs under TCG) falls inside it.
const HALT_POLL_US: u64 = 1000;
/// Sequential UDP echoes in the haltpoll case: enough wake-ups for the
/// window to grow from 0 and then catch the following requests.
const HALT_POLL_ECHOES: u32 = 200;
/// Polls a halt-polling core may make in a second without traffic: the
/// counters dump wakes it once and it polls at most its window after
/// that (a polling core makes hundreds of thousands).
const IDLE_SECOND_POLL_LIMIT: u64 = 20_000;

/// examples/echo.toml with `idle = "haltpoll"` and `halt_poll_us = 1000`
/// on one core: it says so; back-to-back echoes grow its window and some
/// of them are caught while it polls; the window stays within its bound;
/// and without traffic it sleeps instead of polling.
pub fn halt_polling_core_catches_work_and_sleeps_when_idle() -> Result<()> {
    let text = std::fs::read_to_string(example("echo.toml"))?;
    let spec = spec_file::temporary(
        "idle-haltpoll",
        &format!("idle = \"haltpoll\"\nhalt_poll_us = {HALT_POLL_US}\n{text}"),
    )?;
    let lan = Lan::create(1, false, Some("10.0.0.1/24"))?;
    let booted = QemuSession::boot_appliance(&spec, 1, &lan.netns, &lan.tap_names(), 1);
    let _ = std::fs::remove_file(&spec);
    let mut session = booted?;
    let result = (|| -> Result<()> {
        ensure!(
            session.log().contains(&format!(
                "idle = haltpoll, polls at most {HALT_POLL_US} us before halting"
            )),
            "the core does not say it halt-polls with its window"
        );
        wait_reachable(&lan.netns, "10.0.0.2", 20)?;
        let before = session.counters()?;
        udp_echo(&lan.netns, "10.0.0.2", 1, HALT_POLL_ECHOES)?;
        let after = session.counters()?;
        let caught = delta(&before, &after, 0, &[("idle", "poll_windows_caught")]);
        let timed_out = delta(&before, &after, 0, &[("idle", "poll_windows_timed_out")]);
        let window_ns = after.sum(Some(0), &[("idle", "poll_window_ns")]);
        eprintln!(
            "xtask: [appliance] idle = \"haltpoll\", {HALT_POLL_ECHOES} echoes one after \
             another: {caught} windows caught work, {timed_out} timed out, window now {window_ns} ns; {}",
            idle_moves(&before, &after, 1)
        );
        ensure!(
            caught >= 1,
            "no polling window caught an echo request in {HALT_POLL_ECHOES} back-to-back echoes \
             ({timed_out} windows timed out)"
        );
        ensure!(
            window_ns <= HALT_POLL_US * 1000,
            "the window ({window_ns} ns) is above halt_poll_us = {HALT_POLL_US}"
        );
        let before = session.counters()?;
        std::thread::sleep(std::time::Duration::from_secs(1));
        let after = session.counters()?;
        let sleeps = delta(&before, &after, 0, &[("idle", "sleeps")]);
        let polls = delta(&before, &after, 0, &[("executor", "polls")]);
        eprintln!(
            "xtask: [appliance] idle = \"haltpoll\", 1 s without traffic: {}",
            idle_moves(&before, &after, 1)
        );
        ensure!(
            sleeps >= 1 && polls <= IDLE_SECOND_POLL_LIMIT,
            "without traffic the halt-polling core slept {sleeps} times and polled {polls} times \
             (at most {IDLE_SECOND_POLL_LIMIT} expected: it should sleep, not poll)"
        );
        Ok(())
    })();
    result.map_err(|error| error.context(format!("console:\n{}", session.log())))
}
