//! The management plane's log checks, against a running appliance from
//! its client namespace: `/api/v1/logs` finds the startup lines,
//! `/api/v1/logs/stream` (curl) brings a line the appliance logs while
//! the stream is open and resumes after `Last-Event-ID`, and `warpctl
//! logs` searches and follows (`-f`, ended by SIGINT as Ctrl-C would).

use crate::net::netns::Netns;
use crate::shell::process::{ChildGuard, spawn_reading_lines};
use anyhow::{Context, Result, bail, ensure};
use std::os::unix::process::ExitStatusExt;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// How long a stream may take to bring what a check waits for.
const STREAM_WAIT: Duration = Duration::from_secs(15);
/// How long a stream's process may take to end once it should.
const EXIT_WAIT: Duration = Duration::from_secs(10);

/// What the log checks need of the management checks: the API's base
/// address, its token, curl in the client namespace, and a way to make
/// the appliance log a line (a `PUT /api/v1/spec?dryRun=true`, which it
/// logs as `spec dry run from <peer>: valid, ...`).
pub struct LogChecks<'a> {
    /// The client namespace.
    pub client: &'a Netns,
    /// `http://10.0.0.2:8080`.
    pub base: &'a str,
    /// The bearer token.
    pub token: &'a str,
    /// Runs curl with these arguments (bounded) and returns its stdout.
    pub curl: &'a dyn Fn(&[&str]) -> Result<String>,
    /// Makes the appliance log a `spec dry run` line.
    pub log_a_line: &'a dyn Fn() -> Result<()>,
    /// The warpctl binary.
    pub warpctl: &'a str,
}

