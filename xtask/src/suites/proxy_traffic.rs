//! The `tcp-proxy` checks, shared by the hosted suite and QEMU: a real
//! backend (Python's `http.server`) in the client namespace at
//! 10.0.0.1:8000, real clients (`curl`, a bounded `wrk`) through the
//! appliance's proxy on 10.0.0.2:8080, and the `tcp` node's counters:
//! every client made the appliance open a connection of its own, from the
//! client's core, and a segment that reached another core was passed to
//! it (`segments-handed-off` = `segments-handed-in`), none dropped.

use crate::counters::Counters;
use crate::net::netns::{Netns, unique_name};
use crate::shell::host::{DEBIAN_PYTHON, ensure_programs};
use crate::shell::process::describe;
use crate::suites::tcp_traffic::{ReadCounters, drop_count, event, moved};
use anyhow::{Context, Result, bail, ensure};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The spec the proxy cases serve.
pub const SPEC: &str = "examples/tcp-proxy.toml";
/// The proxy to the backend, and one to a port where nothing listens.
const PROXY: &str = "http://10.0.0.2:8080";
const PROXY_TO_NOTHING: &str = "http://10.0.0.2:8081";
/// The backend's address (the client namespace's own).
const BACKEND_ADDRESS: &str = "10.0.0.1";
const BACKEND_PORT: &str = "8000";
/// The small file's content and the big file's size.
const SMALL: &[u8] = b"hello through the proxy\n";
const BLOB_BYTES: usize = 4 << 20;

/// Python's `http.server` serving a directory of test files in a
/// namespace. It runs in a process group of its own, started directly (no
/// `timeout` wrapper to orphan it); dropping the guard sends the group
/// SIGTERM and waits for it, SIGKILL to the group only if it will not go.
pub struct HttpBackend {
    child: Child,
    directory: PathBuf,
}

impl HttpBackend {
    /// Writes the files and starts the server on 10.0.0.1:8000 in `netns`;
    /// returns once it answers (bounded: 10 s).
    pub fn start(netns: &Netns) -> Result<Self> {
        let directory = std::env::temp_dir().join(unique_name("wcpx"));
        std::fs::create_dir_all(&directory)
            .with_context(|| format!("creating {}", directory.display()))?;
        std::fs::write(directory.join("small"), SMALL)?;
        std::fs::write(directory.join("blob"), pseudo_random_bytes(BLOB_BYTES))?;
        let mut command = netns.command(DEBIAN_PYTHON);
        command
            .args(["-m", "http.server", "--bind", BACKEND_ADDRESS, BACKEND_PORT])
            .arg("--directory")
            .arg(&directory)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        let line = describe(&command);
        let child = command
            .spawn()
            .with_context(|| format!("could not start `{line}`"))?;
        let backend = Self { child, directory };
        let url = format!("http://{BACKEND_ADDRESS}:{BACKEND_PORT}/small");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let probe = netns.output(&["curl", "-sS", "--max-time", "1", &url])?;
            if probe.status.success() && probe.stdout == SMALL {
                return Ok(backend);
            }
            if Instant::now() >= deadline {
                bail!("the backend `{line}` did not answer {url} within 10 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The file of `name` served.
    fn file(&self, name: &str) -> PathBuf {
        self.directory.join(name)
    }
}

impl Drop for HttpBackend {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let signal_group = |signal: &str| {
            let _ = Command::new("kill")
                .args([signal, "--", &group])
                .stderr(Stdio::null())
                .status();
        };
        signal_group("-TERM");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                let _ = std::fs::remove_dir_all(&self.directory);
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        signal_group("-KILL");
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.directory);
    }
}

/// `count` bytes from a fixed xorshift sequence: incompressible, the same
/// every run.
fn pseudo_random_bytes(count: usize) -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..count)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 32) as u8
        })
        .collect()
}

/// `sha256sum` of a file.
fn sha256(path: &std::path::Path) -> Result<String> {
    let output = Command::new("sha256sum").arg(path).output()?;
    ensure!(
        output.status.success(),
        "sha256sum {} failed",
        path.display()
    );
    let text = String::from_utf8_lossy(&output.stdout);
    Ok(text
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned())
}

/// curl in `client`, bounded by `--max-time` and `timeout -k`.
fn curl(client: &Netns, args: &[&str]) -> Result<String> {
    let mut full = vec![
        "timeout",
        "-k",
        "5",
        "90",
        "curl",
        "-sS",
        "--max-time",
        "60",
    ];
    full.extend_from_slice(args);
    client.run(&full)
}

/// Who steers flows to cores, and so whether the backend connections'
/// answers may come back to another core than the one that dialled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Steering {
    /// The host (a tap's flow table, a fanout hash): strays are expected,
    /// passed between cores.
    Host,
    /// Our RSS (igb): each backend connection takes a port whose answers
    /// hash to its core, so none strays (`segments-handed-off` stays 0).
    OurRss,
}

