//! The TCP workloads: warpcore's `http` and `kv` apps against nginx and
//! memcached, driven from the client namespace by wrk (keep-alive and
//! connection-per-request rates) and `tcp-load` (fixed-rate latency,
//! memcached get/set). Every client's figures come back as loadgen's
//! `RunResult`, so the report treats them like the packet workloads'.

use crate::bench::harness::Tools;
use crate::net::netns::Netns;
use crate::shell::host::{ensure_programs, workspace_root};
use crate::shell::process::ChildGuard;
use crate::spec_file;
use anyhow::{Context, Result, bail, ensure};
use loadgen::run::RunResult;
use loadgen::tracker::Summary;
use perf::scenario::{Scenario, Workload};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The server's address: the appliance's in `perf/specs/tcp.toml`, the
/// Linux guest's and the Linux host server namespace's.
pub const SERVER_ADDRESS: &str = "10.0.0.2";
/// The client namespace's side of the tap or veth.
pub const CLIENT_ADDRESS: &str = "10.0.0.1/24";
/// The HTTP port and memcached's.
const HTTP_PORT: u16 = 80;
const KV_PORT: u16 = 11211;
/// How long a server may take to listen.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(20);

/// Installs wrk, nginx and memcached when missing (as root).
pub fn ensure_tcp_tools() -> Result<()> {
    ensure_programs(
        "the TCP benchmarks",
        &[
            ("wrk", "wrk"),
            ("nginx", "nginx-light"),
            ("memcached", "memcached"),
        ],
    )
}

/// `perf/specs/tcp.toml` (the `http` and `kv` apps on one interface) with
/// one queue pair per core, and with `idle = "IDLE"` when `idle` is some
/// (see [`echo_spec`](crate::bench::systems::echo_spec)).
pub fn tcp_spec(cores: u32, idle: Option<&str>) -> Result<PathBuf> {
    let source = workspace_root().join("perf/specs/tcp.toml");
    let text = crate::bench::systems::with_idle(
        &std::fs::read_to_string(&source).with_context(|| source.display().to_string())?,
        idle,
    );
    spec_file::temporary(
        &format!(
            "bench-tcp-{cores}{}",
            idle.map(|idle| format!("-{idle}")).unwrap_or_default()
        ),
        &spec_file::with_queues(&text, cores)?,
    )
}

/// nginx and memcached in `netns`, with `cores` workers and threads, as the
/// Linux host's peers; stopped with SIGTERM on drop so nginx's master takes
/// its workers along.
pub struct HostServers {
    servers: Vec<ChildGuard>,
}

impl HostServers {
    /// Starts both servers in `netns` and waits until `client` can connect
    /// to each.
    pub fn start(netns: &Netns, client: &Netns, cores: u32) -> Result<Self> {
        let config = workspace_root().join("perf/peers/nginx.conf");
        let mut nginx = netns.command("nginx");
        nginx
            .arg("-c")
            .arg(&config)
            .args(["-g", &format!("worker_processes {cores};")]);
        let mut memcached = netns.command("memcached");
        memcached.args(["-u", "root", "-p", &KV_PORT.to_string(), "-U", "0"]);
        memcached.args(["-m", "64", "-c", "4096", "-t", &cores.to_string()]);
        let mut servers = Self {
            servers: Vec::new(),
        };
        for command in [&mut nginx, &mut memcached] {
            command.stdout(Stdio::null());
            servers.servers.push(ChildGuard::spawn(command)?);
        }
        wait_for_servers(client)?;
        Ok(servers)
    }
}