impl LogChecks<'_> {
    fn bearer(&self) -> String {
        format!("Authorization: Bearer {}", self.token)
    }

    /// All the log checks.
    pub fn run(&self) -> Result<()> {
        self.search()?;
        self.stream()?;
        self.warpctl_search_and_follow()
    }

    /// `GET /api/v1/logs` finds the lines the platform logged at startup:
    /// `management::attach`'s `management listening` line (both
    /// platforms), and the platform's own: the appliance's `core 0
    /// appliance running` or warpcore-hosted's `ready cores=`; 401
    /// without the token.
    fn search(&self) -> Result<()> {
        let bearer = self.bearer();
        let search = |query: &str| -> Result<String> {
            (self.curl)(&["-H", &bearer, &format!("{}/api/v1/logs?{query}", self.base)])
        };
        let listening = search("q=management+listening&level=info")?;
        ensure!(
            listening.starts_with("{\"entries\":[{\"seq\":")
                && listening.contains("\"level\":\"info\"")
                && listening.contains("management listening on port 8080"),
            "GET /api/v1/logs?q=management+listening answered `{listening}`"
        );
        let running = search("q=appliance%20running&limit=1")?;
        let ready = search("q=ready%20cores%3D&limit=1")?;
        ensure!(
            running.contains("core 0 appliance running") || ready.contains("ready cores="),
            "GET /api/v1/logs found neither `appliance running` (`{running}`) nor `ready cores=` (`{ready}`)"
        );
        let absent = search("q=no-such-line-logged")?;
        ensure!(
            absent.starts_with("{\"entries\":[],\"next\":"),
            "GET /api/v1/logs?q=no-such-line-logged answered `{absent}`"
        );
        for path in ["/api/v1/logs?q=running", "/api/v1/logs/stream"] {
            let code = (self.curl)(&[
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                &format!("{}{path}", self.base),
            ])?;
            ensure!(code == "401", "GET {path} without a token answered {code}");
        }
        eprintln!("    /api/v1/logs: startup lines found by q=, 401 without a token");
        Ok(())
    }

    /// `GET /api/v1/logs/stream?q=spec+dry+run&limit=1` opened with curl:
    /// once its first comment has arrived, a dry run is logged, and the
    /// event must arrive on the open stream, which then ends (its limit);
    /// `Last-Event-ID` one before that record brings it again.
    fn stream(&self) -> Result<()> {
        let started = Instant::now();
        let url = format!("{}/api/v1/logs/stream?q=spec+dry+run&limit=1", self.base);
        let bearer = self.bearer();
        let mut command = self.client.command("curl");
        command.args(["-sS", "-N", "--max-time", "30", "-H", &bearer, &url]);
        let (mut curl, lines) = spawn_reading_lines(&mut command)?;
        let opening = read_until(&lines, STREAM_WAIT, |line| line.starts_with(": "))
            .context("the log stream sent no opening comment")?;
        (self.log_a_line)()?;
        let mut seen = opening;
        seen.extend(
            read_until(&lines, STREAM_WAIT, |line| {
                line.starts_with("data: ") && line.contains("spec dry run from ")
            })
            .context("the dry run's log line did not arrive on the open stream")?,
        );
        let id = seen
            .iter()
            .rev()
            .find_map(|line| line.strip_prefix("id: "))
            .and_then(|id| id.parse::<u64>().ok())
            .with_context(|| format!("no id before the event: {seen:?}"))?;
        ensure!(
            seen.iter().any(|line| line == "event: log"),
            "no `event: log` in {seen:?}"
        );
        let status = wait_exit(&mut curl, EXIT_WAIT)?;
        ensure!(
            status.success(),
            "curl on the log stream exited with {status} after limit=1"
        );
        let data = seen.last().cloned().unwrap_or_default();
        let again = (self.curl)(&[
            "-N",
            "-H",
            &bearer,
            "-H",
            &format!("Last-Event-ID: {}", id - 1),
            &url,
        ])?;
        ensure!(
            again.contains(&format!("id: {id}\nevent: log\n{data}\n")),
            "the stream resumed after Last-Event-ID {} with `{again}`",
            id - 1
        );
        eprintln!(
            "    /api/v1/logs/stream: the dry run's line (id {id}) arrived on the open stream, again after Last-Event-ID; {:.1} s",
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }

    /// `warpctl logs` finds the dry runs; `warpctl logs -f` prints a new
    /// one as it is logged and ends on SIGINT.
    fn warpctl_search_and_follow(&self) -> Result<()> {
        let warpctl = |args: &[&str]| -> Result<std::process::Output> {
            let mut full = vec![
                "timeout",
                "-k",
                "5",
                "30",
                self.warpctl,
                "--server",
                self.base,
                "--token",
                self.token,
            ];
            full.extend_from_slice(args);
            self.client.output(&full)
        };
        let found = warpctl(&[
            "logs",
            "-q",
            "spec dry run",
            "--level",
            "info",
            "--limit",
            "5",
        ])?;
        let printed = String::from_utf8_lossy(&found.stdout);
        ensure!(
            found.status.success()
                && printed.starts_with("   SEQ    TIME (s)  LEVEL  TARGET")
                && printed.contains("  info   management::app       spec dry run from "),
            "warpctl logs -q printed `{printed}`, stderr `{}`",
            String::from_utf8_lossy(&found.stderr)
        );
        let json = warpctl(&["logs", "-q", "spec dry run", "-o", "json", "--limit", "1"])?;
        let json = String::from_utf8_lossy(&json.stdout);
        ensure!(
            json.starts_with("{\"entries\":[{\"seq\":"),
            "warpctl logs -o json printed `{json}`"
        );

        let mut command = self.client.command(self.warpctl);
        command.args([
            "--server",
            self.base,
            "--token",
            self.token,
            "logs",
            "-f",
            "-q",
            "spec dry run",
            "--limit",
            "1",
        ]);
        let (mut follow, lines) = spawn_reading_lines(&mut command)?;
        // The header and the newest dry run so far come first.
        let before = read_until(&lines, STREAM_WAIT, |line| {
            line.contains("spec dry run from ")
        })
        .context("warpctl logs -f printed no existing dry run")?;
        (self.log_a_line)()?;
        let after = read_until(&lines, STREAM_WAIT, |line| {
            line.contains("spec dry run from ")
        })
        .context("warpctl logs -f did not print the new dry run")?;
        let seq = |line: &str| {
            line.split_whitespace()
                .next()
                .and_then(|seq| seq.parse::<u64>().ok())
        };
        let (old, new) = (
            before.last().and_then(|line| seq(line)),
            after.last().and_then(|line| seq(line)),
        );
        ensure!(
            matches!((old, new), (Some(old), Some(new)) if new > old),
            "warpctl logs -f printed {before:?} then {after:?}"
        );
        follow.signal("INT")?;
        let status = wait_exit(&mut follow, EXIT_WAIT)?;
        ensure!(
            status.signal() == Some(2) || status.code() == Some(130),
            "warpctl logs -f ended with {status} on SIGINT"
        );
        eprintln!(
            "    warpctl logs: -q found the dry runs; -f printed seq {} as it was logged, ended by SIGINT",
            new.unwrap_or(0)
        );
        Ok(())
    }
}

/// The lines of `lines` up to and including the first that `wanted`
/// accepts; fails after `wait` or when the process's stdout closes.
fn read_until(
    lines: &Receiver<String>,
    wait: Duration,
    wanted: impl Fn(&str) -> bool,
) -> Result<Vec<String>> {
    let deadline = Instant::now() + wait;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                let done = wanted(&line);
                seen.push(line);
                if done {
                    return Ok(seen);
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                bail!("nothing wanted within {} s; read {seen:?}", wait.as_secs())
            }
            Err(RecvTimeoutError::Disconnected) => {
                bail!("the process ended; read {seen:?}")
            }
        }
    }
}

/// Waits at most `wait` for the guarded process to exit.
fn wait_exit(guard: &mut ChildGuard, wait: Duration) -> Result<std::process::ExitStatus> {
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        if let Some(status) = guard.child_mut().try_wait().context("waiting")? {
            return Ok(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("the process did not exit within {} s", wait.as_secs())
}