/// The proxy checks against an appliance serving [`SPEC`] with `cores`
/// cores, reached from `client`, where the backend is started.
pub fn proxy_checks(
    client: &Netns,
    counters: &mut ReadCounters,
    cores: u32,
    steering: Steering,
) -> Result<()> {
    ensure_programs(
        "the tcp-proxy tests",
        &[("curl", "curl"), ("wrk", "wrk"), ("sha256sum", "coreutils")],
    )?;
    let backend = HttpBackend::start(client)?;
    let before = counters()?;

    let small = curl(client, &[&format!("{PROXY}/small")])?;
    ensure!(
        small.as_bytes() == SMALL,
        "GET /small through the proxy answered `{small}`"
    );
    let copy = std::env::temp_dir().join(unique_name("wcpb"));
    let fetched = curl(
        client,
        &["-o", &copy.to_string_lossy(), &format!("{PROXY}/blob")],
    );
    let digests = fetched.and_then(|_| Ok((sha256(&backend.file("blob"))?, sha256(&copy)?)));
    let _ = std::fs::remove_file(&copy);
    let (expected, got) = digests?;
    ensure!(
        expected == got,
        "4 MiB through the proxy: sha256 {got}, expected {expected}"
    );
    eprintln!("    curl: /small and 4 MiB /blob through the proxy, sha256 {got}");

    // Many clients, one at a time: distinct source ports spread them over
    // the cores, and each core dials its clients' backends itself.
    for _ in 0..16 {
        let answer = curl(client, &[&format!("{PROXY}/small")])?;
        ensure!(answer.as_bytes() == SMALL, "GET /small answered `{answer}`");
    }

    let refused = client.output(&[
        "timeout",
        "-k",
        "5",
        "30",
        "curl",
        "-sS",
        "--max-time",
        "20",
        &format!("{PROXY_TO_NOTHING}/small"),
    ])?;
    ensure!(
        !refused.status.success(),
        "a proxy to a closed backend port answered: {}",
        String::from_utf8_lossy(&refused.stdout)
    );

    let wrk = client.run(&[
        "timeout",
        "-k",
        "5",
        "40",
        "wrk",
        "-t",
        "2",
        "-c",
        "4",
        "-d",
        "3s",
        &format!("{PROXY}/small"),
    ])?;
    eprintln!("    wrk: {}", wrk.trim().replace('\n', "\n    wrk: "));
    let requests: u64 = wrk
        .lines()
        .find_map(|line| line.trim().split_once(" requests in "))
        .and_then(|(count, _)| count.trim().parse().ok())
        .context("wrk printed no request count")?;
    ensure!(requests > 0, "wrk got no answer through the proxy");
    ensure!(
        !wrk.contains("Non-2xx"),
        "wrk got non-2xx answers through the proxy"
    );
    ensure!(
        !wrk.contains("Socket errors"),
        "wrk saw socket errors through the proxy"
    );

    let settled = settle_handoffs(counters)?;
    drop(backend);
    check_counters(&before, &settled, requests + 18, cores, steering)
}

/// Counters once every segment passed between cores has been taken in
/// (bounded: 10 s).
fn settle_handoffs(counters: &mut ReadCounters) -> Result<Counters> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = counters()?;
        let balanced =
            event(&now, None, "segments-handed-off") == event(&now, None, "segments-handed-in");
        if balanced || Instant::now() >= deadline {
            return Ok(now);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// At least one backend connection per client, opened on every core when
/// there are two, one refusal counted, none that could not be tried, and
/// no segment dropped for arriving on the wrong core.
fn check_counters(
    before: &Counters,
    after: &Counters,
    clients: u64,
    cores: u32,
    steering: Steering,
) -> Result<()> {
    let delta =
        |name: &str, core: Option<u32>| event(after, core, name) - event(before, core, name);
    let opened: Vec<u64> = (0..cores)
        .map(|core| delta("connections-opened", Some(core)))
        .collect();
    let (handed_off, handed_in) = (
        delta("segments-handed-off", None),
        delta("segments-handed-in", None),
    );
    eprintln!("    counters: {}", moved(before, after));
    eprintln!(
        "    connections-opened per core {opened:?} for {clients} clients; segments handed off \
         {handed_off}, handed in {handed_in}"
    );
    ensure!(
        opened.iter().sum::<u64>() >= clients,
        "{clients} clients but {opened:?} backend connections opened"
    );
    ensure!(
        opened.iter().all(|count| *count > 0),
        "every core should dial for the clients it got: {opened:?}"
    );
    ensure!(
        delta("connections-refused", None) == 1,
        "the proxy to a closed port counted {} refusals, expected 1",
        delta("connections-refused", None)
    );
    ensure!(
        delta("connects-failed", None) == 0,
        "connections that could not be tried"
    );
    ensure!(
        handed_off == handed_in,
        "{handed_off} segments handed off but {handed_in} taken in"
    );
    ensure!(
        steering == Steering::Host || handed_off == 0,
        "the NIC's RSS is ours, yet {handed_off} segments strayed to a core that did not open \
         their connection"
    );
    let wrong_core = drop_count(after, "wrong-core") - drop_count(before, "wrong-core");
    ensure!(
        wrong_core == 0,
        "{wrong_core} segments dropped on the wrong core"
    );
    Ok(())
}