impl Drop for HostServers {
    fn drop(&mut self) {
        for server in &mut self.servers {
            let _ = server.signal("TERM");
            let deadline = Instant::now() + Duration::from_secs(3);
            while Instant::now() < deadline {
                if !matches!(server.child_mut().try_wait(), Ok(None)) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// Waits until both servers accept connections from `client`.
pub fn wait_for_servers(client: &Netns) -> Result<()> {
    for port in [HTTP_PORT, KV_PORT] {
        let deadline = Instant::now() + LISTEN_TIMEOUT;
        let probe = format!("exec 3<>/dev/tcp/{SERVER_ADDRESS}/{port}");
        loop {
            let output = client
                .command("bash")
                .args(["-c", &probe])
                .stderr(Stdio::null())
                .output()?;
            if output.status.success() {
                break;
            }
            ensure!(
                Instant::now() < deadline,
                "nothing listens on {SERVER_ADDRESS}:{port} after {LISTEN_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    Ok(())
}

/// One run of a TCP workload from `client`: the rate and the figures.
pub fn tcp_run(
    tools: &Tools,
    scenario: &Scenario,
    client: &Netns,
) -> Result<(f64, Option<RunResult>)> {
    let run = match scenario.workload {
        Workload::HttpKeepalive => wrk(scenario, client, false)?,
        Workload::HttpClose => wrk(scenario, client, true)?,
        Workload::HttpLatency => {
            ensure!(
                scenario.rate > 0,
                "http-latency needs a rate: the Linux peer's http-keepalive figure earlier in the run, or `rate`"
            );
            tcp_load(tools, scenario, client, "http", HTTP_PORT)?
        }
        Workload::KvGet => tcp_load(tools, scenario, client, "memcache-get", KV_PORT)?,
        Workload::KvSet => tcp_load(tools, scenario, client, "memcache-set", KV_PORT)?,
        other => bail!("{other:?} is not a TCP workload"),
    };
    ensure!(
        run.summary.received > 0,
        "no replies at all ({} errors)",
        run.summary.lost
    );
    Ok((run.received_pps, Some(run)))
}

/// `wrk -t1 -cN -dS --latency`, with `Connection: close` when `close`.
fn wrk(scenario: &Scenario, client: &Netns, close: bool) -> Result<RunResult> {
    let mut command = client.command("wrk");
    command.args([
        "-t1",
        &format!("-c{}", scenario.connections),
        &format!("-d{}s", scenario.duration_secs),
        "--latency",
    ]);
    if close {
        command.args(["-H", "Connection: close"]);
    }
    command.arg(format!("http://{SERVER_ADDRESS}/"));
    let output = command.output().context("running wrk")?;
    let text = String::from_utf8_lossy(&output.stdout);
    ensure!(
        output.status.success(),
        "wrk failed: {}{}",
        String::from_utf8_lossy(&output.stderr).trim(),
        text.trim()
    );
    parse_wrk(&text, scenario.duration_secs as f64)
        .with_context(|| format!("reading wrk's output:\n{text}"))
}

/// `tcp-load` with `protocol` against `port`, its JSON read back.
fn tcp_load(
    tools: &Tools,
    scenario: &Scenario,
    client: &Netns,
    protocol: &str,
    port: u16,
) -> Result<RunResult> {
    let mut command = client.command(&tools.tcp_load.to_string_lossy());
    command.args([
        "--target",
        &format!("{SERVER_ADDRESS}:{port}"),
        "--protocol",
        protocol,
        "--connections",
        &scenario.connections.to_string(),
        "--duration-secs",
        &scenario.duration_secs.to_string(),
        "--rate",
        &scenario.rate.to_string(),
        "--warmup-secs",
        &scenario.warmup_secs.to_string(),
    ]);
    let output = command.output().context("running tcp-load")?;
    ensure!(
        output.status.success(),
        "tcp-load failed: {}",
        String::from_utf8_lossy(&output.stderr).trim()
    );
    serde_json::from_slice(&output.stdout).context("parsing tcp-load's JSON")
}

/// wrk's report as loadgen's figures: requests as probes, socket errors and
/// non-2xx replies as lost, the 50 % and 99 % latencies.
pub(crate) fn parse_wrk(text: &str, seconds: f64) -> Result<RunResult> {
    let rate: f64 = field(text, "Requests/sec:")
        .context("no Requests/sec line")?
        .parse()
        .context("Requests/sec")?;
    let requests: u64 = text
        .lines()
        .find_map(|line| {
            let (count, rest) = line.trim().split_once(' ')?;
            rest.starts_with("requests in")
                .then(|| count.parse().ok())?
        })
        .context("no `N requests in` line")?;
    let mut errors = 0;
    if let Some(socket) = field(text, "Socket errors:") {
        // connect 0, read 0, write 0, timeout 0
        errors += socket
            .split(',')
            .filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok())
            .sum::<u64>();
    }
    if let Some(non_2xx) = field(text, "Non-2xx or 3xx responses:") {
        errors += non_2xx.parse::<u64>().unwrap_or(0);
    }
    let percentile = |name: &str| {
        text.lines().find_map(|line| {
            let mut words = line.split_whitespace();
            (words.next()? == name).then(|| duration_ns(words.next()?))?
        })
    };
    let (p50, p99) = (percentile("50%"), percentile("99%"));
    ensure!(p50.is_some() && p99.is_some(), "no latency distribution");
    Ok(RunResult {
        summary: Summary {
            sent: requests + errors,
            received: requests,
            lost: errors,
            loss_percent: errors as f64 * 100.0 / (requests + errors).max(1) as f64,
            duplicates: 0,
            reordered: 0,
            foreign: 0,
            latency_p50_ns: p50,
            latency_p90_ns: percentile("90%"),
            latency_p99_ns: p99,
            latency_p999_ns: None,
            latency_max_ns: None,
        },
        send_seconds: seconds,
        sent_pps: rate,
        offered_pps: None,
        received_pps: rate,
        latency_cdf: ["50%", "75%", "90%", "99%"]
            .iter()
            .filter_map(|name| {
                let percent: f64 = name.trim_end_matches('%').parse().ok()?;
                Some((percent, percentile(name)?))
            })
            .collect(),
        vhost_user: None,
        vhost_user_receive: None,
        tcp_client: None,
    })
}

/// The rest of the line that starts (after spaces) with `name`.
fn field<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|line| line.trim().strip_prefix(name))
        .map(str::trim)
}

/// wrk's `97.00us`, `1.01ms`, `2.00s` in nanoseconds.
fn duration_ns(text: &str) -> Option<u64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().ok()?;
    let scale = match unit {
        "ns" => 1.0,
        "us" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "m" => 60e9,
        _ => return None,
    };
    Some((value * scale).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wrks_report() {
        let text = "Running 2s test @ http://10.0.0.2/
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.15ms    2.69ms  36.62ms   90.53%
    Req/Sec    62.37k    18.46k   78.60k    70.00%
  Latency Distribution
     50%   97.00us
     75%    1.01ms
     90%    3.70ms
     99%   10.00ms
  124182 requests in 2.01s, 19.90MB read
  Socket errors: connect 0, read 3, write 0, timeout 2
  Non-2xx or 3xx responses: 1
Requests/sec:  61742.95
Transfer/sec:      9.89MB
";
        let run = parse_wrk(text, 2.0).unwrap();
        assert_eq!(run.received_pps, 61742.95);
        assert_eq!(run.summary.received, 124_182);
        assert_eq!(run.summary.lost, 6);
        assert_eq!(run.summary.latency_p50_ns, Some(97_000));
        assert_eq!(run.summary.latency_p99_ns, Some(10_000_000));
        assert_eq!(run.latency_cdf.len(), 4);
        assert!(parse_wrk("Running 2s test\n", 2.0).is_err());
        assert_eq!(duration_ns("2.00s"), Some(2_000_000_000));
        assert_eq!(duration_ns("12"), None);
    }
}
