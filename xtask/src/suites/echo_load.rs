//! A UDP echo load that runs while the appliance changes under it, shared
//! by the reconcile and hot-loading checks: loadgen (AF_PACKET, from an
//! address and MAC the client namespace does not own) sends to port 7 at
//! a fixed rate in back-to-back runs of a few seconds until the checks
//! say stop, so it covers however long they take, bounded in runs; the
//! verdict is every probe of every run echoed.

use crate::net::netns::Netns;
use anyhow::{Context, Result, bail, ensure};
use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Where loadgen sends from (an address the namespace's kernel does not
/// own, with a MAC it does not own either, as the benchmarks do).
const LOADGEN_ADDRESS: &str = "10.0.0.100";
const LOADGEN_MAC: &str = "02:00:00:00:00:64";
/// Probes a second.
const LOAD_PPS: u64 = 2000;

/// A child process killed and reaped when dropped (a failed check must not
/// leave it running).
pub(crate) struct Reaped(pub(crate) Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What the runs added up to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct LoadTotals {
    /// loadgen runs.
    pub(crate) runs: u64,
    pub(crate) sent: u64,
    pub(crate) received: u64,
    pub(crate) lost: u64,
}

/// The load, running in a thread of its own.
pub(crate) struct EchoLoad {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<LoadTotals>>>,
}

impl EchoLoad {
    /// Starts runs of `run_seconds` each from `client` on `client_ifname`
    /// to 10.0.0.2:7, at most `max_runs` of them (the bound when the
    /// checks never say stop).
    pub(crate) fn start(
        client: &Netns,
        client_ifname: &str,
        run_seconds: u64,
        max_runs: u64,
    ) -> Result<Self> {
        let loadgen = build_loadgen()?;
        let namespace = client.name().to_owned();
        let ifname = client_ifname.to_owned();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::spawn(move || -> Result<LoadTotals> {
            let mut totals = LoadTotals::default();
            // Relaxed: a flag read once per run; nothing else is published through it.
            while totals.runs < max_runs && (totals.runs == 0 || !stopped.load(Ordering::Relaxed)) {
                let child = std::process::Command::new("ip")
                    .args(["netns", "exec", &namespace])
                    .arg(&loadgen)
                    .args([
                        "--interface",
                        &ifname,
                        "--source-mac",
                        LOADGEN_MAC,
                        "--source-ip",
                        LOADGEN_ADDRESS,
                        "--destination-ip",
                        "10.0.0.2",
                        "--rate",
                        &LOAD_PPS.to_string(),
                        "--duration",
                        &run_seconds.to_string(),
                        "--count",
                        &(LOAD_PPS * run_seconds).to_string(),
                        "--timeout-ms",
                        "1000",
                        "--json",
                    ])
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .context("starting loadgen")?;
                let mut child = Reaped(child);
                let report: serde_json::Value = wait_json(&mut child.0, run_seconds + 20)?;
                let summary = &report["summary"];
                totals.runs += 1;
                totals.sent += summary["sent"].as_u64().unwrap_or(0);
                totals.received += summary["received"].as_u64().unwrap_or(0);
                totals.lost += summary["lost"].as_u64().unwrap_or(u64::MAX / 4);
            }
            Ok(totals)
        });
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }

    /// Lets the run under way finish and fails unless every probe of every
    /// run was echoed.
    pub(crate) fn finish(mut self) -> Result<LoadTotals> {
        self.stop.store(true, Ordering::Relaxed);
        let totals = match self.thread.take().map(JoinHandle::join) {
            Some(Ok(totals)) => totals?,
            _ => bail!("the load's thread panicked"),
        };
        ensure!(
            totals.sent > 0 && totals.lost == 0 && totals.received == totals.sent,
            "loadgen on port 7 over {} runs: sent {}, received {}, lost {}",
            totals.runs,
            totals.sent,
            totals.received,
            totals.lost
        );
        Ok(totals)
    }
}

impl Drop for EchoLoad {
    /// A failed check: stop after the run under way (its loadgen is
    /// reaped by its own guard).
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Waits at most `seconds` for loadgen to end and parses its JSON (as
/// loadgen's `RunResult`, or as a `serde_json::Value` to read a few fields).
pub(crate) fn wait_json<T: serde::de::DeserializeOwned>(
    child: &mut Child,
    seconds: u64,
) -> Result<T> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        if let Some(status) = child.try_wait().context("waiting for loadgen")? {
            let mut stdout = String::new();
            if let Some(mut out) = child.stdout.take() {
                out.read_to_string(&mut stdout)
                    .context("loadgen's output")?;
            }
            let mut stderr = String::new();
            if let Some(mut err) = child.stderr.take() {
                let _ = err.read_to_string(&mut stderr);
            }
            ensure!(status.success(), "loadgen failed: {}", stderr.trim());
            return serde_json::from_str(&stdout).context("parsing loadgen's JSON");
        }
        if Instant::now() > deadline {
            bail!("loadgen did not end within {seconds} s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Builds loadgen (with the suites' other programs, `suites::binaries`);
/// its path.
pub(crate) fn build_loadgen() -> Result<PathBuf> {
    crate::suites::binaries::loadgen()
}
